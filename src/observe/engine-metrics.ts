// Extracts kvpa's per-pod engine signals from a parsed `/metrics` page (vLLM, SGLang, TensorRT-LLM,
// or Dynamo's own frontend and worker series).
//
// The contract comes from vLLM's metric registration (vllm-project/vllm vllm/v1/metrics/loggers.py) and
// SGLang's (sgl-project/sglang python/sglang/srt/metrics/collector.py):
// - vLLM `vllm:kv_cache_usage_perc` is a FRACTION 0–1 despite its name (HELP: "1 means 100
//   percent usage"); its pre-0.9 name is `vllm:gpu_cache_usage_perc`. The new name wins when
//   both are present.
// - Every V1 series carries `engine="<DP rank>"`: one pod serves one series per rank.
// - Waiting: `vllm:num_requests_waiting_by_reason{reason="capacity"}` where exported (on a P/D
//   decode pod the `deferred` waits are KV transfers, not capacity demand), else
//   `vllm:num_requests_waiting`.
// - SGLang: `sglang:token_usage` (KV fraction), `sglang:num_queue_reqs`, `sglang:num_running_reqs`.
//   Newer releases register them in python/sglang/srt/observability/metrics_collector.py with the
//   labels `model_name, engine_type, tp_rank, pp_rank, moe_ep_rank` (+ `priority`, `dp_rank`); see
//   sglangSchedulerSeries for which of those series are copies.
// - TensorRT-LLM (NVIDIA/TensorRT-LLM tensorrt_llm/metrics/collector.py, `MetricsCollector`):
//   `trtllm_kv_cache_utilization` = usedNumBlocks / maxNumBlocks (a fraction 0–1),
//   `trtllm_num_requests_waiting` (numQueuedRequests), `trtllm_num_requests_running`
//   (numActiveRequests), with the server's labels (e.g. model_name, engine_type) and no rank label.
//   They need `enable_iter_perf_stats`. Dynamo's TRT-LLM worker passes them through on its system
//   port under the same `trtllm_` names (older Dynamo releases renamed them `trtllm:…`, not read).
// - Dynamo: which series, and why a shared frontend's belong to no group: DYNAMO_WORKER_INFLIGHT
//   in prometheus-join.ts; the worker's KV use: DYNAMO_WORKER_KV there.
// Quality gate: a value that is NaN, ±Inf or outside its range is rejected with a reason and
// never replaced by 0; a metric that is absent is `missing`, never 0 (keda#3065).

import type { HistogramSnapshot } from '../decide/histogram.ts';
import type { Labels, ParseError, ParseResult, Sample } from './exposition.ts';
import {
  COUNT_MAX,
  DYNAMO_WORKER_INFLIGHT,
  DYNAMO_WORKER_KV,
  SGLANG_COPY_LABELS,
  sglangCopyBefore,
  VLLM_CAPACITY_WAITING,
} from './prometheus-join.ts';

export type EngineDialect = 'vllm' | 'sglang' | 'trtllm' | 'dynamo';
export type DialectSetting = EngineDialect | 'auto';

const DIALECTS: readonly EngineDialect[] = ['vllm', 'sglang', 'trtllm', 'dynamo'];

export interface RankValue {
  readonly labels: Labels;
  readonly value: number;
}

export type SignalValue =
  | {
      readonly state: 'ok';
      readonly value: number;
      /** Sample name the value came from (tells a fallback name apart). */
      readonly metric: string;
      /** One entry per series (DP rank), for per-rank rates and imbalance. */
      readonly ranks: readonly RankValue[];
    }
  | { readonly state: 'missing'; readonly reason: string }
  | { readonly state: 'outOfRange'; readonly reason: string };

export type SignalName =
  | 'kvCacheUsageFraction'
  | 'kvCacheUsageMaxFraction'
  | 'requestsWaiting'
  | 'requestsWaitingAll'
  | 'requestsRunning'
  | 'preemptionsTotal'
  | 'promptTokensTotal'
  | 'generationTokensTotal'
  | 'promptRequestsTotal'
  | 'generationRequestsTotal';

