import { describe, expect, it } from 'vitest';
import type { DrainPhase } from '../decide/drain.ts';
import type { Decision } from '../decide/types.ts';
import {
  type DrainTick,
  drainEvents,
  FRESH_MEMORY,
  type PoolEvent,
  type PoolMemory,
  poolEvents,
  stableKey,
  type TickOutcome,
} from './events.ts';

const UNGATED = (n: number) =>
  `pod(s) decode-0, decode-1, decode-2, … (${n}) have no readiness gate kvpa.io/serving: add readinessGates: [{conditionType: kvpa.io/serving}] to the pod template to drain`;

function tick(
  phase: DrainPhase,
  victims: readonly string[] = [],
  unavailable: string | null = null,
  reason = `${phase} ${victims.join(', ')}`,
): DrainTick {
  return { phase, reason, victims, unavailable };
}

type Memory = Pick<PoolMemory, 'drainVictims' | 'drainUnavailable'>;
const EMPTY: Memory = { drainVictims: '', drainUnavailable: '' };

/** Runs drain ticks in order through drainEvents, carrying its memory; returns the events of each. */
function run(ticks: readonly (DrainTick | null)[], memory: Memory = EMPTY): PoolEvent[][] {
  const out: PoolEvent[][] = [];
  let m = memory;
  for (const t of ticks) {
    const r = drainEvents(m, 'decode', t);
    out.push(r.events);
    m = { drainVictims: r.victims, drainUnavailable: r.unavailable };
  }
  return out;
}

const reasons = (events: PoolEvent[][]) => events.map((e) => e.map((x) => x.reason));

