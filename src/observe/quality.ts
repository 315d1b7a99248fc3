/**
 * The quality gate: turns one signal's per-group samples for one pool into a pool total, or into a
 * reason why there is none. Pure: the time and the samples come in, a verdict comes out.
 *
 * Rules:
 * - An empty result is `noData`, never zero (keda#3065: an empty answer read as 0 sent every
 *   deployment to its minimum during a Prometheus incident).
 * - A sample older than `staleAfterSeconds`, judged from the sample's own timestamp (Prometheus's,
 *   not our clock at receipt), is `stale`.
 * - Values outside the signal's physical range (KV > 1, a count above COUNT_MAX, negative, NaN, ±Inf)
 *   are rejected and counted: huge finite values would overflow the sums to Infinity.
 * - Below `minQuorumPercentage` of ready groups with a usable value, the signal is not used.
 * - The pool total is the SUM over ready groups of the per-group value, never a mean (the decision
 *   core divides by the per-group target itself).
 */
import type { SignalReading, SignalState } from '../decide/types.ts';
import { COUNT_MAX, type RankRule, type RankSample, type ValueRange } from './prometheus-join.ts';

/**
 * The range of a value: an engine metric's (ValueRange), or `promql`, a user query's value in
 * [0, PROMQL_VALUE_MAX]: it has no physical unit to bound it, only the sums to keep finite.
 */
export type GateRange = ValueRange | 'promql';

/**
 * The ceiling of one promql value: 1000× the largest target the API accepts (1e9), so any usable value
 * still means a finite want, and sums over groups and window buckets stay far from Infinity.
 */
export const PROMQL_VALUE_MAX = 1e12;

export interface GateGroup {
  readonly groupKey: string;
  readonly ready: boolean;
  /** Absent when the group's head pod returned nothing. */
  readonly ranks?: readonly RankSample[];
  /** Why the group has no usable answer although some of its pods replied (shown with the missing). */
  readonly missingReason?: string;
}

export interface GateInput {
  readonly signal: string;
  readonly range: GateRange;
  readonly rankRule: RankRule;
  readonly nowSeconds: number;
  readonly staleAfterSeconds: number;
  readonly minQuorumPercentage: number;
  /**
   * DP ranks a group must report: fewer is missing (a partial sum under-counts the queue), more is out
   * of range (a misread pod set or a wrong setting); both name the counts. Absent: not checked.
   */
  readonly expectedRanks?: number;
  readonly groups: readonly GateGroup[];
}

export interface GateCounts {
  readonly readyGroups: number;
  /** Ready groups with a fresh, in-range value. */
  readonly usableGroups: number;
  readonly missingGroups: number;
  readonly staleGroups: number;
  readonly outOfRangeGroups: number;
  /** Individual rank values rejected as out of range (a group can hold several). */
  readonly rejectedValues: number;
}

export interface GateResult {
  readonly signal: string;
  readonly state: SignalState;
  /** Σ over ready groups of the per-group value. Present iff state is ok. */
  readonly poolTotal?: number;
  /** Ready groups that did not report and were counted at the mean of those that did. */
  readonly estimatedGroups?: number;
  readonly counts: GateCounts;
  /** Human-readable: which groups, how old, which values. */
  readonly detail: string;
  /**
   * The combined value of each ready group that passed (fresh, in range), whatever the state: a work
   * signal reads its per-group flow and queue from it (capacity samples, backlog).
   */
  readonly groupValues?: ReadonlyMap<string, number>;
}

export const KV_FRACTION_MAX = 1;

/** Why one rank value is unusable, or null when it is fine. */
export function rejectValue(value: number, range: GateRange): string | null {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return `${value > 0 ? '+' : '-'}Inf`;
  if (value < 0) return `${value} < 0`;
  if (range === 'promql' && value > PROMQL_VALUE_MAX)
    return `${fmt(value)} > ${PROMQL_VALUE_MAX} (too large to scale on)`;
  if (range === 'count' && value > COUNT_MAX)
    return `${fmt(value)} > ${COUNT_MAX} (no engine holds that many)`;
  if (range === 'fraction' && value > KV_FRACTION_MAX) {
    // AIBrix's mock app reports 0–100 under the same name (vllm-project/aibrix development/app/app.py).
    return value <= 100 ? `${value} > 1 (a percentage, not a fraction?)` : `${value} > 1`;
  }
  return null;
}

