/**
 * AIBrix's PodAutoscaler, KPA and APA strategies, re-implemented from vllm-project/aibrix @ e3e10f9
 * (pkg/controller/podautoscaler/: `algorithm/kpa.go`, `algorithm/apa.go`, `types/metrics.go`,
 * `podautoscaler_controller.go`). Defaults (`context/context.go`): reconcile every 10 s; stable ("observe") window 180 s and
 * panic window 60 s, each the plain mean of the samples present; max scale-up and scale-down rates 2.0;
 * tolerances ±10 %; KPA panic threshold 2.0; cooldown up 0 s, down 300 s; min replicas 1.
 *
 * Quirks reproduced on purpose, because they are what AIBrix does:
 * - **The per-pod mean** across group heads is the observed value; a group that is starting (it has an IP, the
 *   engine does not answer) is read as 0.0 and drags the mean down.
 * - **KPA's mean-into-total defect**: `ceil(mean / target)` does not depend on the replica count, so an
 *   overloaded pool of 4 groups at KV 0.8 with target 0.5 is told to go to 2.
 * - **Panic is stateless**: in panic (`P/S > 2` or `S ≤ 0`) one reconcile takes max(stable, panic);
 *   there is no hold and no ratchet.
 * - **Current replicas are `spec.replicas`** (requested, including starting groups), for rates and for APA.
 * - **The cooldown takes the minimum over the scale-down window** (podautoscaler_controller.go), the opposite of the HPA: a low
 *   recommendation from up to 5 minutes ago can pull a later scale-down deeper.
 * - **Boundary short-circuits**: current 0 with min ≠ 0 → no scaling; current < min → min.
 */
import { kvPolicyTarget, type PeerMetric } from './targets.ts';
import type { PolicyContext, PoolObservation, ScalingPolicy } from './types.ts';

export interface AibrixSpec {
  readonly strategy: 'kpa' | 'apa';
  readonly targetValue: number;
  readonly stableWindowSeconds: number;
  readonly panicWindowSeconds: number;
  readonly panicThreshold: number;
  readonly maxScaleUpRate: number;
  readonly maxScaleDownRate: number;
  readonly upTolerance: number;
  readonly downTolerance: number;
  readonly scaleUpCooldownSeconds: number;
  readonly scaleDownCooldownSeconds: number;
  readonly reconcileSeconds: number;
  readonly minReplicas: number;
  readonly maxReplicas: number;
}

export function aibrixDefaults(
  strategy: 'kpa' | 'apa',
  targetValue: number,
  minReplicas = 1,
  maxReplicas = 64,
): AibrixSpec {
  return {
    strategy,
    targetValue,
    stableWindowSeconds: 180,
    panicWindowSeconds: 60,
    panicThreshold: 2.0,
    maxScaleUpRate: 2.0,
    maxScaleDownRate: 2.0,
    upTolerance: 0.1,
    downTolerance: 0.1,
    scaleUpCooldownSeconds: 0,
    scaleDownCooldownSeconds: 300,
    reconcileSeconds: 10,
    minReplicas,
    maxReplicas,
  };
}

/**
 * AIBrix's `TimeWindow`: 1-second buckets, last write wins, evicted only on write (buckets older than
 * `floor(t − window)` go), read as the plain mean of the samples present.
 */
export class SampleWindow {
  private readonly seconds: number[] = [];
  private readonly values: number[] = [];

  constructor(readonly windowSeconds: number) {}

  record(tSeconds: number, value: number): void {
    const bucket = Math.floor(tSeconds);
    const oldest = Math.floor(tSeconds - this.windowSeconds);
    let drop = 0;
    while (drop < this.seconds.length && (this.seconds[drop] as number) < oldest) drop++;
    if (drop > 0) {
      this.seconds.splice(0, drop);
      this.values.splice(0, drop);
    }
    const last = this.seconds.length - 1;
    if (last >= 0 && this.seconds[last] === bucket) this.values[last] = value;
    else {
      this.seconds.push(bucket);
      this.values.push(value);
    }
  }

  /** Plain mean of the samples present; undefined when there are none. */
  average(): number | undefined {
    if (this.values.length === 0) return undefined;
    let sum = 0;
    for (const v of this.values) sum += v;
    return sum / this.values.length;
  }
}

/** KPA's recommendation (algorithm/kpa.go, production context: no panic hold). */
export function aibrixKpaRecommend(spec: AibrixSpec, current: number, stable: number, panic: number): number {
  const c = Math.max(0, current);
  const maxUp = Math.max(1, Math.ceil(spec.maxScaleUpRate * c));
  const maxDown = Math.floor(c / spec.maxScaleDownRate);
  const t = spec.targetValue;
  const up = t * (1 + spec.upTolerance);
  const down = t * (1 - spec.downTolerance);
  const want = (value: number) => (value > up || value < down ? Math.ceil(value / t) : c);
  const clamp = (x: number) => Math.min(Math.max(x, maxDown), maxUp);
  const stableWant = clamp(want(stable));
  const panicWant = clamp(want(panic));
  const inPanic = stable <= 0 || panic / stable > spec.panicThreshold;
  const recommendation = inPanic ? Math.max(stableWant, panicWant) : stableWant;
  return Math.min(Math.max(recommendation, spec.minReplicas), spec.maxReplicas);
}