export interface Rejection {
  readonly signal: SignalName;
  readonly metric: string;
  readonly labels: Labels;
  readonly value: number;
  readonly reason: string;
}

export interface EngineSignals {
  /** `undefined` when auto-detection found no (or both) engines. */
  readonly dialect: EngineDialect | undefined;
  /** Mean over DP ranks: the share of the pod's whole KV pool in use. */
  readonly kvCacheUsageFraction: SignalValue;
  /** Max over DP ranks (vLLM serves one series per rank): one hot rank is not averaged away. */
  readonly kvCacheUsageMaxFraction: SignalValue;
  /** Sum over DP ranks: requests waiting for capacity (the scaling signal). */
  readonly requestsWaiting: SignalValue;
  /**
   * Sum over DP ranks of every waiting request, whatever it waits for (vLLM's deferred KV transfers too):
   * what a drain must let finish before the group goes.
   */
  readonly requestsWaitingAll: SignalValue;
  /** Sum over DP ranks. */
  readonly requestsRunning: SignalValue;
  /** Sum over DP ranks of a counter; use a rate, never the level. */
  readonly preemptionsTotal: SignalValue;
  /** Every rejected series value, with its reason (the quality gate's count). */
  readonly rejections: readonly Rejection[];
}

export interface ExtractOptions {
  readonly dialect: DialectSetting;
  /** Keep only series with this `model_name` (a pod may serve several names). */
  readonly modelName?: string;
  /**
   * DP ranks the pod should report (e.g. `--data-parallel-size-local`). With hybrid or external
   * DP load balancing each node serves only its own ranks, so a head-only scrape can see fewer
   * series than the group runs; a sum over a partial set would under-count the queue.
   */
  readonly expectedRanks?: number;
}

/** `counter`: a monotonic total, finite and at most 2^53 (beyond it float counts skip integers). */
type Range = 'fraction' | 'count' | 'counter';
type Aggregate = 'mean' | 'max' | 'sum';

interface SignalSpec {
  /** Candidate sample names, preferred first. */
  readonly names: readonly string[];
  readonly range: Range;
  readonly aggregate: Aggregate;
  /** Why an engine has no such metric (names empty). */
  readonly absentReason?: string;
  /**
   * The series of one sample name that carry the signal, one per DP rank (default: all of them).
   * Applied before the name is judged present, so a name with no selected series falls back.
   */
  readonly select?: (samples: readonly Sample[]) => readonly Sample[];
}

/** The gauge and preemption signals; the work counters are read by extractEngineWork. */
type GaugeSignal = Exclude<
  SignalName,
  'promptTokensTotal' | 'generationTokensTotal' | 'promptRequestsTotal' | 'generationRequestsTotal'
>;
type Specs = Readonly<Record<GaugeSignal, SignalSpec>>;
/** A dialect's specs as written: every waiting request is the waiting signal unless it says otherwise. */
type DialectSpecs = Omit<Specs, 'requestsWaitingAll'> & { readonly requestsWaitingAll?: SignalSpec };

function withWaitingAll(specs: DialectSpecs): Specs {
  return { ...specs, requestsWaitingAll: specs.requestsWaitingAll ?? specs.requestsWaiting };
}

const VLLM_KV_NAMES = ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'] as const;

