/**
 * Engine counters and histograms read the way Prometheus reads them: an increase of a counter between two
 * samples (a reset counts from zero), and a quantile from cumulative bucket counts with PromQL's
 * `histogram_quantile` (prometheus/prometheus `promql/quantile.go`, `BucketQuantile`). One definition, shared by
 * the lab's engines, the emulated `/metrics` of `kvpa up` and every policy that reads TTFT or ITL.
 */

/** `vllm:time_to_first_token_seconds` bucket bounds (vllm-project/vllm `vllm/v1/metrics/loggers.py`). */
export const VLLM_TTFT_BUCKETS_SECONDS: readonly number[] = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
  80.0, 160.0, 640.0, 2560.0,
];

/** `vllm:inter_token_latency_seconds` bucket bounds (same file). */
export const VLLM_ITL_BUCKETS_SECONDS: readonly number[] = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
];

/** A histogram as scraped: finite upper bounds, cumulative counts per bound plus the +Inf bucket, sum and count. */
export interface HistogramSnapshot {
  readonly upperBounds: readonly number[];
  /** `cumulative[i]` = observations ≤ `upperBounds[i]`; the last entry (index `upperBounds.length`) is +Inf. */
  readonly cumulative: readonly number[];
  readonly sum: number;
}

/** The live side: observations go in per bucket; `snapshot()` gives the cumulative form a scrape would read. */
export class BucketHistogram {
  /** Non-cumulative count per bucket; the last slot is the +Inf bucket. */
  private readonly perBucket: Float64Array;
  sum = 0;

  constructor(readonly upperBounds: readonly number[]) {
    this.perBucket = new Float64Array(upperBounds.length + 1);
  }

  /** Records `count` observations of `value` (a decode step gives one ITL per running sequence). */
  observe(value: number, count = 1): void {
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.perBucket[i] = (this.perBucket[i] as number) + count;
    this.sum += value * count;
  }

  get count(): number {
    let n = 0;
    for (const c of this.perBucket) n += c;
    return n;
  }

  snapshot(): HistogramSnapshot {
    const cumulative: number[] = [];
    let running = 0;
    for (const c of this.perBucket) {
      running += c;
      cumulative.push(running);
    }
    return { upperBounds: this.upperBounds, cumulative, sum: this.sum };
  }
}

/** Counter increase from `before` to `now`; a drop is a reset, after which the counter counted from zero. */
export function counterIncrease(before: number, now: number): number {
  return now >= before ? now - before : now;
}

/**
 * Bucket-wise increase of a histogram (what `increase(x_bucket[w])` gives per `le`); `before` undefined means
 * the series is new and counted from zero. A reset (the +Inf count fell) also counts from zero.
 */
export function histogramIncrease(before: HistogramSnapshot | undefined, now: HistogramSnapshot): number[] {
  const last = now.cumulative.length - 1;
  const reset =
    before === undefined || (now.cumulative[last] as number) < (before.cumulative[last] as number);
  return now.cumulative.map((c, i) =>
    reset ? c : c - ((before as HistogramSnapshot).cumulative[i] as number),
  );
}

/** Adds bucket-count vectors of the same bounds (PromQL `sum by (le)`). */
export function addBuckets(into: number[], add: readonly number[]): number[] {
  for (let i = 0; i < add.length; i++) into[i] = (into[i] ?? 0) + (add[i] as number);
  return into;
}

/**
 * PromQL `histogram_quantile(q, …)` over cumulative counts (`cumulative.length = upperBounds.length + 1`, the
 * last being +Inf): NaN with no observations, −Inf/+Inf for q < 0 / q > 1, linear interpolation inside the
 * bucket that holds rank q·total, the lowest bucket starting at 0 (when its bound is positive), and the highest
 * finite bound when the rank falls in the +Inf bucket.
 */
export function histogramQuantile(
  q: number,
  upperBounds: readonly number[],
  cumulative: readonly number[],
): number {
  if (Number.isNaN(q)) return Number.NaN;
  if (q < 0) return Number.NEGATIVE_INFINITY;
  if (q > 1) return Number.POSITIVE_INFINITY;
  const total = cumulative[upperBounds.length] ?? 0;
  if (!(total > 0)) return Number.NaN;
  const rank = q * total;
  let b = 0;
  while (b < upperBounds.length && (cumulative[b] as number) < rank) b++;
  if (b === upperBounds.length) return upperBounds[upperBounds.length - 1] ?? Number.NaN;
  const end = upperBounds[b] as number;
  if (b === 0 && end <= 0) return end;
  const start = b === 0 ? 0 : (upperBounds[b - 1] as number);
  const below = b === 0 ? 0 : (cumulative[b - 1] as number);
  const inBucket = (cumulative[b] as number) - below;
  return inBucket > 0 ? start + ((end - start) * (rank - below)) / inBucket : end;
}
