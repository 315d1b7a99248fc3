/**
 * Overflow safety of the windows: whatever a source sends (1e308, Infinity, NaN, negatives), a window's
 * average stays finite, and once a window of ordinary samples has passed it is exactly what those
 * samples alone would give. Runs: KVPA_PROPERTY_RUNS (default 300).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SignalWindows } from './signal-windows.ts';
import { LinearWindow, makeWindow, WeightedExponentialWindow } from './window.ts';

const RUNS = { numRuns: Number(process.env.KVPA_PROPERTY_RUNS ?? 300) };
const T0 = 1_000_000;

const hostile = fc.oneof(
  fc.constantFrom(1e308, Number.MAX_VALUE, Number.POSITIVE_INFINITY, Number.NaN, -1, -1e308, 1e16),
  fc.double({ noNaN: false }),
);
const ordinary = fc.double({ min: 0, max: 100, noNaN: true });

describe('windows are overflow-safe', () => {
  it('two samples of 1e308 in one bucket: refused, the total stays 2 (not Infinity)', () => {
    const w = new LinearWindow(60);
    expect(w.record(T0, 2)).toBe(true);
    expect(w.record(T0, 1e308)).toBe(false);
    expect(w.record(T0, 1e308)).toBe(false);
    expect(w.average(T0)).toBe(2);
  });

  it('1e15 then 0.3 per second: once the big bucket leaves a 6 s window the average is 0.3 exactly', () => {
    const w = new LinearWindow(6);
    w.record(T0, 1e15);
    for (let t = 1; t <= 6; t++) w.record(T0 + t, 0.3);
    expect(w.average(T0 + 6)).toBe(0.3);
  });

  it('any hostile prefix, then a full window of ordinary samples: finite, and equal to a clean window', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('linear', 'weightedExponential' as const),
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), hostile), { maxLength: 40 }),
        fc.array(ordinary, { minLength: 30, maxLength: 30 }),
        (algorithm, windowSeconds, prefix, tail) => {
          const dirty = makeWindow(algorithm, windowSeconds);
          const clean = makeWindow(algorithm, windowSeconds);
          for (const [dt, v] of prefix) {
            dirty.record(T0 + dt, v);
            expect(Number.isFinite(dirty.average(T0 + dt))).toBe(true);
          }
          const start = T0 + 100; // past every prefix sample, by more than one window
          tail.forEach((v, i) => {
            dirty.record(start + i, v);
            clean.record(start + i, v);
          });
          const end = start + tail.length - 1;
          expect(Number.isFinite(dirty.average(end))).toBe(true);
          expect(dirty.average(end)).toBe(clean.average(end));
        },
      ),
      RUNS,
    );
  });

  it('interleaved hostile and ordinary samples never make an average non-finite', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(hostile, ordinary), { minLength: 1, maxLength: 200 }), (values) => {
        const linear = new LinearWindow(20);
        const weighted = new WeightedExponentialWindow(20);
        const signal = new SignalWindows({
          name: 'kv',
          targetPerGroup: 0.7,
          stableWindowSeconds: 20,
          panicWindowPercentage: 10,
          aggregation: 'linear',
        });
        values.forEach((v, i) => {
          linear.record(T0 + i, v);
          weighted.record(T0 + i, v);
          signal.record(T0 + i, v);
          expect(Number.isFinite(linear.average(T0 + i))).toBe(true);
          expect(Number.isFinite(weighted.average(T0 + i))).toBe(true);
          const r = signal.read(T0 + i);
          if (r.state === 'ok')
            expect(Number.isFinite((r.stableTotal ?? 0) + (r.panicTotal ?? 0))).toBe(true);
        });
      }),
      RUNS,
    );
  });
});