// Aggregation rules over DP ranks (one series per `engine` label value):
// - KV usage, mean: ranks of one pod run the same model with the same KV pool size, so the
//   mean is the fraction of the pod's total KV in use, the quantity that capacity scales with.
//   The max is exported beside it because a mean hides one saturated rank; the policy decides
//   which one to act on.
// - waiting and running, sum: the pod is the unit the router feeds and we scale, so its backlog
//   and its in-flight work are the totals over its engines.
// - preemptions, sum: each rank's counter is monotonic, so the sum is too while the rank set is
//   stable; per-rank values stay in `ranks` for a reset-safe rate.
const VLLM_SPECS: DialectSpecs = {
  kvCacheUsageFraction: { names: VLLM_KV_NAMES, range: 'fraction', aggregate: 'mean' },
  kvCacheUsageMaxFraction: { names: VLLM_KV_NAMES, range: 'fraction', aggregate: 'max' },
  requestsWaiting: {
    names: [VLLM_CAPACITY_WAITING.name, 'vllm:num_requests_waiting'],
    range: 'count',
    aggregate: 'sum',
    select: vllmCapacityWaiting,
  },
  requestsWaitingAll: { names: ['vllm:num_requests_waiting'], range: 'count', aggregate: 'sum' },
  requestsRunning: { names: ['vllm:num_requests_running'], range: 'count', aggregate: 'sum' },
  preemptionsTotal: { names: ['vllm:num_preemptions_total'], range: 'counter', aggregate: 'sum' },
};

/**
 * One series per DP rank from SGLang's scheduler gauges (sgl-project/sglang
 * python/sglang/srt/observability/metrics_collector.py, `SchedulerMetricsCollector.init_new` and
 * `_log_gauge_queue_count`; python/sglang/srt/managers/scheduler.py `recv_requests`):
 * - `priority`: with priority scheduling the total is written under `priority=""` AND each priority
 *   under `priority="<p>"`, so summing every series counts the queue twice. Only series without the
 *   label or with `priority=""` are kept.
 * - `tp_rank`: metrics are enabled on the attention-TP leader (`attn_tp_rank == 0`), one per DP rank
 *   (all ranks with `--enable-metrics-for-all-schedulers`); TP peers hold copies of one scheduler's
 *   state. The lowest `tp_rank` of each DP rank is kept: that is the attention-TP leader.
 * - `pp_rank`: each pipeline stage runs a scheduler whose requests are those the previous stage
 *   forwarded (`point_to_point_pyobj` from `pp_rank - 1`), so stages hold the same queue: copies,
 *   not more load. The lowest `pp_rank` (stage 0, fed by the tokenizer) is kept.
 * - `moe_ep_rank` follows the TP rank and is collapsed with it. `dp_rank` and every other label stay
 *   (the sum runs over them).
 */
export function sglangSchedulerSeries(samples: readonly Sample[]): Sample[] {
  const best = new Map<string, Sample>();
  for (const s of samples) {
    const priority = s.labels.priority;
    if (priority !== undefined && priority !== '') continue;
    const key = Object.keys(s.labels)
      .filter((k) => !(SGLANG_COPY_LABELS as readonly string[]).includes(k))
      .sort()
      .map((k) => `${k}=${JSON.stringify(s.labels[k])}`)
      .join(',');
    const prior = best.get(key);
    if (!prior || sglangCopyBefore(s.labels, prior.labels)) best.set(key, s);
  }
  return [...best.values()];
}

/**
 * The waiting series that mean demand: of `vllm:num_requests_waiting_by_reason`, the `capacity` ones
 * only (VLLM_CAPACITY_WAITING says why); every series of the other names.
 */
export function vllmCapacityWaiting(samples: readonly Sample[]): readonly Sample[] {
  const { name, label, value } = VLLM_CAPACITY_WAITING;
  return samples.filter((s) => s.name !== name || s.labels[label] === value);
}

const SGLANG_SPECS: DialectSpecs = {
  kvCacheUsageFraction: {
    names: ['sglang:token_usage'],
    range: 'fraction',
    aggregate: 'mean',
    select: sglangSchedulerSeries,
  },
  kvCacheUsageMaxFraction: {
    names: ['sglang:token_usage'],
    range: 'fraction',
    aggregate: 'max',
    select: sglangSchedulerSeries,
  },
  requestsWaiting: {
    names: ['sglang:num_queue_reqs'],
    range: 'count',
    aggregate: 'sum',
    select: sglangSchedulerSeries,
  },
  requestsRunning: {
    names: ['sglang:num_running_reqs'],
    range: 'count',
    aggregate: 'sum',
    select: sglangSchedulerSeries,
  },
  preemptionsTotal: {
    names: [],
    range: 'counter',
    aggregate: 'sum',
    absentReason: 'SGLang exports no preemption counter (its retraction metrics are gauges)',
  },
};

