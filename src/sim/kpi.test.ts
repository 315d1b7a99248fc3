import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { costPerMillionOutputTokens, countFlaps, LatencyHistogram } from './kpi.ts';
import { Random } from './random.ts';

describe('latency histogram', () => {
  it('quantiles are within 0.5 % of the exact order statistic (log-normal latencies, 100k samples)', () => {
    const random = new Random(3);
    const h = new LatencyHistogram();
    const values: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      const v = Math.exp(-1 + 1.5 * random.normal());
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const exact = values[Math.ceil(q * values.length) - 1] as number;
      expect(Math.abs(h.quantile(q) / exact - 1)).toBeLessThanOrEqual(0.0051);
    }
    expect(h.quantile(1)).toBe(values.at(-1));
  });

  it('for any sample set, every quantile lies within the relative error of a recorded value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1e-3, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 200 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        (values, q) => {
          const h = new LatencyHistogram();
          for (const v of values) h.record(v);
          const sorted = [...values].sort((a, b) => a - b);
          const exact = sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
          expect(Math.abs(h.quantile(q) / exact - 1)).toBeLessThanOrEqual(0.0051);
        },
      ),
    );
  });
});

describe('flaps and cost', () => {
  it('a flap is a direction reversal closer than the window', () => {
    const up = (t: number, from: number) => ({ tSeconds: t, fromGroups: from, toGroups: from + 1 });
    const down = (t: number, from: number) => ({ tSeconds: t, fromGroups: from, toGroups: from - 1 });
    expect(countFlaps([up(0, 1), up(10, 2), down(100, 3), up(1000, 2)], 600)).toBe(1);
    expect(countFlaps([up(0, 1), down(600, 2)], 600)).toBe(0);
    expect(countFlaps([], 600)).toBe(0);
  });

  it('cost per million output tokens is GPU-hours × price over millions of tokens', () => {
    expect(costPerMillionOutputTokens(100, 2, 50_000_000)).toBe(4);
    expect(costPerMillionOutputTokens(100, 2, 0)).toBeNaN();
  });
});
