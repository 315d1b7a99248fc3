// One tenant's fault stays that tenant's: the real controller (pods source, scale targets, status and
// Events) against the real API server, with engine endpoints on 127.0.0.1. In every test tenant A
// carries the fault and tenant B, a healthy pool at 2 groups × 0.9 KV (target 0.7, so 3 groups),
// must keep deciding and writing. Each test has its own namespace and controller, and bounded time.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { type AnnotationSink, Controller, type ControllerOptions } from '../../src/control/controller.ts';
import { RoutingSignalSource } from '../../src/control/sources.ts';
import { GrafanaAnnotator } from '../../src/report/grafana.ts';
import { kubeConfigWithToken, loopbackServingCert } from '../harness/cluster.ts';
import { customPath, type Json, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const LWS = 'leaderworkerset.sigs.k8s.io';
const T0_MS = Date.parse('2026-11-23T10:00:00Z');

const lwsPath = (ns: string, name: string) =>
  `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/${name}`;
const paCollection = (ns: string) => customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers');
const replicasOf = async (ns: string, name: string) =>
  ((await api.get(lwsPath(ns, name))).spec as { replicas: number }).replicas;
const statusOf = async (ns: string, name: string) =>
  (await api.get(`${paCollection(ns)}/${name}`)).status as PodAutoscalerStatus | undefined;
const condition = async (ns: string, name: string, type: string) =>
  (await statusOf(ns, name))?.conditions?.find((c) => c.type === type);

async function eventsOf(ns: string, name: string): Promise<{ reason: string; message: string }[]> {
  const list = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '' }));
}

async function eventReasons(ns: string, name: string): Promise<string[]> {
  return (await eventsOf(ns, name)).map((e) => e.reason);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function namespace(): Promise<string> {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-fault-' },
  });
  return (created.metadata as { name: string }).name;
}

/** An LWS with `groups` ready groups; head pods of the groups in `withIp` get podIP 127.0.0.1. */
async function lws(ns: string, name: string, groups: number, withIp = groups): Promise<void> {
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name },
    spec: {
      replicas: groups,
      leaderWorkerTemplate: {
        size: 1,
        workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
      },
    },
  });
  for (let g = 0; g < groups; g++) {
    const pod = `${name}-${g}`;
    await api.pod(
      ns,
      pod,
      {
        [`${LWS}/name`]: name,
        [`${LWS}/group-index`]: String(g),
        [`${LWS}/worker-index`]: '0',
        [`${LWS}/group-key`]: `k-${name}-${g}`,
      },
      true,
    );
    // No podIP: the group cannot be scraped, so it is silent (as a pod too busy to answer would be).
    await api.setStatus(`/api/v1/namespaces/${ns}/pods/${pod}`, { podIP: g < withIp ? '127.0.0.1' : null });
  }
}

function podAutoscaler(name: string, port: number, pool: Json = {}, spec: Json = {}): Json {
  return {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port, timeoutSeconds: 1 } },
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
          maxScaleUpRate: 1000,
          ...pool,
        },
      ],
      ...spec,
    },
  };
}

type EngineMode = { kind: 'page'; text: string } | { kind: 'hang' };

