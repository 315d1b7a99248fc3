import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RankSample } from './prometheus-join.ts';
import { type GateGroup, type GateInput, judgeSignal, rejectValue, toSignalReading } from './quality.ts';

const NOW = 1_000_000;

function ranks(...values: number[]): RankSample[] {
  return values.map((value, i) => ({ rank: String(i), value, timestampSeconds: NOW - 1 }));
}

function input(groups: GateGroup[], over: Partial<GateInput> = {}): GateInput {
  return {
    signal: 'queueDepth',
    range: 'count',
    rankRule: 'sum',
    nowSeconds: NOW,
    staleAfterSeconds: 30,
    minQuorumPercentage: 50,
    groups,
    ...over,
  };
}

describe('judgeSignal', () => {
  it('sums per-group values over ready groups (never a mean), summing ranks for queues', () => {
    const r = judgeSignal(
      input([
        { groupKey: 'g0', ready: true, ranks: ranks(3, 1) },
        { groupKey: 'g1', ready: true, ranks: ranks(5) },
        { groupKey: 'g2', ready: false, ranks: ranks(100) },
      ]),
    );
    expect(r.state).toBe('ok');
    expect(r.poolTotal).toBe(9);
    expect(r.counts).toMatchObject({ readyGroups: 2, usableGroups: 2 });
  });

  it('expectedRanks 4: a group with 2 ranks is missing (2 of 4), one with 5 out of range; 2 of 4 usable groups is quorum 50 %', () => {
    const r = judgeSignal(
      input(
        [
          { groupKey: 'g0', ready: true, ranks: ranks(1, 1, 1, 1) },
          { groupKey: 'g1', ready: true, ranks: ranks(2, 2, 2, 2) },
          { groupKey: 'g2', ready: true, ranks: ranks(9, 9) },
          { groupKey: 'g3', ready: true, ranks: ranks(1, 1, 1, 1, 1) },
        ],
        { expectedRanks: 4 },
      ),
    );
    expect(r.counts).toMatchObject({ usableGroups: 2, missingGroups: 1, outOfRangeGroups: 1 });
    expect(r.detail).toContain('g2 (2 of 4 expected DP ranks)');
    expect(r.detail).toContain('g3 (5 DP ranks, expected 4: check expectedRanks)');
    // the silent groups hold scale-down (estimatedGroups), never count as their partial sums
    expect(r).toMatchObject({ state: 'ok', estimatedGroups: 2, poolTotal: 24 });
  });

  it('a group not read whole names why: "g1 (ranksOn all: …)"', () => {
    const r = judgeSignal(
      input([
        { groupKey: 'g0', ready: true, ranks: ranks(3) },
        {
          groupKey: 'g1',
          ready: true,
          ranks: [],
          missingReason: 'ranksOn all: 1 of its 2 pods without series (w)',
        },
      ]),
    );
    expect(r.detail).toContain('g1 (ranksOn all: 1 of its 2 pods without series (w))');
  });

  it('averages ranks for KV usage, then sums groups', () => {
    const r = judgeSignal(
      input(
        [
          { groupKey: 'g0', ready: true, ranks: ranks(0.2, 0.4) },
          { groupKey: 'g1', ready: true, ranks: ranks(0.5) },
        ],
        { signal: 'kvCacheUtilization', range: 'fraction', rankRule: 'mean' },
      ),
    );
    expect(r.poolTotal).toBeCloseTo(0.8, 10);
  });

  it('an empty result is noData, not zero', () => {
    const r = judgeSignal(
      input([
        { groupKey: 'g0', ready: true },
        { groupKey: 'g1', ready: true },
      ]),
    );
    expect(r.state).toBe('noData');
    expect(r.poolTotal).toBeUndefined();
    expect(r.detail).toContain('g0, g1');
  });

  it('no ready groups is noData', () => {
    expect(judgeSignal(input([{ groupKey: 'g0', ready: false, ranks: ranks(1) }])).state).toBe('noData');
  });

  it('judges staleness by the sample timestamp and says how old', () => {
    const old: RankSample[] = [{ rank: '0', value: 4, timestampSeconds: NOW - 95 }];
    const r = judgeSignal(input([{ groupKey: 'g0', ready: true, ranks: old }]));
    expect(r.state).toBe('stale');
    expect(r.detail).toContain('g0 95s old');
  });

  it('a missing timestamp counts as stale', () => {
    const r = judgeSignal(
      input([{ groupKey: 'g0', ready: true, ranks: [{ rank: '', value: 1, timestampSeconds: Number.NaN }] }]),
    );
    expect(r.state).toBe('stale');
    expect(r.detail).toContain('no timestamp');
  });

  it('rejects KV > 1, negatives, NaN and Inf, and counts them', () => {
    const groups: GateGroup[] = [
      { groupKey: 'g0', ready: true, ranks: ranks(57) },
      { groupKey: 'g1', ready: true, ranks: ranks(0.3, Number.NaN) },
      { groupKey: 'g2', ready: true, ranks: ranks(-0.1) },
      { groupKey: 'g3', ready: true, ranks: ranks(Number.POSITIVE_INFINITY) },
    ];
    const r = judgeSignal(
      input(groups, { signal: 'kvCacheUtilization', range: 'fraction', rankRule: 'mean' }),
    );
    expect(r.state).toBe('outOfRange');
    expect(r.counts.rejectedValues).toBe(4);
    expect(r.detail).toContain('percentage');
    expect(r.detail).toContain('rank 1: NaN');
  });

  it('below quorum the signal is noQuorum; at quorum, missing groups count at the reporting mean', () => {
    const groups: GateGroup[] = [
      { groupKey: 'g0', ready: true, ranks: ranks(4) },
      { groupKey: 'g1', ready: true },
      { groupKey: 'g2', ready: true },
      { groupKey: 'g3', ready: true },
    ];
    expect(judgeSignal(input(groups)).state).toBe('noQuorum');
    const ok = judgeSignal(input(groups, { minQuorumPercentage: 25 }));
    expect(ok.state).toBe('ok');
    expect(ok.poolTotal).toBe(16);
    expect(ok.estimatedGroups).toBe(3);
  });

  it('one bad group under quorum still lets the others through', () => {
    const r = judgeSignal(
      input([
        { groupKey: 'g0', ready: true, ranks: ranks(2) },
        { groupKey: 'g1', ready: true, ranks: ranks(2) },
        { groupKey: 'g2', ready: true, ranks: ranks(-1) },
      ]),
    );
    expect(r.state).toBe('ok');
    expect(r.poolTotal).toBe(6);
    expect(r.counts.outOfRangeGroups).toBe(1);
  });
});

