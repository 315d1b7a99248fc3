import { describe, expect, it } from 'vitest';
import { savingsPercent, summarizeBacktest, type TimelinePoint } from './backtest-summary.ts';

const pt = (
  atSeconds: number,
  desiredGroups: number,
  actualGroups: number | null,
  extra: Partial<TimelinePoint> = {},
): TimelinePoint => ({
  atSeconds,
  desiredGroups,
  actualGroups,
  inPanic: false,
  missingData: false,
  ...extra,
});

describe('summarizeBacktest', () => {
  it('integrates each decision until the next one, the last until --to', () => {
    // 0–10 s: 2 groups, 10–40 s: 4 (panic from 10 to 20), 40–60 s: 1 (missing data from 50).
    const points = [
      pt(0, 2, 3),
      pt(10, 4, 3, { inPanic: true }),
      pt(20, 4, 4),
      pt(40, 1, 4),
      pt(50, 1, 4, { missingData: true }),
    ];
    const s = summarizeBacktest(points, 60);
    // Recommended: 2×10 + 4×10 + 4×20 + 1×10 + 1×10 = 160 group-seconds.
    expect(s.recommendedGroupHours * 3600).toBeCloseTo(160, 9);
    // Actual: 3×10 + 3×10 + 4×20 + 4×10 + 4×10 = 220.
    expect(s.actualGroupHours * 3600).toBeCloseTo(220, 9);
    expect(s.scaleEvents).toEqual([
      { atSeconds: 10, from: 2, to: 4, inPanic: true },
      { atSeconds: 40, from: 4, to: 1, inPanic: false },
    ]);
    expect(s).toMatchObject({
      decisions: 5,
      scaleUps: 1,
      scaleDowns: 1,
      peakRecommendedGroups: 4,
      peakActualGroups: 4,
      panicSeconds: 10,
      missingDataDecisions: 1,
      missingDataSeconds: 10,
      actualUnknownSeconds: 0,
      fromSeconds: 0,
      toSeconds: 60,
    });
    expect(savingsPercent(s.recommendedGroupHoursWhereActualKnown, s.actualGroupHours)).toBeCloseTo(
      ((160 - 220) / 220) * 100,
      9,
    );
  });

  it('seconds with an unknown actual are left out of both sides of the comparison', () => {
    const s = summarizeBacktest([pt(0, 2, null), pt(30, 2, 2)], 60);
    expect(s.actualUnknownSeconds).toBe(30);
    expect(s.actualGroupHours * 3600).toBeCloseTo(60, 9);
    expect(s.recommendedGroupHours * 3600).toBeCloseTo(120, 9);
    expect(s.recommendedGroupHoursWhereActualKnown * 3600).toBeCloseTo(60, 9);
    expect(s.peakActualGroups).toBe(2);
  });

  it('no decisions: zeros, no peak actual', () => {
    const s = summarizeBacktest([], 60);
    expect(s).toMatchObject({
      decisions: 0,
      recommendedGroupHours: 0,
      peakActualGroups: null,
      scaleEvents: [],
    });
    expect(savingsPercent(1, 0)).toBeNull();
  });
});
