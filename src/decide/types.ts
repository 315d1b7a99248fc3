/**
 * Plain data that flows into and out of the decision core. No classes, no I/O: a decision can be
 * replayed from these values alone (see `kvpa decide`).
 */
import type { DelayWindowState } from './delay-window.ts';
import type { CapacityEstimate } from './work.ts';

/** Why a signal cannot be used this tick. `ok` is the only state that carries values. */
export type SignalState = 'ok' | 'noData' | 'stale' | 'noQuorum' | 'outOfRange' | 'error';

/** One signal of one pool at one tick, already aggregated into pool totals over ready groups. */
export interface SignalReading {
  /** e.g. `kvCacheUtilization`, `queueDepth`, or the name of a raw query. */
  readonly name: string;
  /** The value one group should carry (KV fraction, waiting requests, …). */
  readonly targetPerGroup: number;
  readonly state: SignalState;
  /** Σ over ready groups of the per-group value, averaged over the stable window. Present iff state is ok. */
  readonly stableTotal?: number;
  /** The same over the panic window. */
  readonly panicTotal?: number;
  /** A human-readable detail when state is not ok (which groups were stale, and so on). */
  readonly detail?: string;
  /**
   * How the signal behaves under overload (default `level`):
   * - `level`: bounded by what the groups hold (KV use, running requests);
   * - `backlog`: grows without bound until capacity lands (a queue): while groups start it may add at most
   *   one group beyond the request, or it piles up;
   * - `work`: a flow of tokens/s (arrivals, by conservation: served plus queue growth) with its backlog,
   *   sized against what a group serves (`targetPerGroup`).
   */
  readonly kind?: SignalKind;
  /** `work` only: the tokens waiting now (Σ over ready groups); cleared at up to one group's target. */
  readonly backlogTotal?: number;
  /**
   * `work`: the least-squares trend of the flow over the trend window, per second (may be negative);
   * a level with a ceiling: the trend of its total.
   */
  readonly trendPerSecond?: number;
  /**
   * `level` only: what one group can hold at most (KV use: 1). With a rising trend, the level is planned for
   * one cold start ahead once it would reach the requested groups' ceiling sooner (time to exhaustion).
   */
  readonly ceilingPerGroup?: number;
  /** `work` only: one group's capacity, configured or measured, that the target was derived from. */
  readonly capacity?: CapacityEstimate;
  /**
   * `work` only: the signal's own history at the same time one day, one week… earlier (absent or empty: no
   * history yet, so no seasonal plan; never a ratio of 1).
   */
  readonly seasonal?: readonly SeasonalLookback[];
}

/**
 * What a work signal did one look-back ago (a day, a week), read from kvpa's own exported series
 * (`kvpa_pool_signal_stable_value`) in Prometheus: its total then, and its peak over the cold start after.
 * Their ratio is the rise the same hour brought last time.
 */
export interface SeasonalLookback {
  /** The look-back, e.g. 86400 for a day. */
  readonly lookbackSeconds: number;
  /** The stable total at now − lookback (averaged over the 5 minutes before it). */
  readonly thenTotal: number;
  /** The highest stable total over (now − lookback, now − lookback + horizon]. */
  readonly aheadPeakTotal: number;
  /** The horizon the peak was read over (one cold start when it was asked). */
  readonly horizonSeconds: number;
}

/** One look-back's rise: its peak over the horizon after it / its level then. */
export interface SeasonalRatio {
  readonly lookbackSeconds: number;
  readonly ratio: number;
}

export type SignalKind = 'level' | 'backlog' | 'work';

/** Latency quantiles over the panic window, from the engines' histograms; absent means unknown, not zero. */
export interface LatencyObservation {
  readonly ttftSeconds?: number;
  readonly tpotSeconds?: number;
}

export interface Observation {
  /** Groups whose leader and every worker are Ready (surge groups excluded). */
  readonly readyGroups: number;
  /** The group count the scale target currently asks for. Defaults to the last decision, else readyGroups. */
  readonly requestedGroups?: number;
  readonly signals: readonly SignalReading[];
  readonly latency?: LatencyObservation;
  /**
   * Requested groups the scheduler marked Unschedulable (their pods wait for room that is not there). They
   * are not capacity on its way, so the startup gate does not wait for them. Absent: unknown, none assumed.
   */
  readonly unschedulableGroups?: number;
}

/** The pool's latency SLO; a guard only for the quantities that are set. */
export interface SloSpec {
  readonly ttftSeconds?: number;
  readonly tpotSeconds?: number;
}

