/**
 * Static provisioning for the peak: the largest demand of the whole trace (src/sim/demand.ts), held from the
 * start. It never misses for lack of capacity inside the sizing rule's assumptions, and it pays for the peak
 * all day: the upper reference for GPU-hours.
 */
import { maxGroupsOver } from '../demand.ts';
import type { PolicyContext, ScalingPolicy } from './types.ts';

export function staticPolicy(context: PolicyContext): ScalingPolicy {
  const groups = context.pool === 'prefill' ? context.demand.prefillGroups : context.demand.decodeGroups;
  const peak = maxGroupsOver(context.demand, groups, 0, Number.POSITIVE_INFINITY);
  const desired = Math.min(context.maxGroups, Math.max(context.minGroups, peak));
  return { name: 'static', decide: () => desired };
}
