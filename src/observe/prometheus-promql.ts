/**
 * The pure half of a `promql` metric: the label rule its answer must follow, and the verdict on one
 * instant answer for one pool. The user's query runs as written (one instant query per pool per metric,
 * prometheus-source.ts), so nothing here rewrites it; the answer is checked instead.
 *
 * The rules, per kind:
 * - `perGroup`: every series carries the `namespace` and `pod` labels of one group's head pod, and each
 *   head pod has at most one series. Series are joined to heads exactly as the batched signals are
 *   (prometheus-join.ts `buildHeadIndex`: `namespace/pod`), and the quality gate (quality.ts) then sums
 *   the ready groups, with the same quorum and reporting-mean rules.
 * - `total`: exactly one series, the pool's total; its labels do not matter.
 * A series that breaks the rule, and a value that is NaN, ±Inf, negative or above PROMQL_VALUE_MAX, gives
 * `noData` or `outOfRange` with the rule in the reason: never a 0, so never a scale-down.
 *
 * Freshness: an instant query answers with the evaluation time, not the scrape time, so a promql value
 * is as fresh as Prometheus's lookback allows (`--query.lookback-delta`, 5 minutes by default; see
 * https://prometheus.io/docs/prometheus/latest/querying/basics/#staleness). A target that disappears gets
 * a staleness marker at once; one that freezes (same sample, old timestamp) is not caught here.
 */
import type { MetricSpec } from '../api/podautoscaler.ts';
import type { PoolRegistration, PromSample } from './prometheus-join.ts';
import {
  type GateCounts,
  type GateGroup,
  type GateResult,
  judgeSignal,
  PROMQL_VALUE_MAX,
  rejectValue,
} from './quality.ts';

export type PromqlKind = 'perGroup' | 'total';

/** A promql metric as the source runs it (the admission rules make these fields present). */
export interface PromqlMetric {
  readonly name: string;
  readonly query: string;
  readonly kind: PromqlKind;
}

/** The promql metric of a spec entry, or null for the batched types (and an incomplete promql entry). */
export function promqlMetricOf(metric: MetricSpec): PromqlMetric | null {
  if (metric.type !== 'promql' || metric.query === undefined || metric.kind === undefined) return null;
  return { name: metric.name ?? 'promql', query: metric.query, kind: metric.kind };
}

/** The label rule of a kind, in the words status, events and `kvpa validate` use. */
export function promqlLabelRule(kind: PromqlKind): string {
  return kind === 'perGroup'
    ? 'a perGroup promql query must return one series per group head pod, keeping its namespace and pod labels (e.g. max by (namespace, pod) (…))'
    : 'a total promql query must return exactly one series, the pool total (e.g. sum(…))';
}

/** The value rule of every promql answer (quality.ts rejectValue, range `promql`). */
const VALUE_RULE = `a promql value must be finite, ≥ 0 and ≤ ${PROMQL_VALUE_MAX}`;

const LIST_LIMIT = 3;

function shown(items: readonly string[]): string {
  const head = items.slice(0, LIST_LIMIT).join(', ');
  return items.length > LIST_LIMIT ? `${head} and ${items.length - LIST_LIMIT} more` : head;
}

function countsOf(pool: PoolRegistration, over: Partial<GateCounts> = {}): GateCounts {
  return {
    readyGroups: new Set(pool.heads.filter((h) => h.ready).map((h) => h.groupKey)).size,
    usableGroups: 0,
    missingGroups: 0,
    staleGroups: 0,
    outOfRangeGroups: 0,
    rejectedValues: 0,
    ...over,
  };
}

/** A total query's verdict: its one series' value through the gate's range check, else the rule broken. */
export function judgePromqlTotal(
  metric: PromqlMetric,
  samples: readonly PromSample[],
  pool: PoolRegistration,
): GateResult {
  const signal = metric.name;
  if (samples.length === 0) {
    return {
      signal,
      state: 'noData',
      counts: countsOf(pool),
      detail: `${signal}: the query returned no series; missing is not zero`,
    };
  }
  const only = samples[0];
  if (samples.length > 1 || only === undefined) {
    return {
      signal,
      state: 'outOfRange',
      counts: countsOf(pool),
      detail: `${signal}: the query returned ${samples.length} series; ${promqlLabelRule('total')}`,
    };
  }
  const why = rejectValue(only.value, 'promql');
  if (why !== null) {
    return {
      signal,
      state: 'outOfRange',
      counts: countsOf(pool, { rejectedValues: 1 }),
      detail: `${signal}: value rejected out of range (${why}); ${VALUE_RULE}`,
    };
  }
  return {
    signal,
    state: 'ok',
    poolTotal: only.value,
    estimatedGroups: 0,
    counts: countsOf(pool),
    detail: `${signal}: pool total ${only.value}`,
  };
}