describe('rejectValue', () => {
  it('accepts the edges of the ranges', () => {
    expect(rejectValue(0, 'fraction')).toBeNull();
    expect(rejectValue(1, 'fraction')).toBeNull();
    expect(rejectValue(1e6, 'count')).toBeNull();
    expect(rejectValue(1.0001, 'fraction')).not.toBeNull();
  });
});

describe('toSignalReading', () => {
  it('a non-ok gate overrides the windows, so history never hides missing data', () => {
    const windows = { name: 'q', targetPerGroup: 5, state: 'ok' as const, stableTotal: 10, panicTotal: 12 };
    const gate = judgeSignal(input([{ groupKey: 'g0', ready: true }]));
    const reading = toSignalReading(gate, windows);
    expect(reading.state).toBe('noData');
    expect(reading.stableTotal).toBeUndefined();
  });
});

describe('judgeSignal properties', () => {
  const value = fc.oneof(
    fc.double({ min: -2, max: 200, noNaN: false }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, 1),
  );
  const rankArb = fc.record({
    rank: fc.constantFrom('', '0', '1'),
    value,
    timestampSeconds: fc.oneof(
      fc.double({ min: NOW - 200, max: NOW + 5, noNaN: true }),
      fc.constant(Number.NaN),
    ),
  });
  const groupArb = fc.record(
    {
      groupKey: fc.string({ maxLength: 4 }),
      ready: fc.boolean(),
      ranks: fc.array(rankArb, { maxLength: 3 }),
    },
    { requiredKeys: ['groupKey', 'ready'] },
  );

  it('never throws; ok comes with a finite non-negative total and quorum, anything else with none', () => {
    fc.assert(
      fc.property(
        fc.array(groupArb, { maxLength: 8 }),
        fc.constantFrom<'fraction' | 'count'>('fraction', 'count'),
        fc.integer({ min: 1, max: 100 }),
        (groups, range, quorum) => {
          const r = judgeSignal(
            input(groups, {
              range,
              rankRule: range === 'fraction' ? 'mean' : 'sum',
              minQuorumPercentage: quorum,
            }),
          );
          if (r.state === 'ok') {
            expect(Number.isFinite(r.poolTotal)).toBe(true);
            expect(r.poolTotal).toBeGreaterThanOrEqual(0);
            expect((100 * r.counts.usableGroups) / r.counts.readyGroups).toBeGreaterThanOrEqual(quorum);
          } else {
            expect(r.poolTotal).toBeUndefined();
            expect(r.detail.length).toBeGreaterThan(0);
          }
          const c = r.counts;
          expect(c.usableGroups + c.missingGroups + c.staleGroups + c.outOfRangeGroups).toBe(c.readyGroups);
        },
      ),
      { numRuns: 500 },
    );
  });
});
