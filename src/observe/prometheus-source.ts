/**
 * The Prometheus signal source: each tick sends ONE instant query per signal kind for
 * ALL registered pools, attributes the answer to replica groups through their head pods
 * (prometheus-join.ts), and judges every pool's signals with the quality gate (quality.ts).
 *
 * Queries per tick = number of distinct signal kinds in use (≤ 10), whatever the number of pools.
 * Neither `tick` nor `backfill` throws: a failed query becomes state `error` for the signals it
 * carried, with the reason.
 */
import type { SignalWindows } from '../decide/signal-windows.ts';
import type { SignalState } from '../decide/types.ts';
import { BoundedFetchError } from './http.ts';
import { PrometheusClient } from './prometheus-client.ts';
import {
  attribute,
  buildHeadIndex,
  buildQuery,
  DIALECT_PREFERENCE,
  decodeMatrixBySteps,
  decodeVector,
  ENGINE_TITLES,
  type EngineDialect,
  escapeRegex,
  escapeString,
  familyOf,
  type GroupSamples,
  type HeadIndex,
  type HistogramKind,
  isHistogramKind,
  kindsToQuery,
  namespacesOf,
  type PoolRegistration,
  type PoolSamples,
  type PromSample,
  type QueryScope,
  type RawMatrix,
  type RawVector,
  SIGNAL_KINDS,
  type SignalKind,
} from './prometheus-join.ts';
import {
  judgePromqlPerGroup,
  judgePromqlTotal,
  type PromqlMetric,
  promqlLabelRule,
} from './prometheus-promql.ts';
import {
  combineRanks,
  type GateCounts,
  type GateResult,
  judgeSignal,
  RejectionCounters,
  rejectValue,
} from './quality.ts';

/** Two 15 s scrape intervals and some slack: a sample older than this is stale. */
export const DEFAULT_STALE_AFTER_SECONDS = 60;
/** Half of the ready groups must report for a signal to be used. */
export const DEFAULT_MIN_QUORUM_PERCENTAGE = 50;
export const DEFAULT_RATE_WINDOW_SECONDS = 60;
/** Prometheus refuses range queries of more than 11,000 points per series. */
const MAX_POINTS_PER_RANGE_QUERY = 11_000;
/** ~200 bytes a series: room for 300,000 series in one answer, and no more held in memory. */
export const DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** The HTTP deadline is the evaluation timeout plus this, so Prometheus can say "timeout" itself. */
const TRANSPORT_SLACK_MS = 1000;

export interface PrometheusSourceOptions {
  /** Base URL, e.g. http://prometheus.monitoring:9090 (metricsSource.prometheus.address). */
  readonly address: string;
  /** Evaluation timeout sent to Prometheus; the whole HTTP call (body included) ends 1 s later. */
  readonly queryTimeoutSeconds?: number;
  readonly maxAnswerBytes?: number;
  /** See QueryScope.extraMatchers. */
  readonly extraMatchers?: string;
  readonly rateWindowSeconds?: number;
  /** Called for every HTTP request sent to Prometheus (for counting in tests and benchmarks). */
  readonly onRequest?: (url: string) => void;
  /** Called with the full detail of a failed query (the tenant sees only `unreachable`). */
  readonly onFailure?: (detail: string) => void;
}

export interface PoolTick {
  readonly poolKey: string;
  /** The dialect most of the pool's head pods answered in; null when none answered. */
  readonly dialect: EngineDialect | null;
  readonly signals: ReadonlyMap<SignalKind, GateResult>;
  /**
   * Latency histograms the pool asked for: per group, its bucket rates (`le` → observations/s, summed over
   * the pod's ranks), or the query's error. Not gated: the pool's quantile is computed from them.
   */
  readonly histograms: ReadonlyMap<HistogramKind, PoolSamples | { readonly error: string }>;
}

export interface TickResult {
  readonly atSeconds: number;
  /** Queries sent this tick. */
  readonly queries: number;
  readonly pools: ReadonlyMap<string, PoolTick>;
  /** Per kind: a query error message, if it failed. */
  readonly errors: ReadonlyMap<SignalKind, string>;
  readonly nonHeadSeries: number;
}