const TRTLLM_SPECS: DialectSpecs = {
  kvCacheUsageFraction: { names: ['trtllm_kv_cache_utilization'], range: 'fraction', aggregate: 'mean' },
  kvCacheUsageMaxFraction: { names: ['trtllm_kv_cache_utilization'], range: 'fraction', aggregate: 'max' },
  requestsWaiting: { names: ['trtllm_num_requests_waiting'], range: 'count', aggregate: 'sum' },
  requestsRunning: { names: ['trtllm_num_requests_running'], range: 'count', aggregate: 'sum' },
  preemptionsTotal: {
    names: [],
    range: 'counter',
    aggregate: 'sum',
    absentReason: 'TensorRT-LLM exports no preemption counter',
  },
};

/** Of the worker's in-flight series, the `generate` endpoint's (DYNAMO_WORKER_INFLIGHT); others pass. */
export function dynamoGenerateSeries(samples: readonly Sample[]): readonly Sample[] {
  const { name, label, value } = DYNAMO_WORKER_INFLIGHT;
  return samples.filter((s) => s.name !== name || s.labels[label] === value);
}

const DYNAMO_SPECS: DialectSpecs = {
  // The worker's gauge, one series per dp_rank: the frontend exports no KV use.
  kvCacheUsageFraction: { names: [DYNAMO_WORKER_KV], range: 'fraction', aggregate: 'mean' },
  kvCacheUsageMaxFraction: { names: [DYNAMO_WORKER_KV], range: 'fraction', aggregate: 'max' },
  requestsWaiting: { names: ['dynamo_frontend_queued_requests'], range: 'count', aggregate: 'sum' },
  // The worker's own count first: the frontend's covers requests it routed to any group.
  requestsRunning: {
    names: [DYNAMO_WORKER_INFLIGHT.name, 'dynamo_frontend_inflight_requests'],
    range: 'count',
    aggregate: 'sum',
    select: dynamoGenerateSeries,
  },
  preemptionsTotal: {
    names: [],
    range: 'counter',
    aggregate: 'sum',
    absentReason: 'Dynamo exports no preemption counter',
  },
};

const SPECS: Readonly<Record<EngineDialect, Specs>> = {
  vllm: withWaitingAll(VLLM_SPECS),
  sglang: withWaitingAll(SGLANG_SPECS),
  trtllm: withWaitingAll(TRTLLM_SPECS),
  dynamo: withWaitingAll(DYNAMO_SPECS),
};
const SIGNALS: readonly GaugeSignal[] = [
  'kvCacheUsageFraction',
  'kvCacheUsageMaxFraction',
  'requestsWaiting',
  'requestsRunning',
  'preemptionsTotal',
];

/** Indexes samples by sample name (counters are looked up as `…_total`, never `…_created`). */
function indexSamples(parsed: ParseResult): Map<string, Sample[]> {
  const index = new Map<string, Sample[]>();
  for (const f of parsed.families) {
    for (const s of f.samples) {
      const list = index.get(s.name);
      if (list) list.push(s);
      else index.set(s.name, [s]);
    }
  }
  return index;
}

/** How each dialect's names begin, for messages. */
const DIALECT_PREFIXES: Readonly<Record<EngineDialect, string>> = {
  vllm: 'vllm:',
  sglang: 'sglang:',
  trtllm: 'trtllm_',
  dynamo: 'dynamo_frontend_',
};

