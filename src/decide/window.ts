/**
 * Time-bucketed averaging windows, with Knative's semantics (knative/serving
 * pkg/autoscaler/aggregation/bucketing.go and its weighted-exponential variant).
 *
 * Time is always an argument (seconds since the epoch, fractional allowed): the
 * windows never read a clock. Buckets are 1 s wide. A window only stores data;
 * the policy that reads it lives in kpa.ts.
 */

/** Bucket width. Knative's `config.BucketSize`; fixed, not configurable. */
export const BUCKET_SECONDS = 1;

/** Knative rounds linear averages to 6 decimals so float noise does not tip a ceil(). */
const AVERAGE_DECIMALS = 6;
const WEIGHT_PRECISION = 0.9999;
const MIN_SMOOTHING = 0.2;

export type AggregationAlgorithm = 'linear' | 'weightedExponential';

/**
 * The largest value one bucket may hold. A pool total beyond it comes from a broken source (the quality
 * gate caps every per-rank value); refusing it keeps the window total, and the 1e6 rounding scale, finite
 * for any window length: 3,600 buckets × 1e15 × 1e6 is far below Number.MAX_VALUE.
 */
export const MAX_BUCKET_VALUE = 1e15;

/** What every window offers the decider. */
export interface AveragingWindow {
  readonly windowSeconds: number;
  /**
   * Adds `value` to the bucket that holds `atSeconds`; values in the same bucket are summed. Refuses
   * (returns false) a value that is not finite, is negative, or would lift the bucket above
   * MAX_BUCKET_VALUE, so no input can make the window's total Infinity or NaN.
   */
  record(atSeconds: number, value: number): boolean;
  /** The window average at `nowSeconds`; 0 when nothing was written within the window. */
  average(nowSeconds: number): number;
  /** True when no data was written within one window of `nowSeconds`: the caller must treat this as missing, not zero. */
  isEmpty(nowSeconds: number): boolean;
}

function roundTo(decimals: number, value: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}

function bucketOf(atSeconds: number): number {
  return Math.floor(atSeconds / BUCKET_SECONDS);
}

/**
 * A ring of `ceil(window / 1 s)` buckets with Knative's linear average:
 * - a young series is averaged over its own span, not the whole window;
 * - a trailing gap (no writes since lastWrite) is left out of the average;
 * - a gap in the middle counts as zeros (Record zeroes the skipped buckets).
 */
export class LinearWindow implements AveragingWindow {
  readonly windowSeconds: number;
  protected readonly buckets: Float64Array;
  protected windowTotal = 0;
  /** Bucket indices (whole seconds); null until the first write. */
  protected firstWrite: number | null = null;
  protected lastWrite: number | null = null;

  constructor(windowSeconds: number) {
    if (!(windowSeconds >= BUCKET_SECONDS) || !Number.isFinite(windowSeconds)) {
      throw new RangeError(
        `windowSeconds must be a finite number >= ${BUCKET_SECONDS}, got ${windowSeconds}`,
      );
    }
    this.windowSeconds = windowSeconds;
    this.buckets = new Float64Array(Math.ceil(windowSeconds / BUCKET_SECONDS));
  }

  protected slot(bucket: number): number {
    const n = this.buckets.length;
    return ((bucket % n) + n) % n;
  }

  record(atSeconds: number, value: number): boolean {
    if (!(value >= 0 && value <= MAX_BUCKET_VALUE) || !Number.isFinite(atSeconds)) return false;
    const bucket = bucketOf(atSeconds);
    const window = this.windowSeconds / BUCKET_SECONDS;
    // A bucket at or before the last write still holds its sum: refuse before touching anything.
    const existing =
      this.lastWrite !== null && bucket <= this.lastWrite ? (this.buckets[this.slot(bucket)] ?? 0) : 0;
    if (!(existing + value <= MAX_BUCKET_VALUE)) return false;
    if (this.lastWrite !== bucket) {
      // Values a whole window older than the newest write are ignored.
      if (this.lastWrite !== null && !(bucket + window > this.lastWrite)) return false;
      if (this.firstWrite === null || this.firstWrite > bucket) this.firstWrite = bucket;
      if (this.lastWrite === null || bucket > this.lastWrite) {
        if (this.lastWrite === null || bucket - this.lastWrite >= window) {
          // Silent for a whole window: start a fresh (young) series.
          this.firstWrite = bucket;
          this.buckets.fill(0);
          this.windowTotal = 0;
        } else {
          // Zero the buckets skipped since the last write: a gap in the middle counts as zero.
          for (let i = this.lastWrite + 1; i <= bucket; i++) this.buckets[this.slot(i)] = 0;
        }
        this.lastWrite = bucket;
      }
    }
    const s = this.slot(bucket);
    this.buckets[s] = (this.buckets[s] ?? 0) + value;
    this.windowTotal = this.sumBuckets();
    return true;
  }

