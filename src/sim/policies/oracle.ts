/**
 * The oracle: the cheapest schedule with perfect foresight of the trace that reaches a target SLO attainment,
 * under the same cold start, fleet model and victim rule as every other policy.
 *
 * **The foresight plan.** src/sim/demand.ts turns the trace into the load each pool carries per 10-second bin,
 * in groups (the sizing rule of the lab's calibration, calibration/deepseek-r1-h200.yaml: prefill work at 80 % utilisation; decode step time within
 * 90 % of the TPOT SLO, KV and the sequence cap). A group asked for at t serves from t + startup, so capacity
 * needed at τ must be requested by τ − startup, and a group released at t cannot come back before t + startup.
 * With a headroom h the plan requests, at every second t,
 *
 *     desired(t) = min( peak, ceil( (1 + h) × max { load(τ) : τ ∈ [t, t + startup + one bin] } ) )
 *
 * where `peak` is static provisioning's count (the largest need of the trace). h = 0 is the bare sizing rule;
 * h → ∞ is static provisioning itself; negative h is cheaper than the sizing rule.
 *
 * **The search** (`searchOracle`, driven by src/sim/run.ts; one simulation per plan tried). Attainment grows
 * with h, from the bare plan up to static's. The search brackets the target (h = 0, then steps down to −0.9 or
 * up to 4 and then ∞) and bisects h until the attainment is at or above the target and at most 0.2 points
 * above it, or ten steps have run. On a small fleet one more group can lift the attainment by more than 0.2
 * points at every h: the search then keeps the upper headroom and bisects how late its rises are asked for
 * (`lateSeconds`, up to a startup plus one bin): a later rise lengthens the episode before capacity arrives,
 * which moves the attainment in small steps and saves the GPU-hours of that wait. When a second of lateness
 * for both pools still jumps (a decode pool at the TPOT edge slows every sequence in flight at once), it
 * bisects one pool's lateness at a time (`poolLate`), prefill first. Near full utilisation even that can jump: a few seconds more of backlog take minutes to clear with little spare capacity, so every
 * plan of the family lands on one side of the tolerance. The last stage then switches, at a time it bisects,
 * from the cheapest plan that reaches the target to the best one that misses it (`switchTo`): every second
 * run on the cheaper plan adds the misses of that second, so the attainment moves by about one second of
 * traffic per step. The result is the cheapest plan found that reaches the target; its GPU-hours are the lower bound at that SLO for this
 * plan family. The target defaults to static's attainment or 99 %, whichever is lower (`--oracle-slo` sets
 * it), so it is always reachable: h = ∞ is static provisioning.
 */
import { maxGroupsOver } from '../demand.ts';
import type { PolicyContext, Pool, ScalingPolicy } from './types.ts';

/**
 * One schedule of the oracle's family: the foresight plan at `headroom`, asking for each rise `lateSeconds`
 * later than a startup ahead (0 by default: just in time).
 */
export interface OraclePlan {
  readonly headroom: number;
  readonly lateSeconds?: number;
  /** One pool's rises asked later than the other's (`lateSeconds` stays the other pool's). */
  readonly poolLate?: { readonly pool: Pool; readonly lateSeconds: number };
  /** From `atSeconds` on, follow this cheaper plan instead (the search's last stage). */
  readonly switchTo?: { readonly atSeconds: number; readonly plan: OraclePlan };
}

/** The foresight plan (a headroom is a fraction; Infinity is static provisioning). */
export function oraclePolicy(context: PolicyContext, plan: OraclePlan = { headroom: 0 }): ScalingPolicy {
  const { switchTo, ...unswitched } = plan;
  if (switchTo !== undefined) {
    const before = oraclePolicy(context, unswitched);
    const after = oraclePolicy(context, switchTo.plan);
    return {
      name: 'oracle',
      decide: (o) => (o.nowSeconds < switchTo.atSeconds ? before : after).decide(o),
    };
  }
  const { demand } = context;
  const groups = context.pool === 'prefill' ? demand.prefillGroups : demand.decodeGroups;
  const load = (context.pool === 'prefill' ? demand.prefillLoad : demand.decodeLoad) ?? groups;
  const clamp = (n: number) => Math.min(context.maxGroups, Math.max(context.minGroups, n));
  const peak = maxGroupsOver(demand, groups, 0, Number.POSITIVE_INFINITY);
  const lateSeconds =
    plan.poolLate?.pool === context.pool ? plan.poolLate.lateSeconds : (plan.lateSeconds ?? 0);
  const lookAheadSeconds = Math.max(0, context.startupSeconds + demand.binSeconds - lateSeconds);
  const headroom = plan.headroom;
  return {
    name: 'oracle',
    decide: (o) => {
      if (headroom === Number.POSITIVE_INFINITY) return clamp(peak);
      const need = maxGroupsOver(demand, load, o.nowSeconds, o.nowSeconds + lookAheadSeconds);
      return clamp(Math.min(peak, Math.max(0, Math.ceil(need * (1 + headroom) - 1e-9))));
    },
  };
}

export interface OracleSearch {
  /** The cheapest plan found that reaches the target. */
  readonly plan: OraclePlan;
  readonly sloAttainment: number;
  /** True when the attainment is within [target, target + tolerance]. */
  readonly landed: boolean;
  /** Every plan tried, with its attainment, in order. */
  readonly evaluations: readonly { readonly plan: OraclePlan; readonly sloAttainment: number }[];
}

const LOWEST_HEADROOM = -0.9;
const UPWARD_STEPS = [0.25, 1, 4, Number.POSITIVE_INFINITY];
const BISECTIONS = 10;
/** Enough to find the switch to within 10 s on a day (86,400 s < 10 × 2^14). */
const SWITCH_BISECTIONS = 14;