/** The `dynamo_component_*` names a Dynamo worker exports beside its engine's series. */
const DYNAMO_WORKER_NAMES: ReadonlySet<string> = new Set([DYNAMO_WORKER_INFLIGHT.name, DYNAMO_WORKER_KV]);

/**
 * The names that identify a dialect. Dynamo by its frontend's only: its workers export
 * `dynamo_component_*` beside their engine's series, and those pods are the engine's dialect.
 */
function coreNames(dialect: EngineDialect): string[] {
  const specs = SPECS[dialect];
  return [...new Set(SIGNALS.flatMap((s) => specs[s].names))].filter((n) => !DYNAMO_WORKER_NAMES.has(n));
}

/**
 * Picks the dialect from the engines' core metric names. Both present is a conflict, not a
 * guess: a sidecar that re-exports another engine's metrics must be configured explicitly.
 */
export function detectDialect(
  parsed: ParseResult,
): { dialect: EngineDialect; reason?: undefined } | { dialect: undefined; reason: string } {
  const index = indexSamples(parsed);
  const has = (d: EngineDialect) => coreNames(d).some((n) => (index.get(n)?.length ?? 0) > 0);
  const found = DIALECTS.filter(has);
  const [only] = found;
  if (found.length === 1 && only !== undefined) return { dialect: only };
  if (found.length > 1) {
    return {
      dialect: undefined,
      reason: `${found.map((d) => DIALECT_PREFIXES[d]).join(' and ')} signals are present; configure the dialect`,
    };
  }
  return {
    dialect: undefined,
    reason: `no ${DIALECTS.map((d) => DIALECT_PREFIXES[d]).join(', ')} engine signal in the scrape`,
  };
}

/** Why one value fails its range, or `undefined` when it passes. */
export function rangeProblem(value: number, range: Range): string | undefined {
  if (Number.isNaN(value)) return 'value is NaN';
  if (!Number.isFinite(value)) return `value is ${value > 0 ? '+Inf' : '-Inf'}`;
  if (range === 'fraction') {
    // AIBrix's mock app reports 0–100 here (vllm-project/aibrix development/app/app.py); dividing
    // by 100 would hide a misconfigured source, so it is rejected instead.
    if (value < 0 || value > 1) return `fraction ${value} is outside [0, 1]`;
    return undefined;
  }
  if (value < 0) return `count ${value} is negative`;
  if (!Number.isInteger(value)) return `count ${value} is not an integer`;
  if (range === 'counter') {
    return value > Number.MAX_SAFE_INTEGER ? `counter ${value} is above 2^53` : undefined;
  }
  if (value > COUNT_MAX) return `count ${value} is above ${COUNT_MAX} (no engine holds that many)`;
  return undefined;
}

