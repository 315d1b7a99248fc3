/**
 * Work-based signals: tokens per second against what a group serves, rather than requests counted.
 *
 * - **Flow.** The tokens/s the ready groups serve (a counter rate: `vllm:prompt_tokens_total` on prefill,
 *   `vllm:generation_tokens_total` on decode; SGLang's `sglang:prompt_tokens_total`, `…generation…`).
 * - **Backlog.** The tokens waiting: waiting requests × the mean tokens per request (a ratio of counter rates).
 * - **Demand, by conservation.** Work arrives at the served flow plus the backlog's growth: under a steady
 *   overload a queue grows at exactly the unserved rate, so the demand read from it is the arrival rate, not
 *   a number that grows while groups start (the pile-up of queue-depth targets).
 * - **Capacity, measured.** A group with a second of work queued serves as fast as it can: its flow is a sample
 *   of one group's capacity. The estimate is a median over recent samples, reported with their count, and
 *   used once enough exist, within a bound of the configured capacity.
 *
 * Pure: samples and times come in, numbers come out. The lab, the direct scrape and the controller use it.
 */
import { counterIncrease } from './histogram.ts';

/** One group's counters and gauges at one scrape. */
export interface GroupWorkSample {
  /** The series identity (the head pod and its incarnation): a new id starts a new rate. */
  readonly id: string;
  readonly tokensTotal: number;
  readonly requestsTotal: number;
  readonly waitingRequests: number;
  /** Σ and count of the latency histogram the capacity is judged against (ITL on decode), if any. */
  readonly latencySumSeconds?: number;
  readonly latencyCount?: number;
}

/** A pool's work reading at one instant, as a PoolSample carries it. */
export interface PoolWork {
  /** Σ over ready groups of served tokens/s; undefined until some group has two scrapes. */
  readonly flowPerSecond: number | undefined;
  /** Σ over ready groups of waiting tokens; undefined while the tokens per request are unknown. */
  readonly backlogTokens: number | undefined;
  /** One group's flow for each group that was saturated over its rate span (a capacity sample). */
  readonly capacitySamples: readonly number[];
}

/** A group counts as saturated when this much of its own work was waiting at every scrape of the span. */
export const SATURATED_BACKLOG_SECONDS = 1;

interface Point {
  readonly t: number;
  readonly tokens: number;
  readonly requests: number;
  readonly latencySum: number;
  readonly latencyCount: number;
  readonly waiting: number;
}

/**
 * Per-group rates from successive scrapes over a short span (counter resets handled as Prometheus does),
 * and the pool's work reading. A group is saturated over the span when at least a second of its work was
 * waiting at every scrape in it, and, when a latency SLO is given, its mean latency over the span reached it; a sample taken
 * above the SLO is scaled down by SLO / latency (conservative: serving at the SLO means a smaller batch).
 */
export class WorkReader {
  private readonly series = new Map<string, Point[]>();

  constructor(
    readonly rateSpanSeconds: number,
    readonly latencySloSeconds?: number,
  ) {}

