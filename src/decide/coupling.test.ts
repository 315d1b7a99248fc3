/**
 * The prefill/decode ratio band (src/decide/coupling.ts): worked examples first, then properties stated in
 * words. A ratio is prefill groups per decode group; `[min, max]` is the band.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CoupledWant,
  inBand,
  type Pair,
  planWrites,
  type RatioBand,
  reconcileBand,
  type WritePlan,
} from './coupling.ts';

const RUNS = { numRuns: Number(process.env.KVPA_PROPERTY_RUNS ?? 1000) };

const want = (n: number, minReplicas = 1, maxReplicas = 64): CoupledWant => ({
  want: n,
  minReplicas,
  maxReplicas,
});
const pair = (prefill: number, decode: number): Pair => ({ prefill, decode });

function apply(current: Pair, plan: WritePlan): Pair[] {
  const seen: Pair[] = [];
  let p = current;
  for (const w of plan.writes) {
    expect(p[w.pool]).toBe(w.from);
    p = { ...p, [w.pool]: w.to };
    seen.push(p);
  }
  return seen;
}

/** Plans and applies writes tick after tick; returns the pair after every single write, tick by tick. */
function converge(band: RatioBand, current: Pair, target: Pair, maxTicks: number): Pair[][] {
  const ticks: Pair[][] = [];
  let p = current;
  while ((p.prefill !== target.prefill || p.decode !== target.decode) && ticks.length < maxTicks) {
    const seen = apply(p, planWrites(band, p, target));
    ticks.push(seen);
    p = seen[seen.length - 1] ?? p;
  }
  return ticks;
}

const text = (ps: readonly Pair[]) => ps.map((q) => `${q.prefill}/${q.decode}`).join(' ');

describe('reconcileBand: worked examples', () => {
  const band = { min: 0.5, max: 1 };

  it('prefill 2 beside decode 6 with band [0.5, 1] is raised to 3, decode keeps 6', () => {
    const o = reconcileBand(band, want(2), want(6));
    expect(o).toMatchObject({ prefill: 3, decode: 6, inBand: true, decodeReason: null });
    expect(o.prefillReason).toContain('raised 2 → 3');
  });

  it('prefill 10 beside decode 4 with band [0.5, 2] raises decode to 5, prefill keeps 10', () => {
    const o = reconcileBand({ min: 0.5, max: 2 }, want(10), want(4));
    expect(o).toMatchObject({ prefill: 10, decode: 5, inBand: true, prefillReason: null });
    expect(o.decodeReason).toContain('raised 4 → 5');
  });

  it('prefill 4 beside decode 6 with band [0.5, 1] is left alone: no reasons', () => {
    expect(reconcileBand(band, want(4), want(6))).toEqual({
      prefill: 4,
      decode: 6,
      inBand: true,
      prefillReason: null,
      decodeReason: null,
    });
  });

  it('prefill 2 (maxReplicas 3) beside decode 10 with band [0.5, 1]: prefill stops at 3, decode is lowered to 6', () => {
    const o = reconcileBand(band, want(2, 1, 3), want(10));
    expect(o).toMatchObject({ prefill: 3, decode: 6, inBand: true });
    expect(o.prefillReason).toContain('raised 2 → 3');
    expect(o.decodeReason).toContain('lowered 10 → 6: prefill is at maxReplicas 3');
  });

  it('prefill 12 beside decode 4 (maxReplicas 5) with band [0.5, 2]: decode stops at 5, prefill is lowered to 10', () => {
    const o = reconcileBand({ min: 0.5, max: 2 }, want(12), want(4, 1, 5));
    expect(o).toMatchObject({ prefill: 10, decode: 5, inBand: true });
    expect(o.decodeReason).toContain('raised 4 → 5');
    expect(o.prefillReason).toContain('lowered 12 → 10: decode is at maxReplicas 5');
  });

  it('prefill 2 (unbounded, maxReplicas 0) beside decode 100 with band [0.5, 1] is raised to 50', () => {
    expect(reconcileBand(band, want(2, 1, 0), want(100))).toMatchObject({ prefill: 50, decode: 100 });
  });

  it('prefill 1 (maxReplicas 2) beside decode 10 (minReplicas 8) with band [0.5, 1]: 2/8 is the best the bounds allow, inBand false and both reasons say the bounds exclude the band', () => {
    const o = reconcileBand(band, want(1, 1, 2), want(10, 8, 64));
    expect(o).toMatchObject({ prefill: 2, decode: 8, inBand: false });
    for (const reason of [o.prefillReason, o.decodeReason]) {
      expect(reason).toContain("the pools' bounds exclude the band [0.5, 1]");
    }
  });

  it('prefill 20 (minReplicas 16) beside decode 4 (maxReplicas 4) with band [0.5, 2]: decode cannot rise past 4 and prefill not below 16, inBand false', () => {
    const o = reconcileBand({ min: 0.5, max: 2 }, want(20, 16, 64), want(4, 1, 4));
    expect(o).toMatchObject({ prefill: 16, decode: 4, inBand: false });
    expect(o.prefillReason).toContain("the pools' bounds exclude");
    expect(o.decodeReason).toContain("the pools' bounds exclude");
  });

  // In a band narrower than a factor 2, raising one side alone can land between two in-band pairs: the
  // search moves both, by the fewest groups.
  it('prefill 4 beside decode 1 with band [2.1, 3] reaches 5/2 (ratio 2.5), raising both by one', () => {
    const o = reconcileBand({ min: 2.1, max: 3 }, want(4), want(1));
    expect(o).toMatchObject({ prefill: 5, decode: 2, inBand: true });
  });

  it('prefill 1 beside decode 4 with band [0.65, 0.7] reaches an in-band pair without lowering either', () => {
    const band = { min: 0.65, max: 0.7 };
    const o = reconcileBand(band, want(1), want(4));
    expect(o.inBand).toBe(true);
    expect(o.prefill).toBeGreaterThanOrEqual(1);
    expect(o.decode).toBeGreaterThanOrEqual(4);
    expect(inBand(band, pair(o.prefill, o.decode))).toBe(true);
  });

  it('prefill 3 at its maxReplicas 3 beside decode 10 with band [0.5, 1] keeps 3 with no reason; decode is lowered to 6', () => {
    const o = reconcileBand({ min: 0.5, max: 1 }, want(3, 1, 3), want(10));
    expect(o).toMatchObject({ prefill: 3, decode: 6 });
    expect(o.prefillReason).toBeNull();
    expect(o.decodeReason).toBe('lowered 10 → 6: prefill is at maxReplicas 3');
  });
});