function aggregate(values: readonly number[], how: Aggregate): number {
  if (how === 'sum') return values.reduce((a, b) => a + b, 0);
  // A loop, not Math.max(...values): a spread of a 130,000-series page overflows the call stack.
  if (how === 'max') return values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  return keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}`;
}

/** Parser errors on lines for `name`: they turn "missing" into a more useful reason. */
function parseErrorsFor(errors: readonly ParseError[], name: string): ParseError[] {
  return errors.filter(
    (e) =>
      e.kind === 'line' &&
      e.line.trimStart().startsWith(name) &&
      /^[{ \t]/.test(e.line.trimStart().slice(name.length)),
  );
}

function extractSignal(
  signal: SignalName,
  spec: SignalSpec,
  index: Map<string, Sample[]>,
  parsed: ParseResult,
  options: ExtractOptions,
  rejections: Rejection[],
): SignalValue {
  if (spec.names.length === 0) return { state: 'missing', reason: spec.absentReason ?? 'not exported' };
  for (const metric of spec.names) {
    const indexed = index.get(metric) ?? [];
    const all = spec.select ? spec.select(indexed) : indexed;
    if (all.length === 0) continue; // fall back to the next (older) name
    const series =
      options.modelName === undefined ? all : all.filter((s) => s.labels.model_name === options.modelName);
    if (series.length === 0) {
      const found = [...new Set(all.map((s) => s.labels.model_name ?? '(none)'))].join(', ');
      return {
        state: 'missing',
        reason: `${metric} has no series with model_name="${options.modelName}" (found: ${found})`,
      };
    }
    if (options.expectedRanks !== undefined && series.length !== options.expectedRanks) {
      const counted = `${metric} has ${series.length} series, expected ${options.expectedRanks} DP ranks`;
      return series.length < options.expectedRanks
        ? { state: 'missing', reason: counted }
        : { state: 'outOfRange', reason: counted };
    }
    // All ranks or nothing: dropping a bad rank would under-count a sum or bias a mean,
    // which is the same lie as turning it into 0.
    const bad: string[] = [];
    for (const s of series) {
      const problem = rangeProblem(s.value, spec.range);
      if (problem) {
        bad.push(`${metric}${formatLabels(s.labels)}: ${problem}`);
        rejections.push({ signal, metric, labels: s.labels, value: s.value, reason: problem });
      }
    }
    if (bad.length > 0) {
      const more = bad.length > 1 ? ` (and ${bad.length - 1} more)` : '';
      return { state: 'outOfRange', reason: `${bad[0]}${more}` };
    }
    return {
      state: 'ok',
      value: aggregate(
        series.map((s) => s.value),
        spec.aggregate,
      ),
      metric,
      ranks: series.map((s) => ({ labels: s.labels, value: s.value })),
    };
  }
  const names = spec.names.join(' or ');
  const lineErrors = spec.names.flatMap((n) => parseErrorsFor(parsed.errors, n));
  const first = lineErrors[0];
  if (first) {
    return {
      state: 'missing',
      reason: `no valid sample of ${names}: line ${first.lineNumber} was rejected (${first.reason})`,
    };
  }
  return { state: 'missing', reason: `no sample of ${names} in the scrape` };
}

/** Every signal `missing` for one reason (no engine detected, or the scrape itself failed). */
export function missingSignals(reason: string, dialect?: EngineDialect): EngineSignals {
  const missing: SignalValue = { state: 'missing', reason };
  return {
    dialect,
    kvCacheUsageFraction: missing,
    kvCacheUsageMaxFraction: missing,
    requestsWaiting: missing,
    requestsWaitingAll: missing,
    requestsRunning: missing,
    preemptionsTotal: missing,
    rejections: [],
  };
}

/** Extracts all kvpa signals for one pod. Pure; never throws. */
export function extractEngineSignals(parsed: ParseResult, options: ExtractOptions): EngineSignals {
  let dialect: EngineDialect | undefined;
  let dialectReason = '';
  if (options.dialect === 'auto') {
    const detected = detectDialect(parsed);
    dialect = detected.dialect;
    dialectReason = detected.reason ?? '';
  } else {
    dialect = options.dialect;
  }

  const rejections: Rejection[] = [];
  if (dialect === undefined) return missingSignals(dialectReason);
  const specs = SPECS[dialect];
  const index = indexSamples(parsed);
  const get = (name: GaugeSignal) => extractSignal(name, specs[name], index, parsed, options, rejections);
  const kvCacheUsageFraction = get('kvCacheUsageFraction');
  // The max reads the same series: record their rejections once, not twice.
  const kvCacheUsageMaxFraction = extractSignal(
    'kvCacheUsageMaxFraction',
    specs.kvCacheUsageMaxFraction,
    index,
    parsed,
    options,
    [],
  );
  const requestsWaiting = get('requestsWaiting');
  // Every wait often reads the very series of the waiting signal: count its rejections once.
  const allRejections: Rejection[] = [];
  const requestsWaitingAll = extractSignal(
    'requestsWaitingAll',
    specs.requestsWaitingAll,
    index,
    parsed,
    options,
    allRejections,
  );
  const waitingNames = new Set(rejections.filter((r) => r.signal === 'requestsWaiting').map((r) => r.metric));
  for (const r of allRejections) if (!waitingNames.has(r.metric)) rejections.push(r);
  return {
    dialect,
    kvCacheUsageFraction,
    kvCacheUsageMaxFraction,
    requestsWaiting,
    requestsWaitingAll,
    requestsRunning: get('requestsRunning'),
    preemptionsTotal: get('preemptionsTotal'),
    rejections,
  };
}

/**
 * A pod's work counters and latency histograms (the direct scrape's work signals), each summed over DP ranks.
 * - Tokens served: `vllm:prompt_tokens_total` / `vllm:generation_tokens_total` (vllm-project/vllm
 *   vllm/v1/metrics/loggers.py); `sglang:prompt_tokens_total` / `sglang:generation_tokens_total`
 *   (sgl-project/sglang python/sglang/srt/metrics/collector.py).
 * - Requests finished, the denominator of the mean tokens per request: the `_count` of vLLM's
 *   `vllm:request_prompt_tokens` / `vllm:request_generation_tokens` histograms; SGLang's
 *   `sglang:num_requests_total`.
 * - TTFT and ITL histograms: `vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds` (older
 *   vLLM: `vllm:time_per_output_token_seconds`); SGLang's `sglang:time_to_first_token_seconds`,
 *   `sglang:inter_token_latency_seconds` (older SGLang: `sglang:time_per_output_token_seconds`). Absent or
 *   malformed is undefined (the guard is off), never 0.
 */
export interface EngineWork {
  readonly promptTokensTotal: SignalValue;
  readonly generationTokensTotal: SignalValue;
  readonly promptRequestsTotal: SignalValue;
  readonly generationRequestsTotal: SignalValue;
  readonly ttft?: HistogramSnapshot;
  readonly itl?: HistogramSnapshot;
}

const WORK_NAMES: Readonly<
  Record<
    EngineDialect,
    Readonly<
      Record<
        'promptTokensTotal' | 'generationTokensTotal' | 'promptRequestsTotal' | 'generationRequestsTotal',
        readonly string[]
      >
    >
  >
> = {
  vllm: {
    promptTokensTotal: ['vllm:prompt_tokens_total'],
    generationTokensTotal: ['vllm:generation_tokens_total'],
    promptRequestsTotal: ['vllm:request_prompt_tokens_count'],
    generationRequestsTotal: ['vllm:request_generation_tokens_count'],
  },
  sglang: {
    promptTokensTotal: ['sglang:prompt_tokens_total'],
    generationTokensTotal: ['sglang:generation_tokens_total'],
    promptRequestsTotal: ['sglang:num_requests_total'],
    generationRequestsTotal: ['sglang:num_requests_total'],
  },
  // Counted when a request finishes; finished requests are `trtllm_request_success_total` summed over
  // its `finished_reason` series.
  trtllm: {
    promptTokensTotal: ['trtllm_prompt_tokens_total'],
    generationTokensTotal: ['trtllm_generation_tokens_total'],
    promptRequestsTotal: ['trtllm_request_success_total'],
    generationRequestsTotal: ['trtllm_request_success_total'],
  },
  // The frontend's sequence-length histograms: `_sum` counts tokens, `_count` finished requests.
  dynamo: {
    promptTokensTotal: ['dynamo_frontend_input_sequence_tokens_sum'],
    generationTokensTotal: ['dynamo_frontend_output_tokens_total'],
    promptRequestsTotal: ['dynamo_frontend_input_sequence_tokens_count'],
    generationRequestsTotal: ['dynamo_frontend_output_sequence_tokens_count'],
  },
};

const HISTOGRAM_NAMES: Readonly<Record<EngineDialect, { ttft: readonly string[]; itl: readonly string[] }>> =
  {
    vllm: {
      ttft: ['vllm:time_to_first_token_seconds'],
      itl: ['vllm:inter_token_latency_seconds', 'vllm:time_per_output_token_seconds'],
    },
    sglang: {
      ttft: ['sglang:time_to_first_token_seconds'],
      // Current name first (sgl-project/sglang observability/metrics_collector.py), then the older.
      itl: ['sglang:inter_token_latency_seconds', 'sglang:time_per_output_token_seconds'],
    },
    trtllm: {
      ttft: ['trtllm_time_to_first_token_seconds'],
      itl: ['trtllm_time_per_output_token_seconds'],
    },
    dynamo: {
      ttft: ['dynamo_frontend_time_to_first_token_seconds'],
      itl: ['dynamo_frontend_inter_token_latency_seconds'],
    },
  };

/**
 * One histogram summed over the pod's series (ranks) by `le`; the first of `names` that parses wins.
 * Undefined when absent, without a +Inf bucket, or with a NaN, negative or non-monotonic count.
 */
export function extractHistogram(
  parsed: ParseResult,
  names: readonly string[],
  modelName?: string,
): HistogramSnapshot | undefined {
  const index = indexSamples(parsed);
  for (const name of names) {
    const all = index.get(`${name}_bucket`) ?? [];
    const series = modelName === undefined ? all : all.filter((s) => s.labels.model_name === modelName);
    if (series.length === 0) continue;
    const byLe = new Map<number, number>();
    let bad = false;
    for (const s of series) {
      const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le);
      if (s.labels.le === undefined || Number.isNaN(le) || !(s.value >= 0) || !Number.isFinite(s.value)) {
        bad = true;
        break;
      }
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    }
    const inf = byLe.get(Number.POSITIVE_INFINITY);
    if (bad || inf === undefined) return undefined;
    const upperBounds = [...byLe.keys()].filter((le) => Number.isFinite(le)).sort((a, b) => a - b);
    const cumulative = [...upperBounds.map((le) => byLe.get(le) as number), inf];
    for (let i = 1; i < cumulative.length; i++)
      if ((cumulative[i] as number) < (cumulative[i - 1] as number)) return undefined;
    let sum = 0;
    for (const s of index.get(`${name}_sum`) ?? [])
      if (modelName === undefined || s.labels.model_name === modelName) sum += s.value;
    return { upperBounds, cumulative, sum: Number.isFinite(sum) ? sum : 0 };
  }
  return undefined;
}

/** Extracts the work counters and latency histograms of one pod. Pure; never throws. */
export function extractEngineWork(parsed: ParseResult, options: ExtractOptions): EngineWork {
  let dialect: EngineDialect | undefined;
  let reason = '';
  if (options.dialect === 'auto') {
    const detected = detectDialect(parsed);
    dialect = detected.dialect;
    reason = detected.reason ?? '';
  } else dialect = options.dialect;
  if (dialect === undefined) {
    const missing: SignalValue = { state: 'missing', reason };
    return {
      promptTokensTotal: missing,
      generationTokensTotal: missing,
      promptRequestsTotal: missing,
      generationRequestsTotal: missing,
    };
  }
  const index = indexSamples(parsed);
  const names = WORK_NAMES[dialect];
  const get = (signal: keyof typeof names) =>
    extractSignal(
      signal,
      { names: names[signal], range: 'counter', aggregate: 'sum' },
      index,
      parsed,
      options,
      [],
    );
  const ttft = extractHistogram(parsed, HISTOGRAM_NAMES[dialect].ttft, options.modelName);
  const itl = extractHistogram(parsed, HISTOGRAM_NAMES[dialect].itl, options.modelName);
  return {
    promptTokensTotal: get('promptTokensTotal'),
    generationTokensTotal: get('generationTokensTotal'),
    promptRequestsTotal: get('promptRequestsTotal'),
    generationRequestsTotal: get('generationRequestsTotal'),
    ...(ttft !== undefined ? { ttft } : {}),
    ...(itl !== undefined ? { itl } : {}),
  };
}
