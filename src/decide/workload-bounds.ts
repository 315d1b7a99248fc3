/**
 * The workload-bounds stage. Some workloads clamp any count written to them to bounds of their own and say
 * nothing (KubeRay: a worker group's [minReplicas, maxReplicas]). A decision outside them would be written,
 * silently changed, and then read back as another writer's override; kvpa keeps inside them and says why.
 */
import { withStage } from './kpa.ts';
import type { Decision } from './types.ts';

export interface WorkloadBounds {
  readonly minGroups: number;
  readonly maxGroups: number;
}

/** The want clamped to [minGroups, maxGroups]; a stage is recorded only when the bounds bind. */
export function applyWorkloadBounds(decision: Decision, bounds: WorkloadBounds, owner: string): Decision {
  const want = decision.desiredGroups;
  const after = Math.min(Math.max(want, bounds.minGroups), bounds.maxGroups);
  if (after === want) return decision;
  const side = after < want ? `maxReplicas ${bounds.maxGroups}` : `minReplicas ${bounds.minGroups}`;
  return withStage(
    decision,
    'workloadBounds',
    after,
    `${owner} clamps the count to its ${side}: asking for ${after}, not ${want} (change the bound on the workload to go further)`,
  );
}
