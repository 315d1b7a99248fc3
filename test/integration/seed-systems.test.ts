// Seed systems as they really run, against the real API server with the upstream CRDs: the setups kvpa
// must refuse (KServe resetting the count, KubeRay's own autoscaler, multi-host groups without replica
// labels, DisaggregatedSet slices), KubeRay's silent clamp kept by the controller, and an owner that
// reverts every write, named from managedFields and latched as OwnerConflict, across controller restarts.
import { pino } from 'pino';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import type { ScaleTargetRef } from '../../src/api/podautoscaler.ts';
import { Controller } from '../../src/control/controller.ts';
import { ManualSignalSource } from '../../src/control/signals.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { at, customPath, type Json, lwsWithReadyGroups, podTemplate, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
let ns = '';

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'seed-' },
  });
  ns = (created.metadata as { name: string }).name;
});

const rayBase = () => customPath('ray.io', 'v1', ns, 'rayclusters');

async function rayCluster(name: string, spec: Json, group: Json): Promise<void> {
  await api.create(rayBase(), {
    apiVersion: 'ray.io/v1',
    kind: 'RayCluster',
    metadata: { name },
    spec: {
      headGroupSpec: { template: podTemplate },
      workerGroupSpecs: [{ groupName: 'gpu', template: podTemplate, ...group }],
      ...spec,
    },
  });
}

function rayRef(name: string): ScaleTargetRef {
  return { apiVersion: 'ray.io/v1', kind: 'RayCluster', name, workerGroupName: 'gpu' };
}

/** The clock every controller here reads: a restarted controller goes on from where the last one stopped. */
let nowMs = Date.parse('2026-12-03T12:00:00Z');
const collection = () => customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers');

/** An Apply PodAutoscaler `name` over one pool (`pool`) on `ref`. */
async function createPodAutoscaler(name: string, ref: ScaleTargetRef): Promise<void> {
  await api.create(collection(), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'pool',
          scaleTargetRef: ref,
          minReplicas: 0,
          maxReplicas: 50,
          metrics: [{ type: 'queueDepth', target: 1 }],
          stableWindowSeconds: 6,
          tickSeconds: 1,
          startupTimeoutSeconds: 0,
          scaleDownDelaySeconds: 0,
        },
      ],
    },
  });
}

/**
 * A controller (a fresh process, as after a restart) run over PodAutoscaler `name`, stepped by hand; the
 * signal asks for `want` groups (queue 1 per group).
 */
async function runController(
  name: string,
  run: (step: (want: number, seconds?: number) => Promise<Json>) => Promise<void>,
): Promise<void> {
  const signals = new ManualSignalSource();
  const controller = new Controller({
    kubeConfig,
    signals,
    policies: loadPolicies().policies,
    targetFor: (namespace, r) => scaleTargetFor(kubeConfig, namespace, r),
    logger: pino({ level: 'silent' }),
    namespace: ns,
    nowMs: () => nowMs,
    sampleIntervalMs: 3_600_000,
    overrideHoldSeconds: 5,
  });
  await controller.start();
  try {
    for (let i = 0; i < 100 && !controller.watched().some((k) => k.endsWith(`/${name}`)); i++)
      await new Promise((r) => setTimeout(r, 50));
    await run(async (want, seconds = 1) => {
      signals.set(`${ns}/${name}/pool`, 'queueDepth', want);
      nowMs += seconds * 1000;
      await controller.tick();
      return await api.get(`${collection()}/${name}`);
    });
  } finally {
    await controller.stop();
  }
}

/** A controller over one pool, stepped by hand; the signal asks for `want` groups (queue 1 per group). */
async function withController(
  name: string,
  ref: ScaleTargetRef,
  run: (step: (want: number, seconds?: number) => Promise<Json>) => Promise<void>,
): Promise<void> {
  await createPodAutoscaler(name, ref);
  await runController(name, run);
}

function conditionOf(pa: Json, type: string): { status?: string; reason?: string; message?: string } {
  const list = (at(pa, ['status', 'conditions']) ?? []) as {
    type: string;
    status?: string;
    reason?: string;
    message?: string;
  }[];
  return list.find((c) => c.type === type) ?? {};
}

async function eventReasons(name: string): Promise<string[]> {
  const list = (await api.get(
    `/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name%3D${name}`,
  )) as {
    items: { reason: string }[];
  };
  return list.items.map((e) => e.reason);
}

