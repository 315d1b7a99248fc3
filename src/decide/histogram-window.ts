/**
 * A pool's latency quantile over a window from successive scrapes of its groups' histograms, as
 * `histogram_quantile(q, sum by (le) (increase(h_bucket[w])))` reads it: per series, the bucket-wise increase
 * over its own snapshots inside the window (a reset counts from zero, as Prometheus's rate does), summed over
 * the series of the newest scrape. A series first seen inside the window counts from its first snapshot, not
 * from zero: a pod found running has a lifetime of observations that are not this window's.
 * Pure: snapshots and times come in, a number comes out. Used by the direct scrape.
 */
import { addBuckets, type HistogramSnapshot, histogramIncrease, histogramQuantile } from './histogram.ts';

interface Point {
  readonly t: number;
  readonly h: HistogramSnapshot;
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export class HistogramWindow {
  private readonly series = new Map<string, Point[]>();

  constructor(readonly windowSeconds: number) {}

  /** Records this scrape's snapshot per series id; ids absent from it are forgotten (a group that left). */
  record(nowSeconds: number, snapshots: ReadonlyMap<string, HistogramSnapshot>): void {
    for (const [id, h] of snapshots) {
      let points = this.series.get(id) ?? [];
      const last = points[points.length - 1];
      if (last !== undefined && !sameBounds(last.h.upperBounds, h.upperBounds)) points = []; // a new exporter
      if (last === undefined || nowSeconds > last.t || points.length === 0) points.push({ t: nowSeconds, h });
      while (points.length > 2 && (points[1]?.t ?? 0) <= nowSeconds - this.windowSeconds) points.shift();
      this.series.set(id, points);
    }
    for (const id of this.series.keys()) if (!snapshots.has(id)) this.series.delete(id);
  }

  /** The q-quantile over the window; undefined with no observation in it (unknown is not 0). */
  quantile(q: number): number | undefined {
    let bounds: readonly number[] | undefined;
    let sum: number[] = [];
    for (const points of this.series.values()) {
      if (points.length < 2) continue;
      const first = points[0] as Point;
      if (bounds === undefined) bounds = first.h.upperBounds;
      else if (!sameBounds(bounds, first.h.upperBounds)) continue; // other buckets cannot be summed
      for (let i = 1; i < points.length; i++) {
        sum = addBuckets(sum, histogramIncrease((points[i - 1] as Point).h, (points[i] as Point).h));
      }
    }
    if (bounds === undefined) return undefined;
    const v = histogramQuantile(q, bounds, sum);
    return Number.isFinite(v) && v >= 0 ? v : undefined;
  }
}