export interface BackfillSignal {
  /** Pool totals of the steps that passed the gate, oldest first. */
  readonly samples: readonly { readonly atSeconds: number; readonly poolTotal: number }[];
  /** How many steps ended in each state. */
  readonly states: Readonly<Partial<Record<SignalState, number>>>;
  readonly error?: string;
}

export interface BackfillResult {
  readonly poolKey: string;
  readonly fromSeconds: number;
  readonly toSeconds: number;
  readonly stepSeconds: number;
  readonly signals: ReadonlyMap<SignalKind, BackfillSignal>;
}

/** What the PodAutoscaler's author may see: Prometheus's own errors, but no network detail. */
function tenantError(err: unknown): string {
  if (err instanceof BoundedFetchError) return err.tenantReason;
  return err instanceof Error ? err.message : String(err);
}

function vectorOf(raw: RawVector | RawMatrix): PromSample[] {
  if (raw.resultType !== 'vector') throw new Error(`expected an instant vector, got ${raw.resultType}`);
  return decodeVector(raw);
}

function poolGates(
  pool: PoolRegistration,
  kind: SignalKind,
  samples: PoolSamples | undefined,
  nowSeconds: number,
  dialect: EngineDialect | null = null,
  otherDialect: readonly string[] = [],
): GateResult {
  const spec = SIGNAL_KINDS[kind];
  const family = pool.engine !== 'auto' ? pool.engine : dialect !== null ? familyOf(dialect) : null;
  if (family !== null && DIALECT_PREFERENCE[family].every((d) => spec.names[d] === null)) {
    // Not an outage: the engine has no such metric. Still noData, so the signal cannot drive a decision.
    return {
      signal: kind,
      state: 'noData',
      counts: emptyCounts(pool),
      detail: `${kind}: ${ENGINE_TITLES[family]} exports no such metric; remove it from this pool's metrics`,
    };
  }
  // One entry per group; a group with several head pods is ready if any of them says so.
  const groups = new Map<string, { groupKey: string; ready: boolean }>();
  for (const h of pool.heads) {
    const g = groups.get(h.groupKey);
    groups.set(h.groupKey, { groupKey: h.groupKey, ready: (g?.ready ?? false) || h.ready });
  }
  const result = judgeSignal({
    signal: kind,
    range: spec.range,
    rankRule: spec.rankRule,
    nowSeconds,
    staleAfterSeconds: pool.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS,
    minQuorumPercentage: pool.minQuorumPercentage ?? DEFAULT_MIN_QUORUM_PERCENTAGE,
    // Ranks are DP ranks only for levels and rates (a histogram's are buckets, a ratio's are pods).
    ...(pool.expectedRanks !== undefined && (spec.shape === 'level' || spec.shape === 'rate')
      ? { expectedRanks: pool.expectedRanks }
      : {}),
    groups: [...groups.values()].map((g) => {
      const s = samples?.groups.get(g.groupKey);
      if (!s) return g;
      return {
        ...g,
        ranks: s.ranks,
        ...(s.missingReason !== undefined ? { missingReason: s.missingReason } : {}),
      };
    }),
  });
  if (result.state !== 'ok' && otherDialect.length > 0) {
    const shown = otherDialect.slice(0, 3).join('; ');
    return {
      ...result,
      detail: `${result.detail}; head pods answer under names engine: ${pool.engine} does not read (${shown}): check the pool's engine`,
    };
  }
  return result;
}

function emptyCounts(pool: PoolRegistration): GateCounts {
  return {
    readyGroups: new Set(pool.heads.filter((h) => h.ready).map((h) => h.groupKey)).size,
    usableGroups: 0,
    missingGroups: 0,
    staleGroups: 0,
    outOfRangeGroups: 0,
    rejectedValues: 0,
  };
}

function majorityDialect(perKind: Iterable<PoolSamples | undefined>): EngineDialect | null {
  const votes = new Map<EngineDialect, number>();
  for (const samples of perKind) {
    for (const g of samples?.groups.values() ?? []) votes.set(g.dialect, (votes.get(g.dialect) ?? 0) + 1);
  }
  let best: EngineDialect | null = null;
  let bestVotes = 0;
  for (const [d, n] of votes) {
    if (n > bestVotes) {
      best = d;
      bestVotes = n;
    }
  }
  return best;
}

