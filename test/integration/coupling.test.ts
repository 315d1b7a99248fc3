// Prefill and decode as one decision, against a real API server: two LeaderWorkerSets (upstream CRD) coupled by
// spec.coupling. The test drives the clock and the signals, records the pair after every write kvpa makes, and
// checks the band at each of those states: through a scale-up, a scale-down, and a second write that fails.
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import type { ScaleTarget } from '../../src/actuate/types.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { Controller } from '../../src/control/controller.ts';
import { ManualSignalSource } from '../../src/control/signals.ts';
import { inBand, type RatioBand } from '../../src/decide/coupling.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, type Json, lwsWithReadyGroups, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-12-03T10:00:00Z');

let ns = '';
const lwsPath = (name: string) =>
  `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/${name}`;
const replicasOf = async (name: string) =>
  ((await api.ok('GET', lwsPath(name))).spec as { replicas: number }).replicas;

const lws = (name: string, replicas: number) => lwsWithReadyGroups(api, ns, name, replicas, replicas);

function pool(name: string, target: string): Json {
  return {
    name,
    scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: target },
    minReplicas: 1,
    maxReplicas: 16,
    metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
    stableWindowSeconds: 6,
    scaleDownDelaySeconds: 0,
    startupTimeoutSeconds: 0,
    tickSeconds: 1,
    maxScaleUpRate: 1000,
    maxScaleDownRate: 1000,
  };
}

async function coupledAutoscaler(
  name: string,
  ratio: RatioBand | { fromFlows: { tolerance: number } },
  pools: Json[] = [pool('prefill', `${name}-p`), pool('decode', `${name}-d`)],
): Promise<void> {
  await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      coupling: { ratio },
      pools,
    },
  });
}

