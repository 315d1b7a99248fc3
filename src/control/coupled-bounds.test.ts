import { describe, expect, it } from 'vitest';
import { effectiveBounds } from './coupled-bounds.ts';

describe('the bounds a coupled pool is moved within', () => {
  it('pool 1–16 inside a KubeRay worker group of 2–8 is 2–8: the band never asks what KubeRay clamps', () => {
    expect(
      effectiveBounds(
        { minReplicas: 1, maxReplicas: 16 },
        { workloadBounds: { minGroups: 2, maxGroups: 8 } },
      ),
    ).toEqual({ minReplicas: 2, maxReplicas: 8 });
  });

  it('without workload bounds the pool’s own 1–16 stand', () => {
    expect(effectiveBounds({ minReplicas: 1, maxReplicas: 16 }, {})).toEqual({
      minReplicas: 1,
      maxReplicas: 16,
    });
  });

  it('a workload minimum above the pool maximum (5 > 3) gives 3–3, never min > max', () => {
    expect(
      effectiveBounds({ minReplicas: 1, maxReplicas: 3 }, { workloadBounds: { minGroups: 5, maxGroups: 9 } }),
    ).toEqual({ minReplicas: 3, maxReplicas: 3 });
  });
});
