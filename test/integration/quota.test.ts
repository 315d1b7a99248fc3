// The capacity check under a namespace's ResourceQuota on the GPU resource, through the controller, against a
// real API server: the nodes have room for more groups than the quota leaves, and the ask stops at the quota.
// No scheduler, kubelet, quota controller or LWS controller runs: the test writes Node objects with GPU
// allocatable, the LWS's pods bound to them, and the quota's status as the quota controller keeps it. The GPU
// resource and the nodes' taint are this test's own, so its nodes hold nothing for any other test.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, type Json, RawApi } from './actuate-fixtures.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2027-01-04T10:00:00Z');
const LWS = 'leaderworkerset.sigs.k8s.io';

let ns = '';
let resource = '';
const nodes: string[] = [];
const lwsBase = () => customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets');
const paBase = () => customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers');

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-quota-' },
  });
  ns = (created.metadata as { name: string }).name;
  resource = `q.${ns}.example/gpu`;
});

afterAll(async () => {
  for (const name of nodes) await api.delete(`/api/v1/nodes/${name}`);
});

/** `count` Ready nodes of 8 GPUs of this test's resource, tainted with it. */
async function gpuNodes(count: number): Promise<string[]> {
  const taints = [{ key: resource, value: 'present', effect: 'NoSchedule' }];
  for (let i = 0; i < count; i++) {
    const name = `${ns}-n${i}`;
    await api.create('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name },
      spec: { taints },
    });
    // TaintNodesByCondition adds node.kubernetes.io/not-ready; no node lifecycle controller lifts it here.
    await api.mergePatch(`/api/v1/nodes/${name}`, { spec: { taints } });
    await api.setStatus(`/api/v1/nodes/${name}`, {
      capacity: { [resource]: '8', cpu: '64', memory: '512Gi', pods: '110' },
      allocatable: { [resource]: '8', cpu: '64', memory: '512Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'set by the test' }],
    });
    nodes.push(name);
  }
  return nodes.slice(-count);
}

describe('the capacity check under a ResourceQuota', () => {
  it('8 nodes of 8 GPUs fit 3 more 16-GPU groups, the quota (48, 16 used) leaves 32: want 4, asks for 3', async () => {
    const [n0, n1] = await gpuNodes(8);
    const spec: Json = {
      containers: [
        { name: 'engine', image: 'example.invalid/engine:1', resources: { limits: { [resource]: '8' } } },
      ],
      tolerations: [{ key: resource, operator: 'Exists', effect: 'NoSchedule' }],
    };
    await api.create(lwsBase(), {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      metadata: { name: 'dec' },
      spec: { replicas: 1, leaderWorkerTemplate: { size: 2, workerTemplate: { spec } } },
    });
    // Group 0: its leader on n0 and its worker on n1, Ready.
    for (const [w, node] of [n0, n1].entries()) {
      const name = w === 0 ? 'dec-0' : 'dec-0-1';
      await api.create(`/api/v1/namespaces/${ns}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          labels: {
            [`${LWS}/name`]: 'dec',
            [`${LWS}/group-index`]: '0',
            [`${LWS}/worker-index`]: String(w),
            [`${LWS}/group-key`]: 'k-dec-0',
          },
        },
        spec: { ...spec, nodeName: node },
      });
      await api.setStatus(`/api/v1/namespaces/${ns}/pods/${name}`, {
        phase: 'Running',
        conditions: [
          { type: 'ContainersReady', status: 'True' },
          { type: 'Ready', status: 'True' },
        ],
      });
    }
    // The quota, after the pods (it would charge them at admission), with the status its controller keeps.
    const key = `requests.${resource}`;
    await api.create(`/api/v1/namespaces/${ns}/resourcequotas`, {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'gpu-quota' },
      spec: { hard: { [key]: '48' } },
    });
    await api.setStatus(`/api/v1/namespaces/${ns}/resourcequotas/gpu-quota`, {
      hard: { [key]: '48' },
      used: { [key]: '16' },
    });
    await api.create(paBase(), {
      apiVersion: 'kvpa.io/v1alpha1',
      kind: 'PodAutoscaler',
      metadata: { name: 'quota' },
      spec: {
        mode: 'Apply',
        metricsSource: { pods: { port: 8000 } },
        pools: [
          {
            name: 'decode',
            scaleTargetRef: {
              apiVersion: 'leaderworkerset.x-k8s.io/v1',
              kind: 'LeaderWorkerSet',
              name: 'dec',
            },
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
    });

    const h = manualController(kubeConfig, ns, T0_MS);
    await h.controller.start();
    const replicas = async () => ((await api.get(`${lwsBase()}/dec`)).spec as { replicas: number }).replicas;
    try {
      await h.waitFor('quota');
      // 1 ready group carrying 2.8 of KV at 0.7 per group: 4 wanted. The 6 free nodes fit 3 more, the quota 2.
      h.signals.set(`${ns}/quota/decode`, 'kvCacheUtilization', 2.8);
      expect(await stepUntil(h, async () => ((await replicas()) !== 1 ? replicas() : undefined))).toBe(3);
      const status = (await api.get(`${paBase()}/quota`)).status as PodAutoscalerStatus;
      const limited = status.conditions?.find((c) => c.type === 'ScalingLimited');
      expect(limited).toMatchObject({ status: 'True', reason: 'InsufficientCapacity' });
      expect(limited?.message).toMatch(/^decode: want 4, 3 can land, asked 3 /);
      expect(limited?.message).toContain(`ResourceQuota gpu-quota leaves 32 ${resource}`);
    } finally {
      await h.controller.stop();
    }
  });
});