describe('planWrites: worked examples', () => {
  it('from 1/1 to 16/16 in band [0.5, 1]: four ticks through 2/2, 4/4, 8/8, decode first, every pair after each write in band', () => {
    const band = { min: 0.5, max: 1 };
    const ticks = converge(band, pair(1, 1), pair(16, 16), 10);
    expect(ticks.map(text)).toEqual(['1/2 2/2', '2/4 4/4', '4/8 8/8', '8/16 16/16']);
    for (const p of ticks.flat()) expect(inBand(band, p)).toBe(true);
    expect(planWrites(band, pair(1, 1), pair(16, 16))).toMatchObject({
      compensate: false,
      reaches: { prefill: 2, decode: 2 },
    });
  });

  it('from 16/16 down to 1/1 in band [0.5, 1]: four ticks through 8/8, 4/4, 2/2, prefill first, every pair in band', () => {
    const band = { min: 0.5, max: 1 };
    const ticks = converge(band, pair(16, 16), pair(1, 1), 10);
    expect(ticks.map(text)).toEqual(['8/16 8/8', '4/8 4/4', '2/4 2/2', '1/2 1/1']);
    for (const p of ticks.flat()) expect(inBand(band, p)).toBe(true);
  });

  it('from 2/2 to 12/8 in band [0.5, 2]: 4/2 then 4/8 on the first tick, 12/8 on the second', () => {
    const band = { min: 0.5, max: 2 };
    const ticks = converge(band, pair(2, 2), pair(12, 8), 10);
    expect(ticks.map(text)).toEqual(['4/2 4/8', '12/8']);
    for (const p of ticks.flat()) expect(inBand(band, p)).toBe(true);
  });

  it('at 5/6 with target 5/6: no writes', () => {
    expect(planWrites({ min: 0.5, max: 1 }, pair(5, 6), pair(5, 6))).toMatchObject({
      writes: [],
      compensate: false,
    });
  });

  it('band [1, 1] from 2/2 to 4/4 (narrower than one group): both straight, prefill first, compensate true', () => {
    const plan = planWrites({ min: 1, max: 1 }, pair(2, 2), pair(4, 4));
    expect(plan.writes).toEqual([
      { pool: 'prefill', from: 2, to: 4 },
      { pool: 'decode', from: 2, to: 4 },
    ]);
    expect(plan.compensate).toBe(true);
    expect(plan.reaches).toEqual(pair(4, 4));
    expect(plan.reason).toContain('narrower than one group');
    expect(plan.reason).toContain('undone if the second fails');
  });

  it('from 2/6 (outside [0.5, 1]) to 3/5: straight, prefill (the raising side) first, no compensation', () => {
    const plan = planWrites({ min: 0.5, max: 1 }, pair(2, 6), pair(3, 5));
    expect(plan.writes).toEqual([
      { pool: 'prefill', from: 2, to: 3 },
      { pool: 'decode', from: 6, to: 5 },
    ]);
    expect(plan).toMatchObject({ compensate: false, reaches: pair(3, 5) });
    expect(plan.reason).toContain('outside the band');
  });

  it('from 2/2 (in [0.5, 1]) toward 3/2 (outside it, as when one pool is held): no write leaves the band', () => {
    const plan = planWrites({ min: 0.5, max: 1 }, pair(2, 2), pair(3, 2));
    expect(plan.writes).toEqual([]);
    expect(plan.reaches).toEqual(pair(2, 2));
    expect(plan.reason).toContain('3/2 is outside the band: both pools hold at 2/2');
  });

  it('from 6/2 (outside [0.5, 1]) to 5/5: straight, decode (the raising side) first', () => {
    const plan = planWrites({ min: 0.5, max: 1 }, pair(6, 2), pair(5, 5));
    expect(plan.writes.map((w) => `${w.pool} ${w.from}→${w.to}`)).toEqual(['decode 2→5', 'prefill 6→5']);
    expect(plan.compensate).toBe(false);
  });
});