describe('drainEvents', () => {
  it('a drain of group 3 raises DrainStarted (Normal) with the pool and the reason', () => {
    const reason = 'draining 3 before 4 → 3: out of routing until their requests finish or 300s pass';
    const r = drainEvents(EMPTY, 'decode', tick('draining', ['3'], null, reason));
    expect(r.events).toEqual([{ type: 'Normal', reason: 'DrainStarted', message: `decode: ${reason}` }]);
    expect(r.victims).toBe('3');
    expect(r.unavailable).toBe('');
  });

  it('3 draining ticks with victims 3 raise DrainStarted once, not at the 2nd and 3rd', () => {
    const raised = run([
      tick('draining', ['3'], null, 'draining 3: 4 request(s) in flight'),
      tick('draining', ['3'], null, 'draining 3: 2 request(s) in flight'),
      tick('draining', ['3'], null, 'draining 3: 1 request(s) in flight'),
    ]);
    expect(reasons(raised)).toEqual([['DrainStarted'], [], []]);
  });

  it('victims 3 growing to 3, 2 raises DrainStarted again; shrinking back to 3 raises it a third time', () => {
    const raised = run([tick('draining', ['3']), tick('draining', ['3', '2']), tick('draining', ['3'])]);
    expect(reasons(raised)).toEqual([['DrainStarted'], ['DrainStarted'], ['DrainStarted']]);
  });

  it('victims 3, 2 are remembered as "3,2"', () => {
    expect(drainEvents(EMPTY, 'decode', tick('draining', ['3', '2'])).victims).toBe('3,2');
  });

  it('drained raises Drained (Normal); timedOut raises DrainTimedOut (Warning); cancelled DrainCancelled (Normal)', () => {
    const one = (phase: DrainPhase) =>
      drainEvents({ ...EMPTY, drainVictims: '3' }, 'decode', tick(phase, ['3'])).events;
    expect(one('drained')).toEqual([{ type: 'Normal', reason: 'Drained', message: 'decode: drained 3' }]);
    expect(one('timedOut')).toEqual([
      { type: 'Warning', reason: 'DrainTimedOut', message: 'decode: timedOut 3' },
    ]);
    expect(one('cancelled')).toEqual([
      { type: 'Normal', reason: 'DrainCancelled', message: 'decode: cancelled 3' },
    ]);
  });

  it('none, direct and removing raise nothing (without a cause of unavailability)', () => {
    for (const phase of ['none', 'direct', 'removing'] as const) {
      expect({ phase, events: drainEvents(EMPTY, 'decode', tick(phase, ['3'])).events }).toEqual({
        phase,
        events: [],
      });
    }
  });

  it('started, waiting, drained, removing ×2, none: DrainStarted, -, Drained, -, -, -', () => {
    const raised = run([
      tick('draining', ['3']),
      tick('draining', ['3']),
      tick('drained', ['3']),
      tick('removing', ['3']),
      tick('removing', ['3']),
      tick('none'),
    ]);
    expect(reasons(raised)).toEqual([['DrainStarted'], [], ['Drained'], [], [], []]);
  });

  it('after Drained, a new drain of the same group 3 raises DrainStarted again (memory reset)', () => {
    const raised = run([tick('draining', ['3']), tick('drained', ['3']), tick('draining', ['3'])]);
    expect(reasons(raised)).toEqual([['DrainStarted'], ['Drained'], ['DrainStarted']]);
  });

  it('after DrainCancelled, the same drain of 3 starting again raises DrainStarted again', () => {
    const raised = run([tick('draining', ['3']), tick('cancelled'), tick('draining', ['3'])]);
    expect(reasons(raised)).toEqual([['DrainStarted'], ['DrainCancelled'], ['DrainStarted']]);
  });

  it('every phase but draining forgets the victims', () => {
    for (const phase of ['none', 'direct', 'drained', 'timedOut', 'cancelled', 'removing'] as const) {
      expect({
        phase,
        victims: drainEvents({ ...EMPTY, drainVictims: '3' }, 'decode', tick(phase, ['3'])).victims,
      }).toEqual({ phase, victims: '' });
    }
  });

  it('DrainUnavailable (Warning) names the cause with the pool', () => {
    const r = drainEvents(EMPTY, 'decode', tick('direct', [], UNGATED(5)));
    expect(r.events).toEqual([
      {
        type: 'Warning',
        reason: 'DrainUnavailable',
        message: `decode: cannot drain before scale-down: ${UNGATED(5)}`,
        key: `decode|${stableKey(UNGATED(5))}`,
      },
    ]);
  });

  it('the same cause on the next ticks repeats on that Event (repeat, same key), never a new one', () => {
    const first = drainEvents(EMPTY, 'decode', tick('direct', [], UNGATED(5)));
    const memory = { drainVictims: first.victims, drainUnavailable: first.unavailable };
    const next = drainEvents(memory, 'decode', tick('direct', [], UNGATED(6)));
    expect(next.events).toEqual([]);
    expect(next.repeats).toEqual([
      { ...first.events[0], message: `decode: cannot drain before scale-down: ${UNGATED(6)}`, repeat: true },
    ]);
  });

  it('the same cause with 5, then 6, then 12 pods raises DrainUnavailable once (numbers masked)', () => {
    const raised = run([
      tick('direct', [], UNGATED(5)),
      tick('none', [], UNGATED(6)),
      tick('direct', [], UNGATED(12)),
    ]);
    expect(reasons(raised)).toEqual([['DrainUnavailable'], [], []]);
  });

  it('a different cause raises DrainUnavailable again', () => {
    const raised = run([
      tick('direct', [], UNGATED(5)),
      tick('direct', [], 'LeaderWorkerSet cannot set pod conditions'),
    ]);
    expect(reasons(raised)).toEqual([['DrainUnavailable'], ['DrainUnavailable']]);
  });

  it('a tick that can drain again resets it: cause, ok, the same cause again → raised twice', () => {
    const raised = run([tick('direct', [], UNGATED(5)), tick('none'), tick('direct', [], UNGATED(5))]);
    expect(reasons(raised)).toEqual([['DrainUnavailable'], [], ['DrainUnavailable']]);
  });

  it('a cancel for unavailability raises DrainCancelled and DrainUnavailable in that order', () => {
    const r = drainEvents({ ...EMPTY, drainVictims: '3' }, 'decode', tick('cancelled', [], UNGATED(4)));
    expect(r.events.map((e) => e.reason)).toEqual(['DrainCancelled', 'DrainUnavailable']);
  });

  it('a pool whose target does not drain (null) raises nothing and forgets victims and cause', () => {
    const r = drainEvents({ drainVictims: '3', drainUnavailable: 'x' }, 'decode', null);
    expect(r).toEqual({ events: [], repeats: [], victims: '', unavailable: '' });
    const raised = run([tick('draining', ['3'], UNGATED(5)), null, tick('draining', ['3'], UNGATED(5))]);
    expect(reasons(raised)).toEqual([
      ['DrainStarted', 'DrainUnavailable'],
      [],
      ['DrainStarted', 'DrainUnavailable'],
    ]);
  });
});

function decision(desiredGroups: number): Decision {
  return {
    desiredGroups,
    valid: true,
    inPanic: false,
    explanation: {
      readyGroups: 4,
      requestedGroups: 4,
      signals: [{ name: 'kvCacheUtilization', state: 'ok', targetPerGroup: 0.7, stableTotal: 2.1 }],
      stableWinner: 'kvCacheUtilization',
      panicWinner: 'kvCacheUtilization',
      rawStableWant: 3,
      rawPanicWant: 3,
      maxScaleUp: 8,
      maxScaleDown: 2,
      panic: { inPanic: false, transition: 'none', ratio: 0.75, threshold: 2 },
      stages: [],
      holdReason: null,
      summary: `4 → ${desiredGroups} groups`,
    },
  };
}

