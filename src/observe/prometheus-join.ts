/**
 * The pure half of the Prometheus source: which PromQL to send (one query per signal kind per tick for
 * ALL pools), and how to attribute the answer to replica groups through their head pods.
 *
 * Metric contract: vllm-project/vllm vllm/v1/metrics/loggers.py (names, the `engine` label per data-parallel
 * rank, the 0.9 rename of `gpu_cache_usage_perc`) and docs/design/metrics.md; for SGLang,
 * sgl-project/sglang python/sglang/srt/metrics/collector.py.
 * No I/O here, so the join can be tested and benchmarked on synthetic results of any size.
 */

import type { MetricSpec } from '../api/podautoscaler.ts';

/** Signals the Prometheus source can read. The first three are the API's metric types. */
export type SignalKind = 'kvCacheUtilization' | 'queueDepth' | 'runningRequests' | 'preemptionRate';

/**
 * The batched kind that serves an API metric; null for `promql`, whose free-form query cannot be
 * merged with other pools' and is not served by this source.
 */
export function signalKindOf(metric: MetricSpec): SignalKind | null {
  switch (metric.type) {
    case 'promql':
    case 'promptTokens':
    case 'generationTokens':
      return null;
    default:
      return metric.type;
  }
}

/** A resolved metric dialect. `vllmLegacy` = vLLM before 0.9, with `vllm:gpu_cache_usage_perc`. */
export type EngineDialect = 'vllm' | 'vllmLegacy' | 'sglang';

/** The pool's `engine` field: a dialect family, or detect it from the names a pod exports. */
export type EngineSetting = 'auto' | 'vllm' | 'sglang';

/**
 * How the data-parallel ranks of one pod (one series per `engine` label for vLLM, per `dp_rank` for
 * SGLang) combine into that pod's value:
 * - `mean` for KV usage: every rank of a pod runs the same model with an equal KV pool, so the mean
 *   is the share of the pod's whole KV pool in use. A sum would exceed 1 with two half-full ranks.
 * - `sum` for queue, running and preemption rate: the pod (its group) is what the router feeds
 *   and what we scale, so its backlog and its work in flight are the totals over its engines.
 */
export type RankRule = 'mean' | 'sum';

/** Valid range of a per-rank value: `fraction` is [0, 1]; `count` is [0, COUNT_MAX]. Both must be finite. */
export type ValueRange = 'fraction' | 'count';

/**
 * The physical ceiling of one rank's count (waiting or running requests, preemptions per second). An
 * engine holds at most a few thousand sequences; a million is a broken exporter, and the ceiling keeps
 * every sum over ranks, groups and window buckets finite (1e308 + 1e308 is Infinity).
 */
export const COUNT_MAX = 1_000_000;

export interface SignalKindSpec {
  /** Sample name per dialect; null when the engine exports no such metric. */
  readonly names: Readonly<Record<EngineDialect, string | null>>;
  readonly rankRule: RankRule;
  readonly range: ValueRange;
  /** A counter read as a per-second rate (PromQL `rate`), not as a level. */
  readonly counterRate: boolean;
}

