/**
 * Stable and panic windows for one signal of one pool. Samples are pool totals (the sum of the
 * per-group values over ready groups, one per second); reading gives the two window averages, or
 * `noData` when nothing arrived within the stable window (Knative's ErrNoData), never a zero.
 */
import type { SignalKind, SignalReading } from './types.ts';
import {
  type AggregationAlgorithm,
  type AveragingWindow,
  BUCKET_SECONDS,
  MAX_BUCKET_VALUE,
  makeWindow,
  panicWindowSeconds,
} from './window.ts';
import type { CapacitySpec } from './work.ts';

export interface SignalWindowSpec {
  readonly name: string;
  readonly targetPerGroup: number;
  readonly stableWindowSeconds: number;
  readonly panicWindowPercentage: number;
  readonly aggregation: AggregationAlgorithm;
  /** Default `level`. */
  readonly kind?: SignalKind;
  /** `work` signals: what one group serves, the headroom kept above demand, and the trend window. */
  readonly work?: WorkSignalSpec;
  /** `level` signals with a ceiling: when the trend fills it sooner than one cold start, plan now. */
  readonly exhaustion?: ExhaustionSpec;
}

/** A level no group can exceed (KV use: 1 per group, all of its cache) and the window its trend is read over. */
export interface ExhaustionSpec {
  readonly ceilingPerGroup: number;
  readonly trendWindowSeconds: number;
}

export interface WorkSignalSpec {
  readonly capacity: CapacitySpec;
  /** Demand × (1 + headroom) is what the groups must serve: the target is capacity / (1 + headroom). */
  readonly headroom: number;
  readonly trendWindowSeconds: number;
  /** The seasonal plan's look-backs (a day, a week); absent or empty: none. */
  readonly seasonalLookbacksSeconds?: readonly number[];
}

export class SignalWindows {
  readonly spec: SignalWindowSpec;
  private readonly stable: AveragingWindow;
  private readonly panic: AveragingWindow;

  constructor(spec: SignalWindowSpec) {
    this.spec = spec;
    this.stable = makeWindow(spec.aggregation, spec.stableWindowSeconds);
    this.panic = makeWindow(
      spec.aggregation,
      panicWindowSeconds(spec.stableWindowSeconds, spec.panicWindowPercentage),
    );
  }

  private lastBucket: number | null = null;

  /**
   * Records one pool-total sample; returns false when it was dropped. A pool total is a level, not a
   * count: Knative's buckets sum what lands in the same second (pod contributions), so a second
   * sample of the same total in one 1 s bucket would double the level. Only the first is kept.
   * Values the windows refuse (non-finite, negative, above MAX_BUCKET_VALUE) return false, never throw:
   * the quality gate should have stopped them, and one pool's bad sample must not fail anyone's tick.
   */
  record(atSeconds: number, poolTotal: number): boolean {
    if (!(poolTotal >= 0 && poolTotal <= MAX_BUCKET_VALUE) || !Number.isFinite(atSeconds)) return false;
    const bucket = Math.floor(atSeconds / BUCKET_SECONDS);
    if (bucket === this.lastBucket) return false;
    this.lastBucket = bucket;
    this.stable.record(atSeconds, poolTotal);
    this.panic.record(atSeconds, poolTotal);
    return true;
  }

  read(nowSeconds: number): SignalReading {
    const base = { name: this.spec.name, targetPerGroup: this.spec.targetPerGroup };
    if (this.stable.isEmpty(nowSeconds)) {
      return {
        ...base,
        state: 'noData',
        detail: `no sample within the last ${this.spec.stableWindowSeconds}s`,
      };
    }
    return {
      ...base,
      state: 'ok',
      stableTotal: this.stable.average(nowSeconds),
      panicTotal: this.panic.average(nowSeconds),
    };
  }
}
