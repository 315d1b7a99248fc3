/**
 * The band derived from the token flows (src/decide/coupling-flows.ts): worked numbers first, then properties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CoupledWant, inBand, planWrites } from './coupling.ts';
import {
  type DerivedBand,
  deriveBand,
  flowOf,
  OPEN_BAND,
  type PoolFlow,
  reconcileDerived,
} from './coupling-flows.ts';
import type { SignalExplanation, SignalState } from './types.ts';

const RUNS = { numRuns: Number(process.env.KVPA_PROPERTY_RUNS ?? 1000) };

/** A work signal as a decision explains it: its stable demand and the capacity the pool sizes with. */
function work(
  name: string,
  stableTotal: number,
  capacity: number,
  extra: Partial<SignalExplanation> = {},
): SignalExplanation {
  return {
    name,
    state: 'ok',
    kind: 'work',
    targetPerGroup: capacity,
    stableTotal,
    panicTotal: stableTotal,
    capacity: {
      configuredPerSecond: capacity,
      measuredPerSecond: undefined,
      samples: 0,
      usedPerSecond: capacity,
      source: 'configured',
    },
    ...extra,
  };
}

const prompt = (tps: number, cap: number, headroom = 0, extra: Partial<SignalExplanation> = {}) =>
  flowOf([work('promptTokens', tps, cap, extra)], 'promptTokens', headroom);
const generated = (tps: number, cap: number, headroom = 0, extra: Partial<SignalExplanation> = {}) =>
  flowOf([work('generationTokens', tps, cap, extra)], 'generationTokens', headroom);

function on(d: DerivedBand) {
  if (!d.on) throw new Error(`expected a band, got: ${d.text}`);
  return d;
}

describe('deriveBand: worked numbers', () => {
  it('3,000 prompt tok/s at 1,500 per prefill group and 600 gen tok/s at 300 per decode group derive ratio 1.0, band [0.75, 1.25] at tolerance 0.25', () => {
    const d = on(deriveBand(prompt(3000, 1500), generated(600, 300), 0.25, null));
    expect(d.ratio).toBeCloseTo(1, 12);
    expect(d.band.min).toBeCloseTo(0.75, 12);
    expect(d.band.max).toBeCloseTo(1.25, 12);
    expect(d.text).toBe(
      'band [0.75, 1.25] prefill per decode, derived 1 ± 25 % from flows: prompt 3,000 tok/s ÷ 1,500 per group (configured) = 2 groups; generated 600 tok/s ÷ 300 per group (configured) = 2 groups',
    );
  });

  it('the same flows with 50 % prefill and 25 % decode headroom: 3,000 × 1.5 ÷ 1,500 = 3 over 600 × 1.25 ÷ 300 = 2.5 groups, ratio 1.2, band [0.9, 1.5]', () => {
    const d = on(deriveBand(prompt(3000, 1500, 0.5), generated(600, 300, 0.25), 0.25, null));
    expect(d.ratio).toBeCloseTo(1.2, 12);
    expect([d.band.min, d.band.max].map((x) => Number(x.toFixed(9)))).toEqual([0.9, 1.5]);
    expect(d.text).toContain('prompt 3,000 tok/s ÷ 1,500 per group (configured) × 1.5 headroom = 3 groups');
    expect(d.text).toContain('generated 600 tok/s ÷ 300 per group (configured) × 1.25 headroom = 2.5 groups');
  });

  it('a measured capacity is used and named: 8,000 prompt tok/s at 2,000 measured beside 600 at 300 is ratio 2', () => {
    const measured = {
      capacity: {
        configuredPerSecond: 1500,
        measuredPerSecond: 2000,
        samples: 40,
        usedPerSecond: 2000,
        source: 'measured' as const,
      },
    };
    const d = on(deriveBand(prompt(8000, 1500, 0, measured), generated(600, 300), 0.25, null));
    expect(d.ratio).toBeCloseTo(2, 12);
    expect(d.text).toContain('÷ 2,000 per group (measured)');
  });

  it("the backlog's clearance is not flow: a stable total of 3,500 with 500/s clearing a queue reads 3,000 tok/s", () => {
    const f = prompt(3500, 1500, 0, { clearancePerSecond: 500, backlogTotal: 1000 });
    expect(f).toMatchObject({ ok: true, tokensPerSecond: 3000 });
  });

  it('decode generationTokens stale: no band, the text names the pool, the state and its detail', () => {
    const stale = flowOf(
      [{ name: 'generationTokens', state: 'stale', targetPerGroup: 300, detail: 'last sample 90s ago' }],
      'generationTokens',
      0,
    );
    const d = deriveBand(prompt(3000, 1500), stale, 0.25, 1);
    expect(d).toEqual({
      on: false,
      text: 'no band: decode generationTokens stale (last sample 90s ago); no ratio is derived from missing data, so each pool keeps its own want',
    });
  });

  it('a pool without the signal (prefill scaled on queueDepth alone) gives no band: "prefill no promptTokens signal"', () => {
    const none = flowOf([work('queueDepth', 3, 4)], 'promptTokens', 0);
    const d = deriveBand(none, generated(600, 300), 0.25, null);
    expect(d.on).toBe(false);
    expect(d.text).toContain('prefill no promptTokens signal');
  });

  it('a capacity of 0 is no capacity: no band, never a ratio of infinity', () => {
    const zero = flowOf([work('promptTokens', 3000, 0)], 'promptTokens', 0);
    expect(zero).toEqual({
      ok: false,
      signal: 'promptTokens',
      why: 'promptTokens has no capacity per group',
    });
    expect(deriveBand(zero, generated(600, 300), 0.25, null).on).toBe(false);
  });

  it('1,000 prompt tok/s at 1,500 per group is 0.67 groups of work: no band (noise of thin flows), and 0 tok/s is never a ratio of 0', () => {
    const thin = deriveBand(prompt(1000, 1500), generated(600, 300), 0.25, null);
    expect(thin.on).toBe(false);
    expect(thin.text).toContain('prompt 1,000 tok/s ÷ 1,500 per group (configured) = 0.667 groups');
    expect(thin.text).toContain('under 1 group of work on a side');
    expect(deriveBand(prompt(0, 1500), generated(600, 300), 0.25, null).on).toBe(false);
    expect(deriveBand(prompt(3000, 1500), generated(0, 300), 0.25, null).on).toBe(false);
  });

  it('dead band at tolerance 0.25: from a centre of 1.0, a ratio of 1.1 keeps 1.0 (within ±12.5 %), 1.2 moves it to 1.2', () => {
    const kept = on(deriveBand(prompt(3300, 1500), generated(600, 300), 0.25, 1));
    expect(kept.ratio).toBe(1);
    expect(kept.measured).toBeCloseTo(1.1, 12);
    expect(kept.text).toContain('derived 1 (kept: 1.1 now is within ±12.5 % of it) ± 25 %');
    const moved = on(deriveBand(prompt(3600, 1500), generated(600, 300), 0.25, 1));
    expect(moved.ratio).toBeCloseTo(1.2, 12);
    expect([moved.band.min, moved.band.max].map((x) => Number(x.toFixed(9)))).toEqual([0.9, 1.5]);
  });
});

