/**
 * The pure half of the Prometheus source: which PromQL to send (one query per signal kind per tick for
 * ALL pools), and how to attribute the answer to replica groups through their head pods.
 *
 * Metric contract: vllm-project/vllm vllm/v1/metrics/loggers.py (names, the `engine` label per data-parallel
 * rank, the 0.9 rename of `gpu_cache_usage_perc`) and docs/design/metrics.md; for SGLang,
 * sgl-project/sglang python/sglang/srt/metrics/collector.py.
 * No I/O here, so the join can be tested and benchmarked on synthetic results of any size.
 */

import type { EngineSetting as ApiEngineSetting, MetricSpec } from '../api/podautoscaler.ts';

/**
 * Signals the Prometheus source can read. `kvCacheUtilization`, `queueDepth`, `runningRequests`,
 * `promptTokens` and `generationTokens` are the API's metric types; the others feed them: the mean tokens
 * per request (for a work signal's backlog) and the latency histograms (for the SLO guard).
 */
export type SignalKind =
  | 'kvCacheUtilization'
  | 'queueDepth'
  | 'queueDepthAll'
  | 'runningRequests'
  | 'preemptionRate'
  | 'promptTokens'
  | 'generationTokens'
  | 'promptTokensPerRequest'
  | 'generationTokensPerRequest'
  | 'ttftHistogram'
  | 'itlHistogram';

/** The kinds whose per-bucket answer is read as a histogram, not gated as a level. */
export type HistogramKind = 'ttftHistogram' | 'itlHistogram';

export function isHistogramKind(kind: SignalKind): kind is HistogramKind {
  return SIGNAL_KINDS[kind].shape === 'buckets';
}

/**
 * The batched kind that serves an API metric; null for `promql`, whose free-form query cannot be
 * merged with other pools': it runs as its own query (prometheus-promql.ts).
 */
export function signalKindOf(metric: MetricSpec): SignalKind | null {
  switch (metric.type) {
    case 'promql':
      return null;
    default:
      return metric.type;
  }
}

/**
 * A resolved metric dialect. `vllmLegacy` = vLLM before 0.9, with `vllm:gpu_cache_usage_perc`;
 * `trtllm` = TensorRT-LLM's `trtllm_*` series (NVIDIA/TensorRT-LLM tensorrt_llm/metrics/collector.py);
 * `dynamo` = Dynamo's own series (DYNAMO_WORKER_INFLIGHT's comment says which and how they are attributed).
 */
export type EngineDialect = 'vllm' | 'vllmLegacy' | 'sglang' | 'trtllm' | 'dynamo';

/**
 * Dynamo's own series (ai-dynamo/dynamo lib/runtime/src/metrics/prometheus_names.rs; the frontend's
 * labels in lib/llm/src/http/service/metrics.rs):
 * - frontend, label `model`: `dynamo_frontend_queued_requests` (requests before their first response),
 *   `dynamo_frontend_inflight_requests` (from handler entry to completion, so it includes the queued),
 *   the TTFT and ITL histograms, `dynamo_frontend_input_sequence_tokens` / `…output_sequence_tokens`
 *   histograms (observed per finished request; their `_sum` counts tokens) and
 *   `dynamo_frontend_output_tokens_total`.
 * - worker (work handler), labels dynamo_namespace, dynamo_component, dynamo_endpoint:
 *   `dynamo_component_inflight_requests`, read for the `generate` endpoint (the one Dynamo's backends
 *   serve requests on). It wins over the frontend's count on a pod that exports both.
 * - worker KV use (DYNAMO_WORKER_KV): `dynamo_component_gpu_cache_usage_percent`, a fraction 0–1 despite
 *   its name, one series per `dp_rank`.
 * Attribution: kvpa joins a series to a group through the pod that exports it. A frontend's series
 * describe every request that frontend routes, to any group, so they count only where the frontend
 * runs in the group's head pod; the series of a shared frontend Deployment belong to no head pod and
 * are ignored, and the pool sees noData (never a guessed split). A shared frontend's queue is a
 * pool-total signal: read it with a `promql` metric of kind total.
 */
