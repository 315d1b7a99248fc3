/**
 * How a policy reads the engines' counters and histograms: as PromQL would over a range, `sum(rate(c[w]))` for
 * a counter and `histogram_quantile(q, sum by (le) (rate(h_bucket[w])))` for a histogram. The policy records a
 * snapshot of the series at its own cadence (as Prometheus scrapes); a read takes, per series, the increase
 * from the oldest snapshot inside the window to the newest (a series new in the window counts from zero, as a
 * group's counters start at zero when it becomes ready).
 */
import { addBuckets, counterIncrease, histogramIncrease, histogramQuantile } from '../../decide/histogram.ts';
import type { EngineSeries } from '../engine-series.ts';

export interface EngineRates {
  /** Seconds between the two snapshots the rates span. */
  readonly spanSeconds: number;
  readonly promptTokensPerSecond: number;
  readonly generationTokensPerSecond: number;
  readonly requestsPerSecond: number;
  /** Bucket increases summed over the series (cumulative per `le`, the last is +Inf). */
  readonly ttftBuckets: readonly number[];
  readonly itlBuckets: readonly number[];
  readonly ttftUpperBounds: readonly number[];
  readonly itlUpperBounds: readonly number[];
}

interface Snapshot {
  readonly t: number;
  readonly byGroup: ReadonlyMap<number, EngineSeries>;
}

export class EngineWindow {
  private readonly snapshots: Snapshot[] = [];

  constructor(readonly windowSeconds: number) {}

  record(nowSeconds: number, series: readonly EngineSeries[]): void {
    this.snapshots.push({ t: nowSeconds, byGroup: new Map(series.map((s) => [s.groupId, s])) });
    while (this.snapshots.length > 2 && (this.snapshots[1]?.t ?? 0) <= nowSeconds - this.windowSeconds) {
      this.snapshots.shift();
    }
  }

  /** Rates over the window ending at the newest snapshot; undefined before two snapshots exist. */
  rates(): EngineRates | undefined {
    const oldest = this.snapshots[0];
    const newest = this.snapshots[this.snapshots.length - 1];
    if (oldest === undefined || newest === undefined || newest.t <= oldest.t) return undefined;
    const span = newest.t - oldest.t;
    let prompt = 0;
    let generation = 0;
    let requests = 0;
    let ttft: number[] = [];
    let itl: number[] = [];
    let ttftBounds: readonly number[] = [];
    let itlBounds: readonly number[] = [];
    for (const [id, now] of newest.byGroup) {
      const before = oldest.byGroup.get(id);
      prompt += counterIncrease(before?.promptTokensTotal ?? 0, now.promptTokensTotal);
      generation += counterIncrease(before?.generationTokensTotal ?? 0, now.generationTokensTotal);
      requests += counterIncrease(before?.requestSuccessTotal ?? 0, now.requestSuccessTotal);
      ttft = addBuckets(
        ttft,
        histogramIncrease(before?.timeToFirstTokenSeconds, now.timeToFirstTokenSeconds),
      );
      itl = addBuckets(
        itl,
        histogramIncrease(before?.interTokenLatencySeconds, now.interTokenLatencySeconds),
      );
      ttftBounds = now.timeToFirstTokenSeconds.upperBounds;
      itlBounds = now.interTokenLatencySeconds.upperBounds;
    }
    return {
      spanSeconds: span,
      promptTokensPerSecond: prompt / span,
      generationTokensPerSecond: generation / span,
      requestsPerSecond: requests / span,
      ttftBuckets: ttft,
      itlBuckets: itl,
      ttftUpperBounds: ttftBounds,
      itlUpperBounds: itlBounds,
    };
  }
}

/** A quantile of TTFT over the window (NaN with no first token in it). */
export function ttftQuantile(rates: EngineRates, q: number): number {
  return histogramQuantile(q, rates.ttftUpperBounds, rates.ttftBuckets);
}

/** A quantile of ITL over the window (NaN with no decode step in it). */
export function itlQuantile(rates: EngineRates, q: number): number {
  return histogramQuantile(q, rates.itlUpperBounds, rates.itlBuckets);
}
