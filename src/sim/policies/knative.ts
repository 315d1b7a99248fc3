/**
 * Knative Serving's KPA on concurrency, re-implemented from knative/serving @ 98e5ef9
 * (`pkg/autoscaler/scaling/autoscaler.go`, `aggregation/bucketing.go`). Defaults (`config/config.go`): stable window
 * 60 s, panic window 10 % = 6 s, panic threshold 200 %, max scale-up rate 1000, max scale-down rate 2, target
 * utilisation 70 %, scale-down delay 0, decision tick 2 s, metrics recorded every 1 s.
 *
 * Mapping: a pod is a replica group; the observed value is the pool's total concurrency, Σ over ready group
 * heads of running + waiting requests (what queue-proxies would report summed), recorded each second. Ready
 * groups are the denominator (`R = max(1, ready)`). `min-scale` is the run's minimum (scale to zero is off).
 */
import { currentMax, newDelayWindow, recordMax } from '../../decide/delay-window.ts';
import { concurrencyPerGroup } from './targets.ts';
import type { PolicyContext, PoolObservation, ScalingPolicy } from './types.ts';

export interface KnativeSpec {
  readonly targetValue: number;
  readonly stableWindowSeconds: number;
  readonly panicWindowSeconds: number;
  readonly panicThreshold: number;
  readonly maxScaleUpRate: number;
  readonly maxScaleDownRate: number;
  readonly tickSeconds: number;
  readonly minScale: number;
  readonly maxScale: number;
}

export function knativeDefaults(targetValue: number, minScale = 1, maxScale = 0): KnativeSpec {
  return {
    targetValue,
    stableWindowSeconds: 60,
    panicWindowSeconds: 6,
    panicThreshold: 2.0,
    maxScaleUpRate: 1000,
    maxScaleDownRate: 2,
    tickSeconds: 2,
    minScale,
    maxScale,
  };
}

/**
 * Knative's linear `TimedFloat64Buckets` with 1-second buckets (knative/serving pkg/autoscaler/aggregation/bucketing.go): values recorded in the
 * same second add up; a gap in the middle counts as zeros; a trailing gap is excluded; a series silent for a
 * whole window has no data.
 */
export class TimedBuckets {
  private readonly buckets: Float64Array;
  private firstWrite = Number.NaN;
  private lastWrite = Number.NaN;
  private windowTotal = 0;

  constructor(readonly windowSeconds: number) {
    this.buckets = new Float64Array(Math.ceil(windowSeconds));
  }

  private slot(second: number): number {
    const n = this.buckets.length;
    return ((second % n) + n) % n;
  }

  record(tSeconds: number, value: number): void {
    const t = Math.floor(tSeconds);
    const n = this.buckets.length;
    if (Number.isNaN(this.lastWrite)) {
      this.firstWrite = t;
      this.lastWrite = t;
    } else if (this.lastWrite - t >= n) {
      return; // older than a window: ignored
    } else if (t - this.lastWrite >= n) {
      this.buckets.fill(0);
      this.windowTotal = 0;
      this.firstWrite = t;
      this.lastWrite = t;
    } else if (t > this.lastWrite) {
      for (let s = this.lastWrite + 1; s <= t; s++) {
        const i = this.slot(s);
        this.windowTotal -= this.buckets[i] as number;
        this.buckets[i] = 0;
      }
      this.lastWrite = t;
    }
    const i = this.slot(t);
    this.buckets[i] = (this.buckets[i] as number) + value;
    this.windowTotal += value;
  }

  /** The window average at `now`, or undefined when there is no data (nothing written for a whole window). */
  windowAverage(nowSeconds: number): number | undefined {
    if (Number.isNaN(this.lastWrite)) return undefined;
    const now = Math.floor(nowSeconds);
    const n = this.buckets.length;
    const d = now - this.lastWrite;
    if (d >= n) return undefined;
    const span = this.lastWrite - this.firstWrite + 1;
    let total = this.windowTotal;
    let divisor = Math.min(span, n);
    if (d > 0) {
      // The d oldest ring slots fall out of the window at `now`; the d trailing seconds are not counted.
      for (let s = this.lastWrite - n + 1; s <= this.lastWrite - n + d; s++)
        total -= this.buckets[this.slot(s)] as number;
      divisor = Math.min(span, n - d);
    }
    return Math.round((total / divisor) * 1e6) / 1e6;
  }
}

export interface KnativeState {
  panicStartedAt: number; // NaN when not panicking (Knative's zero panicTime)
  maxPanicPods: number;
}

