// The controller against a real API server: a PodAutoscaler over a LeaderWorkerSet (upstream CRD),
// with signals fed through the SignalSource interface and time driven by the test. Pods are written
// by the test (no kubelet or LWS controller runs), so readiness is exactly what each test sets.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import type { ScaleTarget } from '../../src/actuate/types.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import { type PodAutoscalerStatus, signalName } from '../../src/api/podautoscaler.ts';
import { Controller } from '../../src/control/controller.ts';
import { ManualSignalSource, type PoolSignalRequest } from '../../src/control/signals.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, type Json, lwsWithReadyGroups, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-11-23T10:00:00Z');

let ns = '';
const lwsPath = (name: string) =>
  `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/${name}`;
const paPath = (name: string) => `${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/${name}`;

const lws = (name: string, replicas: number, readyGroups: number, size = 2) =>
  lwsWithReadyGroups(api, ns, name, replicas, readyGroups, size);

function podAutoscaler(name: string, target: string, mode: 'Apply' | 'DryRun', extra: Json = {}): Json {
  return {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode,
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: {
            apiVersion: 'leaderworkerset.x-k8s.io/v1',
            kind: 'LeaderWorkerSet',
            name: target,
          },
          minReplicas: 1,
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          scaleDownDelaySeconds: 0,
          tickSeconds: 1,
          maxScaleUpRate: 1000,
          ...extra,
        },
      ],
    },
  };
}

const get = (path: string) => api.ok('GET', path);
const replicasOf = async (name: string) => ((await get(lwsPath(name))).spec as { replicas: number }).replicas;
const versionOf = async (path: string) =>
  ((await get(path)).metadata as { resourceVersion: string }).resourceVersion;
const statusOf = async (name: string) => (await get(paPath(name))).status as PodAutoscalerStatus;

async function eventReasons(paName: string): Promise<string[]> {
  const list = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${paName}` });
  return list.items.map((e) => e.reason ?? '');
}

/** A controller whose clock and ticks the test drives. */
function harness(
  wrapTarget: (t: ScaleTarget) => ScaleTarget = (t) => t,
  signals: ManualSignalSource = new ManualSignalSource(),
) {
  let nowMs = T0_MS;
  const { policies } = loadPolicies();
  const controller = new Controller({
    kubeConfig,
    signals,
    policies,
    targetFor: (namespace, ref) => wrapTarget(scaleTargetFor(kubeConfig, namespace, ref)),
    logger: pino({ level: 'silent' }),
    namespace: ns,
    nowMs: () => nowMs,
    sampleIntervalMs: 3_600_000, // ticks come from the test
    overrideHoldSeconds: 30,
    ledgerPublishSeconds: 2,
  });
  return {
    controller,
    signals,
    /** Advances the clock and runs one tick. */
    async step(seconds = 1) {
      nowMs += seconds * 1000;
      await controller.tick();
    },
    async waitFor(paName: string) {
      for (let i = 0; i < 100; i++) {
        if (controller.watched().some((key) => key.endsWith(`/${paName}`))) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the watch never saw ${paName}`);
    },
  };
}

/** A manual source that, like the real ones, reads nothing for a pool whose heads it was not given. */
class HeadsOnlySource extends ManualSignalSource {
  override async sample(requests: readonly PoolSignalRequest[], nowSeconds: number) {
    const out = await super.sample(requests, nowSeconds);
    for (const r of requests) {
      if (r.heads.length > 0) continue;
      out.set(
        r.poolKey,
        r.pool.metrics.map((m) => ({
          name: signalName(m),
          state: 'noData' as const,
          detail: 'no ready groups to read',
        })),
      );
    }
    return out;
  }
}