// Bands at least a factor 2 wide (max ≥ 2·min): every count of one pool then has an in-band partner.
const wideBand: fc.Arbitrary<RatioBand> = fc
  .tuple(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 200, max: 800 }))
  .map(([min, factor]) => ({ min: min / 100, max: ((min / 100) * factor) / 100 }));
/** Any band, down to min = max (narrower than one group) and min = 0. */
const anyBand: fc.Arbitrary<RatioBand> = fc
  .tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 400 }))
  .map(([min, width]) => ({ min: min / 100, max: (min + width) / 100 }));

/** A pool's bounds (maxReplicas 0 is unbounded) and a want inside them. */
const pool = (allowUnbounded: boolean) =>
  fc
    .record({
      minReplicas: fc.integer({ min: 1, max: 8 }),
      span: fc.integer({ min: 0, max: 40 }),
      unbounded: allowUnbounded ? fc.boolean() : fc.constant(false),
      at: fc.integer({ min: 0, max: 60 }),
    })
    .map(({ minReplicas, span, unbounded, at }) => {
      const max = minReplicas + span;
      return { want: Math.min(max, minReplicas + at), minReplicas, maxReplicas: unbounded ? 0 : max };
    });

function someInBandPair(band: RatioBand, p: CoupledWant, d: CoupledWant): boolean {
  const top = (w: CoupledWant) => (w.maxReplicas > 0 ? w.maxReplicas : 200);
  for (let x = p.minReplicas; x <= top(p); x++) {
    for (let y = d.minReplicas; y <= top(d); y++) if (inBand(band, pair(x, y))) return true;
  }
  return false;
}

const within = (n: number, w: CoupledWant) =>
  n >= w.minReplicas && (w.maxReplicas === 0 || n <= w.maxReplicas);