interface Tried {
  readonly plan: OraclePlan;
  readonly slo: number;
}

/**
 * Finds the cheapest plan whose attainment (`attainmentAt`, one simulation each) reaches `target`, landing
 * within `toleranceFraction` above it (see the header): bisection on the headroom, then on how late the rises
 * are asked for (up to `lookAheadSeconds`, the plan's startup plus one bin) when one more group flips the
 * attainment past the tolerance, then on the second of the trace (up to `durationSeconds`) from which the
 * best plan below the target takes over.
 */
export function searchOracle(
  attainmentAt: (plan: OraclePlan) => number,
  target: number,
  lookAheadSeconds: number,
  durationSeconds: number,
  toleranceFraction = 0.002,
): OracleSearch {
  const evaluations: { plan: OraclePlan; sloAttainment: number }[] = [];
  const at = (plan: OraclePlan): Tried => {
    const slo = attainmentAt(plan);
    evaluations.push({ plan, sloAttainment: slo });
    return { plan, slo };
  };
  const landedAt = (t: Tried) => t.slo >= target && t.slo <= target + toleranceFraction;
  const done = (t: Tried): OracleSearch => ({
    plan: t.plan,
    sloAttainment: t.slo,
    landed: landedAt(t),
    evaluations,
  });
  // Bracket: lo misses the target, hi reaches it.
  let lo: Tried | undefined;
  let hi: Tried | undefined;
  const first = at({ headroom: 0 });
  if (first.slo >= target) {
    hi = first;
    for (let h = -0.25; lo === undefined; h = Math.max(LOWEST_HEADROOM, h - 0.25)) {
      const t = at({ headroom: h });
      if (t.slo >= target) hi = t;
      else lo = t;
      if (h === LOWEST_HEADROOM) break;
    }
  } else {
    lo = first;
    for (const h of UPWARD_STEPS) {
      const t = at({ headroom: h });
      if (t.slo >= target) {
        hi = t;
        break;
      }
      lo = t;
    }
  }
  if (hi === undefined) return done(lo ?? first); // unreachable even by static provisioning
  if (lo === undefined) return done(hi);
  // Headroom bisection (Infinity bisects from 4 up to 64 first, then is static itself).
  for (let i = 0; i < BISECTIONS && !landedAt(hi) && hi.plan.headroom - lo.plan.headroom > 0.005; i++) {
    const h: number =
      hi.plan.headroom === Number.POSITIVE_INFINITY
        ? Math.min(64, 4 * Math.max(1, lo.plan.headroom))
        : (lo.plan.headroom + hi.plan.headroom) / 2;
    if (h === lo.plan.headroom) break; // only static itself is above: nothing left between
    const t = at({ headroom: h });
    if (t.slo >= target) hi = t;
    else lo = t;
  }
  if (landedAt(hi)) return done(hi);
  // A group flips the attainment past the tolerance: keep the upper headroom and ask for its rises later,
  // which lengthens the short episodes before capacity arrives continuously.
  const upper = hi.plan.headroom;
  const headroomMiss = lo;
  let lateMiss: Tried | undefined;
  let early = 0;
  let late = lookAheadSeconds;
  for (let i = 0; i < BISECTIONS && !landedAt(hi); i++) {
    const lateSeconds = Math.round((early + late) / 2);
    const t = at({ headroom: upper, lateSeconds });
    if (t.slo >= target) {
      hi = t;
      early = lateSeconds;
    } else {
      late = lateSeconds;
      lateMiss = t;
    }
  }
  // A rise of both pools a second later can flip the attainment by more than the tolerance: a decode pool at
  // the TPOT edge slows every sequence in flight at once. One pool's rises asked later, the other's kept,
  // move it in smaller steps (prefill's lateness adds queueing only for the prompts that arrive meanwhile).
  for (const pool of ['prefill', 'decode'] as const) {
    if (landedAt(hi)) break;
    const base = hi.plan;
    let poolEarly = base.lateSeconds ?? 0;
    let poolLate = lookAheadSeconds;
    for (let i = 0; i < BISECTIONS && !landedAt(hi) && poolLate - poolEarly > 1; i++) {
      const lateSeconds = Math.round((poolEarly + poolLate) / 2);
      const t = at({ ...base, poolLate: { pool, lateSeconds } });
      if (t.slo >= target) {
        hi = t;
        poolEarly = lateSeconds;
      } else poolLate = lateSeconds;
    }
  }
  // Still a cliff: run the reaching plan until a switch second, then a plan that misses. Switching later only
  // adds seconds on the reaching plan, so the switch is bisected like a headroom. The miss asked a little later
  // differs at every rise, so its switch steps rise by rise; then the miss with a little less headroom; when
  // both differ only in one episode, the worst plan tried, short at every second, so each second after the
  // switch adds about one second of misses.
  const reaching = hi.plan;
  const worst = evaluations.reduce((a, b) => (b.sloAttainment < a.sloAttainment ? b : a));
  const worstMiss: Tried = { plan: worst.plan, slo: worst.sloAttainment };
  for (const missing of [lateMiss, headroomMiss, worstMiss]) {
    if (landedAt(hi) || missing === undefined || missing.plan.switchTo !== undefined) continue;
    let before = 0;
    let after = durationSeconds;
    for (let i = 0; i < SWITCH_BISECTIONS && !landedAt(hi) && after - before > 1; i++) {
      const atSeconds = Math.round((before + after) / 2);
      const t = at({ ...reaching, switchTo: { atSeconds, plan: missing.plan } });
      if (t.slo >= target) {
        hi = t;
        after = atSeconds;
      } else before = atSeconds;
    }
  }
  return done(hi);
}