/** A resolved policy for one pool: numbers only, no names of presets or CRD fields. */
export interface DeciderSpec {
  readonly stableWindowSeconds: number;
  /** Panic threshold as a ratio (200 % → 2.0). */
  readonly panicThreshold: number;
  readonly maxScaleUpRate: number;
  readonly maxScaleDownRate: number;
  readonly scaleDownDelaySeconds: number;
  readonly activationScale: number;
  /** False when the pool serves no traffic route: scale-down is then unlimited and undelayed (Knative). */
  readonly reachable: boolean;
  readonly minReplicas: number;
  /** 0 means unbounded, as in Knative. */
  readonly maxReplicas: number;
  /** Decision tick; also the bucket width of the scale-down delay window. */
  readonly tickSeconds: number;
  /**
   * kvpa extensions. With all of them off the core reproduces Knative's `Scale` followed by the KPA
   * reconciler's min/max clamp, decision for decision.
   */
  readonly extensions: DeciderExtensions;
}

export interface DeciderExtensions {
  /**
   * ceil(total / target) is taken as ceil(x − ratioEpsilon), so that float noise such as
   * 2.1 / 0.7 = 3.0000000000000004 does not buy a whole extra 16-GPU group. Knative: 0.
   */
  readonly ratioEpsilon: number;
  /**
   * Hold scale-up while requested groups are still starting, for up to this long (0 = off).
   * See README "Startup-aware scaling".
   */
  readonly startupTimeoutSeconds: number;
  /**
   * A fresh decider starts in panic at max(ready, requested) groups when that exceeds one, not only
   * at the ready count as Knative does: a controller restarted mid scale-up must not give back the
   * groups that are still starting. Knative: false.
   */
  readonly restartHoldsRequested: boolean;
  /** With some or all signals missing, never go below the current level (Knative: the last decision stands only when all are missing). */
  readonly holdOnMissingData: boolean;
  /** After signals have been missing this long, raise the pool to at least `fallbackMinReplicas` (0 = off). */
  readonly missingFallbackAfterSeconds: number;
  readonly fallbackMinReplicas: number;
  /**
   * Plan for the cold-start horizon: size for the demand expected this long from now (the pool's startup
   * time), from the work signals' trend. 0 sizes for now, as Knative does.
   */
  readonly horizonSeconds: number;
  /**
   * The projection may add at most this share of today's demand (0.5 → at most 1.5×). With holdPeaks, the
   * horizon is the longer of horizonSeconds and the cold start measured (DeciderState.measuredStartupSeconds).
   */
  readonly horizonMaxGrowth: number;
  /**
   * The scale-down delay also remembers the panic window's peaks, and holds the pool at up to them: a burst
   * seen within the delay is expected again, and a group given back takes a cold start to return. They never
   * raise the pool above its request. The delay lasts at least one cold start (the horizon): a group given
   * back sooner than it takes to return costs a start and the misses while it starts (ski rental's
   * break-even). Knative: false (the delay remembers the final wants only).
   */
  readonly holdPeaks: boolean;
  /** Above it: no scale-down, and one more group when none is starting. Empty: no guard. */
  readonly slo: SloSpec;
}

export interface DeciderState {
  /** Knative's panicTime: the last tick that was over the panic threshold; null when not panicking. */
  readonly panicSinceSeconds: number | null;
  /** The panic ratchet's high-water mark. */
  readonly maxPanicGroups: number;
  readonly delayWindow: DelayWindowState | null;
  /**
   * The SLO trim: work targets are divided by it. Over the SLO it rises at once to what the breach proves
   * (capacity / the load per ready group, kpa.ts breachTrim) and grows ×1.15 per decision with no group
   * starting, at most 4; it relaxes 0.2 % per decision while latency is under half the SLO; 1 (absent) is none.
   */
  readonly sloTrim?: number;
  /** The panic-window peaks over the scale-down delay (holdPeaks); null when off or never recorded. */
  readonly peakWindow?: DelayWindowState | null;
  /** The last valid decision; null before the first one. */
  readonly lastDesired: number | null;
  /** When requested > ready was first seen in the current startup episode. */
  readonly pendingSinceSeconds: number | null;
  /**
   * The last cold start measured: from the start of a startup episode to the first group that became
   * ready in it (the oldest request's start, exact for it). Absent before any.
   */
  readonly measuredStartupSeconds?: number;
  /** The ready count of the previous decision, to see a group become ready; absent before the first. */
  readonly lastReadyGroups?: number;
  /** The startup episode (its pendingSinceSeconds) already measured: one sample per episode. */
  readonly measuredEpisodeSeconds?: number;
  /** When some signal was first seen missing in the current outage. */
  readonly missingSinceSeconds: number | null;
  /** holdPeaks: the last scale-down, when and after which hold, to see it regretted. Absent after a regret. */
  readonly lastRelease?: { readonly atSeconds: number; readonly holdSeconds: number };
  /**
   * holdPeaks: a scale-down delay learned from regret (kpa.ts nextRegret): demand came back within one
   * cold start of a release, so the gap it bridged is held from then on. Forgotten REGRET_MEMORY_SECONDS
   * after the last regret.
   */
  readonly regret?: { readonly holdSeconds: number; readonly atSeconds: number };
}