  /**
   * The total, summed afresh rather than kept by += and -=: a running total carries the rounding error
   * of every value that ever passed through it (1e16 + 0.3 − 1e16 is 0, not 0.3), so one huge value would
   * skew the average for as long as the series lives. 3,600 additions a second per window is cheap.
   */
  private sumBuckets(): number {
    let total = 0;
    for (const v of this.buckets) total += v;
    return total;
  }

  isEmpty(nowSeconds: number): boolean {
    return (
      this.lastWrite === null || bucketOf(nowSeconds) - this.lastWrite > this.windowSeconds / BUCKET_SECONDS
    );
  }

  average(nowSeconds: number): number {
    if (this.lastWrite === null || this.firstWrite === null) return 0;
    const now = bucketOf(nowSeconds);
    const gap = now - this.lastWrite;
    const span = this.lastWrite - this.firstWrite + 1;
    if (gap <= 0) {
      return roundTo(AVERAGE_DECIMALS, this.windowTotal / Math.min(span, this.buckets.length));
    }
    if (gap < this.windowSeconds / BUCKET_SECONDS) {
      // Leave the trailing empty buckets out: their ring slots still hold old values.
      let total = this.windowTotal;
      for (let i = this.lastWrite + 1; i <= now; i++) total -= this.buckets[this.slot(i)] ?? 0;
      return roundTo(AVERAGE_DECIMALS, total / Math.min(span, this.buckets.length - gap));
    }
    return 0;
  }
}

/** Knative's smoothing coefficient: weights sum to at least 0.9999 over the window, and α ≥ 0.2. */
export function smoothingCoefficient(bucketCount: number): number {
  return Math.max(1 - (1 - WEIGHT_PRECISION) ** (1 / bucketCount), MIN_SMOOTHING);
}

/**
 * Knative's weighted-exponential window: Σ α(1−α)^i · bucket[now−i]. Buckets after the last write
 * count as zero; weights are not renormalised and the result is not rounded.
 */
export class WeightedExponentialWindow extends LinearWindow {
  readonly smoothing: number;

  constructor(windowSeconds: number) {
    super(windowSeconds);
    this.smoothing = smoothingCoefficient(this.buckets.length);
  }

  override average(nowSeconds: number): number {
    if (this.isEmpty(nowSeconds) || this.lastWrite === null) return 0;
    const now = bucketOf(nowSeconds);
    let bucketCount = this.buckets.length;
    let weight = this.smoothing;
    if (now > this.lastWrite) {
      const zeros = now - this.lastWrite;
      weight *= (1 - this.smoothing) ** zeros;
      bucketCount -= zeros;
    }
    let total = 0;
    for (let i = 0; i < bucketCount; i++) {
      total += (this.buckets[this.slot(this.lastWrite - i)] ?? 0) * weight;
      weight *= 1 - this.smoothing;
    }
    return total;
  }
}

export function makeWindow(algorithm: AggregationAlgorithm, windowSeconds: number): AveragingWindow {
  return algorithm === 'weightedExponential'
    ? new WeightedExponentialWindow(windowSeconds)
    : new LinearWindow(windowSeconds);
}

/** Knative's panic window: round(stable × pct / 100) seconds, at least one bucket. */
export function panicWindowSeconds(stableWindowSeconds: number, panicWindowPercentage: number): number {
  return Math.max(BUCKET_SECONDS, Math.round((stableWindowSeconds * panicWindowPercentage) / 100));
}