function outcome(drain: DrainTick | null | undefined, o: Partial<TickOutcome> = {}): TickOutcome {
  return {
    pool: 'decode',
    mode: 'Apply',
    targetFound: true,
    specGroups: 4,
    decision: decision(3),
    wrote: null,
    writeError: null,
    overriddenMessage: null,
    ...(drain !== undefined ? { drain } : {}),
    ...o,
  };
}

/** Runs ticks through poolEvents, carrying its memory; returns the reasons raised at each and the memory. */
function runPool(ticks: readonly TickOutcome[]): { raised: string[][]; memory: PoolMemory } {
  let memory = FRESH_MEMORY;
  const raised: string[][] = [];
  for (const t of ticks) {
    const r = poolEvents(memory, t);
    raised.push(r.events.map((e) => e.reason));
    memory = r.memory;
  }
  return { raised, memory };
}

describe('poolEvents: the drain part', () => {
  it('fresh memory has no drain victims and no cause', () => {
    expect(FRESH_MEMORY.drainVictims).toBe('');
    expect(FRESH_MEMORY.drainUnavailable).toBe('');
  });

  it('4 → 3: DrainStarted, a waiting tick, then SuccessfulRescale before Drained at the write', () => {
    const { raised } = runPool([
      outcome(tick('draining', ['3'])),
      outcome(tick('draining', ['3'])),
      outcome(tick('drained', ['3']), { wrote: { from: 4, to: 3 } }),
      outcome(tick('removing', ['3']), { specGroups: 3 }),
    ]);
    expect(raised).toEqual([['DrainStarted'], [], ['SuccessfulRescale', 'Drained'], []]);
  });

  it('memory carries the victims "3" across ticks and clears them once drained', () => {
    const started = poolEvents(FRESH_MEMORY, outcome(tick('draining', ['3'])));
    expect(started.memory.drainVictims).toBe('3');
    const drained = poolEvents(started.memory, outcome(tick('drained', ['3'])));
    expect(drained.memory.drainVictims).toBe('');
  });

  it('a tick without a drain step (undefined) resets the drain memory: the same drain then raises again', () => {
    const { raised, memory } = runPool([
      outcome(tick('draining', ['3'], UNGATED(5))),
      outcome(undefined),
      outcome(tick('draining', ['3'], UNGATED(5))),
    ]);
    expect(raised).toEqual([['DrainStarted', 'DrainUnavailable'], [], ['DrainStarted', 'DrainUnavailable']]);
    expect(memory.drainVictims).toBe('3');
    expect(memory.drainUnavailable).not.toBe('');
  });

  it('DrainUnavailable once over 3 ticks whose pod counts differ (5, 7, 9)', () => {
    const { raised } = runPool([5, 7, 9].map((n) => outcome(tick('direct', [], UNGATED(n)))));
    expect(raised).toEqual([['DrainUnavailable'], [], []]);
  });

  it('a target-not-found tick mid-drain keeps the victims: the next draining tick of 3 raises nothing', () => {
    const { raised } = runPool([
      outcome(tick('draining', ['3'])),
      outcome(null, { targetFound: false, decision: null, specGroups: null }),
      outcome(tick('draining', ['3'])),
    ]);
    expect(raised).toEqual([['DrainStarted'], ['TargetNotFound'], []]);
  });

  it('DryRun cancel of a drain: WouldScale 4 → 3 and DrainCancelled', () => {
    const { raised } = runPool([outcome(tick('cancelled'), { mode: 'DryRun' })]);
    expect(raised).toEqual([['WouldScale', 'DrainCancelled']]);
  });

  it('a timed-out drain raises DrainTimedOut as a Warning next to SuccessfulRescale', () => {
    const r = poolEvents(
      { ...FRESH_MEMORY, drainVictims: '3' },
      outcome(tick('timedOut', ['3'], null, 'drain timeout after 300s with 2 request(s) in flight'), {
        wrote: { from: 4, to: 3 },
      }),
    );
    expect(r.events.map((e) => [e.type, e.reason])).toEqual([
      ['Normal', 'SuccessfulRescale'],
      ['Warning', 'DrainTimedOut'],
    ]);
    expect(r.events[1]?.message).toBe('decode: drain timeout after 300s with 2 request(s) in flight');
  });
});
