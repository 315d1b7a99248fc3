/**
 * The seasonal plan, with worked numbers: the memory's look-backs, the plan the decision core makes of them,
 * and the two through the one PoolRunner.
 */
import { describe, expect, it } from 'vitest';
import { decide, initialState, seasonalPlan } from './kpa.ts';
import { PoolRunner, type PoolSample } from './pool-runner.ts';
import { SeasonalMemory } from './seasonal.ts';
import type { SignalWindowSpec } from './signal-windows.ts';
import { KVPA_EXTENSIONS } from './spec.ts';
import type { DeciderSpec, SignalReading } from './types.ts';
import { DEFAULT_CAPACITY_SAMPLING } from './work.ts';

const DAY = 86_400;
const T0 = 100 * DAY;

const SPEC: DeciderSpec = {
  stableWindowSeconds: 120,
  panicThreshold: 2,
  maxScaleUpRate: 2,
  maxScaleDownRate: 2,
  scaleDownDelaySeconds: 600,
  activationScale: 1,
  reachable: true,
  minReplicas: 1,
  maxReplicas: 0,
  tickSeconds: 2,
  extensions: { ...KVPA_EXTENSIONS, slo: {} },
};

/** One sample a second over [from, to) of `value(t)`. */
function fill(memory: SeasonalMemory, from: number, to: number, value: (t: number) => number): void {
  for (let t = from; t < to; t++) memory.record(t, value(t));
}

describe('the seasonal memory', () => {
  it('a day ago: 100k for the 5 minutes before, then a climb to 180k within 10 minutes: then 100k, peak 180k', () => {
    const m = new SeasonalMemory([DAY]);
    const then = T0 - DAY;
    fill(m, then - 900, then + 1800, (t) => (t < then ? 100_000 : t < then + 300 ? 140_000 : 180_000));
    const [l] = m.lookbacks(T0, 600);
    expect(l?.lookbackSeconds).toBe(DAY);
    expect(l?.thenTotal).toBeCloseTo(100_000, 6);
    expect(l?.aheadPeakTotal).toBeCloseTo(180_000, 6);
    expect(l?.horizonSeconds).toBe(600);
  });

  it('no history a week ago is no look-back at all (never a ratio of 1), and 2 of the 5 minutes then are too few', () => {
    const m = new SeasonalMemory([DAY, 7 * DAY]);
    fill(m, T0 - DAY - 120, T0 - DAY + 900, () => 50_000);
    expect(m.lookbacks(T0, 600)).toEqual([]);
    fill(m, T0 - DAY - 300, T0 - DAY - 120, () => 50_000);
    expect(m.lookbacks(T0, 600).map((l) => l.lookbackSeconds)).toEqual([DAY]);
  });

  it('the ring keeps the longest look-back plus 4 hours: a point 8 days old is overwritten, not read as a week ago', () => {
    const m = new SeasonalMemory([7 * DAY]);
    fill(m, T0 - 7 * DAY - 600, T0 - 7 * DAY + 900, () => 10);
    // Everything after it, up to now, wraps the ring around once more: the old minutes are gone.
    for (let t = T0 - 7 * DAY + 900; t < T0 + 2 * DAY; t += 60) m.record(t, 20);
    const [l] = m.lookbacks(T0 + 2 * DAY, 600);
    expect(l?.thenTotal).toBe(20);
  });

  it('negative and non-finite samples are not demand: dropped', () => {
    const m = new SeasonalMemory([DAY]);
    expect(m.record(T0, -1)).toBe(false);
    expect(m.record(T0, Number.NaN)).toBe(false);
    expect(m.record(Number.POSITIVE_INFINITY, 1)).toBe(false);
    expect(m.record(T0, 1)).toBe(true);
  });
});

