// The capacity check for the Ray kinds, through the controller, against a real API server with the upstream
// KubeRay, AIBrix and Kueue CRDs: a KubeRay worker group's scale-up is limited to the replicas the free GPU nodes
// fit, and an AIBrix RayClusterFleet's to the RayClusters its Kueue ClusterQueue leaves room for. No scheduler,
// kubelet or operator runs: the test writes Node objects with GPU allocatable, and pods bound to them (or marked
// Unschedulable) with the labels KubeRay and AIBrix give them. Each test has its own extended resource and
// taint, so its nodes hold nothing for any other test on this API server.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { groupGpus } from '../../src/decide/placement.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { condition, customPath, type Json, RawApi } from './actuate-fixtures.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-12-07T10:00:00Z');
const KUEUE = '/apis/kueue.x-k8s.io/v1beta2';
const FLEET_LABEL = 'orchestration.aibrix.ai/raycluster-fleet-name';

let ns = '';
const nodes: string[] = [];
const paBase = () => customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers');
const podsBase = () => `/api/v1/namespaces/${ns}/pods`;

/** `count` Ready nodes of `gpus` each of `resource`, tainted with it so only pods that tolerate it land there. */
async function gpuNodes(prefix: string, resource: string, count: number, gpus: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${ns}-${prefix}-${i}`;
    await api.create('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name } },
      spec: { taints: [{ key: resource, value: 'present', effect: 'NoSchedule' }] },
    });
    // The API server's TaintNodesByCondition admission adds node.kubernetes.io/not-ready to a new node, and no
    // node lifecycle controller runs here to lift it once Ready: the test lifts it, as that controller would.
    await api.mergePatch(`/api/v1/nodes/${name}`, {
      spec: { taints: [{ key: resource, value: 'present', effect: 'NoSchedule' }] },
    });
    await api.setStatus(`/api/v1/nodes/${name}`, {
      capacity: { [resource]: String(gpus), cpu: '64', memory: '512Gi', pods: '110' },
      allocatable: { [resource]: String(gpus), cpu: '64', memory: '512Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'set by the test' }],
    });
    names.push(name);
    nodes.push(name);
  }
  return names;
}

/** A pod spec requesting `gpus` of `resource` and tolerating its taint. */
function gpuPodSpec(resource: string, gpus: number): Json {
  return {
    containers: [
      {
        name: 'ray',
        image: 'example.invalid/ray:1',
        ...(gpus > 0 ? { resources: { limits: { [resource]: String(gpus) } } } : {}),
      },
    ],
    tolerations: [{ key: resource, operator: 'Exists', effect: 'NoSchedule' }],
  };
}

/** A pod as its operator creates it: bound to `node` and Ready, or unbound and marked Unschedulable. */
async function pod(name: string, labels: Record<string, string>, spec: Json, node?: string): Promise<void> {
  await api.create(podsBase(), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: { ...spec, ...(node !== undefined ? { nodeName: node } : {}) },
  });
  await api.setStatus(
    `${podsBase()}/${name}`,
    node !== undefined
      ? {
          phase: 'Running',
          podIP: '10.6.0.1',
          conditions: [
            { type: 'ContainersReady', status: 'True' },
            { type: 'Ready', status: 'True' },
          ],
        }
      : {
          phase: 'Pending',
          conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }],
        },
  );
}

function podAutoscaler(name: string, scaleTargetRef: Json): Json {
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
          scaleTargetRef,
          minReplicas: 1,
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          scaleDownDelaySeconds: 0,
          tickSeconds: 1,
          maxScaleUpRate: 1000,
          capacityCheck: 'Enforce',
        },
      ],
    },
  };
}

const statusOf = async (pa: string) => (await api.get(`${paBase()}/${pa}`)).status as PodAutoscalerStatus;
const insufficientCapacity = async (pa: string) =>
  (await statusOf(pa)).conditions?.find(
    (c) => c.type === 'ScalingLimited' && c.reason === 'InsufficientCapacity',
  )?.message;

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-ray-kinds-' },
  });
  ns = (created.metadata as { name: string }).name;
});

afterAll(async () => {
  for (const name of nodes) await api.delete(`/api/v1/nodes/${name}`);
  if (ns !== '') await api.delete(`${KUEUE}/clusterqueues/${ns}-ray`).catch(() => undefined);
});

describe('the capacity check for a KubeRay worker group', () => {
  it('4 nodes of 8 GPUs, one 2-host replica of 8 + 8 on two of them: want 4, asks for 2, and 2 hold while only 1 more fits', async () => {
    const resource = `ray.${ns}.example/gpu`;
    const [n0, n1] = await gpuNodes('ray', resource, 4, 8);
    const spec = gpuPodSpec(resource, 8);
    await api.create(customPath('ray.io', 'v1', ns, 'rayclusters'), {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      metadata: { name: 'rc-cap' },
      spec: {
        headGroupSpec: { rayStartParams: {}, template: { spec: gpuPodSpec(resource, 0) } },
        workerGroupSpecs: [
          {
            groupName: 'gpu',
            replicas: 1,
            numOfHosts: 2,
            minReplicas: 0,
            maxReplicas: 8,
            template: { spec },
          },
        ],
      },
    });
    const hostLabels = (replica: string, host: number) => ({
      'ray.io/cluster': 'rc-cap',
      'ray.io/node-type': 'worker',
      'ray.io/group': 'gpu',
      'ray.io/worker-group-replica-name': `rc-cap-gpu-${replica}`,
      'ray.io/replica-host-index': String(host),
    });
    await pod('rc-cap-gpu-r1-0', hostLabels('r1', 0), spec, n0);
    await pod('rc-cap-gpu-r1-1', hostLabels('r1', 1), spec, n1);

    const ref = {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      name: 'rc-cap',
      workerGroupName: 'gpu',
    } as const;
    const before = await scaleTargetFor(kubeConfig, ns, ref).read();
    expect(before.gpusPerGroup).toBe(16);
    expect(before.placement?.group.pods.length).toBe(2);
    expect(before.placement).toMatchObject({ unplacedGroups: 0, unschedulableGroups: 0 });

    await api.create(paBase(), podAutoscaler('ray-cap', ref));
    const h = manualController(kubeConfig, ns, T0_MS);
    await h.controller.start();
    const replicas = async () => {
      const rc = await api.get(`${customPath('ray.io', 'v1', ns, 'rayclusters')}/rc-cap`);
      return (rc.spec as { workerGroupSpecs: { replicas: number }[] }).workerGroupSpecs[0]?.replicas;
    };
    try {
      await h.waitFor('ray-cap');
      // 1 ready replica carrying 2.8 of KV at 0.7 per replica: 4 wanted. The free room is n2 and n3: 1 replica.
      h.signals.set(`${ns}/ray-cap/decode`, 'kvCacheUtilization', 2.8);
      expect(await stepUntil(h, async () => ((await replicas()) !== 1 ? replicas() : undefined))).toBe(2);
      const limited = await insufficientCapacity('ray-cap');
      expect(limited).toContain('decode: want 4, 2 can land, asked 2');
      expect(limited).toContain(`a group is 2 pod(s) and 16 ${resource}`);
      // The new replica has no pod yet: it claims the free room, so nothing more is asked.
      for (let i = 0; i < 4; i++) await h.step();
      expect(await replicas()).toBe(2);
      expect(await insufficientCapacity('ray-cap')).toContain(
        '1 more whole group(s) fit, 1 requested group(s) not placed yet',
      );
    } finally {
      await h.controller.stop();
    }

    // KubeRay creates the replica's hosts and the scheduler cannot place them: the view says so.
    await pod('rc-cap-gpu-r2-0', hostLabels('r2', 0), spec);
    await pod('rc-cap-gpu-r2-1', hostLabels('r2', 1), spec);
    // Kueue queues a RayCluster by its own label: kvpa reads the quota of that queue.
    await api.mergePatch(`${customPath('ray.io', 'v1', ns, 'rayclusters')}/rc-cap`, {
      metadata: { labels: { 'kueue.x-k8s.io/queue-name': 'gpu-q' } },
    });
    const after = await scaleTargetFor(kubeConfig, ns, ref).read();
    expect(after.placement).toMatchObject({
      unplacedGroups: 1,
      unschedulableGroups: 1,
      kueueQueue: 'gpu-q',
    });
  });
});

describe('the capacity check and views of an AIBrix RayClusterFleet', () => {
  it('RayClusters of a 0-GPU head and 2 × 8-GPU workers: 16 GPUs a cluster; 4 free nodes fit 2 more, the ClusterQueue 1: asks for 2', async () => {
    const resource = `fleet.${ns}.example/gpu`;
    const [n0, n1] = await gpuNodes('fleet', resource, 6, 8);
    // The ClusterQueue behind the template's queue label: 32 nominal, 16 in use by the running cluster.
    await api.create(`${KUEUE}/clusterqueues`, {
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'ClusterQueue',
      metadata: { name: `${ns}-ray` },
      spec: {
        namespaceSelector: {},
        resourceGroups: [
          {
            coveredResources: [resource],
            flavors: [{ name: 'h200', resources: [{ name: resource, nominalQuota: 32 }] }],
          },
        ],
      },
    });
    await api.setStatus(`${KUEUE}/clusterqueues/${ns}-ray`, {
      flavorsUsage: [{ name: 'h200', resources: [{ name: resource, total: '16', borrowed: '0' }] }],
    });
    await api.create(`${KUEUE}/namespaces/${ns}/localqueues`, {
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'LocalQueue',
      metadata: { name: 'ray-q' },
      spec: { clusterQueue: `${ns}-ray` },
    });

    const labels = { app: 'fleet-k', 'kueue.x-k8s.io/queue-name': 'ray-q' };
    const head = gpuPodSpec(resource, 0);
    const worker = gpuPodSpec(resource, 8);
    const rayClusterSpec = {
      headGroupSpec: { rayStartParams: {}, template: { spec: head } },
      workerGroupSpecs: [
        {
          groupName: 'w',
          replicas: 2,
          minReplicas: 0,
          maxReplicas: 4,
          rayStartParams: {},
          template: { spec: worker },
        },
      ],
    };
    const fleets = customPath('orchestration.aibrix.ai', 'v1alpha1', ns, 'rayclusterfleets');
    await api.create(fleets, {
      apiVersion: 'orchestration.aibrix.ai/v1alpha1',
      kind: 'RayClusterFleet',
      metadata: { name: 'fleet-k' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'fleet-k' } },
        template: { metadata: { labels }, spec: rayClusterSpec },
      },
    });
    // The one RayCluster AIBrix made from the template, ready by AIBrix's rule, its 3 pods bound to n0 and n1.
    const rayClusters = customPath('ray.io', 'v1', ns, 'rayclusters');
    await api.create(rayClusters, {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      metadata: { name: 'fleet-k-a', labels },
      spec: rayClusterSpec,
    });
    await api.setStatus(`${rayClusters}/fleet-k-a`, {
      readyWorkerReplicas: 2,
      desiredWorkerReplicas: 2,
      conditions: [condition('RayClusterProvisioned', 'True'), condition('HeadPodReady', 'True')],
    });
    const podLabels = (rc: string, type: 'head' | 'worker') => ({
      [FLEET_LABEL]: 'fleet-k',
      'ray.io/cluster': rc,
      'ray.io/node-type': type,
      ...(type === 'worker' ? { 'ray.io/group': 'w' } : {}),
    });
    await pod('fleet-k-a-head', podLabels('fleet-k-a', 'head'), head, n0);
    await pod('fleet-k-a-w-0', podLabels('fleet-k-a', 'worker'), worker, n0);
    await pod('fleet-k-a-w-1', podLabels('fleet-k-a', 'worker'), worker, n1);

    const ref = {
      apiVersion: 'orchestration.aibrix.ai/v1alpha1',
      kind: 'RayClusterFleet',
      name: 'fleet-k',
    } as const;
    const before = await scaleTargetFor(kubeConfig, ns, ref).read();
    expect(before).toMatchObject({ specGroups: 1, readyGroups: 1, groupSize: 3, gpusPerGroup: 16 });
    expect(before.placement === undefined ? 0 : groupGpus(before.placement.group)).toBe(16);
    expect(before.placement).toMatchObject({
      kueueQueue: 'ray-q',
      unplacedGroups: 0,
      unschedulableGroups: 0,
    });
    // Which RayCluster AIBrix deletes on a scale-down is not known (see aibrix-fleet.ts): no drain view.
    expect(before.drain).toBeUndefined();

    await api.create(paBase(), podAutoscaler('fleet-cap', ref));
    const h = manualController(kubeConfig, ns, T0_MS);
    await h.controller.start();
    const replicas = async () => ((await api.get(`${fleets}/fleet-k`)).spec as { replicas: number }).replicas;
    try {
      await h.waitFor('fleet-cap');
      h.signals.set(`${ns}/fleet-cap/decode`, 'kvCacheUtilization', 2.8);
      expect(await stepUntil(h, async () => ((await replicas()) !== 1 ? replicas() : undefined))).toBe(2);
      const limited = await insufficientCapacity('fleet-cap');
      expect(limited).toContain('decode: want 4, 2 can land, asked 2');
      expect(limited).toContain(`a group is 3 pod(s) and 16 ${resource}`);
      expect(limited).toContain(`ClusterQueue ${ns}-ray leaves 16 ${resource}`);
    } finally {
      await h.controller.stop();
    }

    // AIBrix creates the second RayCluster; KubeRay its head, which the scheduler cannot place.
    await api.create(rayClusters, {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      metadata: { name: 'fleet-k-b', labels },
      spec: rayClusterSpec,
    });
    await pod('fleet-k-b-head', podLabels('fleet-k-b', 'head'), head);
    const after = await scaleTargetFor(kubeConfig, ns, ref).read();
    expect(after.placement).toMatchObject({ unplacedGroups: 1, unschedulableGroups: 1 });
  });
});