describe('reconcileDerived: worked numbers', () => {
  const want = (n: number, min = 1, max = 16): CoupledWant => ({
    want: n,
    minReplicas: min,
    maxReplicas: max,
  });

  it('ratio 2 (8,000 prompt tok/s at 2,000, 600 gen at 300; band [1.5, 2.5]): prefill wanting 2 beside decode 2 is raised to 3', () => {
    const d = deriveBand(prompt(8000, 2000), generated(600, 300), 0.25, null);
    const o = reconcileDerived(d, want(2), want(2));
    expect(o).toMatchObject({ prefill: 3, decode: 2, inBand: true, decodeReason: null });
    expect(o.prefillReason).toContain('raised 2 → 3');
  });

  it('no band (decode noData): the wants 2 and 6 pass through unchanged, with no reason', () => {
    const none = flowOf(
      [{ name: 'generationTokens', state: 'noData', targetPerGroup: 300 }],
      'generationTokens',
      0,
    );
    const o = reconcileDerived(deriveBand(prompt(3000, 1500), none, 0.25, null), want(2), want(6));
    expect(o).toEqual({ prefill: 2, decode: 6, inBand: true, prefillReason: null, decodeReason: null });
  });

  it('with no band, the writes go straight: 2/2 to 1/6 is prefill 2 → 1 then decode 2 → 6 in one tick, nothing to undo', () => {
    const plan = planWrites(OPEN_BAND, { prefill: 2, decode: 2 }, { prefill: 1, decode: 6 });
    expect(plan.writes).toEqual([
      { pool: 'prefill', from: 2, to: 1 },
      { pool: 'decode', from: 2, to: 6 },
    ]);
    expect(plan.reaches).toEqual({ prefill: 1, decode: 6 });
    expect(plan.compensate).toBe(false);
  });
});

const STATES: readonly SignalState[] = ['ok', 'noData', 'stale', 'noQuorum', 'outOfRange', 'error'];