describe("a new pool's first tick", () => {
  it('reads its 2 groups at once: the first decision is 2 → 4, and no MetricsMissing is raised', async () => {
    await lwsWithReadyGroups(api, ns, 'fresh', 2, 2);
    await api.create(
      customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'),
      podAutoscaler('fresh', 'fresh', 'DryRun', { capacityCheck: 'Off' }),
    );
    const h = harness(undefined, new HeadsOnlySource());
    await h.controller.start();
    try {
      await h.waitFor('fresh');
      h.signals.set(`${ns}/fresh/decode`, 'kvCacheUtilization', 2.8);
      await h.step();
    } finally {
      await h.controller.stop();
    }
    const pool = (await statusOf('fresh')).pools?.[0];
    expect(pool?.lastDecision?.signals?.[0]?.state).toBe('ok');
    expect(pool?.recommendedReplicas).toBe(4);
    expect(await eventReasons('fresh')).not.toContain('MetricsMissing');
  });
});

describe('the dry-run ledger across a controller restart', () => {
  it('16-GPU groups, 4 recommended against 2 held for 144 s: 2.56 against 1.28 GPU-hours, and a new controller goes on', async () => {
    await lwsWithReadyGroups(api, ns, 'ledger', 2, 2, 2, 8);
    await api.create(
      customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'),
      // No nodes here: AskAnyway recommends the want and reports the shortfall, as beside a cluster autoscaler.
      podAutoscaler('ledger', 'ledger', 'DryRun', { capacityCheck: 'AskAnyway' }),
    );
    const key = `${ns}/ledger/decode`;
    const first = harness();
    await first.controller.start();
    try {
      await first.waitFor('ledger');
      first.signals.set(key, 'kvCacheUtilization', 2.8); // → 4 groups
      // The first tick opens the ledger; the next four accrue 36 s each.
      for (let i = 0; i < 5; i++) await first.step(36);
    } finally {
      await first.controller.stop();
    }
    const before = (await statusOf('ledger')).pools?.[0]?.dryRunLedger;
    expect(before).toMatchObject({
      gpusPerGroup: 16,
      recommendedGroupHours: 0.16,
      actualGroupHours: 0.08,
      recommendedGpuHours: 2.56,
      actualGpuHours: 1.28,
    });

    // A new controller (a restart or a failover) reads the ledger back from status: the time it was
    // down counts on neither side, and the next two 36 s ticks add 72 s at 4 against 2 groups.
    const second = harness();
    await second.controller.start();
    try {
      await second.waitFor('ledger');
      second.signals.set(key, 'kvCacheUtilization', 2.8);
      for (let i = 0; i < 3; i++) await second.step(36);
    } finally {
      await second.controller.stop();
    }
    const after = (await statusOf('ledger')).pools?.[0]?.dryRunLedger;
    expect(after).toMatchObject({
      since: before?.since,
      gpusPerGroup: 16,
      recommendedGroupHours: 0.24,
      actualGroupHours: 0.12,
      recommendedGpuHours: 3.84,
      actualGpuHours: 1.92,
    });
  }, 60_000);
});

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-ctl-' },
  });
  ns = (created.metadata as { name: string }).name;
});