export const SIGNAL_KINDS: Readonly<Record<SignalKind, SignalKindSpec>> = {
  kvCacheUtilization: {
    names: {
      vllm: 'vllm:kv_cache_usage_perc',
      vllmLegacy: 'vllm:gpu_cache_usage_perc',
      sglang: 'sglang:token_usage',
    },
    rankRule: 'mean',
    range: 'fraction',
    counterRate: false,
  },
  queueDepth: {
    names: {
      vllm: 'vllm:num_requests_waiting',
      vllmLegacy: 'vllm:num_requests_waiting',
      sglang: 'sglang:num_queue_reqs',
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: false,
  },
  runningRequests: {
    names: {
      vllm: 'vllm:num_requests_running',
      vllmLegacy: 'vllm:num_requests_running',
      sglang: 'sglang:num_running_reqs',
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: false,
  },
  preemptionRate: {
    // V0 and V1 share the sample name; SGLang's retraction metrics are gauges, not preemptions.
    names: { vllm: 'vllm:num_preemptions_total', vllmLegacy: 'vllm:num_preemptions_total', sglang: null },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
  },
};

/** Preference order per setting. The new vLLM name wins over the old when a pod exports both. */
export const DIALECT_PREFERENCE: Readonly<Record<EngineSetting, readonly EngineDialect[]>> = {
  vllm: ['vllm', 'vllmLegacy'],
  sglang: ['sglang'],
  auto: ['vllm', 'vllmLegacy', 'sglang'],
};

/** Labels that name a data-parallel rank: vLLM's `engine`, SGLang's `dp_rank` (verify on the deployed version). */
export const RANK_LABELS = ['engine', 'dp_rank'] as const;

export interface HeadPod {
  readonly pod: string;
  /** The replica group this pod leads (LWS group, RayCluster, PodSet, …). */
  readonly groupKey: string;
  /** The whole group is ready (leader and every worker). Only ready groups count toward totals. */
  readonly ready: boolean;
}

export interface PoolRegistration {
  /** Unique per controller, e.g. `<namespace>/<podautoscaler>/<pool>`. */
  readonly poolKey: string;
  readonly namespace: string;
  /** Head (leader) pods only: LWS worker-index=0, Ray node-type=head, … (each kind's leader label: targets.ts). */
  readonly heads: readonly HeadPod[];
  readonly engine: EngineSetting;
  readonly signals: readonly SignalKind[];
  readonly staleAfterSeconds?: number;
  readonly minQuorumPercentage?: number;
}

export interface QueryScope {
  /** Every namespace with a registered pool; the query is restricted to them. */
  readonly namespaces: readonly string[];
  /**
   * Extra label matchers added to every selector, e.g. `leaderworkerset_sigs_k8s_io_worker_index="0"`
   * when the cluster's relabelling keeps pod labels, to cut worker-pod series at the source. The join
   * keeps head pods only whatever this says.
   */
  readonly extraMatchers?: string;
  /** Window of `rate()` for counter signals; at least two scrape intervals. */
  readonly rateWindowSeconds: number;
}

/** The marker label that tells value series from timestamp series in one answer. */
export const FIELD_LABEL = 'kvpa_field';

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

export function kindNames(kind: SignalKind): string[] {
  return [...new Set(Object.values(SIGNAL_KINDS[kind].names).filter((n): n is string => n !== null))];
}

/**
 * One instant query for one signal kind, covering every pool, every dialect and every rank.
 *
 * It returns one value series per (pod, rank, name) (`kvpa_field="value"`, keeping `__name__` so the
 * dialect is known) and one timestamp series per pod (`kvpa_field="ts"`): the scrape time of the
 * pod's OLDEST series, since a pod is only as fresh as its stalest rank. An instant query otherwise
 * reports the evaluation time, and `timestamp()` keeps the scrape time only when applied straight to
 * a selector, hence the second half. `max by` collapses labels that are not ranks (model_name,
 * tp_rank, a pod scraped by two jobs): those are copies of one scheduler's state, not more load.
 */
export function buildQuery(kind: SignalKind, scope: QueryScope): string {
  const spec = SIGNAL_KINDS[kind];
  const names = kindNames(kind);
  const ns = scope.namespaces.map(escapeRegex).sort().join('|');
  const matchers = [`namespace=~"${escapeString(ns)}"`];
  if (scope.extraMatchers) matchers.push(scope.extraMatchers);
  const selector =
    names.length === 1
      ? `${names[0]}{${matchers.join(',')}}`
      : `{__name__=~"${escapeString(names.map(escapeRegex).join('|'))}",${matchers.join(',')}}`;
  const by = ['namespace', 'pod', ...RANK_LABELS].join(', ');
  const value = spec.counterRate
    ? `max by (${by}) (rate(${selector}[${scope.rateWindowSeconds}s]))`
    : `max by (__name__, ${by}) (${selector})`;
  const ts = `min by (namespace, pod) (timestamp(${selector}))`;
  return `label_replace(${value}, "${FIELD_LABEL}", "value", "", "") or label_replace(${ts}, "${FIELD_LABEL}", "ts", "", "")`;
}

/** One series of a query answer, already decoded: labels (with `__name__` if kept) and the value at one time. */
export interface PromSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus's JSON spells special floats as strings that Number() does not read ("+Inf"). */
export function parsePromValue(text: unknown): number {
  if (typeof text !== 'string') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return text === '' ? Number.NaN : Number(text);
}

/** The `data` of an instant-query answer (resultType vector) as Prometheus sends it. */
export interface RawVector {
  readonly resultType: 'vector';
  readonly result: readonly {
    readonly metric: Record<string, string>;
    readonly value: readonly [number, string];
  }[];
}

/** The `data` of a range-query answer (resultType matrix). */
export interface RawMatrix {
  readonly resultType: 'matrix';
  readonly result: readonly {
    readonly metric: Record<string, string>;
    readonly values: readonly (readonly [number, string])[];
  }[];
}

/** Decodes a raw vector without copying label objects (the hot path for thousands of pools). */
export function decodeVector(data: RawVector): PromSample[] {
  const out: PromSample[] = new Array(data.result.length);
  for (let i = 0; i < data.result.length; i++) {
    const r = data.result[i];
    out[i] = { labels: r?.metric ?? {}, value: parsePromValue(r?.value?.[1]) };
  }
  return out;
}

/** Decodes a raw matrix into samples per step time (ms). */
export function decodeMatrixBySteps(data: RawMatrix): Map<number, PromSample[]> {
  const byStep = new Map<number, PromSample[]>();
  for (const series of data.result) {
    const labels = series.metric ?? {};
    for (const [t, v] of series.values ?? []) {
      const atMs = Math.round(t * 1000);
      let list = byStep.get(atMs);
      if (!list) {
        list = [];
        byStep.set(atMs, list);
      }
      list.push({ labels, value: parsePromValue(v) });
    }
  }
  return byStep;
}

export interface RankSample {
  /** `engine` / `dp_rank` value; empty when the series has no rank label. */
  readonly rank: string;
  readonly value: number;
  /** The sample's scrape time as Prometheus stored it (seconds); NaN when Prometheus sent none. */
  readonly timestampSeconds: number;
}

export interface GroupSamples {
  readonly groupKey: string;
  readonly pod: string;
  readonly ready: boolean;
  readonly metric: string;
  readonly dialect: EngineDialect;
  readonly ranks: readonly RankSample[];
}

export interface PoolSamples {
  /** Only groups whose head pod answered; absent groups are missing (never zero). */
  readonly groups: ReadonlyMap<string, GroupSamples>;
}

export interface HeadIndex {
  /**
   * `namespace/pod` → the pools (by index) that list it as a head. Usually one; two PodAutoscalers
   * aimed at one workload both get its data rather than one of them silently losing it.
   */
  readonly byPod: ReadonlyMap<string, readonly { readonly pool: number; readonly head: HeadPod }[]>;
  readonly pools: readonly PoolRegistration[];
}

export function buildHeadIndex(pools: readonly PoolRegistration[]): HeadIndex {
  const byPod = new Map<string, { pool: number; head: HeadPod }[]>();
  pools.forEach((p, pool) => {
    for (const head of p.heads) {
      const key = `${p.namespace}/${head.pod}`;
      const list = byPod.get(key);
      if (list) list.push({ pool, head });
      else byPod.set(key, [{ pool, head }]);
    }
  });
  return { byPod, pools };
}

function rankOf(labels: Readonly<Record<string, string>>): string {
  const engine = labels.engine;
  const dp = labels.dp_rank;
  if (engine !== undefined && dp !== undefined) return `${engine}/${dp}`;
  return engine ?? dp ?? '';
}

export function dialectOf(kind: SignalKind, metric: string, setting: EngineSetting): EngineDialect | null {
  const names = SIGNAL_KINDS[kind].names;
  for (const d of DIALECT_PREFERENCE[setting]) if (names[d] === metric) return d;
  return null;
}

interface PodAcc {
  /** metric name → rank → value */
  readonly values: Map<string, Map<string, number>>;
  /** Scrape time of the pod's oldest series (seconds); NaN until the ts series is seen. */
  ts: number;
}

export interface AttributionStats {
  /** Series whose pod is not a registered head (workers, other apps): ignored by design. */
  readonly nonHeadSeries: number;
  /** Series without namespace/pod or marker labels: the cluster's relabelling does not attach them. */
  readonly unlabelledSeries: number;
  /**
   * Per pool: head pods that answered only under names the pool's `engine` setting excludes (e.g. a
   * pool set to sglang whose pods speak vLLM), with those names. Their groups stay missing.
   */
  readonly otherDialect: ReadonlyMap<string, readonly string[]>;
}

/**
 * Attributes one kind's answer to the pools' groups. Per pod the dialect is picked by the pool's
 * preference (new vLLM name, then old, then SGLang under `auto`); ranks are kept separate for the
 * quality gate, which validates each rank before combining them.
 */
export function attribute(
  kind: SignalKind,
  samples: readonly PromSample[],
  index: HeadIndex,
): { pools: Map<string, PoolSamples>; stats: AttributionStats } {
  const fallbackName = kindNames(kind)[0] ?? kind;
  const perPod = new Map<string, PodAcc>();
  let nonHeadSeries = 0;
  let unlabelledSeries = 0;
  for (const s of samples) {
    const { namespace, pod } = s.labels;
    const field = s.labels[FIELD_LABEL];
    if (namespace === undefined || pod === undefined || field === undefined) {
      unlabelledSeries++;
      continue;
    }
    const key = `${namespace}/${pod}`;
    if (!index.byPod.has(key)) {
      nonHeadSeries++;
      continue;
    }
    let acc = perPod.get(key);
    if (!acc) {
      acc = { values: new Map(), ts: Number.NaN };
      perPod.set(key, acc);
    }
    if (field === 'ts') {
      acc.ts = s.value;
    } else {
      const rank = rankOf(s.labels);
      // rate() drops __name__; counter kinds have a single name.
      const metric = s.labels.__name__ ?? fallbackName;
      let ranks = acc.values.get(metric);
      if (!ranks) {
        ranks = new Map();
        acc.values.set(metric, ranks);
      }
      ranks.set(rank, s.value);
    }
  }

  const pools = new Map<string, Map<string, GroupSamples>>();
  const otherDialect = new Map<string, string[]>();
  for (const [key, acc] of perPod) {
    for (const entry of index.byPod.get(key) ?? []) {
      const reg = index.pools[entry.pool];
      if (!reg) continue;
      const chosen = pickDialect(kind, reg.engine, acc);
      if (!chosen) {
        const seen = otherDialect.get(reg.poolKey) ?? [];
        seen.push(`${entry.head.pod}: ${[...acc.values.keys()].join(', ')}`);
        otherDialect.set(reg.poolKey, seen);
        continue;
      }
      const ranks: RankSample[] = [];
      for (const [rank, value] of chosen.ranks) {
        ranks.push({ rank, value, timestampSeconds: acc.ts });
      }
      const group: GroupSamples = {
        groupKey: entry.head.groupKey,
        pod: entry.head.pod,
        ready: entry.head.ready,
        metric: chosen.metric,
        dialect: chosen.dialect,
        ranks,
      };
      let groups = pools.get(reg.poolKey);
      if (!groups) {
        groups = new Map();
        pools.set(reg.poolKey, groups);
      }
      // Two heads for one group (a leader being replaced): keep the fresher answer.
      const prior = groups.get(group.groupKey);
      if (!prior || newest(group) > newest(prior)) groups.set(group.groupKey, group);
    }
  }
  const out = new Map<string, PoolSamples>();
  for (const [poolKey, groups] of pools) out.set(poolKey, { groups });
  return { pools: out, stats: { nonHeadSeries, unlabelledSeries, otherDialect } };
}

function pickDialect(
  kind: SignalKind,
  setting: EngineSetting,
  acc: PodAcc,
): { metric: string; dialect: EngineDialect; ranks: Map<string, number> } | null {
  for (const d of DIALECT_PREFERENCE[setting]) {
    const name = SIGNAL_KINDS[kind].names[d];
    const ranks = name !== null ? acc.values.get(name) : undefined;
    if (name !== null && ranks) return { metric: name, dialect: d, ranks };
  }
  return null;
}

function newest(g: GroupSamples): number {
  let t = Number.NEGATIVE_INFINITY;
  for (const r of g.ranks) if (r.timestampSeconds > t) t = r.timestampSeconds;
  return t;
}

/** Kinds to query this tick: the union over pools, in a stable order. */
export function kindsToQuery(pools: readonly PoolRegistration[]): SignalKind[] {
  const want = new Set<SignalKind>();
  for (const p of pools) for (const s of p.signals) want.add(s);
  return (Object.keys(SIGNAL_KINDS) as SignalKind[]).filter((k) => want.has(k));
}

export function namespacesOf(pools: readonly PoolRegistration[]): string[] {
  return [...new Set(pools.map((p) => p.namespace))].sort();
}
