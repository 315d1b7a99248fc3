import { describe, expect, it } from 'vitest';
import { currentMax, newDelayWindow, recordMax } from './delay-window.ts';
import {
  LinearWindow,
  panicWindowSeconds,
  smoothingCoefficient,
  WeightedExponentialWindow,
} from './window.ts';

const T0 = 1_700_000_000; // any whole second; windows only care about bucket indices

describe('LinearWindow (Knative TimedFloat64Buckets semantics)', () => {
  it('averages a young series over its own span, not the whole window', () => {
    const w = new LinearWindow(60);
    w.record(T0, 10);
    w.record(T0 + 1, 20);
    w.record(T0 + 2, 30);
    // 3 buckets written, window of 60: (10+20+30)/3
    expect(w.average(T0 + 2)).toBe(20);
  });

  it('sums values that land in the same 1 s bucket', () => {
    const w = new LinearWindow(10);
    w.record(T0 + 0.1, 3);
    w.record(T0 + 0.9, 4);
    expect(w.average(T0 + 0.5)).toBe(7);
  });

  it('excludes a trailing gap from the average', () => {
    const w = new LinearWindow(10);
    for (let t = 0; t < 10; t++) w.record(T0 + t, 5);
    // 4 s later nothing new: the 4 trailing (empty) buckets are left out, 6 remain at 5
    expect(w.average(T0 + 13)).toBe(5);
  });

  it('counts a gap in the middle as zeros', () => {
    const w = new LinearWindow(10);
    w.record(T0, 6);
    w.record(T0 + 5, 6); // buckets 1..4 were zeroed by this write
    // span = 6 buckets, total 12
    expect(w.average(T0 + 5)).toBe(2);
  });

  it('returns 0 and reports empty once a whole window passes without data', () => {
    const w = new LinearWindow(10);
    w.record(T0, 6);
    expect(w.isEmpty(T0 + 10)).toBe(false);
    expect(w.isEmpty(T0 + 11)).toBe(true);
    expect(w.average(T0 + 10)).toBe(0);
  });

  it('restarts as a young series after a silence of a whole window', () => {
    const w = new LinearWindow(10);
    for (let t = 0; t < 10; t++) w.record(T0 + t, 100);
    w.record(T0 + 30, 4);
    expect(w.average(T0 + 30)).toBe(4);
  });

  it('ignores a value older than one window before the last write, but accepts a late one inside it', () => {
    const w = new LinearWindow(10);
    w.record(T0 + 20, 10);
    w.record(T0 + 5, 1000); // 15 s older: ignored
    expect(w.average(T0 + 20)).toBe(10);
    w.record(T0 + 18, 2); // late but inside the window: extends the span back to T0+18
    expect(w.average(T0 + 20)).toBe(4); // (10+2)/3 buckets
  });

  it('slides: old buckets drop out as new ones are written', () => {
    const w = new LinearWindow(3);
    w.record(T0, 9);
    w.record(T0 + 1, 0);
    w.record(T0 + 2, 0);
    expect(w.average(T0 + 2)).toBe(3);
    w.record(T0 + 3, 0);
    expect(w.average(T0 + 3)).toBe(0);
  });

  it('rounds to 6 decimals', () => {
    const w = new LinearWindow(3);
    w.record(T0, 1);
    w.record(T0 + 1, 1);
    w.record(T0 + 2, 0);
    expect(w.average(T0 + 2)).toBe(0.666667);
  });

  it('rejects a window shorter than a bucket', () => {
    expect(() => new LinearWindow(0.5)).toThrow(/windowSeconds/);
  });
});

describe('WeightedExponentialWindow', () => {
  it('uses Knative’s smoothing coefficient', () => {
    expect(smoothingCoefficient(6)).toBeCloseTo(0.78456, 5);
    expect(smoothingCoefficient(40)).toBeCloseTo(0.20567, 5);
    expect(smoothingCoefficient(60)).toBe(0.2);
  });

  it('weights recent buckets more: [10,10,5,5] and [5,5,10,10] differ', () => {
    const a = new WeightedExponentialWindow(4);
    const b = new WeightedExponentialWindow(4);
    for (const [i, v] of [10, 10, 5, 5].entries()) a.record(T0 + i, v);
    for (const [i, v] of [5, 5, 10, 10].entries()) b.record(T0 + i, v);
    const alpha = smoothingCoefficient(4);
    const expectA = alpha * (5 + 5 * (1 - alpha) + 10 * (1 - alpha) ** 2 + 10 * (1 - alpha) ** 3);
    expect(a.average(T0 + 3)).toBeCloseTo(expectA, 12);
    expect(b.average(T0 + 3)).toBeGreaterThan(a.average(T0 + 3));
  });

  it('counts buckets after the last write as zeros', () => {
    const w = new WeightedExponentialWindow(10);
    w.record(T0, 10);
    const alpha = w.smoothing;
    expect(w.average(T0 + 2)).toBeCloseTo(10 * alpha * (1 - alpha) ** 2, 12);
  });
});

describe('panic window', () => {
  it('is 10 % of the stable window by default, and at least one second', () => {
    expect(panicWindowSeconds(60, 10)).toBe(6);
    expect(panicWindowSeconds(6, 1)).toBe(1);
  });
});

describe('scale-down delay window (max over 2 s buckets)', () => {
  it('holds a value for the whole delay and drops it one bucket later (Knative "simple")', () => {
    let w = newDelayWindow(300, 2); // 150 buckets
    w = recordMax(w, 2, 4); // bucket 1
    w = recordMax(w, 300, 0); // bucket 150: 150 - 1 = 149 < 150, still held
    expect(currentMax(w)).toBe(4);
    w = recordMax(w, 302, 0); // bucket 151: expired
    expect(currentMax(w)).toBe(0);
  });

  it('keeps the larger value when two land in the same bucket, and never mutates its input', () => {
    const empty = newDelayWindow(10, 2);
    const a = recordMax(empty, 4, 7);
    const b = recordMax(a, 5, 3);
    expect(currentMax(b)).toBe(7);
    expect(empty.entries).toHaveLength(0);
    expect(a.entries).toEqual([[2, 7]]);
  });
});
