import { describe, expect, it } from 'vitest';
import { groupGpus } from '../../decide/placement.ts';
import { fleetPendingGroups, type RayClusterLike } from './aibrix-fleet.ts';
import { desiredWorkerPods, rayClusterShape } from './kuberay.ts';
import { gpuSpec, rayPod } from './ray-pods.fixture.ts';

describe('a whole RayCluster (an AIBrix fleet group) as the scheduler sees it', () => {
  it('KubeRay keeps replicas 5 under maxReplicas 3 at 3, times numOfHosts 2: 6 pods; under minReplicas 2: 2; suspended: 0', () => {
    expect(desiredWorkerPods({ replicas: 5, maxReplicas: 3, numOfHosts: 2 })).toBe(6);
    expect(desiredWorkerPods({ replicas: 1, minReplicas: 2 })).toBe(2);
    expect(desiredWorkerPods({ replicas: 4, suspend: true })).toBe(0);
  });

  it('a 0-GPU head, 2 replicas × 2 hosts of 8 GPUs and a suspended group: 5 pods, 32 GPUs', () => {
    const shape = rayClusterShape(
      {
        headGroupSpec: { template: { spec: gpuSpec(0, { nodeSelector: { pool: 'cpu' } }) } },
        workerGroupSpecs: [
          { groupName: 'gpu', replicas: 2, numOfHosts: 2, template: { spec: gpuSpec(8) } },
          { groupName: 'spare', replicas: 3, suspend: true, template: { spec: gpuSpec(8) } },
        ],
      },
      'RayClusterFleet llm/f spec.template.spec',
    );
    expect(shape.pods.map((p) => p.gpus)).toEqual([0, 8, 8, 8, 8]);
    expect(groupGpus(shape)).toBe(32);
    expect(shape.pods[0]?.nodeSelector).toEqual({ pool: 'cpu' });
  });

  it('workers of replicas 2147483647 are an error naming the fleet template, not a crash', () => {
    expect(() =>
      rayClusterShape(
        { workerGroupSpecs: [{ groupName: 'gpu', replicas: 2_147_483_647, template: { spec: gpuSpec(8) } }] },
        'RayClusterFleet llm/f spec.template.spec',
      ),
    ).toThrow('RayClusterFleet llm/f spec.template.spec.workerGroupSpecs');
  });

  const cluster = (
    name: string,
    workers: number,
    status: 'starting' | 'ready' | 'failed',
  ): RayClusterLike => ({
    metadata: { name },
    spec: { workerGroupSpecs: [{ replicas: workers }] },
    status: {
      conditions: [
        { type: 'RayClusterProvisioned', status: status === 'starting' ? 'False' : 'True' },
        { type: 'HeadPodReady', status: 'True' },
      ],
      readyWorkerReplicas: status === 'failed' ? workers - 1 : workers,
      desiredWorkerReplicas: workers,
    },
  });

  it('of 3 requested clusters: a placed one, one with an Unschedulable worker, and a failed one AIBrix replaces → 2 unplaced, 1 stuck', () => {
    const clusters = [cluster('c1', 2, 'ready'), cluster('c2', 2, 'starting'), cluster('c3', 2, 'failed')];
    const pods = [
      rayPod('c1-head', { cluster: 'c1', head: true, node: 'n0' }),
      rayPod('c1-w0', { cluster: 'c1', node: 'n1' }),
      rayPod('c1-w1', { cluster: 'c1', node: 'n2' }),
      rayPod('c2-head', { cluster: 'c2', head: true, node: 'n0' }),
      rayPod('c2-w0', { cluster: 'c2', node: 'n3' }),
      rayPod('c2-w1', { cluster: 'c2', unschedulable: true }),
      // Provisioned once and no longer ready: AIBrix's isClusterActive drops it, bound pods or not.
      rayPod('c3-head', { cluster: 'c3', head: true, node: 'n0' }),
      rayPod('c3-w0', { cluster: 'c3', node: 'n4' }),
      rayPod('c3-w1', { cluster: 'c3', node: 'n5' }),
    ];
    expect(fleetPendingGroups(3, clusters, pods)).toEqual({ unplacedGroups: 2, unschedulableGroups: 1 });
  });

  it('mid-rollout, an old cluster of 1 worker is placed with the 2 pods of its own spec, whatever the new template says', () => {
    const pods = [
      rayPod('old-head', { cluster: 'old', head: true, node: 'n0' }),
      rayPod('old-w0', { cluster: 'old', node: 'n1' }),
    ];
    expect(fleetPendingGroups(1, [cluster('old', 1, 'ready')], pods)).toEqual({
      unplacedGroups: 0,
      unschedulableGroups: 0,
    });
  });
});
