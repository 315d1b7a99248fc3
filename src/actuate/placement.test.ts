import type { V1Node, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { nodeRooms, quotaRooms } from '../observe/cluster-room.ts';
import { deviceCount, lwsGroupShape, lwsPendingGroups, podGpus } from './placement.ts';

const gpuSpec = (gpus: number, extra: Partial<V1PodSpec> = {}): V1PodSpec => ({
  containers: [{ name: 'main', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }],
  ...extra,
});

function pod(group: number, worker: number, nodeName?: string, unschedulable = false): V1Pod {
  return {
    metadata: {
      name: `lws-${group}${worker > 0 ? `-${worker}` : ''}`,
      labels: {
        'leaderworkerset.sigs.k8s.io/group-index': String(group),
        'leaderworkerset.sigs.k8s.io/worker-index': String(worker),
      },
    },
    spec: { ...gpuSpec(8), ...(nodeName !== undefined ? { nodeName } : {}) },
    status: {
      phase: nodeName !== undefined ? 'Running' : 'Pending',
      ...(unschedulable
        ? { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] }
        : {}),
    },
  };
}

describe('pod and group shapes', () => {
  it('a GPU limit alone is the request; an init container of 8 beside containers of 2 + 2 makes 8', () => {
    expect(podGpus(gpuSpec(8), 'nvidia.com/gpu')).toBe(8);
    const spec: V1PodSpec = {
      containers: [
        { name: 'a', resources: { requests: { 'nvidia.com/gpu': '2' } } },
        { name: 'b', resources: { requests: { 'nvidia.com/gpu': '2' } } },
      ],
      initContainers: [{ name: 'warm', resources: { limits: { 'nvidia.com/gpu': '8' } } }],
    };
    expect(podGpus(spec, 'nvidia.com/gpu')).toBe(8);
    expect(deviceCount('8000m')).toBe(8);
    expect(deviceCount('lots')).toBe(0);
  });

  it('an LWS of size 4 with a leader template is its leader plus 3 workers, selectors and tolerations kept', () => {
    const shape = lwsGroupShape({
      size: 4,
      leaderTemplate: { spec: gpuSpec(0, { nodeSelector: { role: 'head' } }) },
      workerTemplate: {
        spec: gpuSpec(8, {
          tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: 'gpu', operator: 'In', values: ['h200'] }] }],
              },
            },
          },
        }),
      },
    });
    expect(shape.gpuResource).toBe('nvidia.com/gpu');
    expect(shape.pods.map((p) => p.gpus)).toEqual([0, 8, 8, 8]);
    expect(shape.pods[0]?.nodeSelector).toEqual({ role: 'head' });
    expect(shape.pods[1]?.requiredTerms).toEqual([[{ key: 'gpu', operator: 'In', values: ['h200'] }]]);
    expect(shape.pods[1]?.tolerations).toEqual([
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
  });
});

describe('pending groups', () => {
  it('of 3 requested 2-pod groups: one placed, one with an unbound worker, one Unschedulable', () => {
    const pods = [pod(0, 0, 'n0'), pod(0, 1, 'n1'), pod(1, 0, 'n2'), pod(1, 1), pod(2, 0, undefined, true)];
    expect(lwsPendingGroups(3, 2, pods)).toEqual({ unplacedGroups: 2, unschedulableGroups: 1 });
  });

  it('a requested group with no pods yet is unplaced, not unschedulable', () => {
    expect(lwsPendingGroups(2, 2, [pod(0, 0, 'n0'), pod(0, 1, 'n1')])).toEqual({
      unplacedGroups: 1,
      unschedulableGroups: 0,
    });
  });
});

describe('cluster room', () => {
  const node = (name: string, gpus: string, ready = true, unschedulable = false): V1Node => ({
    metadata: { name, labels: { zone: 'a' } },
    spec: { unschedulable, taints: [{ key: 'gpu', effect: 'NoSchedule' }] },
    status: {
      allocatable: { 'nvidia.com/gpu': gpus },
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    },
  });

  it('8 allocatable less a running 8-GPU pod is 0 free; a finished pod frees its GPUs; cordoned is unschedulable', () => {
    const finished = { ...pod(5, 0, 'b'), status: { phase: 'Succeeded' } };
    const rooms = nodeRooms(
      [node('a', '8'), node('b', '8'), node('c', '8', true, true)],
      [pod(0, 0, 'a'), finished],
      'nvidia.com/gpu',
    );
    expect(rooms.map((r) => [r.name, r.freeGpus, r.schedulable])).toEqual([
      ['a', 0, true],
      ['b', 8, true],
      ['c', 8, false],
    ]);
    expect(rooms[0]?.taints).toEqual([{ key: 'gpu', effect: 'NoSchedule' }]);
  });

  it('a quota of requests.nvidia.com/gpu 64 with 48 used leaves 16; a CPU-only quota is ignored', () => {
    expect(
      quotaRooms(
        [
          {
            metadata: { name: 'gpus' },
            status: { hard: { 'requests.nvidia.com/gpu': '64' }, used: { 'requests.nvidia.com/gpu': '48' } },
          },
          { metadata: { name: 'cpu' }, status: { hard: { 'requests.cpu': '100' } } },
        ],
        'nvidia.com/gpu',
      ),
    ).toEqual([{ kind: 'ResourceQuota', name: 'gpus', freeGpus: 16 }]);
  });
});