/**
 * A perGroup query's verdict: series joined to the pool's heads by `namespace/pod`, then the quality gate
 * over ready groups (values in the promql range, quorum, silent groups at the reporting mean). A head pod
 * with several series, or an answer with no series for any head, breaks the label rule: no value.
 */
export function judgePromqlPerGroup(
  metric: PromqlMetric,
  samples: readonly PromSample[],
  pool: PoolRegistration,
  nowSeconds: number,
  staleAfterSeconds: number,
  minQuorumPercentage: number,
): GateResult {
  const signal = metric.name;
  const headOf = new Map(pool.heads.map((h) => [`${pool.namespace}/${h.pod}`, h]));
  const valuesByPod = new Map<string, number[]>();
  const unlabelled: string[] = [];
  const otherPods: string[] = [];
  for (const s of samples) {
    const { namespace, pod } = s.labels;
    if (namespace === undefined || pod === undefined) {
      unlabelled.push(labelText(s.labels));
      continue;
    }
    const key = `${namespace}/${pod}`;
    if (!headOf.has(key)) {
      otherPods.push(key);
      continue;
    }
    valuesByPod.set(key, [...(valuesByPod.get(key) ?? []), s.value]);
  }
  const duplicated = [...valuesByPod].filter(([, v]) => v.length > 1).map(([k, v]) => `${k} (${v.length})`);
  if (duplicated.length > 0) {
    return {
      signal,
      state: 'outOfRange',
      counts: countsOf(pool),
      detail: `${signal}: several series for head pod ${shown(duplicated)}; ${promqlLabelRule('perGroup')}`,
    };
  }
  const ignored: string[] = [];
  if (unlabelled.length > 0)
    ignored.push(`${unlabelled.length} series without namespace and pod labels (${shown(unlabelled)})`);
  if (otherPods.length > 0)
    ignored.push(`${otherPods.length} series of pods that lead no group of this pool (${shown(otherPods)})`);
  if (valuesByPod.size === 0 && samples.length > 0) {
    return {
      signal,
      state: 'noData',
      counts: countsOf(pool),
      detail: `${signal}: no series names a head pod of this pool: ${ignored.join('; ')}; ${promqlLabelRule('perGroup')}; missing is not zero`,
    };
  }
  // One entry per group; a group with two heads (a leader being replaced) keeps the larger value.
  const groups = new Map<string, { groupKey: string; ready: boolean; value?: number }>();
  for (const h of pool.heads) {
    const prior = groups.get(h.groupKey);
    const value = valuesByPod.get(`${pool.namespace}/${h.pod}`)?.[0];
    const best =
      prior?.value === undefined ? value : value === undefined ? prior.value : Math.max(prior.value, value);
    groups.set(h.groupKey, {
      groupKey: h.groupKey,
      ready: (prior?.ready ?? false) || h.ready,
      ...(best !== undefined ? { value: best } : {}),
    });
  }
  const gateGroups: GateGroup[] = [...groups.values()].map((g) =>
    g.value === undefined
      ? { groupKey: g.groupKey, ready: g.ready }
      : {
          groupKey: g.groupKey,
          ready: g.ready,
          ranks: [{ rank: '', value: g.value, timestampSeconds: nowSeconds }],
        },
  );
  const gate = judgeSignal({
    signal,
    range: 'promql',
    rankRule: 'sum',
    nowSeconds,
    staleAfterSeconds,
    minQuorumPercentage,
    groups: gateGroups,
  });
  const notes = [
    ...(gate.counts.outOfRangeGroups > 0 ? [VALUE_RULE] : []),
    ...(ignored.length > 0 ? [`ignored ${ignored.join('; ')}`] : []),
  ];
  return notes.length > 0 ? { ...gate, detail: `${gate.detail}; ${notes.join('; ')}` } : gate;
}

/** Longest label text shown per series: a reason names the series, it does not copy a tenant's labels. */
const LABEL_TEXT_MAX = 120;

/** A series' labels as PromQL writes them, cut at LABEL_TEXT_MAX characters, for a reason text. */
export function labelText(labels: Readonly<Record<string, string>>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const text = `{${parts.join(',')}}`;
  return text.length > LABEL_TEXT_MAX ? `${text.slice(0, LABEL_TEXT_MAX)}…}` : text;
}
