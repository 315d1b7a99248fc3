import { describe, expect, it } from 'vitest';
import type { Decision } from './types.ts';
import { applyWorkloadBounds } from './workload-bounds.ts';

function decision(desiredGroups: number): Decision {
  return {
    desiredGroups,
    valid: true,
    inPanic: false,
    explanation: {
      requestedGroups: 4,
      readyGroups: 4,
      signals: [],
      stages: [],
      panic: { inPanic: false },
      summary: '',
    },
  } as unknown as Decision;
}

describe('applyWorkloadBounds', () => {
  it('a want of 9 with KubeRay maxReplicas 6 asks for 6 and says which bound', () => {
    const d = applyWorkloadBounds(decision(9), { minGroups: 1, maxGroups: 6 }, 'RayCluster r');
    expect(d.desiredGroups).toBe(6);
    const stage = d.explanation.stages.at(-1);
    expect(stage).toMatchObject({ stage: 'workloadBounds', before: 9, after: 6, applied: true });
    expect(stage?.reason).toContain('maxReplicas 6');
  });

  it('a want of 0 with minReplicas 2 asks for 2', () => {
    const d = applyWorkloadBounds(decision(0), { minGroups: 2, maxGroups: 10 }, 'RayCluster r');
    expect(d.desiredGroups).toBe(2);
    expect(d.explanation.stages.at(-1)?.reason).toContain('minReplicas 2');
  });

  it('a want of 5 inside [1, 6] is left alone, with no stage recorded', () => {
    const d0 = decision(5);
    expect(applyWorkloadBounds(d0, { minGroups: 1, maxGroups: 6 }, 'RayCluster r')).toBe(d0);
  });
});
