/**
 * The oracle: perfect foresight under the same startup delays.
 *
 * How it is computed. Before the run, src/sim/demand.ts turns the trace into the groups each pool needs per
 * 10-second bin (the sizing rule of the lab's calibration, deepseek-r1-h200.yaml: prefill work at 80 % utilisation; decode step time within
 * 90 % of the TPOT SLO, KV and the sequence cap, with each request resident for its output at that ITL). A group
 * asked for at t serves from t + startup, so capacity needed at τ must be requested by τ − startup, and a group
 * released at t cannot come back before t + startup. The oracle therefore requests, at every second t,
 *
 *     desired(t) = max { need(τ) : τ ∈ [t, t + startup + one bin] }
 *
 * which is the least fleet that is never short of a future need it could still meet (it scales up exactly one
 * startup ahead of each rise and down only when no higher need comes within a startup). Its GPU-hours are the
 * lower bound the other policies are measured against. It is a bound for the sizing rule, not a per-request
 * optimum: bursts shorter than a bin and queueing inside a bin are averaged, so its SLO attainment can fall
 * short of 100 % on second-scale bursts.
 */
import { maxGroupsOver } from '../demand.ts';
import type { PolicyContext, ScalingPolicy } from './types.ts';

export function oraclePolicy(context: PolicyContext): ScalingPolicy {
  const { demand } = context;
  const groups = context.pool === 'prefill' ? demand.prefillGroups : demand.decodeGroups;
  return {
    name: 'oracle',
    decide: (o) => {
      const need = maxGroupsOver(
        demand,
        groups,
        o.nowSeconds,
        o.nowSeconds + context.startupSeconds + demand.binSeconds,
      );
      return Math.min(context.maxGroups, Math.max(context.minGroups, need));
    },
  };
}