describe('controller on a real API server', () => {
  const h = harness();
  beforeAll(() => h.controller.start());
  afterAll(() => h.controller.stop());

  it('Apply: a load signal scales the LWS to the expected groups in one write, with status and events', async () => {
    await lws('apply', 2, 2);
    await api.create(
      customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'),
      podAutoscaler('apply', 'apply', 'Apply'),
    );
    await h.waitFor('apply');
    // 2 ready groups at 0.95 KV each: Σ 1.9 / 0.7 = 2.71 → 3 groups
    h.signals.set(`${ns}/apply/decode`, 'kvCacheUtilization', 1.9);
    const before = await get(lwsPath('apply'));
    await h.step();
    expect(await replicasOf('apply')).toBe(3);
    const after = await get(lwsPath('apply'));
    expect((after.metadata as { generation: number }).generation).toBe(
      (before.metadata as { generation: number }).generation + 1,
    );
    const status = await statusOf('apply');
    expect(status.pools?.[0]).toMatchObject({
      name: 'decode',
      replicas: 3,
      readyReplicas: 2,
      desiredReplicas: 3,
    });
    expect(status.pools?.[0]?.lastDecision?.summary).toContain('→ 3 groups');
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(status.conditions?.find((c) => c.type === 'DryRun')?.status).toBe('False');
    expect(await eventReasons('apply')).toContain('SuccessfulRescale');
  });

  it('does not write again, nor churn the status, while nothing changes', async () => {
    const lwsVersion = await versionOf(lwsPath('apply'));
    await h.step();
    const paVersion = await versionOf(paPath('apply'));
    for (let i = 0; i < 3; i++) await h.step();
    expect(await versionOf(lwsPath('apply'))).toBe(lwsVersion);
    expect(await versionOf(paPath('apply'))).toBe(paVersion);
  });

  it('missing data holds: a stale signal never scales down, and MetricsAvailable says why', async () => {
    h.signals.setState(`${ns}/apply/decode`, 'kvCacheUtilization', 'stale', 'newest sample 95s old');
    const lwsVersion = await versionOf(lwsPath('apply'));
    for (let i = 0; i < 10; i++) await h.step(2);
    expect(await replicasOf('apply')).toBe(3);
    expect(await versionOf(lwsPath('apply'))).toBe(lwsVersion);
    const metrics = (await statusOf('apply')).conditions?.find((c) => c.type === 'MetricsAvailable');
    expect(metrics).toMatchObject({ status: 'False', reason: 'Stale' });
    expect(metrics?.message).toContain('newest sample 95s old');
    expect(await eventReasons('apply')).toContain('MetricsMissing');
  });

  it('another writer: reports Overridden, adopts the new count and holds its own writes for a while', async () => {
    h.signals.set(`${ns}/apply/decode`, 'kvCacheUtilization', 1.9);
    await api.mergePatch(lwsPath('apply'), { spec: { replicas: 5 } });
    await h.step();
    const status = await statusOf('apply');
    expect(status.conditions?.find((c) => c.type === 'Overridden')).toMatchObject({
      status: 'True',
      reason: 'Overridden',
    });
    expect(await eventReasons('apply')).toContain('Overridden');
    const lwsVersion = await versionOf(lwsPath('apply'));
    for (let i = 0; i < 5; i++) await h.step(2);
    expect(await versionOf(lwsPath('apply'))).toBe(lwsVersion); // held: no fight
    expect(await replicasOf('apply')).toBe(5);
  });

  it('DryRun never writes: the target keeps its resourceVersion; status recommends and a WouldScale event is raised', async () => {
    await lws('dry', 2, 2);
    await api.create(
      customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'),
      podAutoscaler('dry', 'dry', 'DryRun'),
    );
    await h.waitFor('dry');
    const version = await versionOf(lwsPath('dry'));
    h.signals.set(`${ns}/dry/decode`, 'kvCacheUtilization', 2.8); // → 4 groups
    for (let i = 0; i < 5; i++) await h.step();
    expect(await versionOf(lwsPath('dry'))).toBe(version);
    const status = await statusOf('dry');
    expect(status.mode).toBe('DryRun');
    expect(status.pools?.[0]).toMatchObject({ replicas: 2, recommendedReplicas: 4 });
    expect(status.conditions?.find((c) => c.type === 'DryRun')?.status).toBe('True');
    expect(await eventReasons('dry')).toContain('WouldScale');
    // the counterfactual ledger: 4 recommended against 2 held since dry-run began; no GPUs in the template
    const ledger = status.pools?.[0]?.dryRunLedger;
    expect(ledger?.actualGroupHours).toBeGreaterThan(0);
    expect(ledger?.recommendedGroupHours).toBeCloseTo(2 * (ledger?.actualGroupHours ?? 0), 3);
    expect(ledger).toMatchObject({ gpusPerGroup: 0, recommendedGpuHours: 0, actualGpuHours: 0 });
  });

  it('restart recovery: a new pool refills its windows from the source history before deciding', async () => {
    await lws('restart', 2, 2);
    const key = `${ns}/restart/decode`;
    // the last minute ran at Σ KV 2.8 (4 groups' worth); right now the sample reads 0.7
    const nowSeconds = (T0_MS + 60_000) / 1000; // ahead of the test clock; the filter keeps what is in range
    h.signals.setHistory(
      key,
      'kvCacheUtilization',
      Array.from({ length: 600 }, (_, i) => ({ atSeconds: nowSeconds - 300 + i, total: 2.8 })),
    );
    h.signals.set(key, 'kvCacheUtilization', 0.7);
    await api.create(
      customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'),
      podAutoscaler('restart', 'restart', 'DryRun', { stableWindowSeconds: 60 }),
    );
    await h.waitFor('restart');
    await h.step();
    // with history: stable ≈ (59 × 2.8 + 0.7) / 60 = 2.77 → 4 groups; without it, 0.7 → 1 (held at 2)
    const pool = (await statusOf('restart')).pools?.[0];
    expect(pool?.recommendedReplicas).toBe(4);
    expect(pool?.lastDecision?.signals[0]?.stableTotal).toBeGreaterThan(2.7);
  });

  it('the seasonal memory: a new pool seeds a day back from the source, and plans on it (×1.8 a day ago, at most 1.5× now)', async () => {
    await lws('season', 2, 2);
    const key = `${ns}/season/decode`;
    // A day before the test clock, the pool's demand went from 100k to 180k tok/s; earlier tests moved the
    // clock by seconds, well inside the 300 s before the rise.
    const then = T0_MS / 1000 - 86_400;
    h.signals.setHistory(
      key,
      'promptTokens',
      Array.from({ length: 91 }, (_, i) => {
        const atSeconds = then - 1800 + 60 * i;
        return { atSeconds, total: atSeconds < then + 300 ? 100_000 : 180_000 };
      }),
    );
    h.signals.set(key, 'promptTokens', 100_000);
    await api.create(
      customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'),
      podAutoscaler('season', 'season', 'DryRun', {
        metrics: [{ type: 'promptTokens', target: 100_000 }],
        seasonalLookbackSeconds: [86_400],
      }),
    );
    await h.waitFor('season');
    await h.step();
    await h.step();
    const signal = (await statusOf('season')).pools?.[0]?.lastDecision?.signals[0];
    expect(signal?.plannedBy).toBe('seasonal');
    expect(signal?.seasonalRatio).toBeCloseTo(1.8, 6);
    expect(signal?.projectedTotal).toBeCloseTo(150_000, 0);
  });

  it('a deleted target is reported as TargetNotFound and nothing is written', async () => {
    await api.delete(lwsPath('dry'));
    await h.step();
    const status = await statusOf('dry');
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'TargetNotFound',
    });
    expect(await eventReasons('dry')).toContain('TargetNotFound');
  });

  it('a spec CEL cannot judge (an unknown preset) is reported as InvalidSpec, and nothing scales', async () => {
    await lws('invalid', 2, 2);
    const body = podAutoscaler('invalid', 'invalid', 'Apply');
    (body.spec as Json).policyRef = { name: 'no-such-preset' };
    await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), body);
    await h.waitFor('invalid');
    const version = await versionOf(lwsPath('invalid'));
    await h.step();
    const status = await statusOf('invalid');
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(ready?.message).toContain('unknown policy preset "no-such-preset"');
    expect(await eventReasons('invalid')).toContain('InvalidSpec');
    expect(await versionOf(lwsPath('invalid'))).toBe(version);
  });
});

describe('controller: conflicts', () => {
  it('re-reads and decides again when another writer wins the race, then writes once', async () => {
    let interfered = false;
    const h = harness((t) => ({
      namespace: t.namespace,
      ref: t.ref,
      read: () => t.read(),
      heads: () => t.heads(),
      async write(groups, resourceVersion) {
        if (!interfered) {
          interfered = true;
          // Someone else touches the object between kvpa's read and its write.
          await api.mergePatch(lwsPath('race'), { metadata: { labels: { touched: 'yes' } } });
        }
        return t.write(groups, resourceVersion);
      },
    }));
    await h.controller.start();
    try {
      await lws('race', 2, 2);
      await api.create(
        customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'),
        podAutoscaler('race', 'race', 'Apply'),
      );
      await h.waitFor('race');
      h.signals.set(`${ns}/race/decode`, 'kvCacheUtilization', 2.8); // → 4
      await h.step();
      expect(interfered).toBe(true);
      expect(await replicasOf('race')).toBe(4);
      expect(await eventReasons('race')).toContain('SuccessfulRescale');
    } finally {
      await h.controller.stop();
    }
  });
});
