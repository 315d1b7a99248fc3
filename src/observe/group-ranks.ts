/**
 * One group's engine signals from several pods (ranksOn: all). With vLLM's hybrid or external
 * data-parallel load balancing each node's API server serves its local DP ranks
 * (docs.vllm.ai/en/latest/serving/data_parallel_deployment.html), so the group's queue is the sum over
 * all its pods, not the head's share. The rules are the per-pod ones, over the union of ranks:
 * queues, running requests and counters add up; KV use is the mean over ranks, its max the max.
 * A pod that did not answer makes the group missing: a partial sum would under-count it.
 */
import type { HistogramSnapshot } from '../decide/histogram.ts';
import type { EngineSignals, EngineWork, SignalValue } from './engine-metrics.ts';

/** One pod's scrape as the direct source reads it. */
export interface PodReading {
  readonly pod: string;
  readonly signals: EngineSignals;
  readonly work: EngineWork | undefined;
  /** Why the scrape failed, for the tenant; absent when it answered. */
  readonly error?: string;
}

type Rule = 'sum' | 'mean' | 'max';

/** Every pod's value over the union of its ranks (each ok value has one per series), or the first pod's reason why not. Ranks carry their pod in a `pod` label. */
export function mergeValues(values: readonly { pod: string; value: SignalValue }[], rule: Rule): SignalValue {
  const ranks: { labels: Record<string, string>; value: number }[] = [];
  let metric = '';
  for (const { pod, value } of values) {
    if (value.state !== 'ok') return { state: value.state, reason: `${pod}: ${value.reason}` };
    metric ||= value.metric;
    for (const r of value.ranks) ranks.push({ labels: { ...r.labels, pod }, value: r.value });
  }
  if (ranks.length === 0) return { state: 'missing', reason: 'no pod of the group was read' };
  let total = 0;
  let max = Number.NEGATIVE_INFINITY;
  for (const r of ranks) {
    total += r.value;
    if (r.value > max) max = r.value;
  }
  const value = rule === 'sum' ? total : rule === 'max' ? max : total / ranks.length;
  return { state: 'ok', value, metric, ranks };
}

/** Fewer ranks than expected is missing, more is out of range; other states pass as they are. */
export function checkRanks(value: SignalValue, expectedRanks: number | undefined): SignalValue {
  if (expectedRanks === undefined || value.state !== 'ok' || value.ranks.length === expectedRanks)
    return value;
  const n = value.ranks.length;
  return n < expectedRanks
    ? { state: 'missing', reason: `${n} of ${expectedRanks} expected DP ranks report ${value.metric}` }
    : {
        state: 'outOfRange',
        reason: `${n} DP ranks report ${value.metric}, expected ${expectedRanks}: check expectedRanks`,
      };
}

/** Buckets added across pods when every pod has the same bounds; otherwise no histogram (guard off). */
export function mergeHistograms(
  snapshots: readonly (HistogramSnapshot | undefined)[],
): HistogramSnapshot | undefined {
  const first = snapshots[0];
  if (first === undefined) return undefined;
  const cumulative = [...first.cumulative];
  let sum = first.sum;
  for (const h of snapshots.slice(1)) {
    if (h === undefined || h.upperBounds.length !== first.upperBounds.length) return undefined;
    if (h.upperBounds.some((b, i) => b !== first.upperBounds[i])) return undefined;
    h.cumulative.forEach((c, i) => {
      cumulative[i] = (cumulative[i] ?? 0) + c;
    });
    sum += h.sum;
  }
  return { upperBounds: first.upperBounds, cumulative, sum };
}

/**
 * The group as one reading: its pods' signals and work merged, ranks checked against expectedRanks.
 * The first pod is the head; a scrape error of any pod is the group's error.
 */
export function mergeGroup(pods: readonly PodReading[], expectedRanks?: number): PodReading {
  const head = pods[0];
  if (head === undefined) throw new RangeError('mergeGroup needs the head pod');
  if (pods.length === 1 && expectedRanks === undefined) return head;
  const failed = pods.find((p) => p.error !== undefined);
  const pick = (f: (s: EngineSignals) => SignalValue, rule: Rule) =>
    checkRanks(
      mergeValues(
        pods.map((p) => ({ pod: p.pod, value: f(p.signals) })),
        rule,
      ),
      expectedRanks,
    );
  const signals: EngineSignals = {
    dialect: head.signals.dialect,
    kvCacheUsageFraction: pick((s) => s.kvCacheUsageFraction, 'mean'),
    kvCacheUsageMaxFraction: pick((s) => s.kvCacheUsageMaxFraction, 'max'),
    requestsWaiting: pick((s) => s.requestsWaiting, 'sum'),
    requestsWaitingAll: pick((s) => s.requestsWaitingAll, 'sum'),
    requestsRunning: pick((s) => s.requestsRunning, 'sum'),
    preemptionsTotal: pick((s) => s.preemptionsTotal, 'sum'),
    rejections: pods.flatMap((p) => p.signals.rejections),
  };
  const works = pods.map((p) => p.work);
  const work = works.every((w): w is EngineWork => w !== undefined) ? mergeWork(pods, works) : undefined;
  return {
    pod: head.pod,
    signals,
    work,
    ...(failed?.error !== undefined ? { error: `${failed.pod}: ${failed.error}` } : {}),
  };
}

function mergeWork(pods: readonly PodReading[], works: readonly EngineWork[]): EngineWork {
  const sum = (f: (w: EngineWork) => SignalValue) =>
    mergeValues(
      works.map((w, i) => ({ pod: pods[i]?.pod ?? '', value: f(w) })),
      'sum',
    );
  const ttft = mergeHistograms(works.map((w) => w.ttft));
  const itl = mergeHistograms(works.map((w) => w.itl));
  return {
    promptTokensTotal: sum((w) => w.promptTokensTotal),
    generationTokensTotal: sum((w) => w.generationTokensTotal),
    promptRequestsTotal: sum((w) => w.promptRequestsTotal),
    generationRequestsTotal: sum((w) => w.generationRequestsTotal),
    ...(ttft !== undefined ? { ttft } : {}),
    ...(itl !== undefined ? { itl } : {}),
  };
}