  read(nowSeconds: number, groups: readonly GroupWorkSample[]): PoolWork {
    let flow = 0;
    let spans = 0;
    let tokens = 0;
    let requests = 0;
    let waiting = 0;
    const capacitySamples: number[] = [];
    const seen = new Set<string>();
    for (const g of groups) {
      seen.add(g.id);
      waiting += Math.max(0, g.waitingRequests);
      const points = this.series.get(g.id) ?? [];
      const last = points[points.length - 1];
      if (last === undefined || nowSeconds > last.t) {
        points.push({
          t: nowSeconds,
          tokens: g.tokensTotal,
          requests: g.requestsTotal,
          latencySum: g.latencySumSeconds ?? 0,
          latencyCount: g.latencyCount ?? 0,
          waiting: Math.max(0, g.waitingRequests),
        });
      }
      while (points.length > 2 && (points[1]?.t ?? 0) <= nowSeconds - this.rateSpanSeconds) points.shift();
      this.series.set(g.id, points);
      const first = points[0];
      const newest = points[points.length - 1];
      if (first === undefined || newest === undefined || newest.t <= first.t) continue;
      const span = newest.t - first.t;
      const dTokens = increase(points, (p) => p.tokens);
      const dRequests = increase(points, (p) => p.requests);
      const rate = dTokens / span;
      flow += rate;
      spans++;
      tokens += dTokens;
      requests += dRequests;
      // Backed up: at every scrape of the span, at least SATURATED_BACKLOG_SECONDS of work was waiting. A
      // queue of a few requests is not saturation for a batching server: its batches are still small.
      const perGroupRequest = dRequests > 0 ? dTokens / dRequests : undefined;
      const saturated =
        perGroupRequest !== undefined &&
        points.every((p) => p.waiting * perGroupRequest >= rate * SATURATED_BACKLOG_SECONDS);
      if (saturated && rate > 0) {
        const capacity = this.atSlo(rate, points);
        if (capacity !== undefined) capacitySamples.push(capacity);
      }
    }
    for (const id of this.series.keys()) if (!seen.has(id)) this.series.delete(id);
    const perRequest = requests > 0 ? tokens / requests : undefined;
    return {
      flowPerSecond: spans > 0 ? flow : undefined,
      backlogTokens: perRequest !== undefined ? waiting * perRequest : waiting === 0 ? 0 : undefined,
      capacitySamples,
    };
  }

  /** The flow a saturated group would serve at the latency SLO; undefined when its latency is unknown. */
  private atSlo(rate: number, points: readonly Point[]): number | undefined {
    const slo = this.latencySloSeconds;
    if (slo === undefined) return rate;
    const count = increase(points, (p) => p.latencyCount);
    if (count <= 0) return undefined;
    const mean = increase(points, (p) => p.latencySum) / count;
    if (mean < 0.9 * slo) return undefined; // queued, yet fast: not limited by compute (a KV or transfer wait)
    return rate * Math.min(1, slo / mean);
  }
}

/** The increase of a counter over successive points, each drop read as a reset to zero. */
function increase(points: readonly Point[], value: (p: Point) => number): number {
  let sum = 0;
  for (let i = 1; i < points.length; i++) {
    sum += counterIncrease(value(points[i - 1] as Point), value(points[i] as Point));
  }
  return sum;
}

/** The least-squares line through (t, v) points: the means, the slope and Σ(t − mean t)². */
function leastSquares(points: readonly { t: number; v: number }[]): {
  mt: number;
  mv: number;
  slope: number;
  den: number;
} {
  const n = points.length;
  let mt = 0;
  let mv = 0;
  for (const p of points) {
    mt += p.t / n;
    mv += p.v / n;
  }
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return { mt, mv, slope: den > 0 ? num / den : 0, den };
}

/** The least-squares slope of (t, v) points, per second; 0 with fewer than two distinct times. */
export function trendPerSecond(points: readonly { t: number; v: number }[]): number {
  return points.length < 2 ? 0 : leastSquares(points).slope;
}

/**
 * The least-squares slope of (t, v) points with its t-statistic, the standard error taken from the
 * residuals with n shrunk to the effective sample size n(1 − r1)/(1 + r1), r1 the residuals' lag-1
 * autocorrelation: successive samples of a windowed rate are not independent, and counting each as a
 * fresh observation would call drift a trend. The correction is the AR(1) one of Santer et al. (2000),
 * "Statistical significance of trends and trend differences in layer-average atmospheric temperature
 * time series", J. Geophys. Res. 105(D6), https://doi.org/10.1029/1999JD901105.
 */
export function trendFit(points: readonly { t: number; v: number }[]): {
  perSecond: number;
  tStatistic: number;
} {
  const n = points.length;
  if (n < 2) return { perSecond: 0, tStatistic: 0 };
  const { mt, mv, slope: perSecond, den } = leastSquares(points);
  if (n < 4 || !(den > 0)) return { perSecond, tStatistic: 0 };
  let sse = 0;
  let sst = 0;
  let lag1 = 0;
  let previous = 0;
  for (const [i, p] of points.entries()) {
    const r = p.v - (mv + perSecond * (p.t - mt));
    sse += r * r;
    sst += (p.v - mv) ** 2;
    if (i > 0) lag1 += r * previous;
    previous = r;
  }
  // A line to rounding: what is left is float error, not noise to weigh the slope against.
  if (!(sse > 1e-12 * sst))
    return { perSecond, tStatistic: perSecond === 0 ? 0 : Math.sign(perSecond) * Infinity };
  const r1 = Math.max(0, Math.min(0.999, lag1 / sse));
  const effective = (n * (1 - r1)) / (1 + r1);
  if (effective <= 2) return { perSecond, tStatistic: 0 };
  const standardError = Math.sqrt(sse / (effective - 2) / den);
  return { perSecond, tStatistic: perSecond / standardError };
}

