/**
 * The arithmetic of `kvpa backtest`, pure: scale events, peaks, group-hours, time in panic and holds
 * on missing data, from the replayed decisions.
 */

export interface TimelinePoint {
  readonly atSeconds: number;
  /** The decision (what kvpa would have asked for). */
  readonly desiredGroups: number;
  /** What the cluster actually had at that second; null when Prometheus did not say. */
  readonly actualGroups: number | null;
  readonly inPanic: boolean;
  /** Some signal was missing, stale, short of quorum or out of range: the pool could only hold or grow. */
  readonly missingData: boolean;
}

export interface ScaleEvent {
  readonly atSeconds: number;
  readonly from: number;
  readonly to: number;
  readonly inPanic: boolean;
}

export interface BacktestSummary {
  readonly fromSeconds: number;
  readonly toSeconds: number;
  readonly decisions: number;
  readonly scaleEvents: readonly ScaleEvent[];
  readonly scaleUps: number;
  readonly scaleDowns: number;
  readonly peakRecommendedGroups: number;
  readonly peakActualGroups: number | null;
  readonly recommendedGroupHours: number;
  /** Over the seconds where the actual count was known. */
  readonly actualGroupHours: number;
  /** Recommended group-hours over the same seconds as actualGroupHours, for a like-for-like comparison. */
  readonly recommendedGroupHoursWhereActualKnown: number;
  readonly actualUnknownSeconds: number;
  readonly panicSeconds: number;
  readonly missingDataDecisions: number;
  readonly missingDataSeconds: number;
}

/**
 * Each decision's value holds until the next decision; the last one until `toSeconds`. So the
 * integrals cover [first decision, toSeconds] and recommended and actual use the same intervals.
 * A scale event is a change of the recommendation between consecutive decisions.
 */
export function summarizeBacktest(points: readonly TimelinePoint[], toSeconds: number): BacktestSummary {
  const events: ScaleEvent[] = [];
  let recommendedGroupSeconds = 0;
  let actualGroupSeconds = 0;
  let recommendedKnownSeconds = 0;
  let unknownSeconds = 0;
  let panicSeconds = 0;
  let missingSeconds = 0;
  let missingDecisions = 0;
  let peakRecommended = 0;
  let peakActual: number | null = null;
  points.forEach((p, i) => {
    const next = points[i + 1];
    const dt = Math.max(0, (next?.atSeconds ?? toSeconds) - p.atSeconds);
    const prev = points[i - 1];
    if (prev !== undefined && prev.desiredGroups !== p.desiredGroups) {
      events.push({
        atSeconds: p.atSeconds,
        from: prev.desiredGroups,
        to: p.desiredGroups,
        inPanic: p.inPanic,
      });
    }
    recommendedGroupSeconds += p.desiredGroups * dt;
    if (p.actualGroups === null) {
      unknownSeconds += dt;
    } else {
      actualGroupSeconds += p.actualGroups * dt;
      recommendedKnownSeconds += p.desiredGroups * dt;
      peakActual = Math.max(peakActual ?? 0, p.actualGroups);
    }
    if (p.inPanic) panicSeconds += dt;
    if (p.missingData) {
      missingDecisions++;
      missingSeconds += dt;
    }
    peakRecommended = Math.max(peakRecommended, p.desiredGroups);
  });
  return {
    fromSeconds: points[0]?.atSeconds ?? toSeconds,
    toSeconds,
    decisions: points.length,
    scaleEvents: events,
    scaleUps: events.filter((e) => e.to > e.from).length,
    scaleDowns: events.filter((e) => e.to < e.from).length,
    peakRecommendedGroups: peakRecommended,
    peakActualGroups: peakActual,
    recommendedGroupHours: recommendedGroupSeconds / 3600,
    actualGroupHours: actualGroupSeconds / 3600,
    recommendedGroupHoursWhereActualKnown: recommendedKnownSeconds / 3600,
    actualUnknownSeconds: unknownSeconds,
    panicSeconds,
    missingDataDecisions: missingDecisions,
    missingDataSeconds: missingSeconds,
  };
}

/** Relative difference of recommended against actual, in percent; null when actual is zero. */
export function savingsPercent(recommendedGroupHours: number, actualGroupHours: number): number | null {
  if (actualGroupHours === 0) return null;
  return ((recommendedGroupHours - actualGroupHours) / actualGroupHours) * 100;
}