/** Combines ranks that all passed the range check; see RankRule for why mean vs sum. */
export function combineRanks(values: readonly number[], rule: RankRule): number {
  let sum = 0;
  for (const v of values) sum += v;
  return rule === 'mean' ? sum / values.length : sum;
}

const LIST_LIMIT = 5;

function list(items: readonly string[]): string {
  const shown = items.slice(0, LIST_LIMIT).join(', ');
  return items.length > LIST_LIMIT ? `${shown} and ${items.length - LIST_LIMIT} more` : shown;
}

function fmtAge(seconds: number): string {
  return Number.isFinite(seconds) ? `${Math.round(seconds)}s old` : 'no timestamp';
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

export function judgeSignal(input: GateInput): GateResult {
  const { signal, nowSeconds, staleAfterSeconds } = input;
  const missing: string[] = [];
  const stale: string[] = [];
  const outOfRange: string[] = [];
  let rejectedValues = 0;
  let readyGroups = 0;
  let usable = 0;
  let usableSum = 0;
  const groupValues = new Map<string, number>();

  for (const g of input.groups) {
    if (!g.ready) continue; // not-ready groups neither count nor carry load we can scale on
    readyGroups++;
    const ranks = g.ranks;
    if (!ranks || ranks.length === 0) {
      missing.push(g.missingReason !== undefined ? `${g.groupKey} (${g.missingReason})` : g.groupKey);
      continue;
    }
    const expected = input.expectedRanks;
    if (expected !== undefined && ranks.length < expected) {
      missing.push(`${g.groupKey} (${ranks.length} of ${expected} expected DP ranks)`);
      continue;
    }
    if (expected !== undefined && ranks.length > expected) {
      outOfRange.push(`${g.groupKey} (${ranks.length} DP ranks, expected ${expected}: check expectedRanks)`);
      continue;
    }
    const bad: string[] = [];
    let oldestSeconds = Number.POSITIVE_INFINITY;
    const values: number[] = [];
    for (const r of ranks) {
      const why = rejectValue(r.value, input.range);
      if (why !== null) {
        bad.push(r.rank === '' ? why : `rank ${r.rank}: ${why}`);
        rejectedValues++;
      } else {
        values.push(r.value);
      }
      // A group is as fresh as its oldest rank; NaN (no timestamp) counts as infinitely old.
      const t = Number.isNaN(r.timestampSeconds) ? Number.NEGATIVE_INFINITY : r.timestampSeconds;
      if (t < oldestSeconds) oldestSeconds = t;
    }
    if (bad.length > 0) {
      outOfRange.push(`${g.groupKey} (${bad.join('; ')})`);
      continue;
    }
    const ageSeconds = nowSeconds - oldestSeconds;
    if (!(ageSeconds <= staleAfterSeconds)) {
      stale.push(`${g.groupKey} ${fmtAge(ageSeconds)}`);
      continue;
    }
    usable++;
    const combined = combineRanks(values, input.rankRule);
    usableSum += combined;
    groupValues.set(g.groupKey, combined);
  }

  const counts: GateCounts = {
    readyGroups,
    usableGroups: usable,
    missingGroups: missing.length,
    staleGroups: stale.length,
    outOfRangeGroups: outOfRange.length,
    rejectedValues,
  };
  const notes: string[] = [];
  if (stale.length > 0) notes.push(`stale (> ${staleAfterSeconds}s): ${list(stale)}`);
  if (outOfRange.length > 0) notes.push(`rejected out of range: ${list(outOfRange)}`);
  if (missing.length > 0) notes.push(`no series: ${list(missing)}`);
  const tail = notes.length > 0 ? `; ${notes.join('; ')}` : '';

  if (readyGroups === 0) {
    return { signal, state: 'noData', counts, detail: `${signal}: no ready groups to read`, groupValues };
  }
  if (usable + stale.length + outOfRange.length === 0) {
    return {
      signal,
      state: 'noData',
      counts,
      detail: `${signal}: empty result for all ${readyGroups} ready groups (${list(missing)}); missing is not zero`,
      groupValues,
    };
  }
  const sharePercent = (100 * usable) / readyGroups;
  if (sharePercent >= input.minQuorumPercentage) {
    // Groups without a usable value are counted at the mean of those with one, as Knative scales
    // an observed average by the ready pods: dropping them would bias the total down. The mean is
    // only good enough to grow on: if the silent groups are the busy ones, the mean of the idle
    // reporters would shrink the pool (4 → 2 → 1), so the pool holds scale-down while any ready
    // group is silent (estimatedGroups > 0; see the pool runner).
    const unusable = readyGroups - usable;
    const poolTotal = usableSum + (unusable > 0 ? (usableSum / usable) * unusable : 0);
    const estimated =
      unusable > 0
        ? `; ${unusable} group(s) without a usable value counted at the reporting mean, no scale-down`
        : '';
    return {
      signal,
      state: 'ok',
      poolTotal,
      estimatedGroups: unusable,
      counts,
      detail: `${signal}: ${usable}/${readyGroups} ready groups, total ${fmt(poolTotal)}${estimated}${tail}`,
      groupValues,
    };
  }
  // Short of quorum: name the biggest cause (ties: stale, then out of range, then missing).
  const state: SignalState =
    stale.length >= outOfRange.length && stale.length >= missing.length
      ? 'stale'
      : outOfRange.length >= missing.length
        ? 'outOfRange'
        : 'noQuorum';
  return {
    signal,
    state,
    counts,
    detail: `${signal}: ${usable}/${readyGroups} ready groups usable (${Math.round(sharePercent)}% < quorum ${input.minQuorumPercentage}%)${tail}`,
    groupValues,
  };
}

/**
 * What the decision core sees for one signal: the windows' averages when this tick's sample
 * passed the gate, else the gate's state and reason (the windows may still hold older samples,
 * but a signal that is missing now must lead to hold, not to a decision on history).
 */
export function toSignalReading(gate: GateResult, windows: SignalReading): SignalReading {
  if (gate.state === 'ok') return windows;
  return {
    name: windows.name,
    targetPerGroup: windows.targetPerGroup,
    state: gate.state,
    detail: gate.detail,
  };
}

/** The `MetricsAvailable` condition reason for a non-ok state. */
export function conditionReason(state: SignalState): string {
  switch (state) {
    case 'ok':
      return 'MetricsAvailable';
    case 'noData':
      return 'NoData';
    case 'stale':
      return 'Stale';
    case 'noQuorum':
      return 'NoQuorum';
    case 'outOfRange':
      return 'OutOfRange';
    case 'error':
      return 'QueryError';
  }
}

export interface RejectionTotals {
  ticks: number;
  missingGroups: number;
  staleGroups: number;
  outOfRangeGroups: number;
  rejectedValues: number;
}

/** Running totals of what the gate turned away, per pool and signal (for /metrics and status). */
export class RejectionCounters {
  private readonly totals = new Map<string, RejectionTotals>();

  add(poolKey: string, result: GateResult): void {
    const key = `${poolKey}\u0000${result.signal}`;
    const t = this.totals.get(key) ?? {
      ticks: 0,
      missingGroups: 0,
      staleGroups: 0,
      outOfRangeGroups: 0,
      rejectedValues: 0,
    };
    t.ticks++;
    t.missingGroups += result.counts.missingGroups;
    t.staleGroups += result.counts.staleGroups;
    t.outOfRangeGroups += result.counts.outOfRangeGroups;
    t.rejectedValues += result.counts.rejectedValues;
    this.totals.set(key, t);
  }

  get(poolKey: string, signal: string): Readonly<RejectionTotals> {
    return (
      this.totals.get(`${poolKey}\u0000${signal}`) ?? {
        ticks: 0,
        missingGroups: 0,
        staleGroups: 0,
        outOfRangeGroups: 0,
        rejectedValues: 0,
      }
    );
  }
}