/** APA's recommendation (algorithm/apa.go): HPA's ratio with an asymmetric dead band and rate caps. */
export function aibrixApaRecommend(spec: AibrixSpec, current: number, stable: number): number {
  if (spec.targetValue <= 0) return current;
  const ratio = stable / spec.targetValue;
  let want = current;
  if (ratio > 1 + spec.upTolerance)
    want = Math.min(Math.ceil(current * ratio), Math.ceil(spec.maxScaleUpRate * current));
  else if (ratio < 1 - spec.downTolerance) {
    want = Math.max(Math.ceil(current * ratio), Math.floor(current / spec.maxScaleDownRate));
  }
  return Math.min(Math.max(want, spec.minReplicas), spec.maxReplicas);
}

/** AIBrix's cooldown "stabilisation" (podautoscaler_controller.go), with its min-over-the-down-window. */
export class AibrixCooldown {
  private readonly history: { t: number; recommendation: number }[] = [];

  constructor(private readonly spec: AibrixSpec) {}

  stabilize(nowSeconds: number, current: number, recommendation: number): number {
    this.history.push({ t: nowSeconds, recommendation });
    const keep = Math.max(this.spec.scaleUpCooldownSeconds, this.spec.scaleDownCooldownSeconds);
    while (this.history.length > 0 && (this.history[0]?.t ?? 0) < nowSeconds - keep) this.history.shift();
    if (recommendation === current) return current;
    const up = recommendation > current;
    const window = up ? this.spec.scaleUpCooldownSeconds : this.spec.scaleDownCooldownSeconds;
    let chosen: number | undefined;
    for (const h of this.history) {
      if (h.t <= nowSeconds - window) continue; // only strictly inside the window
      if (chosen === undefined) chosen = h.recommendation;
      else chosen = up ? Math.max(chosen, h.recommendation) : Math.min(chosen, h.recommendation);
    }
    const result = chosen ?? recommendation;
    return Math.min(Math.max(result, this.spec.minReplicas), this.spec.maxReplicas);
  }
}

/** The main knobs a user tunes: the target (× the default) and the scale-down cooldown. */
export interface AibrixKnobs {
  readonly targetScale?: number | undefined;
  readonly scaleDownCooldownSeconds?: number | undefined;
}

export function aibrixPolicyWith(strategy: 'kpa' | 'apa', knobs: AibrixKnobs = {}) {
  return (context: PolicyContext): ScalingPolicy => makeAibrixPolicy(strategy, context, knobs);
}

function makeAibrixPolicy(
  strategy: 'kpa' | 'apa',
  context: PolicyContext,
  knobs: AibrixKnobs = {},
): ScalingPolicy {
  const target = kvPolicyTarget(context.pool, context.calibration);
  const scaled = target.targetPerGroup * (knobs.targetScale ?? 1);
  const base = aibrixDefaults(
    strategy,
    target.metric === 'kvCacheUsagePerc' ? Math.min(1, scaled) : scaled,
    context.minGroups,
    context.maxGroups,
  );
  const spec = {
    ...base,
    scaleDownCooldownSeconds: knobs.scaleDownCooldownSeconds ?? base.scaleDownCooldownSeconds,
  };
  const stable = new SampleWindow(spec.stableWindowSeconds);
  const panic = new SampleWindow(spec.panicWindowSeconds);
  const cooldown = new AibrixCooldown(spec);
  const metric: PeerMetric = target.metric;
  return {
    name: `aibrix-${strategy}`,
    decide(o: PoolObservation) {
      if (o.nowSeconds % spec.reconcileSeconds !== 0) return undefined;
      const current = o.requestedGroups;
      if (current === 0 && spec.minReplicas !== 0) return undefined;
      if (current > spec.maxReplicas) return spec.maxReplicas;
      if (current < spec.minReplicas) return spec.minReplicas;
      // Per-pod mean over group heads; starting groups (requested, not ready) read as 0.0.
      const starting = Math.max(0, o.requestedGroups - o.readyGroups);
      const pods = o.metrics.length + starting;
      if (pods === 0) return undefined; // every fetch failed: FailedComputeScale, no change
      let sum = 0;
      for (const m of o.metrics) sum += m[metric];
      const mean = sum / pods;
      stable.record(o.nowSeconds, mean);
      panic.record(o.nowSeconds, mean);
      const stableValue = stable.average() ?? 0;
      const panicValue = panic.average() ?? 0;
      const recommendation =
        strategy === 'kpa'
          ? aibrixKpaRecommend(spec, current, stableValue, panicValue)
          : aibrixApaRecommend(spec, current, stableValue);
      return cooldown.stabilize(o.nowSeconds, current, recommendation);
    },
  };
}

export function aibrixKpaPolicy(context: PolicyContext): ScalingPolicy {
  return makeAibrixPolicy('kpa', context);
}

export function aibrixApaPolicy(context: PolicyContext): ScalingPolicy {
  return makeAibrixPolicy('apa', context);
}