export class PrometheusSignalSource {
  private readonly options: PrometheusSourceOptions;
  private readonly client: PrometheusClient;
  readonly rejections = new RejectionCounters();
  /** HTTP requests sent since construction. */
  requestsSent = 0;

  constructor(options: PrometheusSourceOptions) {
    this.options = options;
    this.client = new PrometheusClient({
      address: options.address,
      deadlineMs: (options.queryTimeoutSeconds ?? 10) * 1000 + TRANSPORT_SLACK_MS,
      maxAnswerBytes: options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES,
      onRequest: (url) => {
        this.requestsSent++;
        options.onRequest?.(url);
      },
    });
  }

  /** Runs one query, telling onFailure the full detail when it fails. */
  private async logged<T>(path: 'query' | 'query_range', query: () => Promise<T>): Promise<T> {
    try {
      return await query();
    } catch (err) {
      this.options.onFailure?.(`${path}: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
  }

  private scope(pools: readonly PoolRegistration[]): QueryScope {
    return {
      namespaces: namespacesOf(pools),
      rateWindowSeconds: this.options.rateWindowSeconds ?? DEFAULT_RATE_WINDOW_SECONDS,
      ...(this.options.extraMatchers !== undefined ? { extraMatchers: this.options.extraMatchers } : {}),
    };
  }

  private promTimeout(): string {
    return `${this.options.queryTimeoutSeconds ?? 10}s`;
  }

  /** One sample of every registered signal, judged by the gate. Never throws. */
  async tick(
    pools: readonly PoolRegistration[],
    nowSeconds: number = Date.now() / 1000,
  ): Promise<TickResult> {
    const kinds = kindsToQuery(pools);
    const errors = new Map<SignalKind, string>();
    const attributed = new Map<SignalKind, Map<string, PoolSamples>>();
    const otherDialect = new Map<SignalKind, ReadonlyMap<string, readonly string[]>>();
    let nonHeadSeries = 0;
    let queries = 0;
    if (kinds.length > 0) {
      const index = buildHeadIndex(pools);
      const scope = this.scope(pools);
      await Promise.all(
        kinds.map(async (kind) => {
          queries++;
          try {
            const raw = await this.logged('query', () =>
              this.client.instant(buildQuery(kind, scope), nowSeconds, this.promTimeout()),
            );
            const joined = attribute(kind, vectorOf(raw), index);
            nonHeadSeries += joined.stats.nonHeadSeries;
            attributed.set(kind, joined.pools);
            otherDialect.set(kind, joined.stats.otherDialect);
          } catch (err) {
            errors.set(kind, tenantError(err));
          }
        }),
      );
    }
    const out = new Map<string, PoolTick>();
    for (const pool of pools) {
      const signals = new Map<SignalKind, GateResult>();
      const histograms = new Map<HistogramKind, PoolSamples | { error: string }>();
      const dialect = majorityDialect(
        pool.signals
          .filter((k) => SIGNAL_KINDS[k].shape !== 'buckets')
          .map((k) => attributed.get(k)?.get(pool.poolKey)),
      );
      for (const kind of pool.signals) {
        const error = errors.get(kind);
        if (isHistogramKind(kind)) {
          histograms.set(
            kind,
            error !== undefined
              ? { error }
              : (attributed.get(kind)?.get(pool.poolKey) ?? { groups: new Map() }),
          );
          continue;
        }
        const gate: GateResult =
          error !== undefined
            ? {
                signal: kind,
                state: 'error',
                counts: emptyCounts(pool),
                detail: `${kind}: Prometheus query failed: ${error}`,
              }
            : poolGates(
                pool,
                kind,
                attributed.get(kind)?.get(pool.poolKey),
                nowSeconds,
                dialect,
                otherDialect.get(kind)?.get(pool.poolKey),
              );
        // A pod that finished no request in the window has no mean (0/0): routine, not a rejection.
        if (SIGNAL_KINDS[kind].shape !== 'ratio') this.rejections.add(pool.poolKey, gate);
        signals.set(kind, gate);
      }
      out.set(pool.poolKey, { poolKey: pool.poolKey, dialect, signals, histograms });
    }
    return { atSeconds: nowSeconds, queries, pools: out, errors, nonHeadSeries };
  }

  /**
   * One promql metric of one pool: the user's query, run as written as one instant query with the same
   * deadline, answer cap and evaluation timeout as the batched ones, judged by prometheus-promql.ts.
   * Never throws: a failed query (a parse error, say) is state `error` with Prometheus's own text.
   */
  async promql(
    pool: PoolRegistration,
    metric: PromqlMetric,
    nowSeconds: number = Date.now() / 1000,
  ): Promise<GateResult> {
    let samples: PromSample[];
    try {
      const raw = await this.logged('query', () =>
        this.client.instant(metric.query, nowSeconds, this.promTimeout()),
      );
      if (raw.resultType !== 'vector') throw new Error(`expected an instant vector, got ${raw.resultType}`);
      samples = decodeVector(raw);
    } catch (err) {
      return {
        signal: metric.name,
        state: 'error',
        counts: emptyCounts(pool),
        detail: `${metric.name}: Prometheus query failed: ${tenantError(err)}; ${promqlLabelRule(metric.kind)}`,
      };
    }
    const gate =
      metric.kind === 'total'
        ? judgePromqlTotal(metric, samples, pool)
        : judgePromqlPerGroup(
            metric,
            samples,
            pool,
            nowSeconds,
            pool.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS,
            pool.minQuorumPercentage ?? DEFAULT_MIN_QUORUM_PERCENTAGE,
          );
    this.rejections.add(pool.poolKey, gate);
    return gate;
  }

  /**
   * Requests running plus waiting on each head's group, with the scrape time of the older reading: what a
   * drain waits on. Two instant queries restricted to the given heads' pods. A group missing either series,
   * or with a value out of range, is absent (unknown, never 0). Throws when a query fails.
   */
  async inFlight(
    pool: PoolRegistration,
    nowSeconds: number = Date.now() / 1000,
  ): Promise<Map<string, { requests: number; atSeconds: number }>> {
    const out = new Map<string, { requests: number; atSeconds: number }>();
    if (pool.heads.length === 0) return out;
    const pods = pool.heads.map((h) => escapeRegex(h.pod)).join('|');
    const base = this.scope([pool]);
    const podMatcher = `pod=~"${escapeString(pods)}"`;
    const scope: QueryScope = {
      ...base,
      extraMatchers: base.extraMatchers ? `${base.extraMatchers},${podMatcher}` : podMatcher,
    };
    const index = buildHeadIndex([pool]);
    // Every wait, not only capacity waits: a decode pod's deferred KV transfers are requests too.
    const kinds = ['runningRequests', 'queueDepthAll'] as const;
    const perKind = await Promise.all(
      kinds.map(async (kind) => {
        const raw = await this.logged('query', () =>
          this.client.instant(buildQuery(kind, scope), nowSeconds, this.promTimeout()),
        );
        return attribute(kind, vectorOf(raw), index).pools.get(pool.poolKey)?.groups;
      }),
    );
    const [running, waiting] = perKind;
    for (const [groupKey, r] of running ?? []) {
      const w = waiting?.get(groupKey);
      // A group not read whole (ranksOn: all, a pod silent) is unknown, never its partial count.
      if (w === undefined || r.missingReason !== undefined || w.missingReason !== undefined) continue;
      const readings = [...r.ranks, ...w.ranks];
      if (
        readings.some((x) => rejectValue(x.value, 'count') !== null || !Number.isFinite(x.timestampSeconds))
      )
        continue;
      const sum = (g: GroupSamples) =>
        combineRanks(
          g.ranks.map((x) => x.value),
          'sum',
        );
      const requests = sum(r) + sum(w);
      out.set(groupKey, { requests, atSeconds: Math.min(...readings.map((x) => x.timestampSeconds)) });
    }
    return out;
  }

  /**
   * Restart recovery: replays [fromSeconds, toSeconds] with query_range at `stepSeconds` (1 s) and
   * judges every step as a live tick at that time would have, with today's group readiness (the
   * past readiness is not in Prometheus). Feed the result to the windows with `feedWindows`.
   */
  async backfill(
    pool: PoolRegistration,
    fromSeconds: number,
    toSeconds: number,
    stepSeconds = 1,
  ): Promise<BackfillResult> {
    // Whole seconds, so that step times come back exact and match the steps judged below.
    fromSeconds = Math.ceil(fromSeconds);
    toSeconds = Math.floor(toSeconds);
    const index = buildHeadIndex([pool]);
    const scope = this.scope([pool]);
    const signals = new Map<SignalKind, BackfillSignal>();
    await Promise.all(
      // The pool's windows hold levels and flows; the means and histograms only shape a live tick.
      [...new Set(pool.signals)]
        .filter((k) => SIGNAL_KINDS[k].shape === 'level' || SIGNAL_KINDS[k].shape === 'rate')
        .map(async (kind) => {
          try {
            signals.set(
              kind,
              await this.backfillKind(kind, pool, index, scope, fromSeconds, toSeconds, stepSeconds),
            );
          } catch (err) {
            signals.set(kind, { samples: [], states: {}, error: tenantError(err) });
          }
        }),
    );
    return { poolKey: pool.poolKey, fromSeconds, toSeconds, stepSeconds, signals };
  }

  /**
   * Restart recovery of one promql metric: its query as written, with query_range at `stepSeconds`, each
   * step judged as a live tick at that time would have been (prometheus-promql.ts, today's readiness).
   * Never throws: a failed query is the BackfillSignal's `error`, and the windows start young.
   */
  async backfillPromql(
    pool: PoolRegistration,
    metric: PromqlMetric,
    fromSeconds: number,
    toSeconds: number,
    stepSeconds = 1,
  ): Promise<BackfillSignal> {
    fromSeconds = Math.ceil(fromSeconds);
    toSeconds = Math.floor(toSeconds);
    let byStep: Map<number, PromSample[]>;
    try {
      byStep = await this.rangeBySteps(metric.query, fromSeconds, toSeconds, stepSeconds);
    } catch (err) {
      return { samples: [], states: {}, error: tenantError(err) };
    }
    return judgeSteps(fromSeconds, toSeconds, stepSeconds, byStep, (stepSamples, atSeconds) =>
      metric.kind === 'total'
        ? judgePromqlTotal(metric, stepSamples, pool)
        : judgePromqlPerGroup(
            metric,
            stepSamples,
            pool,
            atSeconds,
            pool.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS,
            pool.minQuorumPercentage ?? DEFAULT_MIN_QUORUM_PERCENTAGE,
          ),
    );
  }

  private async backfillKind(
    kind: SignalKind,
    pool: PoolRegistration,
    index: HeadIndex,
    scope: QueryScope,
    fromSeconds: number,
    toSeconds: number,
    stepSeconds: number,
  ): Promise<BackfillSignal> {
    const byStep = await this.rangeBySteps(buildQuery(kind, scope), fromSeconds, toSeconds, stepSeconds);
    return judgeSteps(fromSeconds, toSeconds, stepSeconds, byStep, (stepSamples, atSeconds) =>
      poolGates(pool, kind, attribute(kind, stepSamples, index).pools.get(pool.poolKey), atSeconds),
    );
  }

  /**
   * kvpa's own history of one pool's signals, for the seasonal memory: `kvpa_pool_signal_stable_value`
   * (src/report/metrics.ts) over [from, to] at `stepSeconds`, by signal name. It outlives the pods, where the
   * engines' series do not. Throws on a failed query: the caller decides what no history means.
   */
  async ownHistory(
    pool: OwnSeriesLabels,
    signals: readonly string[],
    fromSeconds: number,
    toSeconds: number,
    stepSeconds: number,
  ): Promise<Map<string, { atSeconds: number; total: number }[]>> {
    const byStep = await this.rangeBySteps(
      ownHistoryQuery(pool, signals),
      Math.ceil(fromSeconds),
      Math.floor(toSeconds),
      stepSeconds,
    );
    const out = new Map<string, { atSeconds: number; total: number }[]>();
    for (const [atMs, samples] of [...byStep].sort((a, b) => a[0] - b[0])) {
      for (const s of samples) {
        const signal = s.labels.signal;
        if (signal === undefined || !signals.includes(signal) || !(s.value >= 0 && Number.isFinite(s.value)))
          continue;
        const points = out.get(signal) ?? [];
        points.push({ atSeconds: atMs / 1000, total: s.value });
        out.set(signal, points);
      }
    }
    return out;
  }

  /** One query_range over [from, to], in chunks within Prometheus's point limit, as samples per step time (ms). */
  private async rangeBySteps(
    query: string,
    fromSeconds: number,
    toSeconds: number,
    stepSeconds: number,
  ): Promise<Map<number, PromSample[]>> {
    const byStep = new Map<number, PromSample[]>();
    const chunkSeconds = stepSeconds * (MAX_POINTS_PER_RANGE_QUERY - 1);
    for (let start = fromSeconds; start <= toSeconds; start += chunkSeconds + stepSeconds) {
      const end = Math.min(toSeconds, start + chunkSeconds);
      const raw = await this.logged('query_range', () =>
        this.client.range(query, start, end, stepSeconds, this.promTimeout()),
      );
      if (raw.resultType !== 'matrix') throw new Error(`expected a matrix, got ${raw.resultType}`);
      for (const [atMs, list] of decodeMatrixBySteps(raw)) {
        const prior = byStep.get(atMs);
        byStep.set(atMs, prior ? prior.concat(list) : list);
      }
    }
    return byStep;
  }
}

/** The labels kvpa exports a pool's series under (src/report/metrics.ts). */
export interface OwnSeriesLabels {
  readonly namespace: string;
  readonly name: string;
  readonly pool: string;
}

/**
 * The query for kvpa's own stable values of a pool. A scrape without honor_labels moves the exported
 * `namespace` to `exported_namespace` (Prometheus's scrape_config docs, honor_labels): both spellings are read,
 * and several controller replicas exporting the same pool are one series (their max).
 */
export function ownHistoryQuery(pool: OwnSeriesLabels, signals: readonly string[]): string {
  const rest = `name="${escapeString(pool.name)}",pool="${escapeString(pool.pool)}",signal=~"${escapeString(signals.map(escapeRegex).join('|'))}"`;
  const ns = escapeString(pool.namespace);
  return `max by (signal) (kvpa_pool_signal_stable_value{namespace="${ns}",${rest}} or kvpa_pool_signal_stable_value{exported_namespace="${ns}",${rest}})`;
}

/** Judges every step of a replay as a live tick at that time would have; the ok totals are the samples. */
function judgeSteps(
  fromSeconds: number,
  toSeconds: number,
  stepSeconds: number,
  byStep: ReadonlyMap<number, PromSample[]>,
  judge: (samples: PromSample[], atSeconds: number) => GateResult,
): BackfillSignal {
  const samples: { atSeconds: number; poolTotal: number }[] = [];
  const states: Partial<Record<SignalState, number>> = {};
  const stepCount = Math.floor((toSeconds - fromSeconds) / stepSeconds + 1e-9) + 1;
  for (let i = 0; i < stepCount; i++) {
    const atSeconds = fromSeconds + i * stepSeconds;
    const gate = judge(byStep.get(Math.round(atSeconds * 1000)) ?? [], atSeconds);
    states[gate.state] = (states[gate.state] ?? 0) + 1;
    if (gate.state === 'ok' && gate.poolTotal !== undefined)
      samples.push({ atSeconds, poolTotal: gate.poolTotal });
  }
  return { samples, states };
}

/** Records a backfill into the pool's windows (signal kind → windows). Returns samples recorded. */
export function feedWindows(result: BackfillResult, windows: ReadonlyMap<SignalKind, SignalWindows>): number {
  let recorded = 0;
  for (const [kind, signal] of result.signals) {
    const w = windows.get(kind);
    if (!w) continue;
    for (const s of signal.samples) {
      w.record(s.atSeconds, s.poolTotal);
      recorded++;
    }
  }
  return recorded;
}
