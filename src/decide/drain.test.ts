import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  chooseVictims,
  DRAIN_SETTLE_SECONDS,
  type DrainGroup,
  type DrainInput,
  type DrainRecord,
  drainStep,
  drainWant,
  REMOVAL_GRACE_SECONDS,
  requestedForDecision,
} from './drain.ts';
import type { Decision } from './types.ts';

/** Groups 0..n-1 of an LWS, in its removal order (highest index first), each with `inFlight[i]` read at `at`. */
function lws(n: number, inFlight: readonly (number | undefined)[] = [], at = 0): DrainGroup[] {
  return Array.from({ length: n }, (_, i) => n - 1 - i).map((i) => {
    const requests = inFlight[i];
    return {
      key: String(i),
      serving: true,
      ...(requests !== undefined ? { inFlight: { requests, atSeconds: at } } : {}),
    };
  });
}

function input(over: Partial<DrainInput>): DrainInput {
  return {
    nowSeconds: 0,
    specGroups: 10,
    wantGroups: 10,
    removalOrder: lws(10),
    timeoutSeconds: 600,
    ...over,
  };
}

describe('drainStep', () => {
  it('10 → 8 on an LWS takes groups 9 and 8 out of routing and writes nothing yet', () => {
    const out = drainStep(input({ wantGroups: 8 }), null);
    expect(out.phase).toBe('draining');
    expect(out.outOfRouting).toEqual(['9', '8']);
    expect(out.write).toBeUndefined();
    expect(out.record).toMatchObject({
      fromGroups: 10,
      toGroups: 8,
      startedAtSeconds: 0,
      deadlineSeconds: 600,
    });
  });

  it('with 3 requests left on group 9 at 30 s it waits, then writes 8 when both read 0 at 40 s', () => {
    const started = drainStep(input({ wantGroups: 8 }), null).record;
    const reads = (at: number, nine: number) => {
      const f: number[] = [];
      f[9] = nine;
      f[8] = 0;
      return lws(10, f, at);
    };
    const waiting = drainStep(input({ nowSeconds: 30, wantGroups: 8, removalOrder: reads(30, 3) }), started);
    expect(waiting.phase).toBe('draining');
    expect(waiting.inFlightLeft).toBe(3);
    expect(waiting.write).toBeUndefined();
    const drained = drainStep(
      input({ nowSeconds: 40, wantGroups: 8, removalOrder: reads(40, 0) }),
      waiting.record,
    );
    expect(drained.phase).toBe('drained');
    expect(drained.write).toBe(8);
    expect(drained.outOfRouting).toEqual(['9', '8']);
    expect(drained.record?.writtenAtSeconds).toBe(40);
  });

  it(`a 0 read within ${DRAIN_SETTLE_SECONDS} s of the cut-over is not trusted: requests routed just before may still land`, () => {
    const started = drainStep(input({ wantGroups: 9 }), null).record;
    const early = drainStep(
      input({
        nowSeconds: DRAIN_SETTLE_SECONDS - 1,
        wantGroups: 9,
        removalOrder: lws(10, [], DRAIN_SETTLE_SECONDS - 1),
      }),
      started,
    );
    expect(early.phase).toBe('draining');
    expect(early.unreadVictims).toBe(1);
  });

  it('an unknown in-flight count is never read as 0: the drain waits for the deadline', () => {
    const started = drainStep(input({ wantGroups: 9 }), null).record;
    const blind = drainStep(input({ nowSeconds: 100, wantGroups: 9, removalOrder: lws(10) }), started);
    expect(blind.phase).toBe('draining');
    expect(blind.unreadVictims).toBe(1);
    const late = drainStep(input({ nowSeconds: 600, wantGroups: 9, removalOrder: lws(10) }), blind.record);
    expect(late.phase).toBe('timedOut');
    expect(late.write).toBe(9);
    expect(late.reason).toMatch(/1 group\(s\) unread/);
  });

  it('at the 600 s deadline with 2 requests left it writes 9 and says 2 were in flight', () => {
    const started = drainStep(input({ wantGroups: 9 }), null).record;
    const f: number[] = [];
    f[9] = 2;
    const out = drainStep(input({ nowSeconds: 600, wantGroups: 9, removalOrder: lws(10, f, 600) }), started);
    expect(out.phase).toBe('timedOut');
    expect(out.write).toBe(9);
    expect(out.inFlightLeft).toBe(2);
  });

  it('a decision back at 10 cancels the drain and routes 9 and 8 again; at 12 it writes 12', () => {
    const started = drainStep(input({ wantGroups: 8 }), null).record;
    const back = drainStep(input({ nowSeconds: 20, wantGroups: 10 }), started);
    expect(back).toMatchObject({ phase: 'cancelled', record: null, outOfRouting: [], write: undefined });
    const up = drainStep(input({ nowSeconds: 20, wantGroups: 12 }), started);
    expect(up).toMatchObject({ phase: 'cancelled', write: 12, outOfRouting: [] });
  });

  it('wanting 9 during a 10 → 8 drain routes group 8 again and keeps the deadline', () => {
    const started = drainStep(input({ wantGroups: 8 }), null).record;
    const out = drainStep(input({ nowSeconds: 50, wantGroups: 9 }), started);
    expect(out.outOfRouting).toEqual(['9']);
    expect(out.record?.toGroups).toBe(9);
    expect(out.record?.deadlineSeconds).toBe(600);
  });

  it('wanting 7 during a 10 → 8 drain adds group 7 with its own full timeout', () => {
    const started = drainStep(input({ wantGroups: 8 }), null).record;
    const out = drainStep(input({ nowSeconds: 50, wantGroups: 7 }), started);
    expect(out.outOfRouting).toEqual(['9', '8', '7']);
    expect(out.record?.deadlineSeconds).toBe(650);
  });

  it('another writer setting 11 cancels the drain and writes nothing', () => {
    const started = drainStep(input({ wantGroups: 8 }), null).record;
    const out = drainStep(
      input({ nowSeconds: 5, specGroups: 11, wantGroups: 8, removalOrder: lws(11) }),
      started,
    );
    expect(out).toMatchObject({ phase: 'cancelled', write: undefined, outOfRouting: [] });
    expect(out.reason).toMatch(/another writer/);
  });

  it('victims that are still starting hold nothing: 10 → 9 is written at once', () => {
    const order = lws(10).map((g, i) => (i === 0 ? { ...g, serving: false } : g));
    const out = drainStep(input({ wantGroups: 9, removalOrder: order }), null);
    expect(out).toMatchObject({ phase: 'direct', write: 9, record: null });
  });

  it('without the readiness gate the scale-down is written at once and says why', () => {
    const out = drainStep(input({ wantGroups: 9, unavailable: 'no readiness gate kvpa.io/serving' }), null);
    expect(out).toMatchObject({ phase: 'direct', write: 9 });
    expect(out.reason).toMatch(/without drain: no readiness gate/);
  });

  it('drainTimeoutSeconds 0 writes at once; an unpredictable victim writes at once', () => {
    expect(drainStep(input({ wantGroups: 9, timeoutSeconds: 0 }), null).phase).toBe('direct');
    expect(drainStep(input({ wantGroups: 9, removalOrder: null }), null).phase).toBe('direct');
  });

  it('after the write, 9 stays out of routing until it is gone, and never past the grace', () => {
    const written: DrainRecord = {
      fromGroups: 10,
      toGroups: 9,
      victims: ['9'],
      startedAtSeconds: 0,
      deadlineSeconds: 600,
      writtenAtSeconds: 40,
    };
    const still = drainStep(input({ nowSeconds: 41, specGroups: 9, wantGroups: 9 }), written);
    expect(still).toMatchObject({ phase: 'removing', outOfRouting: ['9'], write: undefined });
    const gone = drainStep(
      input({ nowSeconds: 45, specGroups: 9, wantGroups: 9, removalOrder: lws(9) }),
      written,
    );
    expect(gone).toMatchObject({ phase: 'none', record: null, outOfRouting: [] });
    const stuck = drainStep(
      input({ nowSeconds: 40 + REMOVAL_GRACE_SECONDS, specGroups: 9, wantGroups: 9 }),
      written,
    );
    expect(stuck).toMatchObject({ record: null, outOfRouting: [] });
  });

  it('an invalid decision holds at the spec: drainWant never lowers on missing data', () => {
    const d = (desiredGroups: number, valid: boolean) => ({ desiredGroups, valid }) as Decision;
    expect(drainWant(d(6, true), 10)).toBe(6);
    expect(drainWant(d(6, false), 10)).toBe(10);
    expect(drainWant(d(12, false), 10)).toBe(12);
  });

  it('while draining 10 → 8 the decider sees 8 requested; once written, the spec', () => {
    const started = drainStep(input({ wantGroups: 8 }), null).record;
    expect(requestedForDecision(started, 10)).toBe(8);
    expect(requestedForDecision(null, 10)).toBe(10);
    expect(requestedForDecision(started && { ...started, writtenAtSeconds: 30 }, 8)).toBe(8);
  });
});

