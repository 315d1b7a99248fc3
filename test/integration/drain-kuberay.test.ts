// Drain before scale-down for a KubeRay worker group, through the controller, against a real API server with
// KubeRay's upstream RayCluster CRD. KubeRay deletes the pods named in the group's scaleStrategy.workersToDelete
// with the lower replicas, so kvpa picks the victim (the least-loaded group, whatever its place) and names it.
// No KubeRay operator or kubelet runs: the test writes the worker pods with the labels KubeRay gives them and the
// in-flight readings through the SignalSource interface.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { DRAIN_SETTLE_SECONDS } from '../../src/decide/drain.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, type Json, metadataOf, podTemplate, RawApi } from './actuate-fixtures.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-12-07T10:00:00Z');
const DRAIN_TIMEOUT = 300;

let ns = '';
const rayBase = () => customPath('ray.io', 'v1', ns, 'rayclusters');
const paBase = () => customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers');

const workerPodSpec: Json = {
  containers: [{ name: 'ray-worker', image: 'example.invalid/ray:1' }],
  readinessGates: [{ conditionType: 'kvpa.io/serving' }],
};

/**
 * A RayCluster whose worker group `gpu` (after a `cpu` group, so the index matters) has one ready pod per name,
 * built from the gated template as KubeRay builds them (labels ray.io/cluster, node-type, group).
 */
async function rayWorkload(name: string, workers: readonly string[]): Promise<void> {
  await api.create(rayBase(), {
    apiVersion: 'ray.io/v1',
    kind: 'RayCluster',
    metadata: { name },
    spec: {
      headGroupSpec: { rayStartParams: {}, template: podTemplate },
      workerGroupSpecs: [
        { groupName: 'cpu', replicas: 1, minReplicas: 0, maxReplicas: 4, template: podTemplate },
        {
          groupName: 'gpu',
          replicas: workers.length,
          minReplicas: 0,
          maxReplicas: 8,
          template: { spec: workerPodSpec },
        },
      ],
    },
  });
  const pods = `/api/v1/namespaces/${ns}/pods`;
  for (const [i, pod] of workers.entries()) {
    await api.create(pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: pod,
        labels: { 'ray.io/cluster': name, 'ray.io/node-type': 'worker', 'ray.io/group': 'gpu' },
      },
      spec: workerPodSpec,
    });
    await api.setStatus(`${pods}/${pod}`, {
      phase: 'Running',
      podIP: `10.5.0.${i + 1}`,
      conditions: [
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
        { type: 'kvpa.io/serving', status: 'True' },
      ],
    });
  }
}

function podAutoscaler(name: string, rayCluster: string): Json {
  return {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: {
            apiVersion: 'ray.io/v1',
            kind: 'RayCluster',
            name: rayCluster,
            workerGroupName: 'gpu',
          },
          minReplicas: 1,
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          scaleDownDelaySeconds: 0,
          tickSeconds: 1,
          drainTimeoutSeconds: DRAIN_TIMEOUT,
        },
      ],
    },
  };
}

interface WorkerGroup {
  groupName: string;
  replicas: number;
  scaleStrategy?: { workersToDelete?: string[] };
}
const gpuGroupOf = async (rc: string) => {
  const obj = await api.get(`${rayBase()}/${rc}`);
  const groups = (obj.spec as { workerGroupSpecs: WorkerGroup[] }).workerGroupSpecs;
  return { obj, cpu: groups[0], gpu: groups[1] };
};
const poolStatus = async (pa: string) =>
  ((await api.get(`${paBase()}/${pa}`)).status as PodAutoscalerStatus).pools?.[0];

/** The kvpa.io/serving condition of each worker pod of the RayCluster, as `<pod>: True|False`. */
async function servingByPod(rc: string): Promise<string[]> {
  const pods = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace: ns, labelSelector: `ray.io/cluster=${rc}` });
  return pods.items
    .map((p) => {
      const serving = p.status?.conditions?.find((c) => c.type === 'kvpa.io/serving')?.status;
      return `${p.metadata?.name}: ${serving}`;
    })
    .sort();
}