describe('the seasonal plan in the decision core', () => {
  const work = (stable: number, extra: Partial<SignalReading> = {}): SignalReading => ({
    name: 'promptTokens',
    kind: 'work',
    targetPerGroup: 80_000,
    state: 'ok',
    stableTotal: stable,
    panicTotal: stable,
    ...extra,
  });
  const once = (s: SignalReading) =>
    decide(SPEC, initialState(SPEC, 0, T0 - 1), { readyGroups: 5, requestedGroups: 5, signals: [s] }, T0)
      .decision;

  it('a day ago the hour rose ×1.8, a week ago ×1.2: mean ×1.5 plans 400k → 600k, 8 groups now with no trend at all', () => {
    const d = once(
      work(400_000, {
        seasonal: [
          { lookbackSeconds: DAY, thenTotal: 100_000, aheadPeakTotal: 180_000, horizonSeconds: 600 },
          { lookbackSeconds: 7 * DAY, thenTotal: 100_000, aheadPeakTotal: 120_000, horizonSeconds: 600 },
        ],
      }),
    );
    expect(d.desiredGroups).toBe(8);
    const e = d.explanation.signals[0];
    expect(e?.seasonalRatio).toBeCloseTo(1.5, 9);
    expect(e?.plannedBy).toBe('seasonal');
    const horizon = d.explanation.stages.find((s) => s.stage === 'horizon');
    expect(horizon).toMatchObject({ before: 5, after: 8, applied: true });
    expect(horizon?.reason).toContain('1 day ago rose ×1.8, 7 days ago rose ×1.2 (mean ×1.5)');
  });

  it('a rise of ×3 is capped at 1 + horizonMaxGrowth = 1.5×; ×1.03 is noise and plans nothing; a fall plans nothing', () => {
    expect(
      seasonalPlan(
        [{ lookbackSeconds: DAY, thenTotal: 1, aheadPeakTotal: 3, horizonSeconds: 600 }],
        400,
        0.5,
      ),
    ).toMatchObject({ ratio: 3, projectedTotal: 600 });
    const flat = seasonalPlan(
      [{ lookbackSeconds: DAY, thenTotal: 100, aheadPeakTotal: 103, horizonSeconds: 600 }],
      400,
      0.5,
    );
    expect(flat?.projectedTotal).toBeUndefined();
    expect(
      once(
        work(400_000, {
          seasonal: [{ lookbackSeconds: DAY, thenTotal: 2, aheadPeakTotal: 1, horizonSeconds: 600 }],
        }),
      ).desiredGroups,
    ).toBe(5);
  });

  it('a look-back with a zero level then has no ratio: left out, not infinite', () => {
    expect(
      seasonalPlan(
        [{ lookbackSeconds: DAY, thenTotal: 0, aheadPeakTotal: 50, horizonSeconds: 600 }],
        400,
        0.5,
      ),
    ).toBeUndefined();
  });

  it('the larger of the trend plan and the seasonal plan wins: trend +200/s → 520k, seasonal ×1.2 → 480k: 7 groups by the trend', () => {
    const d = once(
      work(400_000, {
        trendPerSecond: 200,
        seasonal: [{ lookbackSeconds: DAY, thenTotal: 100, aheadPeakTotal: 120, horizonSeconds: 600 }],
      }),
    );
    expect(d.desiredGroups).toBe(7);
    expect(d.explanation.signals[0]?.plannedBy).toBeUndefined();
  });
});

/** A prompt-token signal of 100k tok/s per group (pinned, no headroom) with these look-backs. */
function promptTokens(seasonalLookbacksSeconds: readonly number[]): SignalWindowSpec {
  return {
    name: 'promptTokens',
    targetPerGroup: 100_000,
    stableWindowSeconds: 120,
    panicWindowPercentage: 25,
    aggregation: 'linear',
    kind: 'work',
    work: {
      capacity: { ...DEFAULT_CAPACITY_SAMPLING, configuredPerSecond: 100_000, measure: false },
      headroom: 0,
      trendWindowSeconds: 600,
      seasonalLookbacksSeconds,
    },
  };
}

describe('the seasonal plan through the runner', () => {
  it('with a 1-hour look-back, a pool whose demand stepped 200k → 300k at minute 40 an hour ago asks for a third group at minute 32 today', () => {
    const runner = new PoolRunner(SPEC, [promptTokens([3600])]);
    runner.start(T0, 2, 2);
    const demand = (t: number) => ((t - T0) % 3600 >= 2400 ? 300_000 : 200_000);
    let d = runner.decide(T0, 2, 2, []);
    for (let t = T0; t <= T0 + 3600 + 1920; t++) {
      const sample: PoolSample = { name: 'promptTokens', state: 'ok', total: demand(t), backlog: 0 };
      runner.record([sample], t);
      const requested = t - T0 < 3600 ? 2 : d.desiredGroups;
      if (t % 2 === 0) d = runner.decide(t, requested, requested, [sample]);
      if (t === T0 + 3600 + 1200) {
        // Minute 20 of the second hour: the step is 20 minutes away, past the 10-minute horizon.
        expect(d.desiredGroups).toBe(2);
      }
    }
    // Minute 32: an hour ago the next 10 minutes held minutes 40 and 41 at 300k, a 5-minute mean of 240k:
    // ×1.2 on today's 200k is 240k, 3 groups, 8 minutes before the step.
    expect(d.desiredGroups).toBe(3);
    expect(d.explanation.signals[0]?.plannedBy).toBe('seasonal');
    expect(runner.seasonalSignals()).toEqual([{ name: 'promptTokens', lookbacksSeconds: [3600] }]);
  });

  it('seedSeasonal takes a history of kvpa’s own series, one point a minute, and the plan follows it', () => {
    const runner = new PoolRunner(SPEC, [promptTokens([DAY])]);
    const points = [];
    for (let t = T0 - DAY - 600; t <= T0 - DAY + 900; t += 60)
      points.push({ atSeconds: t, total: t < T0 - DAY + 120 ? 200_000 : 400_000 });
    expect(
      runner.seedSeasonal(
        new Map([
          ['promptTokens', points],
          ['unknown', points],
        ]),
      ),
    ).toBe(points.length);
    runner.start(T0, 2, 2);
    const sample: PoolSample = { name: 'promptTokens', state: 'ok', total: 200_000, backlog: 0 };
    for (let t = T0 - 130; t <= T0; t++) runner.record([sample], t);
    const d = runner.decide(T0, 2, 2, [sample]);
    // ×2 a day ago, capped at 1.5: 300k → 3 groups.
    expect(d.desiredGroups).toBe(3);
    expect(d.explanation.signals[0]?.seasonal?.[0]?.ratio).toBeCloseTo(2, 6);
  });
});