/**
 * Standard errors a slope must exceed to be believed, and the part of it that is not: about 95 %
 * two-sided for the usual sample sizes.
 */
export const TREND_MIN_T_STATISTIC = 2;

/**
 * A signal's recent values (one pool total per sample) and their trend. Only a trend over at least half
 * the window, and significant against its own noise, is believed: a few points after a restart, or the
 * wander of a flat load, are noise, and planning on them buys groups a cold start early.
 */
export class Trend {
  private readonly points: { t: number; v: number }[] = [];

  constructor(readonly windowSeconds: number) {}

  add(t: number, v: number): void {
    this.points.push({ t, v });
    while ((this.points[0]?.t ?? t) < t - this.windowSeconds) this.points.shift();
  }

  /** Forgets every point: what they measured no longer holds. */
  clear(): void {
    this.points.length = 0;
  }

  /**
   * Per second; 0 until the points span half the window. Only the part of the slope its noise cannot
   * explain is believed: the slope less TREND_MIN_T_STATISTIC standard errors, toward 0. A slope that
   * barely stands out (a flat load's wander) plans almost nothing; a steady ramp, many standard errors
   * out, keeps nearly all of itself.
   */
  perSecond(): number {
    const first = this.points[0];
    const last = this.points[this.points.length - 1];
    if (first === undefined || last === undefined) return 0;
    if (last.t - first.t < this.windowSeconds / 2) return 0;
    const fit = trendFit(this.points);
    const t = Math.abs(fit.tStatistic);
    return t > TREND_MIN_T_STATISTIC ? fit.perSecond * (1 - TREND_MIN_T_STATISTIC / t) : 0;
  }
}

/** What the pool knows of one group's capacity: the configured figure, or the measured one in use. */
export interface CapacityEstimate {
  readonly configuredPerSecond: number;
  /** The median of the recent saturated samples; undefined before any. */
  readonly measuredPerSecond: number | undefined;
  readonly samples: number;
  /** What sizing uses: measured once `minSamples` exist (within the bound), else configured. */
  readonly usedPerSecond: number;
  readonly source: 'configured' | 'measured' | 'pinned';
}

export interface CapacitySpec {
  readonly configuredPerSecond: number;
  /** False pins the configured figure: samples are still counted and reported, never used. */
  readonly measure: boolean;
  readonly minSamples: number;
  readonly maxSamples: number;
  /** The measured figure is used within [configured / bound, configured × bound]. */
  readonly bound: number;
}

export const DEFAULT_CAPACITY_SAMPLING = { minSamples: 30, maxSamples: 600, bound: 4 } as const;

/** The online estimate of one group's capacity for one work signal. */
export class CapacityEstimator {
  private readonly recent: number[] = [];
  private total = 0;

  constructor(readonly spec: CapacitySpec) {}

  add(samples: readonly number[]): void {
    for (const v of samples) {
      if (!(v > 0 && Number.isFinite(v))) continue;
      this.recent.push(v);
      this.total++;
      if (this.recent.length > this.spec.maxSamples) this.recent.shift();
    }
  }

  estimate(): CapacityEstimate {
    const configured = this.spec.configuredPerSecond;
    const measured = median(this.recent);
    const usable = this.spec.measure && measured !== undefined && this.recent.length >= this.spec.minSamples;
    const bounded =
      measured === undefined
        ? configured
        : Math.min(configured * this.spec.bound, Math.max(configured / this.spec.bound, measured));
    return {
      configuredPerSecond: configured,
      measuredPerSecond: measured,
      samples: this.total,
      usedPerSecond: usable ? bounded : configured,
      source: !this.spec.measure ? 'pinned' : usable ? 'measured' : 'configured',
    };
  }
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
