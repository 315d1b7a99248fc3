/**
 * Kthena's autoscaler (volcano-sh/kthena) for a `disaggregatedTarget`, re-implemented from
 * `pkg/autoscaler/algorithm/recommendation.go` (the HPA-style recommendation with `tolerancePercent` 10, unready
 * instances counted on scale-up, missing ones at the target on scale-down), `pkg/autoscaler/status.go` (panic
 * mode: entered when `recommended × 100 ≥ current × panicThresholdPercent` (200), held `panicModeHold` (60 s)
 * after the last time the condition held; no scale-down while in panic, scale-up up to +1000 % per period) and
 * `pkg/autoscaler/algorithm/disaggregated_ratio.go` (`EnforceRoleRatio`: the prefill/decode count pair is
 * projected into `[minRatio, maxRatio]`, biased towards not lowering the metric-derived counts). Stable
 * behaviour: scale-up by max(+4, +100 %) per 60 s period, scale-down stabilisation 300 s (max over the window).
 *
 * Metrics and targets per role are the lab's shared choice (targets.ts). The ratio band is set around the
 * calibration's reference ratio (2K prompts, 1K outputs) by a factor of 2 each way. The two pools' instances of
 * one run share a coordinator (keyed by the run's demand profile object) so each decision sees the other
 * role's latest recommendation, as Kthena's one reconcile sees both roles. Sync every 15 s.
 */
import { decodeEngineRps, prefillEngineRps } from './dynamo.ts';
import { kvPolicyTarget } from './targets.ts';
import type { PolicyContext, Pool, PoolObservation, ScalingPolicy } from './types.ts';

export interface KthenaSpec {
  readonly targetPerGroup: number;
  readonly tolerance: number;
  readonly syncSeconds: number;
  readonly panicThresholdPercent: number;
  readonly panicModeHoldSeconds: number;
  readonly panicScaleUpPercent: number;
  readonly stableScaleUpPercent: number;
  readonly stableScaleUpInstances: number;
  readonly scaleDownStabilizationSeconds: number;
  /** prefill / decode groups. */
  readonly minRatio: number;
  readonly maxRatio: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
}

/** recommendation.go `getDesiredInstancesForSingleInstanceMetric` for one metric (HPA-style, with tolerance). */
export function kthenaRecommend(
  current: number,
  tolerance: number,
  target: number,
  values: readonly number[],
  unready: number,
): number {
  if (values.length === 0) return current;
  let sum = 0;
  for (const v of values) sum += v;
  let count = values.length;
  const ratio = sum / count / target;
  const up = ratio >= 1;
  const addUnready = unready > 0 && up;
  if (!addUnready) {
    if (Math.abs(ratio - 1) <= tolerance) return current;
    return Math.max(0, Math.ceil(ratio * count));
  }
  count += unready;
  const newRatio = sum / count / target;
  if (Math.abs(newRatio - 1) <= tolerance || newRatio >= 1 !== up) return current;
  const desired = Math.ceil(newRatio * count);
  return Math.max(desired, current);
}

/**
 * disaggregated_ratio.go `EnforceRoleRatio` for numerator = prefill, denominator = decode: clamp each to its
 * bounds; if the ratio leaves [minRatio, maxRatio], search denominators upward from the current one (or from
 * what the numerator needs at maxRatio) and take the numerator nearest its own value that fits; then downward.
 */
export function enforceRoleRatio(
  prefill: number,
  decode: number,
  bounds: { readonly min: number; readonly max: number },
  minRatio: number,
  maxRatio: number,
): { readonly prefill: number; readonly decode: number; readonly adjusted: boolean } {
  const clamp = (v: number) => Math.min(bounds.max, Math.max(bounds.min, v));
  let p = clamp(prefill);
  let d = clamp(decode);
  if (p === 0 && d === 0) return { prefill: p, decode: d, adjusted: false };
  let adjusted = false;
  if (p === 0) {
    p = clamp(1);
    adjusted = true;
  }
  if (d === 0) {
    d = clamp(1);
    adjusted = true;
  }
  const ratio = p / d;
  if (ratio >= minRatio && ratio <= maxRatio) return { prefill: p, decode: d, adjusted };
  const minD = Math.max(1, bounds.min, Math.ceil(bounds.min / maxRatio));
  const maxD = minRatio > 0 ? Math.min(bounds.max, Math.floor(bounds.max / minRatio)) : bounds.max;
  const numeratorFor = (cd: number): number | undefined => {
    const lo = Math.max(bounds.min, Math.ceil(minRatio * cd - 1e-12));
    const hi = Math.min(bounds.max, Math.floor(maxRatio * cd + 1e-12));
    return lo > hi ? undefined : Math.min(Math.max(p, lo), hi);
  };
  let start = Math.min(Math.max(d, minD), maxD);
  if (ratio > maxRatio) start = Math.min(Math.max(start, Math.ceil(p / maxRatio - 1e-12)), maxD);
  for (let cd = start; cd <= maxD; cd++) {
    const cp = numeratorFor(cd);
    if (cp !== undefined) return { prefill: cp, decode: cd, adjusted: true };
  }
  for (let cd = start - 1; cd >= minD; cd--) {
    const cp = numeratorFor(cd);
    if (cp !== undefined) return { prefill: cp, decode: cd, adjusted: true };
  }
  return { prefill: p, decode: d, adjusted }; // infeasible: Kthena reports an error and keeps the counts
}

