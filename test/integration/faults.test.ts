// Fault tests: the real controller (as `kvpa controller` wires it) against the real API server, with
// one tenant's endpoint misbehaving on 127.0.0.1 and another tenant's pool beside it. Each test shows
// the fault bounded or refused, and the other pool still deciding and writing.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadPolicies } from '../../src/api/documents.ts';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { createController } from '../../src/cli/controller.ts';
import type { Controller } from '../../src/control/controller.ts';
import { allowEntryFor, HostAllowlist } from '../../src/observe/http.ts';
import {
  type GrafanaContractServer,
  startGrafanaContractServer,
} from '../../src/stack/grafana-contract-server.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, type Json, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const LWS = 'leaderworkerset.sigs.k8s.io';
const TOKEN = 'glsa_fault_test_token_never_sent';
let ns = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

/** Head pods (namespace/pod) the healthy Prometheus reports at KV 0.95 each. */
const loadedPods = new Set<string>();
/** A Prometheus API that answers every instant query with 0.95 for each loaded head pod, fresh. */
function healthyPrometheus(): Server {
  return createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const time = form.get('time') ?? String(Date.now() / 1000);
      const query = form.get('query') ?? '';
      const result = query.includes('kv_cache_usage_perc')
        ? [...loadedPods].flatMap((key) => {
            const [namespace, pod] = key.split('/');
            return [
              {
                metric: { __name__: 'vllm:kv_cache_usage_perc', namespace, pod, kvpa_field: 'value' },
                value: [Number(time), '0.95'],
              },
              { metric: { namespace, pod, kvpa_field: 'ts' }, value: [Number(time), time] },
            ];
          })
        : [];
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
    });
  });
}

async function lws(name: string, replicas: number, readyGroups: number): Promise<void> {
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name },
    spec: {
      replicas,
      leaderWorkerTemplate: {
        size: 1,
        workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
      },
    },
  });
  for (let g = 0; g < readyGroups; g++) {
    await api.pod(
      ns,
      `${name}-${g}`,
      {
        [`${LWS}/name`]: name,
        [`${LWS}/group-index`]: String(g),
        [`${LWS}/worker-index`]: '0',
        [`${LWS}/group-key`]: `k-${name}-${g}`,
      },
      true,
    );
  }
}

async function podAutoscaler(name: string, metricsSource: Json, extra: Json = {}): Promise<void> {
  await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource,
      ...extra,
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name },
          minReplicas: 1,
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          scaleDownDelaySeconds: 0,
          tickSeconds: 1,
        },
      ],
    },
  });
}

const lwsPath = (name: string) =>
  `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/${name}`;
const replicasOf = async (name: string) =>
  ((await api.ok('GET', lwsPath(name))).spec as { replicas: number }).replicas;
const statusOf = async (name: string) =>
  (await api.ok('GET', `${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/${name}`)).status as
    | PodAutoscalerStatus
    | undefined;

/** A tenant whose pool the healthy Prometheus loads: 2 ready groups at 0.95 → Σ 1.9 / 0.7 → 3 groups. */
async function victim(name: string, prometheusUrl: string, extra: Json = {}): Promise<void> {
  await lws(name, 2, 2);
  loadedPods.add(`${ns}/${name}-0`);
  loadedPods.add(`${ns}/${name}-1`);
  await podAutoscaler(name, { prometheus: { address: prometheusUrl, queryTimeoutSeconds: 1 } }, extra);
}

let healthy: Server;
let healthyUrl = '';
let controller: Controller;
const tickSeconds: number[] = [];
const logLines: string[] = [];
const grafanas: GrafanaContractServer[] = [];
let allowedGrafana: GrafanaContractServer;
let unlistedGrafana: GrafanaContractServer;
let httpsOnlyGrafana: GrafanaContractServer;

beforeAll(async () => {
  ns = (
    (
      await api.create('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { generateName: 'kvpa-fault-' },
      })
    ).metadata as { name: string }
  ).name;
  healthy = healthyPrometheus();
  healthyUrl = await listen(healthy);
  allowedGrafana = await startGrafanaContractServer({ token: TOKEN });
  unlistedGrafana = await startGrafanaContractServer({ token: TOKEN });
  httpsOnlyGrafana = await startGrafanaContractServer({ token: TOKEN });
  grafanas.push(allowedGrafana, unlistedGrafana, httpsOnlyGrafana);
  const logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(line) });
  controller = createController(kubeConfig, {
    policies: loadPolicies().policies,
    logger,
    identity: 'kvpa-fault-test',
    namespace: ns,
    observer: { tick: (s) => tickSeconds.push(s) },
    // plain http allowed to one fake Grafana; another is listed https-only, a third not at all
    allowedHosts: new HostAllowlist([allowEntryFor(allowedGrafana.url), new URL(httpsOnlyGrafana.url).host]),
  });
  await controller.start();
});

afterAll(async () => {
  await controller?.stop();
  await Promise.all(grafanas.map((g) => g.close()));
  if (healthy) await close(healthy);
});

