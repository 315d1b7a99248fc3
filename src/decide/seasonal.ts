/**
 * The seasonal plan's memory: a work signal's own demand, one mean a minute, kept for the longest look-back
 * plus the longest horizon, so a pool can see what the same hour brought one day or one week earlier. The
 * runner feeds it every sample; a restarted controller seeds it from Prometheus (kvpa's own exported
 * `kvpa_pool_signal_stable_value`, which survives pod churn where engine series do not).
 */
import type { SeasonalLookback } from './types.ts';

export const SEASONAL_BUCKET_SECONDS = 60;
/** "Then" is the mean of the 5 minutes before now − lookback; the peak ahead is of 5-minute means too. */
export const SEASONAL_MEAN_SECONDS = 300;
/** At most this long a horizon is read ahead (startupTimeoutSeconds' bound: a longer start counts as stuck). */
export const SEASONAL_MAX_HORIZON_SECONDS = 14_400;

const MEAN_BUCKETS = SEASONAL_MEAN_SECONDS / SEASONAL_BUCKET_SECONDS;

export class SeasonalMemory {
  private readonly minute: Float64Array;
  private readonly sum: Float64Array;
  private readonly count: Float64Array;

  constructor(readonly lookbacksSeconds: readonly number[]) {
    const keep = Math.max(0, ...lookbacksSeconds) + SEASONAL_MAX_HORIZON_SECONDS + SEASONAL_MEAN_SECONDS;
    const size = Math.ceil(keep / SEASONAL_BUCKET_SECONDS) + 1;
    this.minute = new Float64Array(size).fill(Number.NaN);
    this.sum = new Float64Array(size);
    this.count = new Float64Array(size);
  }

  /** One sample of the demand (tokens/s); false when dropped (non-finite or negative: not a demand). */
  record(atSeconds: number, value: number): boolean {
    if (!Number.isFinite(atSeconds) || !(value >= 0 && Number.isFinite(value))) return false;
    const m = Math.floor(atSeconds / SEASONAL_BUCKET_SECONDS);
    const i = m % this.minute.length;
    if (this.minute[i] !== m) {
      this.minute[i] = m;
      this.sum[i] = 0;
      this.count[i] = 0;
    }
    (this.sum[i] as number) += value;
    (this.count[i] as number) += 1;
    return true;
  }

  private meanAt(m: number): number | undefined {
    const i = m % this.minute.length;
    const n = this.count[i] as number;
    return this.minute[i] === m && n > 0 ? (this.sum[i] as number) / n : undefined;
  }

  /** The mean of the 5 minutes ending before minute `end`, or undefined with fewer than 3 of them known. */
  private meanBefore(end: number): number | undefined {
    let total = 0;
    let known = 0;
    for (let m = end - MEAN_BUCKETS; m < end; m++) {
      const v = this.meanAt(m);
      if (v === undefined) continue;
      total += v;
      known++;
    }
    return known >= 3 ? total / known : undefined;
  }

  /**
   * What each look-back saw: its level then, and the highest 5-minute mean over the horizon after it.
   * A look-back with too little history (under 3 of the 5 minutes then, or of half the horizon's minutes
   * ahead) is left out: no history is no plan, never a ratio of 1.
   */
  lookbacks(nowSeconds: number, horizonSeconds: number): SeasonalLookback[] {
    const horizon = Math.min(Math.max(0, horizonSeconds), SEASONAL_MAX_HORIZON_SECONDS);
    const aheadMinutes = Math.floor(horizon / SEASONAL_BUCKET_SECONDS);
    if (aheadMinutes < 1) return [];
    const out: SeasonalLookback[] = [];
    for (const lookback of this.lookbacksSeconds) {
      const start = Math.floor((nowSeconds - lookback) / SEASONAL_BUCKET_SECONDS);
      const thenTotal = this.meanBefore(start);
      if (thenTotal === undefined) continue;
      let peak: number | undefined;
      let windows = 0;
      for (let end = start + 1; end <= start + aheadMinutes; end++) {
        const v = this.meanBefore(end);
        if (v === undefined) continue;
        windows++;
        peak = peak === undefined ? v : Math.max(peak, v);
      }
      if (peak === undefined || windows < aheadMinutes / 2) continue;
      out.push({ lookbackSeconds: lookback, thenTotal, aheadPeakTotal: peak, horizonSeconds: horizon });
    }
    return out;
  }
}