/** Panic state and the stabilisation history of one pool. */
export class KthenaPool {
  private panicEndsAt = Number.NEGATIVE_INFINITY;
  private readonly history: { t: number; recommendation: number }[] = [];

  constructor(private readonly spec: KthenaSpec) {}

  inPanic(nowSeconds: number): boolean {
    return nowSeconds <= this.panicEndsAt;
  }

  /** The corrected count for a raw recommendation: panic mode, stabilisation, rate limits, bounds. */
  correct(nowSeconds: number, current: number, recommended: number): number {
    const s = this.spec;
    if (recommended * 100 >= current * s.panicThresholdPercent && current > 0) {
      this.panicEndsAt = nowSeconds + s.panicModeHoldSeconds;
    }
    while (
      this.history.length > 0 &&
      (this.history[0]?.t ?? 0) <= nowSeconds - s.scaleDownStabilizationSeconds
    ) {
      this.history.shift();
    }
    this.history.push({ t: nowSeconds, recommendation: recommended });
    let desired = recommended;
    if (this.inPanic(nowSeconds)) {
      desired = Math.max(
        current,
        Math.min(recommended, Math.ceil(current * (1 + s.panicScaleUpPercent / 100))),
      );
    } else if (recommended > current) {
      const limit = Math.max(
        current + s.stableScaleUpInstances,
        Math.ceil(current * (1 + s.stableScaleUpPercent / 100)),
      );
      desired = Math.min(recommended, limit);
    } else {
      let held = recommended;
      for (const h of this.history) held = Math.max(held, h.recommendation);
      desired = Math.min(current, held);
    }
    return Math.min(s.maxReplicas, Math.max(s.minReplicas, desired));
  }
}

export function kthenaDefaults(context: PolicyContext): KthenaSpec {
  const c = context.calibration;
  const reference = decodeEngineRps(c, 2048, 1024, c.slo.tpotSeconds) / prefillEngineRps(c, 2048);
  return {
    targetPerGroup: kvPolicyTarget(context.pool, c).targetPerGroup,
    tolerance: 0.1,
    syncSeconds: 15,
    panicThresholdPercent: 200,
    panicModeHoldSeconds: 60,
    panicScaleUpPercent: 1000,
    stableScaleUpPercent: 100,
    stableScaleUpInstances: 4,
    scaleDownStabilizationSeconds: 300,
    minRatio: reference / 2,
    maxRatio: reference * 2,
    minReplicas: context.minGroups,
    maxReplicas: context.maxGroups,
  };
}

const coordinators = new WeakMap<object, Partial<Record<Pool, number>>>();

export function kthenaPolicyWith(overrides: Partial<KthenaSpec> = {}) {
  return (context: PolicyContext): ScalingPolicy => {
    const spec = { ...kthenaDefaults(context), ...overrides };
    const metric = kvPolicyTarget(context.pool, context.calibration).metric;
    const pool = new KthenaPool(spec);
    let shared = coordinators.get(context.demand);
    if (shared === undefined) {
      shared = {};
      coordinators.set(context.demand, shared);
    }
    const latest = shared;
    return {
      name: 'kthena',
      decide(o: PoolObservation) {
        if (o.nowSeconds % spec.syncSeconds !== 0) return undefined;
        const current = o.requestedGroups;
        const values = o.metrics.map((m) => m[metric]);
        const unready = Math.max(0, o.requestedGroups - o.readyGroups);
        const recommended = kthenaRecommend(current, spec.tolerance, spec.targetPerGroup, values, unready);
        const corrected = pool.correct(o.nowSeconds, current, recommended);
        latest[context.pool] = corrected;
        const other = context.pool === 'prefill' ? latest.decode : latest.prefill;
        if (other === undefined) return corrected;
        const pair =
          context.pool === 'prefill'
            ? enforceRoleRatio(
                corrected,
                other,
                { min: spec.minReplicas, max: spec.maxReplicas },
                spec.minRatio,
                spec.maxRatio,
              )
            : enforceRoleRatio(
                other,
                corrected,
                { min: spec.minReplicas, max: spec.maxReplicas },
                spec.minRatio,
                spec.maxRatio,
              );
        return pair[context.pool];
      },
    };
  };
}

export const kthenaPolicy = kthenaPolicyWith();
