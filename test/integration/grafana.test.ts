// Grafana annotations from the controller: the token comes from a real Secret, annotations reach a
// server that enforces Grafana's documented annotations API, a scaling event is a point and a panic
// period is a region closed by PATCH.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import { secretReader } from '../../src/cli/controller.ts';
import { Controller } from '../../src/control/controller.ts';
import { ManualSignalSource } from '../../src/control/signals.ts';
import { allowEntryFor, HostAllowlist } from '../../src/observe/http.ts';
import { configFromSpec, GrafanaAnnotator } from '../../src/report/grafana.ts';
import { type GrafanaContractServer, startGrafanaContractServer } from '../grafana-contract-server.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const TOKEN = 'glsa_kvpa_test_token_do_not_log';
const LWS = 'leaderworkerset.sigs.k8s.io';
let ns = '';
let grafana: GrafanaContractServer;
const logLines: string[] = [];

beforeAll(async () => {
  grafana = await startGrafanaContractServer({ token: TOKEN });
  ns = (
    (
      await api.create('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { generateName: 'kvpa-graf-' },
      })
    ).metadata as { name: string }
  ).name;
  await api.create(`/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    // The owner's grant: kvpa reads no Secret without this label.
    metadata: { name: 'grafana', labels: { 'kvpa.io/grafana-token': 'true' } },
    data: { token: Buffer.from(TOKEN).toString('base64') },
  });
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name: 'g' },
    spec: {
      replicas: 1,
      leaderWorkerTemplate: {
        size: 1,
        workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
      },
    },
  });
  await api.pod(
    ns,
    'g-0',
    {
      [`${LWS}/name`]: 'g',
      [`${LWS}/group-index`]: '0',
      [`${LWS}/worker-index`]: '0',
      [`${LWS}/group-key`]: 'k0',
    },
    true,
  );
  await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name: 'g' },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      grafana: {
        url: grafana.url,
        tokenSecretRef: { name: 'grafana', key: 'token' },
        dashboardUID: 'llm',
        tags: ['team:serving'],
      },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: 'g' },
          maxReplicas: 4,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          tickSeconds: 1,
          scaleDownDelaySeconds: 0,
        },
      ],
    },
  });
});

afterAll(() => grafana?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('controller → Grafana annotations', () => {
  it('posts a point per scaling event and a panic region closed by PATCH, with the documented tags', async () => {
    let nowMs = Date.parse('2026-11-23T12:00:00Z');
    const signals = new ManualSignalSource();
    const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
    const controller = new Controller({
      kubeConfig,
      signals,
      policies: loadPolicies().policies,
      targetFor: (namespace, ref) => scaleTargetFor(kubeConfig, namespace, ref),
      logger,
      namespace: ns,
      nowMs: () => nowMs,
      sampleIntervalMs: 3_600_000,
      annotationsFor: (pa, spec) =>
        spec.grafana === undefined
          ? null
          : new GrafanaAnnotator(
              configFromSpec(spec.grafana, secretReader(kubeConfig, pa.metadata?.namespace ?? '')),
              {
                logger,
                batchIntervalMs: 20,
                // the operator's --allowed-hosts: this loopback server, plain http
                allowedHosts: new HostAllowlist([allowEntryFor(grafana.url)]),
              },
            ),
    });
    await controller.start();
    try {
      const step = async (s = 1) => {
        nowMs += s * 1000;
        await controller.tick();
      };
      for (let i = 0; i < 50 && controller.watched().length === 0; i++) await sleep(50);
      signals.set(`${ns}/g/decode`, 'kvCacheUtilization', 0.95); // 1 ready at 0.95 → 2 groups, 2/1 ≥ 2: panic
      await step();
      signals.set(`${ns}/g/decode`, 'kvCacheUtilization', 0.3);
      for (let i = 0; i < 9; i++) await step(); // panic ends one stable window (6 s) after the last tick over
      await sleep(300);
    } finally {
      await controller.stop(); // closes the annotator, flushing what is queued
    }
    const stored = grafana.annotations();
    const point = stored.find((a) => a.tags.includes('event:scale'));
    expect(point, JSON.stringify(stored)).toBeDefined();
    expect(point?.tags).toEqual(
      expect.arrayContaining([
        'kvpa',
        `namespace:${ns}`,
        'name:g',
        'pool:decode',
        'mode:Panic',
        'dryRun:false',
        'team:serving',
      ]),
    );
    expect(point?.dashboardUID).toBe('llm');
    expect(point?.text).toContain('1→2 groups');
    const region = stored.find((a) => a.tags.includes('event:panic'));
    expect(region).toBeDefined();
    expect(region?.timeEnd).toBeGreaterThan(region?.time ?? Number.POSITIVE_INFINITY);
    expect(grafana.requests.some((r) => r.method === 'PATCH' && r.outcome === 200)).toBe(true);
    expect(grafana.requests.every((r) => r.outcome === 200)).toBe(true);
    expect(logLines.join('\n')).not.toContain(TOKEN);
  });
});