/** Pipeline stages, in order. Each one records the want before and after, and why. */
export type StageName =
  | 'compute'
  | 'horizon'
  | 'rateLimit'
  | 'activationScale'
  | 'panic'
  | 'scaleDownDelay'
  | 'sloGuard'
  | 'startup'
  | 'missingData'
  | 'bounds'
  /** After the pool's own pipeline: the ask limited to the whole groups the cluster can place. */
  | 'placement'
  /** After both pools decided: the pair moved into the prefill/decode ratio band. */
  | 'coupling'
  /** Last: the count kept inside the workload's own bounds, which it would clamp a write to silently. */
  | 'workloadBounds';

export interface StageRecord {
  readonly stage: StageName;
  readonly before: number;
  readonly after: number;
  /** True when this stage changed the want. */
  readonly applied: boolean;
  readonly reason: string;
  /**
   * In the summary even when it changed nothing: a band derived from the flows moves with them, so the band in
   * use, or why there is none, is said on every decision.
   */
  readonly shown?: boolean;
}

export interface SignalExplanation {
  readonly name: string;
  readonly state: SignalState;
  readonly targetPerGroup: number;
  readonly stableTotal?: number;
  readonly panicTotal?: number;
  /** ceil(stableTotal / target), before any clamp. */
  readonly stableWant?: number;
  readonly panicWant?: number;
  readonly detail?: string;
  readonly kind?: SignalKind;
  /** `work`: tokens waiting, and the flow added to clear them (at most one group's target). */
  readonly backlogTotal?: number;
  readonly clearancePerSecond?: number;
  /**
   * The total expected at now + horizonSeconds, and the groups it needs: a work signal's flow on a rising
   * trend, or a level that reaches its ceiling sooner than one cold start.
   */
  readonly projectedTotal?: number;
  readonly horizonWant?: number;
  /**
   * With a rising trend: seconds until the requested groups run out (a level at its ceiling, a work flow at
   * their capacity); 0 when already there.
   */
  readonly exhaustionSeconds?: number;
  /** `work` with history: each look-back's rise over the horizon, and their mean. */
  readonly seasonal?: readonly SeasonalRatio[];
  readonly seasonalRatio?: number;
  /** Which plan set projectedTotal when the seasonal one did (absent: the trend, or the exhaustion of a level). */
  readonly plannedBy?: 'seasonal';
  readonly capacity?: CapacityEstimate;
}

export type PanicTransition = 'started' | 'extended' | 'ended' | 'none';

export interface Explanation {
  readonly readyGroups: number;
  readonly requestedGroups: number;
  readonly signals: readonly SignalExplanation[];
  /** The signal whose stable / panic want was largest; null when none was usable. */
  readonly stableWinner: string | null;
  readonly panicWinner: string | null;
  readonly rawStableWant: number | null;
  readonly rawPanicWant: number | null;
  readonly maxScaleUp: number | null;
  readonly maxScaleDown: number | null;
  readonly panic: {
    readonly inPanic: boolean;
    readonly transition: PanicTransition;
    /** rawPanicWant / max(1, ready), compared with the threshold. */
    readonly ratio: number | null;
    readonly threshold: number;
  };
  readonly stages: readonly StageRecord[];
  readonly latency?: LatencyObservation;
  /** The SLO trim that divided the work targets this decision (1 = none). */
  readonly sloTrim?: number;
  /** Set when the decision held the current level instead of following the signals. */
  readonly holdReason: string | null;
  /** One line for humans: events, annotations, `kubectl describe`. */
  readonly summary: string;
}

export interface Decision {
  readonly desiredGroups: number;
  /** False when no signal was usable: the caller keeps the previous decision (Knative's invalid result). */
  readonly valid: boolean;
  readonly inPanic: boolean;
  readonly explanation: Explanation;
}

export interface DecideResult {
  readonly state: DeciderState;
  readonly decision: Decision;
}