describe('drainStep properties', () => {
  const step = fc.record({
    dt: fc.integer({ min: 1, max: 120 }),
    spec: fc.integer({ min: 1, max: 8 }),
    want: fc.integer({ min: 0, max: 10 }),
    inFlight: fc.array(fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }), {
      minLength: 10,
      maxLength: 10,
    }),
  });

  it('a count below the spec is written only when the victims read empty after the settle time, or at the deadline', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
        let now = 0;
        let record: DrainRecord | null = null;
        for (const s of steps) {
          now += s.dt;
          const order = lws(s.spec, s.inFlight, now);
          const before = record;
          const out = drainStep(
            {
              nowSeconds: now,
              specGroups: s.spec,
              wantGroups: s.want,
              removalOrder: order,
              timeoutSeconds: 300,
            },
            record,
          );
          record = out.record;
          if (out.write === undefined || out.write >= s.spec) continue;
          // Never below what the decision wants.
          expect(out.write).toBe(s.want);
          if (out.phase === 'drained') {
            const victims = order.slice(0, s.spec - s.want);
            for (const g of victims) expect(g.inFlight?.requests).toBe(0);
            expect(before).not.toBeNull();
          } else if (out.phase === 'timedOut') {
            expect(now).toBeGreaterThanOrEqual((before as DrainRecord).deadlineSeconds);
          } else {
            // Only a victim set that holds nothing (none serving) may skip the drain.
            expect(out.phase).toBe('direct');
            expect(order.slice(0, s.spec - s.want).some((g) => g.serving)).toBe(false);
          }
        }
      }),
    );
  });

  it('a group leaves routing only as a victim; no drain outlives its deadline, no removal its grace', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 60 }), (steps) => {
        let now = 0;
        let record: DrainRecord | null = null;
        for (const s of steps) {
          now += s.dt;
          const out = drainStep(
            {
              nowSeconds: now,
              specGroups: s.spec,
              wantGroups: s.want,
              removalOrder: lws(s.spec, s.inFlight, now),
              timeoutSeconds: 300,
            },
            record,
          );
          record = out.record;
          for (const k of out.outOfRouting) expect(record?.victims).toContain(k);
          if (record === null) continue;
          if (record.writtenAtSeconds === null) expect(now).toBeLessThan(record.deadlineSeconds);
          else expect(now - record.writtenAtSeconds).toBeLessThan(REMOVAL_GRACE_SECONDS);
        }
      }),
    );
  });
});

const group = (key: string, serving: boolean, requests?: number): DrainGroup => ({
  key,
  serving,
  ...(requests !== undefined ? { inFlight: { requests, atSeconds: 0 } } : {}),
});

describe('chooseVictims', () => {
  it('ranks groups holding no request first, then serving groups by in-flight requests, unread last', () => {
    const order = chooseVictims(
      [group('a', true, 7), group('b', true), group('c', true, 2), group('d', false), group('e', true, 2)],
      [],
    );
    // d is starting; c and e tie at 2 and keep their order; b has no reading, so it is never preferred.
    expect(order.map((g) => g.key)).toEqual(['d', 'c', 'e', 'a', 'b']);
  });

  it("keeps a drain's victims first, in their recorded order, even once others become lighter", () => {
    const order = chooseVictims(
      [group('a', true, 0), group('b', true, 5), group('c', false), group('d', true, 3)],
      ['d', 'gone', 'b'],
    );
    expect(order.map((g) => g.key)).toEqual(['d', 'b', 'c', 'a']);
  });
});