describe('seed systems: refusals, clamps and owners that fight', () => {
  it('KServe: an LWS whose LLMInferenceService sets spec.replicas is refused; without it, not', async () => {
    const isvc = await api.create(customPath('serving.kserve.io', 'v1alpha2', ns, 'llminferenceservices'), {
      apiVersion: 'serving.kserve.io/v1alpha2',
      kind: 'LLMInferenceService',
      metadata: { name: 'r1' },
      spec: { replicas: 1, model: { uri: 'hf://deepseek-ai/DeepSeek-R1' } },
    });
    const uid = (isvc.metadata as { uid: string }).uid;
    await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      metadata: {
        name: 'r1-kserve-mn',
        ownerReferences: [
          { apiVersion: 'serving.kserve.io/v1alpha2', kind: 'LLMInferenceService', name: 'r1', uid },
        ],
      },
      spec: { replicas: 1, leaderWorkerTemplate: { size: 2, workerTemplate: podTemplate } },
    });
    const target = scaleTargetFor(kubeConfig, ns, {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      name: 'r1-kserve-mn',
    });
    const refused = await target.read();
    expect(refused.refusal?.reason).toBe('OwnerConflict');
    expect(refused.refusal?.message).toContain('remove spec.replicas');
    await api.mergePatch(customPath('serving.kserve.io', 'v1alpha2', ns, 'llminferenceservices') + '/r1', {
      spec: { replicas: null },
    });
    expect((await target.read()).refusal).toBeUndefined();
  });

  it('KServe: the prefill LWS of an LLMInferenceService with spec.prefill.replicas 1 is refused; 1 stays 1 with a want of 4', async () => {
    const isvcs = customPath('serving.kserve.io', 'v1alpha2', ns, 'llminferenceservices');
    const isvc = await api.create(isvcs, {
      apiVersion: 'serving.kserve.io/v1alpha2',
      kind: 'LLMInferenceService',
      metadata: { name: 'r2' },
      spec: { model: { uri: 'hf://deepseek-ai/DeepSeek-R1' }, prefill: { replicas: 1 } },
    });
    const uid = (isvc.metadata as { uid: string }).uid;
    const lwsPath = `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/r2-kserve-mn-prefill`;
    await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      metadata: {
        name: 'r2-kserve-mn-prefill',
        ownerReferences: [
          { apiVersion: 'serving.kserve.io/v1alpha2', kind: 'LLMInferenceService', name: 'r2', uid },
        ],
      },
      spec: { replicas: 1, leaderWorkerTemplate: { size: 2, workerTemplate: podTemplate } },
    });
    const ref: ScaleTargetRef = {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      name: 'r2-kserve-mn-prefill',
    };
    await withController('pa-kserve-prefill', ref, async (step) => {
      const pa = await step(4);
      expect(at(await api.get(lwsPath), ['spec', 'replicas'])).toBe(1);
      expect(conditionOf(pa, 'ScalingActive')).toMatchObject({ status: 'False', reason: 'OwnerConflict' });
      const conflict = conditionOf(pa, 'OwnerConflict');
      expect(conflict).toMatchObject({ status: 'True', reason: 'OwnerConflict' });
      expect(conflict.message).toContain('LLMInferenceService r2 sets spec.prefill.replicas: 1');
      expect(conflict.message).toContain('remove spec.prefill.replicas');
    });
    // The fix the condition names: unset the field, and the LWS is kvpa's to scale.
    await api.mergePatch(`${isvcs}/r2`, { spec: { prefill: { replicas: null } } });
    expect((await scaleTargetFor(kubeConfig, ns, ref).read()).refusal).toBeUndefined();
  });

  it('KubeRay: enableInTreeAutoscaling is the Ray autoscaler owning the count; refused', async () => {
    await rayCluster(
      'rc-auto',
      { enableInTreeAutoscaling: true },
      { replicas: 1, minReplicas: 0, maxReplicas: 4 },
    );
    const state = await scaleTargetFor(kubeConfig, ns, rayRef('rc-auto')).read();
    expect(state.refusal).toMatchObject({ reason: 'OwnerConflict' });
    expect(state.refusal?.message).toContain('enableInTreeAutoscaling');
  });

  it('KubeRay: numOfHosts 2 with pods lacking the replica label (no RayMultiHostIndexing) is refused', async () => {
    await rayCluster('rc-mh', {}, { replicas: 1, numOfHosts: 2, minReplicas: 0, maxReplicas: 4 });
    await api.pod(
      ns,
      'rc-mh-gpu-a',
      { 'ray.io/cluster': 'rc-mh', 'ray.io/node-type': 'worker', 'ray.io/group': 'gpu' },
      true,
    );
    const state = await scaleTargetFor(kubeConfig, ns, rayRef('rc-mh')).read();
    expect(state.refusal).toMatchObject({ reason: 'UnsupportedTarget' });
    expect(state.refusal?.message).toContain('RayMultiHostIndexing');
  });

  it('DisaggregatedSet with two slices: the role scaler is refused (replicas count per slice)', async () => {
    const labels = { 'disaggregatedset.x-k8s.io/name': 'ds1', 'disaggregatedset.x-k8s.io/role': 'decode' };
    const scalers = customPath('disaggregatedset.x-k8s.io', 'v1', ns, 'disaggregatedsetrolescalers');
    await api.create(scalers, {
      apiVersion: 'disaggregatedset.x-k8s.io/v1',
      kind: 'DisaggregatedSetRoleScaler',
      metadata: { name: 'ds1-decode', labels },
      spec: { replicas: 1 },
    });
    for (const slice of ['0', '1']) {
      await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
        apiVersion: 'leaderworkerset.x-k8s.io/v1',
        kind: 'LeaderWorkerSet',
        metadata: {
          name: `ds1-${slice}-rev-decode`,
          labels: { ...labels, 'disaggregatedset.x-k8s.io/slice': slice },
        },
        spec: { replicas: 1, leaderWorkerTemplate: { size: 2, workerTemplate: podTemplate } },
      });
    }
    const state = await scaleTargetFor(kubeConfig, ns, {
      apiVersion: 'disaggregatedset.x-k8s.io/v1',
      kind: 'DisaggregatedSetRoleScaler',
      name: 'ds1-decode',
    }).read();
    expect(state.refusal).toMatchObject({ reason: 'UnsupportedTarget' });
    expect(state.refusal?.message).toContain('2 slices');
  });

  it('the controller writes nothing to a refused target and says why in conditions and an Event', async () => {
    await rayCluster(
      'rc-auto2',
      { enableInTreeAutoscaling: true },
      { replicas: 1, minReplicas: 0, maxReplicas: 9 },
    );
    await withController('pa-refused', rayRef('rc-auto2'), async (step) => {
      const pa = await step(4);
      expect(at(await api.get(`${rayBase()}/rc-auto2`), ['spec', 'workerGroupSpecs', 0, 'replicas'])).toBe(1);
      expect(conditionOf(pa, 'ScalingActive')).toMatchObject({ status: 'False', reason: 'OwnerConflict' });
      expect(conditionOf(pa, 'OwnerConflict')).toMatchObject({ status: 'True' });
      expect(at(pa, ['status', 'pools', 0, 'recommendedReplicas'])).toBe(4);
    });
    expect(await eventReasons('pa-refused')).toContain('OwnerConflict');
  });

  it('KubeRay maxReplicas 3 with a want of 5: the controller writes 3 and reports WorkloadBounds', async () => {
    await rayCluster('rc-clamp', {}, { replicas: 1, minReplicas: 0, maxReplicas: 3 });
    await withController('pa-clamp', rayRef('rc-clamp'), async (step) => {
      const pa = await step(5);
      expect(at(await api.get(`${rayBase()}/rc-clamp`), ['spec', 'workerGroupSpecs', 0, 'replicas'])).toBe(3);
      expect(conditionOf(pa, 'ScalingLimited')).toMatchObject({ status: 'True', reason: 'WorkloadBounds' });
    });
  });

  it('an owner that reverts kvpa twice is named from managedFields and kvpa stops writing', async () => {
    await lwsWithReadyGroups(api, ns, 'lws-fight', 2, 2);
    const lwsPath = `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/lws-fight`;
    const revert = () =>
      api.mergePatch(`${lwsPath}/scale?fieldManager=llmisvc-controller`, { spec: { replicas: 2 } });
    const ref: ScaleTargetRef = {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      name: 'lws-fight',
    };
    await withController('pa-fight', ref, async (step) => {
      await step(4);
      expect(at(await api.get(lwsPath), ['spec', 'replicas'])).toBe(4);
      await revert();
      let pa = await step(4); // sees the revert: holds for the override period (5 s here)
      expect(conditionOf(pa, 'Overridden')).toMatchObject({ status: 'True' });
      await step(4, 6); // hold over: kvpa writes again
      expect(at(await api.get(lwsPath), ['spec', 'replicas'])).toBe(4);
      await revert();
      pa = await step(4); // second revert: latched
      expect(conditionOf(pa, 'OwnerConflict')).toMatchObject({ status: 'True', reason: 'OwnerConflict' });
      expect(conditionOf(pa, 'OwnerConflict').message).toContain('"llmisvc-controller"');
      expect(String(at(pa, ['status', 'pools', 0, 'ownerConflict']))).toContain('llmisvc-controller');
      pa = await step(4, 60); // long after any hold: still no write
      expect(at(await api.get(lwsPath), ['spec', 'replicas'])).toBe(2);
    });
  });

  it('OwnerConflict survives a restart: 2 stays 2 with a want of 4 under a new controller, until the spec changes; then 4', async () => {
    const fight = await latchedFight('lws-latch', 'pa-latch');
    await runController('pa-latch', async (step) => {
      let pa = await step(4);
      expect(at(await api.get(fight.lwsPath), ['spec', 'replicas'])).toBe(2);
      pa = await step(4, 60);
      expect(at(await api.get(fight.lwsPath), ['spec', 'replicas'])).toBe(2);
      expect(conditionOf(pa, 'OwnerConflict')).toMatchObject({ status: 'True', reason: 'OwnerConflict' });
      expect(conditionOf(pa, 'OwnerConflict').message).toContain('"llmisvc-controller"');
      expect(String(at(pa, ['status', 'pools', 0, 'ownerConflict']))).toContain('llmisvc-controller');
      // The documented release: the user changes the PodAutoscaler's spec. Ticks without moving the
      // clock until the watch has brought the new generation.
      const generation = await fight.changeSpec(49);
      for (let i = 0; i < 100 && at(pa, ['status', 'observedGeneration']) !== generation; i++) {
        await new Promise((r) => setTimeout(r, 50));
        pa = await step(4, 0);
      }
      expect(at(await api.get(fight.lwsPath), ['spec', 'replicas'])).toBe(4);
      expect(conditionOf(pa, 'OwnerConflict')).toMatchObject({ status: 'False' });
      expect(at(pa, ['status', 'pools', 0, 'ownerConflict'])).toBeUndefined();
    });
  });

  it('a spec changed while no controller runs releases OwnerConflict: the restarted controller writes 4', async () => {
    const fight = await latchedFight('lws-latch-down', 'pa-latch-down');
    await fight.changeSpec(49); // between the two controllers
    await runController('pa-latch-down', async (step) => {
      const pa = await step(4);
      expect(at(await api.get(fight.lwsPath), ['spec', 'replicas'])).toBe(4);
      expect(conditionOf(pa, 'OwnerConflict')).toMatchObject({ status: 'False' });
    });
  });
});

