import { describe, expect, it } from 'vitest';
import { groupGpus } from '../../decide/placement.ts';
import { rayPendingGroups, rayWorkerGroupShape, rayWorkerGroups } from './kuberay.ts';
import { gpuSpec, rayPod } from './ray-pods.fixture.ts';

const WHERE = 'RayCluster llm/rc spec.workerGroupSpecs[groupName=gpu]';

describe('a KubeRay worker group as the scheduler sees it', () => {
  it('numOfHosts 4 of an 8-GPU template is one gang of 4 pods and 32 GPUs, selector and tolerations kept', () => {
    const shape = rayWorkerGroupShape(
      {
        numOfHosts: 4,
        template: {
          spec: gpuSpec(8, {
            nodeSelector: { gpu: 'h200' },
            tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
          }),
        },
      },
      WHERE,
    );
    expect(shape?.pods).toHaveLength(4);
    expect(shape === undefined ? 0 : groupGpus(shape)).toBe(32);
    expect(shape?.pods[3]?.nodeSelector).toEqual({ gpu: 'h200' });
    expect(shape?.pods[3]?.tolerations).toEqual([
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
  });

  it('numOfHosts 20000 is an error naming the field, not a 20000-pod shape', () => {
    expect(() => rayWorkerGroupShape({ numOfHosts: 20_000, template: { spec: gpuSpec(8) } }, WHERE)).toThrow(
      `${WHERE}.numOfHosts makes 20000 pods in one group`,
    );
  });

  it('of 3 requested 2-host replicas: r1 placed, r2 with a host unbound, r3 with a host Unschedulable → 2 unplaced, 1 stuck', () => {
    const pods = [
      rayPod('r1-0', { replica: 'r1', node: 'n0' }),
      rayPod('r1-1', { replica: 'r1', node: 'n1' }),
      rayPod('r2-0', { replica: 'r2', node: 'n2' }),
      rayPod('r2-1', { replica: 'r2' }),
      rayPod('r3-0', { replica: 'r3', unschedulable: true }),
      rayPod('r3-1', { replica: 'r3', unschedulable: true }),
    ];
    expect(rayPendingGroups(3, 2, rayWorkerGroups(2, pods))).toEqual({
      unplacedGroups: 2,
      unschedulableGroups: 1,
    });
  });

  it('single-host, 4 requested: 2 bound pods, 1 Unschedulable, 1 bound but being deleted → 2 unplaced, 1 stuck', () => {
    const pods = [
      rayPod('w-a', { node: 'n0' }),
      rayPod('w-b', { node: 'n1' }),
      rayPod('w-c', { unschedulable: true }),
      rayPod('w-d', { node: 'n2', deleting: true }),
    ];
    expect(rayPendingGroups(4, 1, rayWorkerGroups(1, pods))).toEqual({
      unplacedGroups: 2,
      unschedulableGroups: 1,
    });
  });

  it('3 requested, 5 bound after a scale-down not done yet: nothing unplaced', () => {
    const pods = ['a', 'b', 'c', 'd', 'e'].map((n, i) => rayPod(`w-${n}`, { node: `n${i}` }));
    expect(rayPendingGroups(3, 1, rayWorkerGroups(1, pods))).toEqual({
      unplacedGroups: 0,
      unschedulableGroups: 0,
    });
  });
});
