import type { WorkloadBounds } from '../decide/workload-bounds.ts';

/**
 * A pool's bounds inside the workload's own (KubeRay's worker-group min/max), so the coupling band never
 * moves a pool to a count the workload would silently clamp.
 */
export function effectiveBounds(
  pool: { readonly minReplicas: number; readonly maxReplicas: number },
  state: { readonly workloadBounds?: WorkloadBounds | undefined },
): { minReplicas: number; maxReplicas: number } {
  const wb = state.workloadBounds;
  if (wb === undefined) return { minReplicas: pool.minReplicas, maxReplicas: pool.maxReplicas };
  const maxReplicas = Math.max(0, Math.min(pool.maxReplicas, wb.maxGroups));
  return { minReplicas: Math.min(maxReplicas, Math.max(pool.minReplicas, wb.minGroups)), maxReplicas };
}
