import { describe, expect, it } from 'vitest';
import type { Decision, SignalExplanation } from '../decide/types.ts';
import { FRESH_MEMORY, type PoolMemory, poolEvents, stableKey, type TickOutcome } from './events.ts';

function decision(signals: SignalExplanation[], desiredGroups = 3): Decision {
  return {
    desiredGroups,
    valid: true,
    inPanic: false,
    explanation: {
      readyGroups: 3,
      requestedGroups: 3,
      signals,
      stableWinner: null,
      panicWinner: null,
      rawStableWant: null,
      rawPanicWant: null,
      maxScaleUp: null,
      maxScaleDown: null,
      panic: { inPanic: false, transition: 'none', ratio: null, threshold: 2 },
      stages: [],
      holdReason: null,
      summary: 'held at 3 groups',
    },
  };
}

function outcome(d: Decision | null, writeError: string | null = null): TickOutcome {
  return {
    pool: 'decode',
    mode: 'Apply',
    targetFound: true,
    specGroups: 3,
    decision: d,
    wrote: null,
    writeError,
    overriddenMessage: null,
  };
}

const stale = (ageSeconds: number): SignalExplanation => ({
  name: 'kvCacheUtilization',
  state: 'stale',
  targetPerGroup: 0.7,
  detail: `newest sample ${ageSeconds}s old`,
});

/** Runs ticks in order and returns the reasons raised at each. */
function run(ticks: TickOutcome[], memory: PoolMemory = FRESH_MEMORY): string[][] {
  const raised: string[][] = [];
  for (const t of ticks) {
    const r = poolEvents(memory, t);
    raised.push(r.events.map((e) => e.reason));
    memory = r.memory;
  }
  return raised;
}

describe('poolEvents dedup', () => {
  it('a stale signal whose age grows 95 s → 96 s → 97 s raises one MetricsMissing, not one per tick', () => {
    const raised = run([95, 96, 97].map((age) => outcome(decision([stale(age)]))));
    expect(raised).toEqual([['MetricsMissing'], [], []]);
  });

  it('95 s → 96 s → 97 s: the 96 s and 97 s ticks repeat the MetricsMissing raised at 95 s, under its key, with the newest age', () => {
    let memory: PoolMemory = FRESH_MEMORY;
    const seen: { raised: string[]; repeated: string[] }[] = [];
    for (const age of [95, 96, 97]) {
      const r = poolEvents(memory, outcome(decision([stale(age)])));
      memory = r.memory;
      seen.push({ raised: r.events.map((e) => e.message), repeated: r.repeats.map((e) => e.message) });
      for (const e of [...r.events, ...r.repeats]) expect(e.key).toBe('decode|kvCacheUtilization: stale');
    }
    const text = (age: number) =>
      `decode: kvCacheUtilization: stale (newest sample ${age}s old); holding (no scale-down)`;
    expect(seen).toEqual([
      { raised: [text(95)], repeated: [] },
      { raised: [], repeated: [text(96)] },
      { raised: [], repeated: [text(97)] },
    ]);
  });

  it('the signal going stale → noData is a new fault and raises again; ok then stale again raises again', () => {
    const noData: SignalExplanation = { name: 'kvCacheUtilization', state: 'noData', targetPerGroup: 0.7 };
    const ok: SignalExplanation = { name: 'kvCacheUtilization', state: 'ok', targetPerGroup: 0.7 };
    const raised = run([stale(95), noData, ok, stale(5)].map((s) => outcome(decision([s]))));
    expect(raised).toEqual([['MetricsMissing'], ['MetricsMissing'], [], ['MetricsMissing']]);
  });

  it('a tick without a decision (target unreadable) does not re-arm MetricsMissing', () => {
    const raised = run([
      outcome(decision([stale(95)])),
      outcome(null, 'reading the target failed: timeout'),
      outcome(decision([stale(99)])),
    ]);
    expect(raised[2]).toEqual([]);
  });

  it('the same write error with a new resourceVersion raises FailedRescale once; after a clean tick, again', () => {
    const err = (rv: number) => `patch failed (HTTP 500): etcd busy at resourceVersion ${rv}`;
    const d = decision([]);
    const raised = run([outcome(d, err(101)), outcome(d, err(102)), outcome(d), outcome(d, err(103))]);
    expect(raised).toEqual([['FailedRescale'], [], [], ['FailedRescale']]);
  });

  it('stableKey masks every number: "96s old, 3 of 4" and "97s old, 2 of 4" share a key', () => {
    expect(stableKey('96s old, 3 of 4')).toBe(stableKey('97s old, 2 of 4'));
    expect(stableKey('96s old')).not.toBe(stableKey('96s missing'));
  });
});

describe('InsufficientCapacity', () => {
  const short = (landGroups: number, wantGroups: number) => ({
    wantGroups,
    landGroups,
    askedGroups: landGroups,
    check: 'Enforce' as const,
    detail: `insufficient capacity: want ${wantGroups}, ${landGroups} can land`,
  });

  it('raises once while 2 can land, even as the want wobbles 4, 5, 4; again when 3 can land', () => {
    let memory: PoolMemory = FRESH_MEMORY;
    const reasons: string[] = [];
    for (const [land, want] of [
      [2, 4],
      [2, 5],
      [2, 4],
      [3, 4],
    ] as const) {
      const r = poolEvents(memory, { ...outcome(decision([], want)), shortfall: short(land, want) });
      memory = r.memory;
      reasons.push(...r.events.filter((e) => e.reason === 'InsufficientCapacity').map((e) => e.message));
    }
    expect(reasons).toEqual([
      'decode: insufficient capacity: want 4, 2 can land',
      'decode: insufficient capacity: want 4, 3 can land',
    ]);
  });

  it('a tick without a decision keeps the key: the same shortage after it raises nothing', () => {
    const first = poolEvents(FRESH_MEMORY, { ...outcome(decision([], 4)), shortfall: short(2, 4) });
    const blind = poolEvents(first.memory, outcome(null, 'reading the target failed'));
    const again = poolEvents(blind.memory, { ...outcome(decision([], 4)), shortfall: short(2, 4) });
    expect(again.events.filter((e) => e.reason === 'InsufficientCapacity')).toEqual([]);
  });
});
