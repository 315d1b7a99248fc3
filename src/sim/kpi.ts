/**
 * KPIs of a simulated run: latency quantiles, SLO attainment, GPU-hours, cost, scale events and flaps.
 *
 * Quantiles come from a log-bucketed histogram (the HdrHistogram / DDSketch idea): bucket edges grow by a
 * factor of 1.01 from 0.1 ms, so a reported quantile is within ±0.5 % (relative) of a value that some
 * recorded sample lies in the same bucket as, i.e. the relative error is at most 0.5 % for values in
 * [0.1 ms, ~10^5 s]. Values below 0.1 ms go to the first bucket and are reported as 0.1 ms. Memory is
 * constant (about 2,800 buckets), recording is O(1), and two histograms merge by adding counts.
 */

const MIN_SECONDS = 1e-4;
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = Math.ceil(Math.log(1e5 / MIN_SECONDS) / LOG_GROWTH) + 1;

export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  sum = 0;
  max = 0;

  record(seconds: number): void {
    const v = Math.max(seconds, MIN_SECONDS);
    let i = Math.floor(Math.log(v / MIN_SECONDS) / LOG_GROWTH);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sum += seconds;
    if (seconds > this.max) this.max = seconds;
  }

  /** The q-quantile (0 < q ≤ 1) as the geometric middle of its bucket; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) {
        if (i === 0) return MIN_SECONDS;
        return Math.min(this.max, MIN_SECONDS * GROWTH ** (i + 0.5));
      }
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? Number.NaN : this.sum / this.count;
  }
}

export interface Quantiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

export function quantilesOf(h: LatencyHistogram): Quantiles {
  return { p50: h.quantile(0.5), p90: h.quantile(0.9), p99: h.quantile(0.99) };
}

export interface ScaleEvent {
  readonly tSeconds: number;
  readonly fromGroups: number;
  readonly toGroups: number;
}

/**
 * Flaps: direction reversals within a window. A scale event whose direction is opposite to the previous
 * event's and which comes less than `windowSeconds` after it counts as one flap (up-then-down within the
 * window, or down-then-up).
 */
export function countFlaps(events: readonly ScaleEvent[], windowSeconds: number): number {
  let flaps = 0;
  for (let i = 1; i < events.length; i++) {
    const previous = events[i - 1];
    const current = events[i];
    if (previous === undefined || current === undefined) continue;
    const previousUp = previous.toGroups > previous.fromGroups;
    const currentUp = current.toGroups > current.fromGroups;
    if (previousUp !== currentUp && current.tSeconds - previous.tSeconds < windowSeconds) flaps++;
  }
  return flaps;
}

/** Cost per million output tokens; NaN when nothing was produced. */
export function costPerMillionOutputTokens(
  gpuHours: number,
  usdPerGpuHour: number,
  outputTokens: number,
): number {
  return outputTokens > 0 ? (gpuHours * usdPerGpuHour) / (outputTokens / 1e6) : Number.NaN;
}