export const DYNAMO_WORKER_INFLIGHT: Required<PreferredSeries> = {
  name: 'dynamo_component_inflight_requests',
  label: 'dynamo_endpoint',
  value: 'generate',
};

/**
 * The KV-cache use a Dynamo worker publishes beside its engine's series: `dynamo_component_` +
 * `kvstats::GPU_CACHE_USAGE_PERCENT` ("GPU cache usage as a percentage (0.0-1.0)", ai-dynamo/dynamo
 * lib/runtime/src/metrics/prometheus_names.rs), a gauge registered with the labels `model`,
 * `dynamo_component` and `dp_rank` (components/src/dynamo/common/utils/prometheus.py,
 * `LLMBackendMetrics`) and set by the vLLM, SGLang and TensorRT-LLM workers from their engine's KV use.
 * An earlier Rust publisher exported `dynamo_component_kvstats_gpu_cache_usage_percent`
 * (https://github.com/ai-dynamo/dynamo/pull/2704); that name is gone (Dynamo's own dashboards moved to the
 * current one in https://github.com/ai-dynamo/dynamo/pull/7123) and is not read.
 */
export const DYNAMO_WORKER_KV = 'dynamo_component_gpu_cache_usage_percent';

/** The pool's `engine` field: a dialect family, or detect it from the names a pod exports. */
export type EngineSetting = ApiEngineSetting;

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
  /**
   * How the value is queried: `level` a gauge, `rate` a counter's rate, `ratio` rate(names) / rate(per)
   * summed per pod (a mean per request), `buckets` a histogram's `_bucket` rates summed per pod and `le`.
   */
  readonly shape: 'level' | 'rate' | 'ratio' | 'buckets';
  /** For `ratio`: the denominator's name per dialect (null: no ratio for that dialect). */
  readonly per?: Readonly<Record<EngineDialect, string | null>>;
  /**
   * A name that wins over `names[dialect]` on a pod that exports it (a newer name, or a finer series);
   * with `label`, only its series where that label is `value` (level kinds only). A pod without it is
   * read under `names[dialect]`.
   */
  readonly preferred?: Readonly<Partial<Record<EngineDialect, PreferredSeries>>>;
}

export interface PreferredSeries {
  readonly name: string;
  readonly label?: string;
  readonly value?: string;
}

/**
 * SGLang's ITL histogram under its current name (sgl-project/sglang
 * python/sglang/srt/observability/metrics_collector.py, `TokenizerMetricsCollector`); older
 * releases (python/sglang/srt/metrics/collector.py) named it `sglang:time_per_output_token_seconds`.
 */
const SGLANG_ITL: PreferredSeries = { name: 'sglang:inter_token_latency_seconds' };

/**
 * vLLM's waiting queue split by reason (vllm-project/vllm vllm/v1/metrics/loggers.py,
 * `vllm:num_requests_waiting_by_reason`, labels model_name, engine, reason): `capacity` waits for
 * scheduling capacity; `deferred` waits on transient constraints (LoRA budget, KV transfer, blocked
 * status), which on a P/D decode pod is the KV transfer, not demand for more capacity. The sum of
 * both equals `vllm:num_requests_waiting`, the fallback for versions without the split.
 */
export const VLLM_CAPACITY_WAITING: Required<PreferredSeries> = {
  name: 'vllm:num_requests_waiting_by_reason',
  label: 'reason',
  value: 'capacity',
};

/** Every waiting request per dialect (vLLM's total counts both reasons of the split below). */
const ALL_WAITING: SignalKindSpec = {
  names: {
    vllm: 'vllm:num_requests_waiting',
    vllmLegacy: 'vllm:num_requests_waiting',
    sglang: 'sglang:num_queue_reqs',
    trtllm: 'trtllm_num_requests_waiting',
    dynamo: 'dynamo_frontend_queued_requests',
  },
  rankRule: 'sum',
  range: 'count',
  counterRate: false,
  shape: 'level',
};