/**
 * LWS `lws` (2 ready groups) under PodAutoscaler `pa`, and a controller that wants 4 while another manager
 * (`llmisvc-controller`) sets 2 back twice: it latches OwnerConflict and stops. What the tests need after.
 */
async function latchedFight(lws: string, pa: string) {
  await lwsWithReadyGroups(api, ns, lws, 2, 2);
  const lwsPath = `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/${lws}`;
  const revert = () =>
    api.mergePatch(`${lwsPath}/scale?fieldManager=llmisvc-controller`, { spec: { replicas: 2 } });
  await createPodAutoscaler(pa, {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    name: lws,
  });
  await runController(pa, async (step) => {
    await step(4);
    await revert();
    await step(4); // holds for the override period (5 s)
    await step(4, 6); // writes again
    await revert();
    const latched = await step(4);
    expect(conditionOf(latched, 'OwnerConflict')).toMatchObject({ status: 'True' });
  });
  return {
    lwsPath,
    /** A spec edit (the pool's maxReplicas); the PodAutoscaler's new generation. */
    async changeSpec(maxReplicas: number): Promise<number> {
      const patched = await api.ok(
        'PATCH',
        `${collection()}/${pa}`,
        [{ op: 'replace', path: '/spec/pools/0/maxReplicas', value: maxReplicas }],
        'application/json-patch+json',
      );
      return (patched.metadata as { generation: number }).generation;
    },
  };
}