/** A controller whose clock the test drives; its targets record the pair after every write and can fail one. */
function harness(name: string, wrapTargets = true) {
  let nowMs = T0_MS;
  const observed: { prefill: number; decode: number }[] = [];
  const failing = new Set<string>();
  const signals = new ManualSignalSource();
  const record = async () => {
    observed.push({ prefill: await replicasOf(`${name}-p`), decode: await replicasOf(`${name}-d`) });
  };
  const wrap = (t: ScaleTarget): ScaleTarget => ({
    namespace: t.namespace,
    ref: t.ref,
    read: () => t.read(),
    heads: () => t.heads(),
    async write(groups, resourceVersion) {
      if (failing.has(t.ref.name)) throw new Error(`injected failure writing ${t.ref.name}`);
      await t.write(groups, resourceVersion);
      await record();
    },
  });
  const controller = new Controller({
    kubeConfig,
    signals,
    policies: loadPolicies().policies,
    targetFor: (namespace, ref) => {
      const target = scaleTargetFor(kubeConfig, namespace, ref);
      return wrapTargets ? wrap(target) : target;
    },
    logger: pino({ level: 'silent' }),
    namespace: ns,
    nowMs: () => nowMs,
    sampleIntervalMs: 3_600_000,
  });
  return {
    controller,
    observed,
    failing,
    /** Σ KV over the pool's groups: want = ceil(Σ / 0.7). */
    load(pool: 'prefill' | 'decode', kvTotal: number) {
      signals.set(`${ns}/${name}/${pool}`, 'kvCacheUtilization', kvTotal);
    },
    /** A pool's served tokens/s (no backlog: the demand is the flow). */
    flow(pool: 'prefill' | 'decode', signal: 'promptTokens' | 'generationTokens', tokensPerSecond: number) {
      signals.set(`${ns}/${name}/${pool}`, signal, tokensPerSecond);
    },
    stale(pool: 'prefill' | 'decode', signal: string, detail: string) {
      signals.setState(`${ns}/${name}/${pool}`, signal, 'stale', detail);
    },
    async step(seconds = 1) {
      nowMs += seconds * 1000;
      await controller.tick();
    },
    async pair() {
      return { prefill: await replicasOf(`${name}-p`), decode: await replicasOf(`${name}-d`) };
    },
    async status() {
      return (await api.ok('GET', `${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/${name}`))
        .status as PodAutoscalerStatus;
    },
    async waitFor() {
      for (let i = 0; i < 100; i++) {
        if (controller.watched().some((key) => key.endsWith(`/${name}`))) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the watch never saw ${name}`);
    },
  };
}

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-couple-' },
  });
  ns = (created.metadata as { name: string }).name;
});

describe('two LWS pools coupled in the band [0.5, 1] prefill per decode', () => {
  const band = { min: 0.5, max: 1 };
  const h = harness('ladder');
  beforeAll(async () => {
    await lws('ladder-p', 2);
    await lws('ladder-d', 2);
    await coupledAutoscaler('ladder', band);
    await h.controller.start();
    await h.waitFor();
  });
  afterAll(() => h.controller.stop());

  it('decode wanting 6 beside prefill wanting 2 raises prefill to 3, in band at every write: 2/2 → 2/4 → 3/4 → 3/6', async () => {
    h.load('prefill', 1.0); // ceil(1.0 / 0.7) = 2
    h.load('decode', 4.2); // ceil(4.2 / 0.7) = 6
    for (let i = 0; i < 4; i++) await h.step();
    expect(await h.pair()).toEqual({ prefill: 3, decode: 6 });
    expect(h.observed).toEqual([
      { prefill: 2, decode: 4 },
      { prefill: 3, decode: 4 },
      { prefill: 3, decode: 6 },
    ]);
    for (const pair of h.observed) expect(inBand(band, pair)).toBe(true);
    const prefill = (await h.status()).pools?.find((p) => p.name === 'prefill');
    expect(prefill?.lastDecision?.limitedBy).toContain('coupling');
    expect(prefill?.lastDecision?.summary).toMatch(
      /coupling: prefill wants 2, decode wants 6; band \[0\.5, 1\] prefill per decode: raised 2 → 3/,
    );
  });

  it('both wanting less (prefill 1, decode 2) come down in band: 3/6 → 2/3 → 1/2', async () => {
    const before = h.observed.length;
    h.load('prefill', 0.3);
    h.load('decode', 1.2);
    // Past the panic that the scale-up began (one 6 s stable window) and its averages.
    for (let i = 0; i < 8; i++) await h.step(3);
    expect(await h.pair()).toEqual({ prefill: 1, decode: 2 });
    const downs = h.observed.slice(before);
    expect(downs.length).toBeGreaterThanOrEqual(2);
    for (const pair of downs) expect(inBand(band, pair)).toBe(true);
  });

  it('the second write failing (decode) leaves 2/2, where prefill 1 → 2 put it: in band, no undo needed', async () => {
    const before = h.observed.length;
    h.load('prefill', 1.0);
    h.load('decode', 4.2);
    h.failing.add('ladder-d');
    await h.step();
    // From 1/2 toward 3/6, prefill goes first (it gets nearer: 2/4 against 2/2), as far as decode 2 allows.
    expect(await h.pair()).toEqual({ prefill: 2, decode: 2 });
    expect(h.observed.slice(before)).toEqual([{ prefill: 2, decode: 2 }]);
    const ready = (await h.status()).conditions?.find((c) => c.type === 'Ready');
    expect(ready?.message).toMatch(/decode: injected failure writing ladder-d$/);
    h.failing.clear();
    for (let i = 0; i < 4; i++) await h.step();
    expect(await h.pair()).toEqual({ prefill: 3, decode: 6 });
    for (const pair of h.observed.slice(before)) expect(inBand(band, pair)).toBe(true);
  });
});

describe('a band narrower than one group: [1, 1]', () => {
  const band = { min: 1, max: 1 };
  const h = harness('exact');
  beforeAll(async () => {
    await lws('exact-p', 2);
    await lws('exact-d', 2);
    await coupledAutoscaler('exact', band);
    await h.controller.start();
    await h.waitFor();
  });
  afterAll(() => h.controller.stop());

  it('2/2 → 3/3 with the decode write failing: prefill 2 → 3 is undone, and the pair is back at 2/2', async () => {
    h.load('prefill', 2.0); // 3
    h.load('decode', 2.0); // 3
    h.failing.add('exact-d');
    await h.step();
    expect(await h.pair()).toEqual({ prefill: 2, decode: 2 });
    // The first write (out of band for a moment), then the compensating one.
    expect(h.observed).toEqual([
      { prefill: 3, decode: 2 },
      { prefill: 2, decode: 2 },
    ]);
    const ready = (await h.status()).conditions?.find((c) => c.type === 'Ready');
    expect(ready?.message).toMatch(
      /decode: injected failure writing exact-d; prefill's write 2 → 3 was undone/,
    );
    h.failing.clear();
    await h.step();
    expect(await h.pair()).toEqual({ prefill: 3, decode: 3 });
  });
});

describe('a band derived from the token flows (fromFlows, tolerance 0.25)', () => {
  const h = harness('flows');
  // Prefill sizes on prompt tokens (1,500/s a group), decode on generated tokens (300/s a group) and KV use; no
  // headroom, so a group of work is exactly one capacity.
  const flowsPool = (name: string, target: string, metrics: Json[]) => ({
    ...pool(name, target),
    headroomPercentage: 0,
    metrics,
  });
  beforeAll(async () => {
    await lws('flows-p', 2);
    await lws('flows-d', 2);
    await coupledAutoscaler('flows', { fromFlows: { tolerance: 0.25 } }, [
      flowsPool('prefill', 'flows-p', [{ type: 'promptTokens', target: 1500, measureCapacity: false }]),
      flowsPool('decode', 'flows-d', [
        { type: 'generationTokens', target: 300, measureCapacity: false },
        { type: 'kvCacheUtilization', target: 0.7 },
      ]),
    ]);
    await h.controller.start();
    await h.waitFor();
  });
  afterAll(() => h.controller.stop());

  it('3,000 prompt tok/s at 1,500 and 600 generated at 300 derive ratio 1, band [0.75, 1.25]; decode wanting 6 on KV raises prefill 2 → 5: 2/2 → 2/6 → 5/6', async () => {
    h.flow('prefill', 'promptTokens', 3000); // 2 groups
    h.flow('decode', 'generationTokens', 600); // 2 groups
    h.load('decode', 4.2); // ceil(4.2 / 0.7) = 6
    for (let i = 0; i < 3; i++) await h.step();
    expect(await h.pair()).toEqual({ prefill: 5, decode: 6 });
    // No single write moves 2/2 inside [0.75, 1.25] toward 5/6: both straight, the raising side (decode) first.
    expect(h.observed).toEqual([
      { prefill: 2, decode: 6 },
      { prefill: 5, decode: 6 },
    ]);
    const prefill = (await h.status()).pools?.find((p) => p.name === 'prefill');
    expect(prefill?.lastDecision?.limitedBy).toContain('coupling');
    expect(prefill?.lastDecision?.summary).toContain(
      'coupling: prefill wants 2, decode wants 6; band [0.75, 1.25] prefill per decode, derived 1 ± 25 % from flows: prompt 3,000 tok/s ÷ 1,500 per group (pinned) = 2 groups; generated 600 tok/s ÷ 300 per group (pinned) = 2 groups: raised 2 → 5',
    );
  });

  it('generationTokens going stale turns the band off, never to a default: prefill follows its own want back to 2 beside decode 6, and status says why', async () => {
    const before = h.observed.length;
    h.stale('decode', 'generationTokens', 'last sample 90s ago');
    await h.step();
    expect(await h.pair()).toEqual({ prefill: 2, decode: 6 });
    expect(h.observed.slice(before)).toEqual([{ prefill: 2, decode: 6 }]);
    const pools = (await h.status()).pools ?? [];
    for (const p of pools) {
      expect(p.lastDecision?.summary).toContain(
        'coupling: prefill wants 2, decode wants 6; no band: decode generationTokens stale (last sample 90s ago); no ratio is derived from missing data, so each pool keeps its own want: kept',
      );
    }
  });
});

describe('both pools in one StormService: one patch', () => {
  const band = { min: 1, max: 1 };
  const base = () => customPath('orchestration.aibrix.ai', 'v1alpha1', ns, 'stormservices');
  const h = harness('storm', false);
  const roles = async () => {
    const obj = await api.ok('GET', `${base()}/storm-ss`);
    const spec = obj.spec as { template: { spec: { roles: { name: string; replicas: number }[] } } };
    return {
      generation: (obj.metadata as { generation: number }).generation,
      replicas: Object.fromEntries(spec.template.spec.roles.map((r) => [r.name, r.replicas])),
    };
  };
  beforeAll(async () => {
    const role = (name: string) => ({
      name,
      replicas: 2,
      podGroupSize: 2,
      template: { metadata: { labels: { app: 'storm' } }, spec: { containers: [{ name: 'e', image: 'x' }] } },
    });
    await api.create(base(), {
      apiVersion: 'orchestration.aibrix.ai/v1alpha1',
      kind: 'StormService',
      metadata: { name: 'storm-ss' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'storm' } },
        updateStrategy: { type: 'InPlaceUpdate' },
        template: {
          metadata: { labels: { app: 'storm' } },
          spec: { roles: [role('prefill'), role('decode')] },
        },
      },
    });
    await api.setStatus(`${base()}/storm-ss`, {
      replicas: 1,
      readyReplicas: 1,
      roleStatuses: [
        { name: 'prefill', replicas: 2, readyReplicas: 2 },
        { name: 'decode', replicas: 2, readyReplicas: 2 },
      ],
    });
    const storm = (name: string) => ({
      ...pool(name, 'storm-ss'),
      scaleTargetRef: {
        apiVersion: 'orchestration.aibrix.ai/v1alpha1',
        kind: 'StormService',
        name: 'storm-ss',
        roleName: name,
      },
    });
    await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
      apiVersion: 'kvpa.io/v1alpha1',
      kind: 'PodAutoscaler',
      metadata: { name: 'storm' },
      spec: {
        mode: 'Apply',
        metricsSource: { pods: { port: 8000 } },
        coupling: { ratio: band },
        pools: [storm('prefill'), storm('decode')],
      },
    });
    await h.controller.start();
    await h.waitFor();
  });
  afterAll(() => h.controller.stop());

  it('band [1, 1], 2/2 → 3/3 in a single patch of both roles (the generation moves by one)', async () => {
    const before = await roles();
    h.load('prefill', 2.0); // 3
    h.load('decode', 2.0); // 3
    await h.step();
    const after = await roles();
    expect(after.replicas).toEqual({ prefill: 3, decode: 3 });
    expect(after.generation).toBe(before.generation + 1);
  });
});