/** A controller whose clock and ticks the test drives. */
const harness = () => manualController(kubeConfig, ns, T0_MS);

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-drain-ray-' },
  });
  ns = (created.metadata as { name: string }).name;
});

describe('drain before scale-down of a KubeRay worker group', () => {
  const h = harness();
  beforeAll(() => h.controller.start());
  afterAll(() => h.controller.stop());

  it('3 → 2: the least-loaded group (not the last) leaves routing, then replicas and workersToDelete in one patch', async () => {
    const [a, b, c] = ['rc-0-gpu-worker-4xk2p', 'rc-0-gpu-worker-9qf7m', 'rc-0-gpu-worker-tz8wd'];
    await rayWorkload('rc-0', [a, b, c]);
    await api.create(paBase(), podAutoscaler('ray', 'rc-0'));
    await h.waitFor('ray');
    const pool = `${ns}/ray/decode`;
    // The middle worker holds the fewest requests; KubeRay alone would delete the first it lists.
    h.signals.setInFlight(pool, a, { requests: 5, atSeconds: h.nowSeconds() });
    h.signals.setInFlight(pool, b, { requests: 1, atSeconds: h.nowSeconds() });
    h.signals.setInFlight(pool, c, { requests: 3, atSeconds: h.nowSeconds() });
    // 3 ready groups carrying 1.2 of KV at 0.7 per group: 1.71 → 2 groups, once a new pool's panic hold ends.
    h.signals.set(pool, 'kvCacheUtilization', 1.2);
    const started = await stepUntil(h, async () => (await poolStatus('ray'))?.drain);
    expect(started).toMatchObject({ phase: 'Draining', victims: [b], fromReplicas: 3, toReplicas: 2 });
    expect(await servingByPod('rc-0')).toEqual([`${a}: True`, `${b}: False`, `${c}: True`]);
    const before = await gpuGroupOf('rc-0');
    expect(before.gpu?.replicas).toBe(3);
    expect(before.gpu?.scaleStrategy?.workersToDelete).toBeUndefined();

    // b still reports 2 requests in flight after the settle time (and c none): nothing is written.
    await h.step(DRAIN_SETTLE_SECONDS + 1);
    h.signals.setInFlight(pool, b, { requests: 2, atSeconds: h.nowSeconds() });
    h.signals.setInFlight(pool, c, { requests: 0, atSeconds: h.nowSeconds() });
    await h.step();
    expect((await poolStatus('ray'))?.drain).toMatchObject({
      phase: 'Draining',
      victims: [b],
      inFlightRequests: 2,
    });
    const waiting = await gpuGroupOf('rc-0');
    expect(metadataOf(waiting.obj).resourceVersion).toBe(metadataOf(before.obj).resourceVersion);

    // Its requests finish: replicas 2 and workersToDelete [b] land together, in one write of the object.
    await h.step();
    h.signals.setInFlight(pool, b, { requests: 0, atSeconds: h.nowSeconds() });
    await h.step();
    const after = await gpuGroupOf('rc-0');
    expect(after.gpu).toMatchObject({
      groupName: 'gpu',
      replicas: 2,
      scaleStrategy: { workersToDelete: [b] },
    });
    expect(after.cpu).toEqual(before.cpu);
    expect(metadataOf(after.obj).generation).toBe(metadataOf(before.obj).generation + 1);
    expect(metadataOf(after.obj).managers.some((m) => m.startsWith('kvpa'))).toBe(true);
    expect((await poolStatus('ray'))?.drain?.phase).toBe('Removing');
    expect(await servingByPod('rc-0')).toEqual([`${a}: True`, `${b}: False`, `${c}: True`]);

    // KubeRay deletes the named pod (done by hand here): the drain record closes, a and c stay routed.
    await api.delete(`/api/v1/namespaces/${ns}/pods/${b}?gracePeriodSeconds=0`);
    await h.step();
    expect((await poolStatus('ray'))?.drain).toBeUndefined();
    expect(await servingByPod('rc-0')).toEqual([`${a}: True`, `${c}: True`]);
    expect((await gpuGroupOf('rc-0')).gpu?.replicas).toBe(2);
  });
});