/** A pool's work signal as a decision may explain it: any state, flows and capacities from 0 up, or absent. */
const flowArb = (name: string) =>
  fc
    .record({
      // Weighted toward usable flows: both sides must be usable for a band, which uniform picks rarely give.
      present: fc.oneof(fc.constant(true), fc.boolean()),
      state: fc.oneof(
        { weight: 3, arbitrary: fc.constant<SignalState>('ok') },
        { weight: 2, arbitrary: fc.constantFrom(...STATES) },
      ),
      stable: fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.constantFrom(0, Number.NaN)),
      clearance: fc.double({ min: 0, max: 1e4, noNaN: true }),
      capacity: fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(0)),
      headroom: fc.double({ min: 0, max: 2, noNaN: true }),
    })
    .map(({ present, state, stable, clearance, capacity, headroom }) => {
      const s: SignalExplanation =
        state === 'ok'
          ? work(name, stable + clearance, capacity, { clearancePerSecond: clearance })
          : { name, state, targetPerGroup: capacity };
      return {
        input: { present, state, stable, capacity },
        flow: flowOf(present ? [s] : [], name, headroom),
      };
    });

describe('deriveBand: properties', () => {
  it('(a) a band exists only from two ok signals with a positive capacity and at least one group of work each; it always holds the ratio the flows give now, and 0 < min < max', () => {
    // Both outcomes must occur, or the property proves little.
    const seen = new Set<boolean>();
    fc.assert(
      fc.property(
        flowArb('promptTokens'),
        flowArb('generationTokens'),
        fc.double({ min: 0.1, max: 0.9, noNaN: true }),
        fc.option(fc.double({ min: 0.01, max: 100, noNaN: true }), { nil: null }),
        (p, g, tolerance, previous) => {
          const d = deriveBand(p.flow, g.flow, tolerance, previous);
          seen.add(d.on);
          const usable = (x: { present: boolean; state: SignalState; stable: number; capacity: number }) =>
            x.present && x.state === 'ok' && Number.isFinite(x.stable) && x.stable > 0 && x.capacity > 0;
          if (!usable(p.input) || !usable(g.input)) {
            expect(d.on).toBe(false);
            expect(d.text).toMatch(/^no band: /);
            return;
          }
          if (!d.on) return;
          const [pf, gf] = [p.flow, g.flow] as [PoolFlow & { ok: true }, PoolFlow & { ok: true }];
          const groups = (f: typeof pf) => (f.tokensPerSecond * (1 + f.headroom)) / f.capacityPerGroup;
          expect(groups(pf)).toBeGreaterThanOrEqual(1);
          expect(groups(gf)).toBeGreaterThanOrEqual(1);
          expect(d.measured).toBeCloseTo(groups(pf) / groups(gf), 9);
          expect(d.band.min).toBeGreaterThan(0);
          expect(d.band.min).toBeLessThan(d.band.max);
          expect(d.band.min).toBeLessThanOrEqual(d.measured * (1 + 1e-12));
          expect(d.band.max).toBeGreaterThanOrEqual(d.measured * (1 - 1e-12));
        },
      ),
      RUNS,
    );
    expect([...seen].sort()).toEqual([false, true]);
  });

  it('(b) the outcome respects the pools: within [minReplicas, maxReplicas], a want lowered only when the other pool is at its maxReplicas, in band when a band exists and the bounds admit it; with no band, the wants unchanged', () => {
    const poolArb = fc
      .record({
        minReplicas: fc.integer({ min: 1, max: 4 }),
        span: fc.integer({ min: 0, max: 30 }),
        at: fc.integer({ min: 0, max: 40 }),
      })
      .map(({ minReplicas, span, at }) => ({
        want: Math.min(minReplicas + span, minReplicas + at),
        minReplicas,
        maxReplicas: minReplicas + span,
      }));
    fc.assert(
      fc.property(
        flowArb('promptTokens'),
        flowArb('generationTokens'),
        fc.double({ min: 0.1, max: 0.9, noNaN: true }),
        poolArb,
        poolArb,
        (p, g, tolerance, pw, dw) => {
          const d = deriveBand(p.flow, g.flow, tolerance, null);
          const o = reconcileDerived(d, pw, dw);
          const within = (n: number, w: CoupledWant) => n >= w.minReplicas && n <= w.maxReplicas;
          expect(within(o.prefill, pw) && within(o.decode, dw)).toBe(true);
          if (o.prefill < pw.want) expect(o.decode).toBe(dw.maxReplicas);
          if (o.decode < dw.want) expect(o.prefill).toBe(pw.maxReplicas);
          if (!d.on) expect([o.prefill, o.decode]).toEqual([pw.want, dw.want]);
          else expect(o.inBand).toBe(inBand(d.band, { prefill: o.prefill, decode: o.decode }));
        },
      ),
      RUNS,
    );
  });
});