describe('faults in one tenant’s endpoint are contained', () => {
  it('byte-drip Prometheus: each query ends at its 2 s deadline (ticks < 6 s, not 25 s), and the other pool scales 2 → 3', async () => {
    const drips: NodeJS.Timeout[] = [];
    const drip = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      drips.push(setInterval(() => res.write(' '), 100));
    });
    const dripUrl = await listen(drip);
    try {
      await lws('drip', 2, 2);
      await podAutoscaler('drip', { prometheus: { address: dripUrl, queryTimeoutSeconds: 1 } });
      await victim('v-drip', healthyUrl);
      const firstTick = tickSeconds.length;
      await until('the other pool scaled', async () => (await replicasOf('v-drip')) === 3);
      await until('the drip tenant reported', async () =>
        Boolean((await statusOf('drip'))?.conditions?.some((c) => c.type === 'MetricsAvailable')),
      );
      const ticks = tickSeconds.slice(firstTick);
      expect(ticks.length).toBeGreaterThan(0);
      // Each query ends by its 2 s deadline (1 s evaluation timeout + 1 s slack); a new pool's first
      // tick sends two (the live query, then the backfill), plus API calls: far from the 25 s a drip took.
      expect(Math.max(...ticks)).toBeLessThan(6);
      const metrics = (await statusOf('drip'))?.conditions?.find((c) => c.type === 'MetricsAvailable');
      expect(metrics?.status).toBe('False');
      expect(metrics?.message).toContain('unreachable');
      expect(metrics?.message).not.toMatch(/timeout|no complete response|127\.0\.0\.1/);
      expect(logLines.join('\n')).toContain('no complete response in time');
    } finally {
      for (const t of drips) clearInterval(t);
      await close(drip);
    }
  });

  it('huge Prometheus answer: the read stops at the 64 MiB cap, and the other pool scales 2 → 3', async () => {
    // bytes written per response: each tick sends its own queries, so a sum over responses grows with time
    const sentBytes: number[] = [];
    const huge = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const at = sentBytes.push(0) - 1;
      const pump = () => {
        while (!res.destroyed && (sentBytes[at] ?? 0) < 512 * 1024 * 1024) {
          sentBytes[at] = (sentBytes[at] ?? 0) + chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      pump();
    });
    const hugeUrl = await listen(huge);
    try {
      await lws('huge', 2, 2);
      await podAutoscaler('huge', { prometheus: { address: hugeUrl, queryTimeoutSeconds: 10 } });
      await victim('v-huge', healthyUrl);
      await until('the other pool scaled', async () => (await replicasOf('v-huge')) === 3);
      await until('the cap was hit', () => logLines.join('\n').includes('body exceeds 67108864 bytes'));
      await until('the huge tenant reported', async () =>
        Boolean((await statusOf('huge'))?.conditions?.some((c) => c.type === 'MetricsAvailable')),
      );
      // the client hung up soon after the cap on every response; a server pushing 512 MiB never finished one
      expect(sentBytes.length).toBeGreaterThan(0);
      expect(Math.max(...sentBytes)).toBeLessThan(256 * 1024 * 1024);
      const metrics = (await statusOf('huge'))?.conditions?.find((c) => c.type === 'MetricsAvailable');
      expect(metrics?.message).toContain('unreachable');
    } finally {
      await close(huge);
    }
  });

  it('a redirect to another host is refused: that host sees no request, and the other pool scales 2 → 3', async () => {
    let stolen = 0;
    const other = createServer((_req, res) => {
      stolen++;
      res.end('{}');
    });
    const otherUrl = await listen(other);
    const bouncer = createServer((_req, res) =>
      res.writeHead(307, { location: `${otherUrl}/api/v1/query` }).end(),
    );
    const bouncerUrl = await listen(bouncer);
    try {
      await lws('bounce', 2, 2);
      await podAutoscaler('bounce', { prometheus: { address: bouncerUrl, queryTimeoutSeconds: 1 } });
      await victim('v-bounce', healthyUrl);
      await until('the other pool scaled', async () => (await replicasOf('v-bounce')) === 3);
      await until('the refusal was logged', () => logLines.join('\n').includes('refused (only same-origin'));
      expect(stolen).toBe(0);
    } finally {
      await close(other);
      await close(bouncer);
    }
  });

  it('Grafana tokens: sent to an allowed host from a granted Secret; never to an unlisted host, over plain http to an https-only host, or from an ungranted Secret', async () => {
    const secret = async (name: string, granted: boolean) =>
      api.create(`/api/v1/namespaces/${ns}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, ...(granted ? { labels: { 'kvpa.io/grafana-token': 'true' } } : {}) },
        data: { token: Buffer.from(TOKEN).toString('base64') },
      });
    await secret('granted', true);
    await secret('ungranted', false);
    const grafana = (url: string, secretName: string) => ({
      grafana: { url, tokenSecretRef: { name: secretName, key: 'token' } },
    });
    await victim('g-ok', healthyUrl, grafana(allowedGrafana.url, 'granted'));
    await victim('g-unlisted', healthyUrl, grafana(unlistedGrafana.url, 'granted'));
    await victim('g-http', healthyUrl, grafana(httpsOnlyGrafana.url, 'granted'));
    await victim('g-ungranted', healthyUrl, grafana(`${allowedGrafana.url}/ungranted`, 'ungranted'));
    for (const name of ['g-ok', 'g-unlisted', 'g-http', 'g-ungranted']) {
      await until(`${name} scaled`, async () => (await replicasOf(name)) === 3);
    }
    // the positive control: the allowed, granted pair does get its annotation
    await until('the allowed Grafana got an annotation', () =>
      allowedGrafana.requests.some((r) => r.path === '/api/annotations' && r.outcome === 200),
    );
    await until('the ungranted Secret was refused', () =>
      logLines.join('\n').includes('Secret ungranted is not granted to kvpa'),
    );
    await sleep(1500); // batches go out within 1 s; give the refused ones the same chance
    expect(unlistedGrafana.requests).toEqual([]);
    expect(httpsOnlyGrafana.requests).toEqual([]);
    expect(allowedGrafana.requests.filter((r) => r.path.startsWith('/ungranted'))).toEqual([]);
    const log = logLines.join('\n');
    expect(log).toContain("is not in the controller's --allowed-hosts");
    expect(log).toContain('a token is sent over https only');
    expect(log).not.toContain(TOKEN);
  });
});