/**
 * One `Scale` call (autoscaler.go, without EBC and activation scale, then the reconciler's
 * min/max clamp of kpa/scaler.go). Pure: returns the want and the next panic state.
 */
export function knativeScale(
  spec: KnativeSpec,
  state: KnativeState,
  readyCount: number,
  stableValue: number,
  panicValue: number,
  nowSeconds: number,
): { want: number; state: KnativeState } {
  const ready = Math.max(1, readyCount);
  const maxUp = Math.ceil(spec.maxScaleUpRate * ready);
  const maxDown = Math.floor(ready / spec.maxScaleDownRate);
  const stableWantRaw = Math.ceil(stableValue / spec.targetValue);
  const panicWantRaw = Math.ceil(panicValue / spec.targetValue);
  const clamp = (x: number) => Math.min(Math.max(x, maxDown), maxUp);
  const stableWant = clamp(stableWantRaw);
  const panicWant = clamp(panicWantRaw);
  // Panic uses the unclamped panic want over ready pods (autoscaler.go: the panic check uses the raw desired pod count).
  const over = panicWantRaw / ready >= spec.panicThreshold;
  let { panicStartedAt, maxPanicPods } = state;
  const panicking = !Number.isNaN(panicStartedAt);
  if (over)
    panicStartedAt = nowSeconds; // enter or extend
  else if (panicking && panicStartedAt + spec.stableWindowSeconds < nowSeconds) {
    panicStartedAt = Number.NaN;
    maxPanicPods = 0;
  }
  let want = stableWant;
  if (!Number.isNaN(panicStartedAt)) {
    want = Math.max(stableWant, panicWant);
    if (want > maxPanicPods) maxPanicPods = want;
    want = maxPanicPods; // the ratchet: no scale-down while panicking
  }
  // The KPA reconciler's bounds (max 0 = unbounded).
  want = Math.max(want, spec.minScale);
  if (spec.maxScale > 0) want = Math.min(want, spec.maxScale);
  return { want, state: { panicStartedAt, maxPanicPods } };
}

export function knativePolicy(context: PolicyContext): ScalingPolicy {
  return knativePolicyWith()(context);
}

/** The main knobs a user tunes: the target (× the default) and `scale-down-delay` (Knative's max-over-window). */
export interface KnativeKnobs {
  readonly targetScale?: number | undefined;
  readonly scaleDownDelaySeconds?: number | undefined;
}

export function knativePolicyWith(knobs: KnativeKnobs = {}): (context: PolicyContext) => ScalingPolicy {
  return (context) => makeKnativePolicy(context, knobs);
}

function makeKnativePolicy(context: PolicyContext, knobs: KnativeKnobs): ScalingPolicy {
  const spec = knativeDefaults(
    concurrencyPerGroup(context.pool, context.calibration) * 0.7 * (knobs.targetScale ?? 1),
    context.minGroups,
    context.maxGroups,
  );
  const delaySeconds = knobs.scaleDownDelaySeconds ?? 0;
  let delay = newDelayWindow(delaySeconds, spec.tickSeconds);
  const stable = new TimedBuckets(spec.stableWindowSeconds);
  const panic = new TimedBuckets(spec.panicWindowSeconds);
  let state: KnativeState | undefined;
  return {
    name: 'knative',
    decide(o: PoolObservation) {
      // A fresh autoscaler with more than one ready pod starts in panic holding that count (knative/serving
      // pkg/autoscaler/scaling/autoscaler.go, newAutoscaler).
      state ??= {
        panicStartedAt: o.readyGroups > 1 ? o.nowSeconds : Number.NaN,
        maxPanicPods: o.readyGroups,
      };
      if (o.metrics.length > 0) {
        let concurrency = 0;
        for (const m of o.metrics) concurrency += m.numRequestsRunning + m.numRequestsWaiting;
        stable.record(o.nowSeconds, concurrency);
        panic.record(o.nowSeconds, concurrency);
      }
      if (o.nowSeconds % spec.tickSeconds !== 0) return undefined;
      const stableValue = stable.windowAverage(o.nowSeconds);
      // Only an empty stable series is ErrNoData (an invalid result: keep); an empty panic window reads 0.
      if (stableValue === undefined) return undefined;
      const panicValue = panic.windowAverage(o.nowSeconds) ?? 0;
      const result = knativeScale(spec, state, o.readyGroups, stableValue, panicValue, o.nowSeconds);
      state = result.state;
      if (delaySeconds <= 0) return result.want;
      // scale-down-delay: the highest want of the delay window (autoscaler.go `delayWindow`).
      delay = recordMax(delay, o.nowSeconds, result.want);
      return currentMax(delay);
    },
  };
}