describe('reconcileBand: properties', () => {
  it('(a) in a band at least a factor 2 wide, when the pools’ bounds admit some in-band pair, the result is in band and each pool stays within its [minReplicas, maxReplicas]', () => {
    fc.assert(
      fc.property(wideBand, pool(true), pool(true), (band, p, d) => {
        fc.pre(someInBandPair(band, p, d));
        const o = reconcileBand(band, p, d);
        expect(o.inBand).toBe(true);
        expect(inBand(band, pair(o.prefill, o.decode))).toBe(true);
        expect(within(o.prefill, p)).toBe(true);
        expect(within(o.decode, d)).toBe(true);
        expect(o.prefillReason ?? '').not.toContain('exclude');
        expect(o.decodeReason ?? '').not.toContain('exclude');
      }),
      RUNS,
    );
  });

  it('(b) in any band, a want is never lowered unless the other pool ended at its maxReplicas; a pool moved has a reason', () => {
    fc.assert(
      fc.property(anyBand, pool(true), pool(true), (band, p, d) => {
        const o = reconcileBand(band, p, d);
        if (o.prefill < p.want) expect(d.maxReplicas > 0 && o.decode === d.maxReplicas).toBe(true);
        if (o.decode < d.want) expect(p.maxReplicas > 0 && o.prefill === p.maxReplicas).toBe(true);
        if (o.prefill !== p.want) expect(o.prefillReason).not.toBeNull();
        if (o.decode !== d.want) expect(o.decodeReason).not.toBeNull();
        // Never below a minReplicas, never above a maxReplicas.
        expect(within(o.prefill, p) && within(o.decode, d)).toBe(true);
        // inBand is what it says.
        expect(o.inBand).toBe(inBand(band, pair(o.prefill, o.decode)));
      }),
      RUNS,
    );
  });
});

const count = fc.integer({ min: 0, max: 80 });
const pairArb = fc.record({ prefill: count, decode: count });

describe('planWrites: properties', () => {
  it('(c) in any band, from an in-band pair toward an in-band target, a plan without compensation leaves the pair in band after every prefix of its writes', () => {
    fc.assert(
      fc.property(anyBand, pairArb, pairArb, (band, current, target) => {
        fc.pre(inBand(band, current) && inBand(band, target));
        const plan = planWrites(band, current, target);
        fc.pre(!plan.compensate);
        for (const p of apply(current, plan)) expect(inBand(band, p)).toBe(true);
      }),
      RUNS,
    );
  });

  it('(d) in a band at least a factor 2 wide, planning and applying again from an in-band pair reaches an in-band target within 20 rounds; every pair is in band but the one after the first write of a plan that arms its undo', () => {
    const big = fc.integer({ min: 1, max: 1024 });
    const bigPair = fc.record({ prefill: big, decode: big });
    fc.assert(
      fc.property(wideBand, bigPair, bigPair, (band, current, target) => {
        fc.pre(inBand(band, current) && inBand(band, target));
        let p = current;
        for (
          let round = 0;
          round < 20 && (p.prefill !== target.prefill || p.decode !== target.decode);
          round++
        ) {
          const plan = planWrites(band, p, target);
          const seen = apply(p, plan);
          seen.forEach((q, i) => {
            if (!(plan.compensate && i === 0)) expect(inBand(band, q)).toBe(true);
          });
          p = seen.at(-1) ?? p;
        }
        expect(p).toEqual(target);
      }),
      RUNS,
    );
  });

  it('band [2.51, 5.02] from 3/1 to 6/2: 5/1 in band, then no single write can cross, so 6/2 straight with the undo armed', () => {
    const band = { min: 2.51, max: 5.02 };
    const firstTick = planWrites(band, pair(3, 1), pair(6, 2));
    expect(firstTick.reaches).toEqual(pair(5, 1));
    const second = planWrites(band, pair(5, 1), pair(6, 2));
    expect(second.compensate).toBe(true);
    expect(second.reaches).toEqual(pair(6, 2));
  });

  it('every plan names the pools’ current counts as its writes’ from, and reaches the pair its writes give', () => {
    fc.assert(
      fc.property(anyBand, pairArb, pairArb, (band, current, target) => {
        const plan = planWrites(band, current, target);
        expect(plan.writes.length).toBeLessThanOrEqual(2);
        expect(new Set(plan.writes.map((w) => w.pool)).size).toBe(plan.writes.length);
        expect(apply(current, plan).at(-1) ?? current).toEqual(plan.reaches);
      }),
      RUNS,
    );
  });
});
