/**
 * Kubernetes HPA v2 on a per-group Pods metric (AverageValue), re-implemented from the behaviour in
 * kubernetes.io "Horizontal Pod Autoscaling" (algorithm details) and KEP-4951 (configurable tolerance):
 * sync every 15 s; tolerance 0.1; `desired = ceil(readyWithMetrics × usageRatio)`; pods without metrics (here:
 * starting groups) count as 0 on scale-up and as the target on scale-down, and if that flips the direction or
 * lands in the tolerance the HPA keeps the current count; stabilisation windows scale-up 0 s (min over window)
 * and scale-down 300 s (max over window); default policies: up by max(+100 %, +4 pods) per 15 s, down by
 * 100 % per 15 s; `minReplicas` 1.
 */
import { kvPolicyTarget } from './targets.ts';
import type { PolicyContext, PoolObservation, ScalingPolicy } from './types.ts';

export interface HpaSpec {
  readonly targetAverageValue: number;
  readonly tolerance: number;
  readonly syncSeconds: number;
  readonly scaleUpStabilizationSeconds: number;
  readonly scaleDownStabilizationSeconds: number;
  readonly scaleUpPercent: number;
  readonly scaleUpPods: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
}

export function hpaDefaults(targetAverageValue: number, minReplicas = 1, maxReplicas = 64): HpaSpec {
  return {
    targetAverageValue,
    tolerance: 0.1,
    syncSeconds: 15,
    scaleUpStabilizationSeconds: 0,
    scaleDownStabilizationSeconds: 300,
    scaleUpPercent: 100,
    scaleUpPods: 4,
    minReplicas,
    maxReplicas,
  };
}

/**
 * The replica calculator for a plain Pods metric: `values` are the pods with metrics, `missing` the pods
 * without. Returns the raw recommendation before stabilisation and rate limits.
 */
export function hpaReplicas(
  spec: HpaSpec,
  current: number,
  values: readonly number[],
  missing: number,
): number {
  if (values.length === 0) return current; // no metrics at all: the HPA cannot compute, keeps the scale
  let sum = 0;
  for (const v of values) sum += v;
  const ready = values.length;
  const usageRatio = sum / (spec.targetAverageValue * ready);
  if (missing === 0) {
    if (Math.abs(1 - usageRatio) <= spec.tolerance) return current;
    return Math.ceil(usageRatio * ready);
  }
  if (Math.abs(1 - usageRatio) <= spec.tolerance) return current;
  // Missing pods: 0 when scaling up, the target when scaling down; then re-check direction and tolerance.
  const scaleUp = usageRatio > 1;
  const adjustedSum = scaleUp ? sum : sum + missing * spec.targetAverageValue;
  const newRatio = adjustedSum / (spec.targetAverageValue * (ready + missing));
  if (Math.abs(1 - newRatio) <= spec.tolerance || newRatio > 1 !== scaleUp) return current;
  return Math.ceil(newRatio * (ready + missing));
}

export class HpaStabilizer {
  private readonly history: { t: number; recommendation: number }[] = [];

  constructor(private readonly spec: HpaSpec) {}

  /** Behaviour-based stabilisation, then the default rate policies and the bounds. */
  normalize(nowSeconds: number, current: number, recommendation: number): number {
    const keep = Math.max(this.spec.scaleUpStabilizationSeconds, this.spec.scaleDownStabilizationSeconds);
    while (this.history.length > 0 && (this.history[0]?.t ?? 0) <= nowSeconds - keep) this.history.shift();
    let upRecommendation = recommendation;
    let downRecommendation = recommendation;
    for (const h of this.history) {
      if (h.t > nowSeconds - this.spec.scaleUpStabilizationSeconds)
        upRecommendation = Math.min(upRecommendation, h.recommendation);
      if (h.t > nowSeconds - this.spec.scaleDownStabilizationSeconds)
        downRecommendation = Math.max(downRecommendation, h.recommendation);
    }
    this.history.push({ t: nowSeconds, recommendation });
    let stabilized = current;
    if (stabilized < upRecommendation) stabilized = upRecommendation;
    if (stabilized > downRecommendation) stabilized = downRecommendation;
    const upLimit = Math.max(
      Math.ceil(current * (1 + this.spec.scaleUpPercent / 100)),
      current + this.spec.scaleUpPods,
    );
    const limited = Math.min(stabilized, upLimit); // scale-down: 100 % per period, i.e. no limit
    return Math.min(Math.max(limited, this.spec.minReplicas), this.spec.maxReplicas);
  }
}

export function hpaPolicy(context: PolicyContext): ScalingPolicy {
  return hpaPolicyWith()(context);
}

/** The main knobs a user tunes: the target (× the default) and the scale-down stabilisation window. */
export interface HpaKnobs {
  readonly targetScale?: number | undefined;
  readonly scaleDownStabilizationSeconds?: number | undefined;
}

export function hpaPolicyWith(knobs: HpaKnobs = {}) {
  return (context: PolicyContext): ScalingPolicy => makeHpaPolicy(context, knobs);
}

function makeHpaPolicy(context: PolicyContext, knobs: HpaKnobs): ScalingPolicy {
  const target = kvPolicyTarget(context.pool, context.calibration);
  const scaled = target.targetPerGroup * (knobs.targetScale ?? 1);
  const base = hpaDefaults(
    target.metric === 'kvCacheUsagePerc' ? Math.min(1, scaled) : scaled,
    context.minGroups,
    context.maxGroups,
  );
  const spec = {
    ...base,
    scaleDownStabilizationSeconds: knobs.scaleDownStabilizationSeconds ?? base.scaleDownStabilizationSeconds,
  };
  const stabilizer = new HpaStabilizer(spec);
  return {
    name: 'hpa',
    decide(o: PoolObservation) {
      if (o.nowSeconds % spec.syncSeconds !== 0) return undefined;
      const current = o.requestedGroups;
      const values = o.metrics.map((m) => m[target.metric]);
      const missing = Math.max(0, o.requestedGroups - o.readyGroups);
      const raw = hpaReplicas(spec, current, values, missing);
      return stabilizer.normalize(o.nowSeconds, current, raw);
    },
  };
}