export const SIGNAL_KINDS: Readonly<Record<SignalKind, SignalKindSpec>> = {
  kvCacheUtilization: {
    names: {
      vllm: 'vllm:kv_cache_usage_perc',
      vllmLegacy: 'vllm:gpu_cache_usage_perc',
      sglang: 'sglang:token_usage',
      // usedNumBlocks / maxNumBlocks of the KV cache stats: a fraction 0–1.
      trtllm: 'trtllm_kv_cache_utilization',
      // The worker's gauge (DYNAMO_WORKER_KV); the frontend has none, so a frontend-only head pod is missing.
      dynamo: DYNAMO_WORKER_KV,
    },
    rankRule: 'mean',
    range: 'fraction',
    counterRate: false,
    shape: 'level',
  },
  // Capacity waits where vLLM splits its queue by reason; every wait elsewhere.
  queueDepth: {
    ...ALL_WAITING,
    preferred: { vllm: VLLM_CAPACITY_WAITING, vllmLegacy: VLLM_CAPACITY_WAITING },
  },
  // Every waiting request, whatever it waits for (vLLM's deferred KV transfers too): not a scaling signal,
  // what a drain waits on.
  queueDepthAll: ALL_WAITING,
  runningRequests: {
    names: {
      vllm: 'vllm:num_requests_running',
      vllmLegacy: 'vllm:num_requests_running',
      sglang: 'sglang:num_running_reqs',
      trtllm: 'trtllm_num_requests_running',
      dynamo: 'dynamo_frontend_inflight_requests',
    },
    preferred: { dynamo: DYNAMO_WORKER_INFLIGHT },
    rankRule: 'sum',
    range: 'count',
    counterRate: false,
    shape: 'level',
  },
  preemptionRate: {
    // V0 and V1 share the sample name; SGLang's retraction metrics are gauges, not preemptions.
    names: {
      vllm: 'vllm:num_preemptions_total',
      vllmLegacy: 'vllm:num_preemptions_total',
      sglang: null,
      trtllm: null,
      dynamo: null,
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
    shape: 'rate',
  },
  // Token flows (tokens/s served): vllm-project/vllm vllm/v1/metrics/loggers.py `counter_prompt_tokens`,
  // `counter_generation_tokens`; sgl-project/sglang python/sglang/srt/metrics/collector.py `prompt_tokens_total`,
  // `generation_tokens_total` (SGLang counts a request's tokens when it finishes).
  promptTokens: {
    names: {
      vllm: 'vllm:prompt_tokens_total',
      vllmLegacy: 'vllm:prompt_tokens_total',
      sglang: 'sglang:prompt_tokens_total',
      trtllm: 'trtllm_prompt_tokens_total',
      dynamo: 'dynamo_frontend_input_sequence_tokens_sum',
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
    shape: 'rate',
  },
  generationTokens: {
    names: {
      vllm: 'vllm:generation_tokens_total',
      vllmLegacy: 'vllm:generation_tokens_total',
      sglang: 'sglang:generation_tokens_total',
      trtllm: 'trtllm_generation_tokens_total',
      dynamo: 'dynamo_frontend_output_tokens_total',
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
    shape: 'rate',
  },
  // Mean tokens per request, per pod: vLLM's `vllm:request_prompt_tokens` / `vllm:request_generation_tokens`
  // histograms (sum over count, observed when a request finishes); SGLang has no such histogram, so its token
  // counters over its finished-request counter `sglang:num_requests_total` (collector.py, same file).
  promptTokensPerRequest: {
    names: {
      vllm: 'vllm:request_prompt_tokens_sum',
      vllmLegacy: 'vllm:request_prompt_tokens_sum',
      sglang: 'sglang:prompt_tokens_total',
      trtllm: 'trtllm_prompt_tokens_total',
      dynamo: 'dynamo_frontend_input_sequence_tokens_sum',
    },
    per: {
      vllm: 'vllm:request_prompt_tokens_count',
      vllmLegacy: 'vllm:request_prompt_tokens_count',
      sglang: 'sglang:num_requests_total',
      trtllm: 'trtllm_request_success_total',
      dynamo: 'dynamo_frontend_input_sequence_tokens_count',
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
    shape: 'ratio',
  },
  generationTokensPerRequest: {
    names: {
      vllm: 'vllm:request_generation_tokens_sum',
      vllmLegacy: 'vllm:request_generation_tokens_sum',
      sglang: 'sglang:generation_tokens_total',
      trtllm: 'trtllm_generation_tokens_total',
      dynamo: 'dynamo_frontend_output_sequence_tokens_sum',
    },
    per: {
      vllm: 'vllm:request_generation_tokens_count',
      vllmLegacy: 'vllm:request_generation_tokens_count',
      sglang: 'sglang:num_requests_total',
      trtllm: 'trtllm_request_success_total',
      dynamo: 'dynamo_frontend_output_sequence_tokens_count',
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
    shape: 'ratio',
  },
  // Latency histograms (base names; the query reads `<name>_bucket`). ITL was `time_per_output_token` before
  // vLLM renamed it (both in vllm/v1/metrics/loggers.py history); a pod is read under the name it exports.
  // SGLang's per-token decode latency: `sglang:inter_token_latency_seconds` (SGLANG_ITL), formerly
  // `sglang:time_per_output_token_seconds` (python/sglang/srt/metrics/collector.py).
  ttftHistogram: {
    names: {
      vllm: 'vllm:time_to_first_token_seconds',
      vllmLegacy: 'vllm:time_to_first_token_seconds',
      sglang: 'sglang:time_to_first_token_seconds',
      trtllm: 'trtllm_time_to_first_token_seconds',
      dynamo: 'dynamo_frontend_time_to_first_token_seconds',
    },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
    shape: 'buckets',
  },
  itlHistogram: {
    names: {
      vllm: 'vllm:inter_token_latency_seconds',
      vllmLegacy: 'vllm:time_per_output_token_seconds',
      sglang: 'sglang:time_per_output_token_seconds',
      // Per request: (last token − first token) / (tokens − 1), as vLLM's time_per_output_token.
      trtllm: 'trtllm_time_per_output_token_seconds',
      dynamo: 'dynamo_frontend_inter_token_latency_seconds',
    },
    preferred: { sglang: SGLANG_ITL },
    rankRule: 'sum',
    range: 'count',
    counterRate: true,
    shape: 'buckets',
  },
};

/** Preference order per setting. The new vLLM name wins over the old when a pod exports both. */
export const DIALECT_PREFERENCE: Readonly<Record<EngineSetting, readonly EngineDialect[]>> = {
  vllm: ['vllm', 'vllmLegacy'],
  sglang: ['sglang'],
  trtllm: ['trtllm'],
  dynamo: ['dynamo'],
  // Dynamo last: its workers export their engine's series beside dynamo_component_*, and those win.
  auto: ['vllm', 'vllmLegacy', 'sglang', 'trtllm', 'dynamo'],
};

/** The `engine` setting a resolved dialect belongs to. */
export function familyOf(dialect: EngineDialect): Exclude<EngineSetting, 'auto'> {
  return dialect === 'vllmLegacy' ? 'vllm' : dialect;
}

/** The engine's name in messages. */
export const ENGINE_TITLES: Readonly<Record<Exclude<EngineSetting, 'auto'>, string>> = {
  vllm: 'vLLM',
  sglang: 'SGLang',
  trtllm: 'TensorRT-LLM',
  dynamo: 'Dynamo',
};

/**
 * Labels that name a data-parallel rank: vLLM's `engine`, SGLang's `dp_rank` (verify on the deployed
 * version). TensorRT-LLM's series carry none: its OpenAI server reports one set per server.
 */
export const RANK_LABELS = ['engine', 'dp_rank'] as const;

/**
 * Labels of an SGLang scheduler series that tell copies of one DP rank's state apart; why they are copies:
 * sglangSchedulerSeries in engine-metrics.ts. `moe_ep_rank` follows `tp_rank`.
 */
export const SGLANG_COPY_LABELS = ['tp_rank', 'pp_rank', 'moe_ep_rank'] as const;

function copyRank(labels: Readonly<Record<string, string>>, name: 'pp_rank' | 'tp_rank'): number {
  const n = Number(labels[name] ?? '0');
  return Number.isFinite(n) ? n : Number.POSITIVE_INFINITY;
}

/**
 * Of two copies of one SGLang DP rank's gauge, whether `a` is the one read: the lowest `pp_rank` (stage 0,
 * fed by the tokenizer), then the lowest `tp_rank` (the attention-TP leader). Both the direct scrape and the
 * PromQL join pick with it, so the two paths read the same copy.
 */
export function sglangCopyBefore(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>,
): boolean {
  const pp = copyRank(a, 'pp_rank') - copyRank(b, 'pp_rank');
  return pp !== 0 ? pp < 0 : copyRank(a, 'tp_rank') < copyRank(b, 'tp_rank');
}

export interface HeadPod {
  readonly pod: string;
  /** The replica group this pod leads (LWS group, RayCluster, PodSet, …). */
  readonly groupKey: string;
  /** The whole group is ready (leader and every worker). Only ready groups count toward totals. */
  readonly ready: boolean;
  /**
   * A pod of the group other than its head, read because the pool's engine serves from every pod
   * (ranksOn: all): its ranks join the head's, and the group counts only when all its pods answer.
   */
  readonly member?: boolean;
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
  /** DP ranks one group must report (level and rate kinds); absent when not checked. */
  readonly expectedRanks?: number;
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

/** The label that names the metric of a rate, ratio or bucket series (rate() drops `__name__`). */
export const METRIC_LABEL = 'kvpa_metric';

export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

export function kindNames(kind: SignalKind): string[] {
  const spec = SIGNAL_KINDS[kind];
  const preferred = Object.values(spec.preferred ?? {}).map((p) => p.name);
  return [...new Set([...preferred, ...Object.values(spec.names).filter((n): n is string => n !== null)])];
}

/** The preferred series of a kind (deduplicated by name), each with its label matcher. */
function preferredSeries(kind: SignalKind): PreferredSeries[] {
  const byName = new Map<string, PreferredSeries>();
  for (const p of Object.values(SIGNAL_KINDS[kind].preferred ?? {})) byName.set(p.name, p);
  return [...byName.values()];
}

/**
 * False for a series of a preferred name whose label holds another value. The query's matcher selects
 * the value and its `max by` then drops the label, so an absent label is the selected one.
 */
function readsSeries(kind: SignalKind, metric: string, labels: Readonly<Record<string, string>>): boolean {
  for (const p of preferredSeries(kind)) {
    if (p.name !== metric || p.label === undefined) continue;
    return labels[p.label] === undefined || labels[p.label] === p.value;
  }
  return true;
}

/**
 * One instant query for one signal kind, covering every pool, every dialect and every rank.
 *
 * It returns one value series per (pod, rank, name) (`kvpa_field="value"`, keeping `__name__` so the
 * dialect is known) and one timestamp series per pod (`kvpa_field="ts"`): the scrape time of the
 * pod's OLDEST series, since a pod is only as fresh as its stalest rank. An instant query otherwise
 * reports the evaluation time, and `timestamp()` keeps the scrape time only when applied straight to
 * a selector, hence the second half. `max by` collapses labels that are not ranks (model_name,
 * moe_ep_rank, a pod scraped by two jobs): those are copies of one scheduler's state, not more load.
 * A gauge keeps SGLang's `pp_rank` and `tp_rank` apart so that `attribute` reads the same copy of each
 * `dp_rank` as the direct scrape (sglangCopyBefore), not the largest.
 */
export function buildQuery(kind: SignalKind, scope: QueryScope): string {
  const spec = SIGNAL_KINDS[kind];
  const names = kindNames(kind);
  const ns = scope.namespaces.map(escapeRegex).sort().join('|');
  // SGLang with priority scheduling writes each queue's total under `priority=""` and one series per
  // priority beside it (sgl-project/sglang python/sglang/srt/observability/metrics_collector.py
  // `_log_gauge_queue_count`): only the totals are read. `priority=""` also matches series without
  // the label, so no other engine's series is lost. Only the gauges (level kinds) carry it.
  const matchers = [`namespace=~"${escapeString(ns)}"`];
  if (spec.shape === 'level') matchers.push('priority=""');
  if (scope.extraMatchers) matchers.push(scope.extraMatchers);
  const m = matchers.join(',');
  // Histogram names need no selector of their own: each is queried apart (kindNames lists them all).
  const preferred = spec.shape === 'level' ? preferredSeries(kind).filter((p) => p.label !== undefined) : [];
  const plainNames = names.filter((n) => !preferred.some((p) => p.name === n));
  const sampleNames = spec.shape === 'buckets' ? plainNames.map((n) => `${n}_bucket`) : plainNames;
  const plain =
    sampleNames.length === 1
      ? `${sampleNames[0]}{${m}}`
      : `{__name__=~"${escapeString(sampleNames.map(escapeRegex).join('|'))}",${m}}`;
  // A preferred series has its own label matcher, so it is a selector of its own, joined with `or`.
  const selectors = [
    ...preferred.map((p) => `${p.name}{${m},${p.label}="${escapeString(p.value ?? '')}"}`),
    plain,
  ];
  const selector = selectors.join(' or ');
  const by = ['namespace', 'pod', ...RANK_LABELS].join(', ');
  const w = `[${scope.rateWindowSeconds}s]`;
  // rate() drops __name__; each name's vector is tagged with `kvpa_metric` so the dialect stays known
  // and `or` keeps both names of one pod apart.
  const tagged = (name: string, expr: string) =>
    `label_replace(${expr}, "${METRIC_LABEL}", "${escapeString(name)}", "", "")`;
  let value: string;
  switch (spec.shape) {
    case 'level':
      value = `max by (__name__, ${by}, pp_rank, tp_rank) (${selector})`;
      break;
    case 'rate':
      value = names.map((n) => tagged(n, `max by (${by}) (rate(${n}{${m}}${w}))`)).join(' or ');
      break;
    case 'ratio': {
      // Summed over the pod's ranks before dividing: the pod's mean tokens per finished request.
      const pairs = new Map<string, string>();
      for (const d of Object.keys(spec.names) as EngineDialect[]) {
        const num = spec.names[d];
        const den = spec.per?.[d];
        if (num && den) pairs.set(num, den);
      }
      value = [...pairs]
        .map(([num, den]) =>
          tagged(
            num,
            `sum by (namespace, pod) (rate(${num}{${m}}${w})) / sum by (namespace, pod) (rate(${den}{${m}}${w}))`,
          ),
        )
        .join(' or ');
      break;
    }
    case 'buckets':
      value = names
        .map((n) => tagged(n, `sum by (namespace, pod, le) (rate(${n}_bucket{${m}}${w}))`))
        .join(' or ');
      break;
  }
  // timestamp() keeps the scrape time only applied straight to a selector: one per selector.
  const ts = `min by (namespace, pod) (${selectors.map((x) => `timestamp(${x})`).join(' or ')})`;
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
  /** Set when the group cannot be read whole (a member pod without series): the gate counts it missing. */
  readonly missingReason?: string;
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
  const spec = SIGNAL_KINDS[kind];
  for (const d of DIALECT_PREFERENCE[setting])
    if (spec.names[d] === metric || spec.preferred?.[d]?.name === metric) return d;
  return null;
}

interface PodAcc {
  /** metric name → rank → value */
  readonly values: Map<string, Map<string, number>>;
  /** `metric rank` → the labels of the SGLang copy kept there (sglangCopyBefore). */
  readonly copies: Map<string, Readonly<Record<string, string>>>;
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
  const buckets = SIGNAL_KINDS[kind].shape === 'buckets';
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
      acc = { values: new Map(), copies: new Map(), ts: Number.NaN };
      perPod.set(key, acc);
    }
    if (field === 'ts') {
      acc.ts = s.value;
    } else {
      // A histogram's "ranks" are its buckets (summed over the pod's ranks in the query).
      const rank = buckets ? (s.labels.le ?? '') : rankOf(s.labels);
      const metric = s.labels.__name__ ?? s.labels[METRIC_LABEL] ?? fallbackName;
      if (!readsSeries(kind, metric, s.labels)) continue;
      if (s.labels.pp_rank !== undefined || s.labels.tp_rank !== undefined) {
        const slot = `${metric} ${rank}`;
        const kept = acc.copies.get(slot);
        if (kept !== undefined && !sglangCopyBefore(s.labels, kept)) continue;
        acc.copies.set(slot, s.labels);
      }
      let ranks = acc.values.get(metric);
      if (!ranks) {
        ranks = new Map();
        acc.values.set(metric, ranks);
      }
      ranks.set(rank, s.value);
    }
  }

  const pools = new Map<string, Map<string, GroupSamples>>();
  /** poolKey → groupKey → the member pods' answers (ranksOn: all). */
  const memberAnswers = new Map<string, Map<string, GroupSamples[]>>();
  const otherDialect = new Map<string, string[]>();
  for (const [key, acc] of perPod) {
    for (const entry of index.byPod.get(key) ?? []) {
      const reg = index.pools[entry.pool];
      if (!reg) continue;
      const chosen = pickDialect(kind, reg.engine, acc);
      if (!chosen && entry.head.member) continue; // the group will lack this pod: judged below
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
      if (entry.head.member) {
        const byGroup = memberAnswers.get(reg.poolKey) ?? new Map<string, GroupSamples[]>();
        memberAnswers.set(reg.poolKey, byGroup);
        byGroup.set(group.groupKey, [...(byGroup.get(group.groupKey) ?? []), group]);
        continue;
      }
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
  for (const reg of index.pools) {
    const groups = pools.get(reg.poolKey);
    if (groups === undefined || !reg.heads.some((h) => h.member)) continue;
    for (const [groupKey, head] of groups)
      groups.set(groupKey, wholeGroup(kind, reg, head, memberAnswers.get(reg.poolKey)?.get(groupKey) ?? []));
  }
  const out = new Map<string, PoolSamples>();
  for (const [poolKey, groups] of pools) out.set(poolKey, { groups });
  return { pools: out, stats: { nonHeadSeries, unlabelledSeries, otherDialect } };
}

/**
 * A group read from every pod (ranksOn: all): the head's answer with its members' ranks added, each rank
 * named by its pod. A member pod that gave no series leaves the group missing, never a partial sum. A
 * histogram's buckets are summed across pods; a ratio (tokens per request) is the head's alone, as it is
 * a per-pod mean, not a quantity that adds up.
 */
function wholeGroup(
  kind: SignalKind,
  reg: PoolRegistration,
  head: GroupSamples,
  members: readonly GroupSamples[],
): GroupSamples {
  const shape = SIGNAL_KINDS[kind].shape;
  if (shape === 'ratio') return head;
  const expected = reg.heads.filter((h) => h.member && h.groupKey === head.groupKey).map((h) => h.pod);
  const answered = new Set(members.map((m) => m.pod));
  const silent = expected.filter((pod) => !answered.has(pod));
  if (silent.length > 0) {
    const shown = silent.slice(0, 3).join(', ');
    return {
      ...head,
      ranks: [],
      missingReason: `ranksOn all: ${silent.length} of its ${expected.length + 1} pods without series (${shown})`,
    };
  }
  if (shape === 'buckets') {
    const byLe = new Map<string, RankSample>();
    for (const g of [head, ...members])
      for (const r of g.ranks) {
        const prior = byLe.get(r.rank);
        byLe.set(
          r.rank,
          prior === undefined
            ? r
            : {
                rank: r.rank,
                value: prior.value + r.value,
                timestampSeconds: Math.min(prior.timestampSeconds, r.timestampSeconds),
              },
        );
      }
    return { ...head, ranks: [...byLe.values()] };
  }
  const named = (g: GroupSamples) =>
    g.ranks.map((r) => ({ ...r, rank: r.rank === '' ? g.pod : `${g.pod}/${r.rank}` }));
  return { ...head, ranks: [...named(head), ...members.flatMap(named)] };
}

function pickDialect(
  kind: SignalKind,
  setting: EngineSetting,
  acc: PodAcc,
): { metric: string; dialect: EngineDialect; ranks: Map<string, number> } | null {
  const spec = SIGNAL_KINDS[kind];
  for (const d of DIALECT_PREFERENCE[setting]) {
    for (const name of [spec.preferred?.[d]?.name ?? null, spec.names[d]]) {
      const ranks = name !== null ? acc.values.get(name) : undefined;
      if (name !== null && ranks) return { metric: name, dialect: d, ranks };
    }
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
