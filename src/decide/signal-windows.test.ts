import { describe, expect, it } from 'vitest';
import { SignalWindows } from './signal-windows.ts';

const spec = {
  name: 'kv',
  targetPerGroup: 0.7,
  stableWindowSeconds: 60,
  panicWindowPercentage: 10,
  aggregation: 'linear' as const,
};

describe('SignalWindows', () => {
  it('keeps one pool-total sample per second: a level sampled twice in a second is not doubled', () => {
    const w = new SignalWindows(spec);
    expect(w.record(100.1, 1.9)).toBe(true);
    expect(w.record(100.6, 1.9)).toBe(false);
    expect(w.record(101.0, 1.9)).toBe(true);
    expect(w.read(101)).toMatchObject({ state: 'ok', stableTotal: 1.9, panicTotal: 1.9 });
  });

  it('reads noData, never zero, once nothing arrived for a stable window', () => {
    const w = new SignalWindows(spec);
    w.record(100, 2);
    expect(w.read(161).state).toBe('noData');
    expect(w.read(161).stableTotal).toBeUndefined();
  });

  it('refuses, without throwing, values the quality gate should have stopped (NaN, -1, 1e308)', () => {
    const w = new SignalWindows(spec);
    expect(w.record(1, Number.NaN)).toBe(false);
    expect(w.record(1, -1)).toBe(false);
    expect(w.record(1, 1e308)).toBe(false);
    expect(w.read(1).state).toBe('noData');
    expect(w.record(1, 2)).toBe(true);
    expect(w.read(1)).toMatchObject({ state: 'ok', stableTotal: 2 });
  });
});