/** A fake engine metrics endpoint on 127.0.0.1. */
async function engine(mode: EngineMode): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    if (mode.kind === 'hang') return; // never answers
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
    res.end(mode.text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const vllmPage = (kv: string, waiting = '0') =>
  `vllm:kv_cache_usage_perc{engine="0",model_name="m"} ${kv}\nvllm:num_requests_waiting{engine="0",model_name="m"} ${waiting}\nvllm:num_requests_running{engine="0",model_name="m"} 1\n`;

type ApiFault = 'freeze' | 'reset';

/**
 * The API server behind a TLS-terminating proxy on 127.0.0.1 (its own throw-away CA), which forwards
 * every request except those `selects` picks: those it freezes (reads, never answers) or resets (closes
 * the connection unanswered). Unlike loop-faults' TCP proxy it sees methods and paths, so one tenant's
 * calls fail while the same controller's other traffic (watch, pods, status, Events) passes.
 */
async function apiPathProxy(
  selects: (path: string) => boolean,
  fault: ApiFault,
): Promise<{ kubeConfig: KubeConfig; server: string; held: string[]; forwarded: string[]; close(): void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kvpa-proxy-'));
  const pki = await loopbackServingCert(dir, {
    caCommonName: 'kvpa-proxy-ca',
    name: 'proxy',
    commonName: 'kvpa-proxy',
  });
  const upstream = new URL(cluster.server);
  const agent = new https.Agent({ ca: readFileSync(cluster.caCertPath), keepAlive: true });
  const held: string[] = [];
  const forwarded: string[] = [];
  const sockets = new Set<Socket>();
  const proxy = https.createServer(
    { cert: readFileSync(pki.cert), key: readFileSync(pki.key) },
    (req, res) => {
      const method = req.method ?? '';
      const url = req.url ?? '/';
      const urlPath = new URL(url, 'https://proxy').pathname;
      const call = `${method} ${urlPath}`;
      if (selects(urlPath)) {
        held.push(call);
        if (fault === 'reset') req.socket.destroy();
        return;
      }
      forwarded.push(call);
      const forward = https.request(
        { host: upstream.hostname, port: upstream.port, method, path: url, headers: req.headers, agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          // A watch with nothing to say yet must still see its headers, or its client waits on them.
          res.flushHeaders();
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      // A watch ends when its client goes away.
      res.on('close', () => {
        if (!res.writableFinished) forward.destroy();
      });
      req.pipe(forward);
    },
  );
  proxy.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const server = `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const handle = {
    kubeConfig: kubeConfigWithToken({ server, caCertPath: pki.caCert }, cluster.adminToken),
    server,
    held,
    forwarded,
    close() {
      for (const s of sockets) s.destroy();
      proxy.close();
      agent.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  proxies.push(handle);
  return handle;
}

const servers: http.Server[] = [];
const controllers: Controller[] = [];
const proxies: { close(): void }[] = [];
afterEach(async () => {
  // Hanging engines first, so their scrapes fail at once and stop() does not wait on them.
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
  await Promise.all(controllers.splice(0).map((c) => c.stop()));
  // Then the proxies: a frozen write still pending ends here.
  for (const p of proxies.splice(0)) p.close();
});

/** The production wiring of signals and targets; the clock is the test's unless `realTime`. */
function controllerIn(ns: string, o: Partial<ControllerOptions> & { realTime?: boolean } = {}) {
  let nowMs = T0_MS;
  const { policies } = loadPolicies();
  const controller = new Controller({
    kubeConfig,
    signals: new RoutingSignalSource(),
    policies,
    targetFor: (namespace, ref) => scaleTargetFor(kubeConfig, namespace, ref),
    logger: pino({ level: 'silent' }),
    namespace: ns,
    ...(o.realTime ? { sampleIntervalMs: 250 } : { nowMs: () => nowMs, sampleIntervalMs: 3_600_000 }),
    ...o,
  });
  controllers.push(controller);
  return {
    controller,
    async start(names: readonly string[]) {
      await controller.start();
      for (let i = 0; i < 200 && !names.every((n) => controller.watched().includes(`${ns}/${n}`)); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(controller.watched().sort()).toEqual(names.map((n) => `${ns}/${n}`).sort());
    },
    async steps(n: number) {
      for (let i = 0; i < n; i++) {
        nowMs += 1000;
        await controller.tick();
      }
    },
  };
}

/** Tenant B: 2 ready groups at 0.9 KV → ceil(1.8 / 0.7) = 3 groups. */
async function healthyTenant(ns: string): Promise<void> {
  const b = await engine({ kind: 'page', text: vllmPage('0.9') });
  await lws(ns, 'b', 2);
  await api.create(paCollection(ns), podAutoscaler('b', b.port));
}

describe('finding 1: one bad spec freezes no one else', () => {
  it('the API server rejects a mismatched apiVersion and a user:pass@ or file: Grafana URL, naming the field', async () => {
    const ns = await namespace();
    const badRef = podAutoscaler('bad-ref', 1, {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'LeaderWorkerSet', name: 'x' },
    });
    const refused = await api.request('POST', paCollection(ns), badRef);
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.json)).toContain(
      'scaleTargetRef.apiVersion must be <group>/<version> of its kind',
    );
    for (const url of ['http://user:pass@grafana.example.com', 'file:///etc/passwd']) {
      const grafana = { url, tokenSecretRef: { name: 'g', key: 'token' } };
      const res = await api.request('POST', paCollection(ns), podAutoscaler('bad-url', 1, {}, { grafana }));
      expect(res.status, url).toBe(422);
      expect(JSON.stringify(res.json)).toContain('no user:pass@');
    }
  });

  it('a target adapter and a Grafana sink that throw at build: InvalidSpec on A only, B scales 2 → 3', async () => {
    const ns = await namespace();
    await healthyTenant(ns);
    const a = await engine({ kind: 'page', text: vllmPage('0.9') });
    await lws(ns, 'a', 2);
    await api.create(paCollection(ns), podAutoscaler('a', a.port));
    await lws(ns, 'a-grafana', 2);
    const grafana = { url: 'https://grafana.example.com', tokenSecretRef: { name: 'g', key: 'token' } };
    await api.create(paCollection(ns), podAutoscaler('a-grafana', a.port, {}, { grafana }));
    const h = controllerIn(ns, {
      // The real adapter given a ref it refuses (the check the schema now makes first) …
      targetFor: (namespace, ref) =>
        scaleTargetFor(kubeConfig, namespace, ref.name === 'a' ? { ...ref, apiVersion: 'apps/v1' } : ref),
      // … and the real Grafana client given a URL its constructor refuses.
      annotationsFor: (): AnnotationSink =>
        new GrafanaAnnotator({ url: 'file:///etc/passwd', token: () => 'x' }),
    });
    await h.start(['a', 'a-grafana', 'b']);
    await h.steps(3);
    expect(await replicasOf(ns, 'b')).toBe(3);
    expect(await condition(ns, 'b', 'Ready')).toMatchObject({ status: 'True' });
    for (const name of ['a', 'a-grafana']) {
      expect(await condition(ns, name, 'Ready'), name).toMatchObject({
        status: 'False',
        reason: 'InvalidSpec',
      });
      expect(await eventReasons(ns, name)).toContain('InvalidSpec');
      expect(await replicasOf(ns, name)).toBe(2);
    }
    expect((await condition(ns, 'a', 'Ready'))?.message).toContain('spec.pools[0].scaleTargetRef');
    expect((await condition(ns, 'a-grafana', 'Ready'))?.message).toContain('spec.grafana');
  });
});

describe('finding 2: huge finite values are out of range, not a poisoned window', () => {
  it('A reports 1e308 KV and 1e308 waiting: A is OutOfRange and holds at 2; B scales 2 → 3', async () => {
    const ns = await namespace();
    await healthyTenant(ns);
    const a = await engine({ kind: 'page', text: vllmPage('1e308', '1e308') });
    await lws(ns, 'a', 2);
    await api.create(
      paCollection(ns),
      podAutoscaler('a', a.port, {
        metrics: [
          { type: 'kvCacheUtilization', target: 0.7 },
          { type: 'queueDepth', target: 4 },
        ],
      }),
    );
    const h = controllerIn(ns);
    await h.start(['a', 'b']);
    await h.steps(5);
    expect(await replicasOf(ns, 'b')).toBe(3);
    expect(await replicasOf(ns, 'a')).toBe(2);
    const metrics = await condition(ns, 'a', 'MetricsAvailable');
    expect(metrics).toMatchObject({ status: 'False', reason: 'OutOfRange' });
    expect(metrics?.message).toMatch(/kvCacheUtilization: outOfRange.*queueDepth: outOfRange/);
    const signals = (await statusOf(ns, 'a'))?.pools?.[0]?.lastDecision?.signals ?? [];
    expect(signals.map((s) => s.state)).toEqual(['outOfRange', 'outOfRange']);
    expect(await eventReasons(ns, 'a')).toContain('MetricsMissing');
  });
});

describe('finding 3: one slow endpoint blocks no other pool', () => {
  it('A scrapes a hanging endpoint with a 30 s timeout; on the real clock B still decides about once a second', async () => {
    const ns = await namespace();
    await healthyTenant(ns);
    const a = await engine({ kind: 'hang' });
    await lws(ns, 'a', 2);
    await api.create(
      paCollection(ns),
      podAutoscaler('a', a.port, {}, { metricsSource: { pods: { port: a.port, timeoutSeconds: 30 } } }),
    );
    const decidedAtMs = new Map<string, number[]>();
    const h = controllerIn(ns, {
      realTime: true,
      observer: {
        pool: (key) => decidedAtMs.set(key, [...(decidedAtMs.get(key) ?? []), Date.now()]),
      },
    });
    const startedMs = Date.now();
    await h.start(['a', 'b']);
    await new Promise((r) => setTimeout(r, 6_000));
    const b = decidedAtMs.get(`${ns}/b`) ?? [];
    const gapsMs = b.slice(1).map((t, i) => t - (b[i] ?? t));
    // 6 s at tickSeconds 1: about 6 decisions; before, each tick waited for A's 30 s scrape.
    expect(b.length, `B decided at ${b.map((t) => t - startedMs).join(', ')} ms`).toBeGreaterThanOrEqual(4);
    expect(gapsMs.reduce((a, g) => Math.max(a, g), 0)).toBeLessThan(2_500);
    expect(await replicasOf(ns, 'b')).toBe(3);
    // A decided once (before it had head pods to scrape), then waits on its own endpoint.
    expect((decidedAtMs.get(`${ns}/a`) ?? []).length).toBeLessThanOrEqual(2);
    expect(await replicasOf(ns, 'a')).toBe(2);
  });
});

describe('finding 4: a silent group is not counted at the mean of the idle ones', () => {
  it('4 groups, the 2 that answer are idle (0.05 KV) and the 2 busy ones are silent: A stays at 4 for 20 s; B scales 2 → 3', async () => {
    const ns = await namespace();
    await healthyTenant(ns);
    const a = await engine({ kind: 'page', text: vllmPage('0.05') });
    await lws(ns, 'a', 4, 2);
    await api.create(paCollection(ns), podAutoscaler('a', a.port, { maxScaleDownRate: 2 }));
    const h = controllerIn(ns);
    await h.start(['a', 'b']);
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      await h.steps(1);
      seen.push(await replicasOf(ns, 'a'));
    }
    expect(seen).toEqual(Array.from({ length: 20 }, () => 4));
    expect(await replicasOf(ns, 'b')).toBe(3);
    const decision = (await statusOf(ns, 'a'))?.pools?.[0]?.lastDecision;
    expect(decision?.summary).toContain('silent group may be the busy one');
    expect(decision?.holdReason).toContain('kvCacheUtilization (2 silent)');
  });
});

describe('a scale write that hangs or fails blocks no other pool', () => {
  it.each<[string, ApiFault, RegExp]>([
    // The write never answers: the pool's deadline ends the wait.
    [
      'hang',
      'freeze',
      /^decode: pool decode did not finish within \d+(\.\d+)?s, waiting on writing the count of LeaderWorkerSet kvpa-fault-\w+\/a$/,
    ],
    // The write fails at once: the message names the write and the object.
    ['are cut off', 'reset', /^decode: scaling LeaderWorkerSet kvpa-fault-\w+\/a failed/],
  ])(
    "A's LeaderWorkerSet /scale writes %s: FailedRescale on A naming no address, A stays at 2; B decides about once a second and scales 2 → 3",
    async (_how, fault, named) => {
      const ns = await namespace();
      await healthyTenant(ns);
      const a = await engine({ kind: 'page', text: vllmPage('0.9') });
      await lws(ns, 'a', 2);
      await api.create(paCollection(ns), podAutoscaler('a', a.port));
      // The whole controller goes through the proxy; only A's scale writes are held.
      const aScale = `${lwsPath(ns, 'a')}/scale`;
      const proxy = await apiPathProxy((p) => p === aScale, fault);
      const decidedAtMs = new Map<string, number[]>();
      const h = controllerIn(ns, {
        realTime: true,
        kubeConfig: proxy.kubeConfig,
        targetFor: (namespace, ref) => scaleTargetFor(proxy.kubeConfig, namespace, ref),
        // 2 s for the read, decision and write after the sample's 3 s (timeoutSeconds 1, plus 2): 5 s,
        // under the API call's own 10 s deadline, so a hung write is ended by the pool's boundary.
        poolDeadlineSeconds: 2,
        observer: {
          pool: (key) => decidedAtMs.set(key, [...(decidedAtMs.get(key) ?? []), Date.now()]),
        },
      });
      const startedMs = Date.now();
      await h.start(['a', 'b']);
      await until(
        'B at 3 groups and FailedRescale on A',
        async () =>
          (await replicasOf(ns, 'b')) === 3 &&
          (await condition(ns, 'a', 'Ready'))?.reason === 'FailedRescale',
        20_000,
      );
      // A has failed; B keeps its cadence for the next 4 s while A's writes go on failing.
      const failedAtMs = Date.now();
      await new Promise((r) => setTimeout(r, 4_000));
      expect(new Set(proxy.held)).toEqual(new Set([`PATCH ${aScale}`]));
      expect(proxy.forwarded).toContain(`PATCH ${lwsPath(ns, 'b')}/scale`);
      const b = decidedAtMs.get(`${ns}/b`) ?? [];
      const gapsMs = b.slice(1).map((t, i) => t - (b[i] ?? t));
      const when = `B decided at ${b.map((t) => t - startedMs).join(', ')} ms; A failed by ${failedAtMs - startedMs} ms`;
      expect(b.filter((t) => t >= failedAtMs).length, when).toBeGreaterThanOrEqual(3);
      expect(Math.max(0, ...gapsMs), when).toBeLessThan(2_500);
      expect(await replicasOf(ns, 'b')).toBe(3);
      expect(await condition(ns, 'b', 'Ready')).toMatchObject({ status: 'True' });

      expect(await replicasOf(ns, 'a')).toBe(2);
      const ready = await condition(ns, 'a', 'Ready');
      expect(ready).toMatchObject({ status: 'False', reason: 'FailedRescale' });
      const failed = (await eventsOf(ns, 'a')).filter((e) => e.reason === 'FailedRescale');
      expect(
        failed.map((e) => e.message).filter((m) => named.test(m)),
        JSON.stringify(failed),
      ).not.toEqual([]);
      // What failed, not where: no address, port, URL or socket error of the proxy or the API server.
      for (const text of [ready?.message ?? '', ...failed.map((e) => e.message)]) {
        expect(text).toMatch(/^decode: /);
        expect(text).not.toMatch(/127\.0\.0\.1|localhost|https?:|ECONN|socket|TLS/i);
        for (const server of [proxy.server, cluster.server]) {
          expect(text).not.toContain(`:${new URL(server).port}`);
        }
      }
    },
  );
});
