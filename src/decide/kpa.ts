/**
 * The KPA decision step: a pure function from (spec, state, observation, now) to the next state and
 * a decision with its explanation. It follows Knative's `Scale` exactly (knative/serving
 * pkg/autoscaler/scaling/autoscaler.go, then pkg/reconciler/autoscaling/kpa/scaler.go), in units of replica
 * groups, then applies kvpa's extensions as separate, named stages:
 *
 *   compute → horizon → rateLimit → activationScale → panic → scaleDownDelay → sloGuard → startup →
 *   missingData → bounds
 *
 * The horizon stage sizes for one cold start ahead: a work flow's trend, the same hour one look-back ago
 * (seasonal), or a level that its trend fills sooner than a group can start (time to exhaustion).
 *
 * With `extensions` off the result equals Knative's Scale followed by the KPA reconciler's min/max.
 */
import { maxWithin, newDelayWindow, recordMax } from './delay-window.ts';
import type {
  DecideResult,
  DeciderSpec,
  DeciderState,
  Decision,
  Explanation,
  LatencyObservation,
  Observation,
  PanicTransition,
  SeasonalLookback,
  SeasonalRatio,
  SignalExplanation,
  SignalReading,
  SloSpec,
  StageName,
  StageRecord,
} from './types.ts';

/**
 * A fresh decider. Like Knative's newAutoscaler, it starts in panic when more than one group is ready:
 * a restarted controller has no history and must not scale down before it has some.
 */
export function initialState(
  spec: DeciderSpec,
  readyGroups: number,
  nowSeconds: number,
  requestedGroups = 0,
): DeciderState {
  const delayed = spec.scaleDownDelaySeconds > 0;
  const held = spec.extensions.restartHoldsRequested ? Math.max(readyGroups, requestedGroups) : readyGroups;
  return {
    panicSinceSeconds: held > 1 ? nowSeconds : null,
    maxPanicGroups: Math.max(0, held),
    delayWindow: delayed ? newDelayWindow(delayWindowSpan(spec), spec.tickSeconds) : null,
    lastDesired: null,
    pendingSinceSeconds: null,
    missingSinceSeconds: null,
  };
}

/**
 * The longest the scale-down delay can last: the configured delay, or with holdPeaks up to one cold start,
 * which is at most startupTimeoutSeconds (a longer start counts as stuck) or the configured horizon.
 */
function delayWindowSpan(spec: DeciderSpec): number {
  const ext = spec.extensions;
  if (!ext.holdPeaks) return spec.scaleDownDelaySeconds;
  return Math.max(spec.scaleDownDelaySeconds, ext.horizonSeconds, ext.startupTimeoutSeconds);
}

/**
 * One cold start, as the decider knows it: the last one measured, within startupTimeoutSeconds, else the
 * configured horizonSeconds (the preset's typical start). 0 when the horizon is off.
 */
export function coldStartSeconds(spec: DeciderSpec, measured: number | undefined): number {
  const ext = spec.extensions;
  if (ext.horizonSeconds <= 0) return 0;
  if (measured === undefined || !ext.holdPeaks) return ext.horizonSeconds;
  const bounded = ext.startupTimeoutSeconds > 0 ? Math.min(measured, ext.startupTimeoutSeconds) : measured;
  return Math.max(ext.horizonSeconds, bounded);
}

/**
 * A cold-start sample: the first group to become ready in a startup episode took now − the episode's start
 * (its oldest request). Later groups of the same episode were requested later, so they are not sampled.
 */
function measureStartup(
  state: DeciderState,
  readyRaw: number,
  nowSeconds: number,
): { measuredStartupSeconds?: number; measuredEpisodeSeconds?: number } {
  const since = state.pendingSinceSeconds;
  const keep = {
    ...(state.measuredStartupSeconds !== undefined
      ? { measuredStartupSeconds: state.measuredStartupSeconds }
      : {}),
    ...(state.measuredEpisodeSeconds !== undefined
      ? { measuredEpisodeSeconds: state.measuredEpisodeSeconds }
      : {}),
  };
  const becameReady = state.lastReadyGroups !== undefined && readyRaw > state.lastReadyGroups;
  if (since === null || !becameReady || state.measuredEpisodeSeconds === since) return keep;
  return { measuredStartupSeconds: nowSeconds - since, measuredEpisodeSeconds: since };
}

/** Whole groups needed to carry `total` at `target` each. */
export function groupsFor(total: number, target: number, ratioEpsilon: number): number {
  return Math.max(0, Math.ceil(total / target - ratioEpsilon));
}

class Stages {
  readonly records: StageRecord[] = [];
  constructor(public want: number) {}
  /** Moves the want through one stage, recording before/after and why. */
  apply(stage: StageName, after: number, reason: string): void {
    this.records.push({ stage, before: this.want, after, applied: after !== this.want, reason });
    this.want = after;
  }
}

export function decide(
  spec: DeciderSpec,
  state: DeciderState,
  observation: Observation,
  nowSeconds: number,
): DecideResult {
  const ext = spec.extensions;
  const readyRaw = Math.max(0, Math.floor(observation.readyGroups));
  // Knative uses max(1, ready) for the rate limits and the panic ratio.
  const ready = Math.max(1, readyRaw);
  const requested = Math.max(0, Math.floor(observation.requestedGroups ?? state.lastDesired ?? readyRaw));
  // Groups that cannot be scheduled are not on their way: the startup gate neither waits for them nor caps on them.
  const stuck = Math.min(
    Math.max(0, requested - readyRaw),
    Math.max(0, Math.floor(observation.unschedulableGroups ?? 0)),
  );

  const pendingSinceSeconds = requested > readyRaw ? (state.pendingSinceSeconds ?? nowSeconds) : null;
  const starting = isStarting(
    ext.startupTimeoutSeconds,
    readyRaw + stuck,
    requested,
    pendingSinceSeconds,
    nowSeconds,
  );
  const sloTrim = nextSloTrim(
    spec,
    state.sloTrim ?? 1,
    observation.latency,
    requested <= readyRaw,
    breachTrim(observation.signals, readyRaw),
  );
  const startup = measureStartup(state, readyRaw, nowSeconds);
  const coldStart = coldStartSeconds(spec, startup.measuredStartupSeconds);
  const signals: SignalExplanation[] = observation.signals.map((s) =>
    explainSignal(spec, s.kind === 'work' ? { ...s, targetPerGroup: s.targetPerGroup / sloTrim } : s, {
      requested,
      starting,
      horizonSeconds: coldStart,
    }),
  );
  const present = signals.filter((s) => s.state === 'ok');
  const missing = signals.filter((s) => s.state !== 'ok');
  const missingSinceSeconds = missing.length > 0 ? (state.missingSinceSeconds ?? nowSeconds) : null;
  const inPanicBefore = state.panicSinceSeconds !== null;

  if (present.length === 0) {
    return holdWithoutSignals(spec, state, {
      readyRaw,
      requested,
      signals,
      missingSinceSeconds,
      pendingSinceSeconds,
      nowSeconds,
      inPanic: inPanicBefore,
    });
  }

  // compute: the largest want over the usable signals wins (HPA's rule for several metrics).
  const stableWinner = argMax(present, (s) => s.stableWant ?? 0);
  const panicWinner = argMax(present, (s) => s.panicWant ?? 0);
  const computedStable = stableWinner.stableWant ?? 0;
  const dppc = panicWinner.panicWant ?? 0;
  // horizon: size for the demand expected when a group asked for now would be serving.
  const horizonWinner = argMax(present, (s) => s.horizonWant ?? 0);
  const horizonWant = horizonWinner.horizonWant ?? 0;
  const dspc = Math.max(computedStable, horizonWant);

  // rateLimit: bounds from the ready count. ceil() lets a pool always grow by at least one group.
  // kvpa's startup extension counts groups still starting (within startupTimeoutSeconds) in the
  // scale-up base: with Knative's ready-only base, a pool whose groups take 20 minutes to start could
  // at most double once per startup time, however fast demand grows.
  const upBase = scaleUpBase(ext.startupTimeoutSeconds, ready, requested, pendingSinceSeconds, nowSeconds);
  const maxScaleUp = Math.ceil(spec.maxScaleUpRate * upBase);
  const maxScaleDown = spec.reachable ? Math.floor(ready / spec.maxScaleDownRate) : 0;
  let stableWant = Math.min(Math.max(dspc, maxScaleDown), maxScaleUp);
  let panicWant = Math.min(Math.max(dppc, maxScaleDown), maxScaleUp);
  const clampedStable = stableWant;
  const clampedPanic = panicWant;

  // activationScale: applied after the rate limit, unclamped, as in Knative.
  if (spec.activationScale > 1) {
    if (dspc > 0 && stableWant < spec.activationScale) stableWant = spec.activationScale;
    if (dppc > 0 && panicWant < spec.activationScale) panicWant = spec.activationScale;
  }

  // panic: entry and extension use the UNCLAMPED panic want over max(1, ready).
  const ratio = dppc / ready;
  const over = ratio >= spec.panicThreshold;
  let panicSinceSeconds = state.panicSinceSeconds;
  let maxPanicGroups = state.maxPanicGroups;
  let transition: PanicTransition = 'none';
  if (panicSinceSeconds === null && over) {
    panicSinceSeconds = nowSeconds;
    transition = 'started';
  } else if (over) {
    panicSinceSeconds = nowSeconds;
    transition = 'extended';
  } else if (panicSinceSeconds !== null && panicSinceSeconds + spec.stableWindowSeconds < nowSeconds) {
    // Panic ends one stable window after the last tick over the threshold.
    panicSinceSeconds = null;
    maxPanicGroups = 0;
    transition = 'ended';
  }
  const inPanic = panicSinceSeconds !== null;

  const stages = new Stages(requested);
  stages.apply(
    'compute',
    inPanic ? Math.max(computedStable, dppc) : computedStable,
    inPanic
      ? `max of stable want ${computedStable} (${stableWinner.name}) and panic want ${dppc} (${panicWinner.name})`
      : `stable want ${computedStable} from ${stableWinner.name}`,
  );
  stages.apply(
    'horizon',
    inPanic ? Math.max(dspc, dppc) : dspc,
    horizonReason(horizonWinner, coldStart, 1 + ext.horizonMaxGrowth),
  );
  stages.apply(
    'rateLimit',
    inPanic ? Math.max(clampedStable, clampedPanic) : clampedStable,
    `bounded to [${maxScaleDown}, ${maxScaleUp}] by maxScaleDownRate ${spec.maxScaleDownRate} of ${ready} ready and maxScaleUpRate ${spec.maxScaleUpRate} of ${upBase === ready ? `${ready} ready` : `${upBase} ready or starting`}`,
  );
  let want = inPanic ? Math.max(stableWant, panicWant) : stableWant;
  stages.apply(
    'activationScale',
    want,
    `at least activationScale ${spec.activationScale} once there is load`,
  );

  if (inPanic) {
    // The ratchet: no scale-down while panicking.
    if (want > maxPanicGroups) maxPanicGroups = want;
    want = maxPanicGroups;
  }
  stages.apply(
    'panic',
    want,
    inPanic
      ? `${panicPhrase(transition, (panicSinceSeconds ?? nowSeconds) + spec.stableWindowSeconds - nowSeconds)}: panic ratio ${round3(ratio)} vs threshold ${spec.panicThreshold}; never below the panic high-water mark ${maxPanicGroups}`
      : `stable mode: panic ratio ${round3(ratio)} < threshold ${spec.panicThreshold}`,
  );

  let delayWindow = state.delayWindow;
  let peakWindow = state.peakWindow ?? null;
  let delayReason = 'no scale-down delay';
  let holdSeconds = 0;
  if (spec.reachable && delayWindow !== null) {
    // The peak window records this tick's own wants, never what a window held: a hold must expire.
    const fresh = Math.max(want, panicWant);
    // With holdPeaks the delay lasts at least one cold start: giving a group back for less time than it
    // takes to return saves less than it costs (ski rental's break-even rule).
    // The cold start is what the work signals plan across: a pool without one keeps its configured delay.
    const plans = ext.holdPeaks && observation.signals.some((s) => s.kind === 'work');
    const configured = plans ? Math.max(spec.scaleDownDelaySeconds, coldStart) : spec.scaleDownDelaySeconds;
    const learned = learnedHoldSeconds(spec, state, nowSeconds);
    holdSeconds = Math.max(configured, learned);
    delayWindow = recordMax(delayWindow, nowSeconds, want);
    want = maxWithin(delayWindow, nowSeconds, holdSeconds);
    delayReason =
      learned > configured
        ? `max of the wants over the last ${holdSeconds}s (learned: demand came back ${Math.round((state.regret?.holdSeconds ?? 0) / REGRET_MARGIN)}s after a peak, within a cold start of giving its groups back)`
        : holdSeconds > spec.scaleDownDelaySeconds
          ? `max of the wants over the last ${holdSeconds}s (one cold start, longer than scaleDownDelaySeconds ${spec.scaleDownDelaySeconds})`
          : `max of the wants over the last ${holdSeconds}s`;
    if (ext.holdPeaks) {
      peakWindow = recordMax(
        peakWindow ?? newDelayWindow(delayWindowSpan(spec), spec.tickSeconds),
        nowSeconds,
        fresh,
      );
      const peak = Math.min(requested, maxWithin(peakWindow, nowSeconds, holdSeconds));
      if (peak > want) {
        want = peak;
        delayReason = `held at ${peak}: the panic-window peak of the last ${holdSeconds}s, up to the requested ${requested}`;
      }
    }
  }
  stages.apply('scaleDownDelay', want, delayReason);

  applySloGuard(stages, spec, { readyRaw, requested, latency: observation.latency });
  // A work signal's want is demand by conservation, which does not grow while groups start: no hold.
  const workDriven = present.some(
    (p) =>
      p.kind === 'work' &&
      Math.max(p.stableWant ?? 0, p.horizonWant ?? 0, inPanic ? (p.panicWant ?? 0) : 0) >= stages.want,
  );
  applyStartupGate(stages, spec, { readyRaw, stuck, requested, pendingSinceSeconds, nowSeconds, workDriven });
  applyMissingData(stages, spec, {
    requested,
    missing: missing.map((m) => m.name),
    missingSinceSeconds,
    nowSeconds,
  });
  applyBounds(stages, spec);

  const desiredGroups = stages.want;
  const regret = ext.holdPeaks
    ? nextRegret(state, {
        requested,
        desired: desiredGroups,
        demandWant: inPanic ? Math.max(computedStable, dppc) : computedStable,
        holdSeconds,
        coldStartSeconds: coldStart,
        nowSeconds,
      })
    : {};
  const explanation: Explanation = {
    readyGroups: readyRaw,
    requestedGroups: requested,
    signals,
    stableWinner: stableWinner.name,
    panicWinner: panicWinner.name,
    rawStableWant: dspc,
    rawPanicWant: dppc,
    maxScaleUp,
    maxScaleDown,
    panic: { inPanic, transition, ratio, threshold: spec.panicThreshold },
    stages: stages.records,
    ...(observation.latency !== undefined ? { latency: observation.latency } : {}),
    ...(sloTrim !== 1 ? { sloTrim } : {}),
    holdReason: holdReasonOf(stages.records),
    summary: '',
  };
  return {
    state: {
      panicSinceSeconds,
      maxPanicGroups,
      delayWindow,
      ...(peakWindow !== null ? { peakWindow } : {}),
      ...(sloTrim !== 1 ? { sloTrim } : {}),
      lastDesired: desiredGroups,
      pendingSinceSeconds,
      missingSinceSeconds,
      ...startup,
      lastReadyGroups: readyRaw,
      ...regret,
    },
    decision: {
      desiredGroups,
      valid: true,
      inPanic,
      explanation: { ...explanation, summary: summarize(explanation, desiredGroups) },
    },
  };
}

/**
 * One signal's wants. A level signal wants ceil(total / target). A work signal adds the flow that clears
 * its backlog, at most one group's target: a queue that grows while groups start must not buy a group per
 * second (its growth is already in the flow, by conservation). Its horizon want sizes for the flow the trend
 * expects in horizonSeconds, at most (1 + horizonMaxGrowth) × now, and never below now. A backlog signal
 * (a queue read as a level) is capped at one group beyond the request while groups start.
 */
function explainSignal(
  spec: DeciderSpec,
  s: SignalReading,
  ctx: { requested: number; starting: boolean; horizonSeconds: number },
): SignalExplanation {
  const ext = spec.extensions;
  const base = {
    name: s.name,
    targetPerGroup: s.targetPerGroup,
    ...(s.kind !== undefined ? { kind: s.kind } : {}),
    ...(s.capacity !== undefined ? { capacity: s.capacity } : {}),
  };
  if (s.state !== 'ok' || s.stableTotal === undefined || s.panicTotal === undefined) {
    return {
      ...base,
      state: s.state === 'ok' ? 'noData' : s.state,
      ...(s.detail !== undefined ? { detail: s.detail } : {}),
    };
  }
  const want = (total: number) => groupsFor(total, s.targetPerGroup, ext.ratioEpsilon);
  if (s.kind === 'work') {
    const backlog = Math.max(0, s.backlogTotal ?? 0);
    const clearSeconds = Math.max(spec.tickSeconds, ext.slo.ttftSeconds ?? spec.tickSeconds);
    const clearance = Math.min(backlog / clearSeconds, s.targetPerGroup);
    const stableTotal = s.stableTotal + clearance;
    const panicTotal = s.panicTotal + clearance;
    // The trend moves the flow; the clearance is added once, on top. A rise below 5 % over the horizon is
    // noise, not a plan: it would only tip a rounding into a whole group.
    const flowNow = Math.max(s.stableTotal, s.panicTotal);
    const trend = s.trendPerSecond ?? 0;
    const rise = Math.min(trend * ctx.horizonSeconds, flowNow * ext.horizonMaxGrowth);
    const trendPlan =
      ctx.horizonSeconds > 0 && trend > 0 && rise >= 0.05 * flowNow ? flowNow + rise + clearance : undefined;
    const seasonal = seasonalPlan(s.seasonal ?? [], flowNow, ext.horizonMaxGrowth);
    const seasonalProjected =
      ctx.horizonSeconds > 0 && seasonal?.projectedTotal !== undefined
        ? seasonal.projectedTotal + clearance
        : undefined;
    const projected =
      trendPlan === undefined || seasonalProjected === undefined
        ? (trendPlan ?? seasonalProjected)
        : Math.max(trendPlan, seasonalProjected);
    const capacity = s.capacity?.usedPerSecond;
    const exhaustion =
      capacity !== undefined
        ? secondsToCeiling(flowNow + clearance, trend, capacity * ctx.requested)
        : undefined;
    return {
      ...base,
      state: 'ok',
      stableTotal,
      panicTotal,
      stableWant: want(stableTotal),
      panicWant: want(panicTotal),
      backlogTotal: backlog,
      clearancePerSecond: clearance,
      ...(projected !== undefined ? { projectedTotal: projected, horizonWant: want(projected) } : {}),
      ...(exhaustion !== undefined ? { exhaustionSeconds: exhaustion } : {}),
      ...(seasonal !== undefined
        ? {
            seasonal: seasonal.ratios,
            seasonalRatio: seasonal.ratio,
            ...(seasonalProjected !== undefined && seasonalProjected === projected
              ? { plannedBy: 'seasonal' as const }
              : {}),
          }
        : {}),
    };
  }
  const plan = exhaustionPlan(s, s.stableTotal, s.panicTotal, ctx, ext.horizonMaxGrowth);
  let stableWant = want(s.stableTotal);
  let panicWant = want(s.panicTotal);
  if (s.kind === 'backlog' && ctx.starting) {
    stableWant = Math.min(stableWant, ctx.requested + 1);
    panicWant = Math.min(panicWant, ctx.requested + 1);
  }
  return {
    ...base,
    state: 'ok',
    stableTotal: s.stableTotal,
    panicTotal: s.panicTotal,
    stableWant,
    panicWant,
    ...(plan?.projectedTotal !== undefined
      ? { projectedTotal: plan.projectedTotal, horizonWant: want(plan.projectedTotal) }
      : {}),
    ...(plan !== undefined ? { exhaustionSeconds: plan.exhaustionSeconds } : {}),
  };
}

/**
 * The seasonal plan: each look-back's rise over the horizon (its peak ahead / its level then), averaged over
 * the look-backs that had a level (a finite ratio); today's flow times that rise, at most (1 + maxGrowth) × now. A rise under
 * 5 % is noise, not a plan; a fall plans nothing (the scale-down delay and the stable window handle it).
 * Undefined without history.
 */
export function seasonalPlan(
  lookbacks: readonly SeasonalLookback[],
  flowNow: number,
  maxGrowth: number,
): { ratios: SeasonalRatio[]; ratio: number; projectedTotal?: number } | undefined {
  const ratios = lookbacks
    .filter((l) => l.thenTotal > 0 && Number.isFinite(l.aheadPeakTotal) && l.aheadPeakTotal >= 0)
    .map((l) => ({ lookbackSeconds: l.lookbackSeconds, ratio: l.aheadPeakTotal / l.thenTotal }))
    .filter((r) => Number.isFinite(r.ratio));
  if (ratios.length === 0) return undefined;
  const ratio = ratios.reduce((a, r) => a + r.ratio, 0) / ratios.length;
  if (ratio < 1.05 || !(flowNow > 0)) return { ratios, ratio };
  return { ratios, ratio, projectedTotal: flowNow * Math.min(ratio, 1 + maxGrowth) };
}

/** Seconds until `total`, rising at `trendPerSecond`, reaches `ceilingTotal`; 0 when there; undefined unless rising. */
function secondsToCeiling(total: number, trendPerSecond: number, ceilingTotal: number): number | undefined {
  if (!(trendPerSecond > 0) || !(ceilingTotal > 0)) return undefined;
  return Math.max(0, (ceilingTotal - total) / trendPerSecond);
}

/**
 * Time to exhaustion: a level with a ceiling (KV: a group holds at most all of its cache) that its trend fills
 * on the requested groups sooner than one cold start is sized now for the level one cold start ahead, at most
 * (1 + horizonMaxGrowth) × now; a rise under 5 % is noise. Later exhaustion is only reported: the stable
 * want has a cold start to catch up.
 */
function exhaustionPlan(
  s: SignalReading,
  stableTotal: number,
  panicTotal: number,
  ctx: { requested: number; horizonSeconds: number },
  maxGrowth: number,
): { exhaustionSeconds: number; projectedTotal?: number } | undefined {
  if (s.kind !== undefined && s.kind !== 'level') return undefined;
  if (s.ceilingPerGroup === undefined || ctx.horizonSeconds <= 0) return undefined;
  const trend = s.trendPerSecond ?? 0;
  const levelNow = Math.max(stableTotal, panicTotal);
  const seconds = secondsToCeiling(levelNow, trend, s.ceilingPerGroup * Math.max(1, ctx.requested));
  if (seconds === undefined) return undefined;
  const rise = Math.min(trend * ctx.horizonSeconds, levelNow * maxGrowth);
  if (seconds >= ctx.horizonSeconds || rise < 0.05 * levelNow) return { exhaustionSeconds: seconds };
  return { exhaustionSeconds: seconds, projectedTotal: levelNow + rise };
}

/** Some requested groups are not ready yet, and they have been starting for less than the timeout. */
function isStarting(
  startupTimeoutSeconds: number,
  readyRaw: number,
  requested: number,
  pendingSinceSeconds: number | null,
  nowSeconds: number,
): boolean {
  return (
    startupTimeoutSeconds > 0 &&
    requested > readyRaw &&
    pendingSinceSeconds !== null &&
    nowSeconds - pendingSinceSeconds < startupTimeoutSeconds
  );
}

/** The latency quantities above their SLO, as phrases; empty when none is (or none is known). */
function overSlo(slo: SloSpec, l: LatencyObservation | undefined): string[] {
  const over: string[] = [];
  if (slo.ttftSeconds !== undefined && l?.ttftSeconds !== undefined && l.ttftSeconds > slo.ttftSeconds)
    over.push(`TTFT ${round3(l.ttftSeconds)}s > SLO ${slo.ttftSeconds}s`);
  if (slo.tpotSeconds !== undefined && l?.tpotSeconds !== undefined && l.tpotSeconds > slo.tpotSeconds)
    over.push(`TPOT ${round3(l.tpotSeconds)}s > SLO ${slo.tpotSeconds}s`);
  return over;
}

/**
 * The trim a latency breach proves at the ready groups' load: latency over the SLO while each ready group
 * carries `u` tokens/s means one group's capacity within the SLO is below `u`, so the trim is at least
 * capacity / u. The load is the larger of the stable and panic demand (the panic window is the one the
 * latency quantile is read over), per ready group, so groups still starting do not dilute it. Undefined
 * without a work signal that has a capacity and a load.
 */
export function breachTrim(signals: readonly SignalReading[], readyGroups: number): number | undefined {
  let bound: number | undefined;
  for (const s of signals) {
    if (s.kind !== 'work' || s.state !== 'ok' || s.capacity === undefined || readyGroups <= 0) continue;
    const load = Math.max(s.stableTotal ?? 0, s.panicTotal ?? 0) / readyGroups;
    if (!(load > 0)) continue;
    const t = s.capacity.usedPerSecond / load;
    if (Number.isFinite(t)) bound = Math.max(bound ?? 0, t);
  }
  return bound;
}

/**
 * The SLO trim, feedback on top of the work signals' feed-forward: a fleet whose groups serve less within
 * the SLO than their measured throughput (long prompts batch into long TTFTs) needs more than the demand
 * over capacity. Over the SLO, the trim rises at once to what the breach proves (`breachTrim`: the load each
 * ready group carried is above its SLO capacity), whether or not groups are starting, since the proof is
 * about the ready ones; with none starting it also grows by 1.15 per decision. At most 4. Under half the SLO
 * it relaxes 0.2 % per decision (a quarter-hour to shed a third). Unknown latency changes nothing.
 */
export function nextSloTrim(
  spec: DeciderSpec,
  trim: number,
  latency: LatencyObservation | undefined,
  noneStarting: boolean,
  breachBound?: number,
): number {
  const slo = spec.extensions.slo;
  if (overSlo(slo, latency).length > 0) {
    const stepped = noneStarting ? trim * 1.15 : trim;
    return Math.min(4, Math.max(stepped, breachBound ?? 1));
  }
  const known: boolean[] = [];
  if (slo.ttftSeconds !== undefined && latency?.ttftSeconds !== undefined)
    known.push(latency.ttftSeconds < slo.ttftSeconds / 2);
  if (slo.tpotSeconds !== undefined && latency?.tpotSeconds !== undefined)
    known.push(latency.tpotSeconds < slo.tpotSeconds / 2);
  if (known.length > 0 && known.every((low) => low)) return Math.max(1, trim * 0.998);
  return trim;
}

/** A learned hold lasts this long after the regret that taught it: a day's shape changes over hours. */
export const REGRET_MEMORY_SECONDS = 3 * 3600;
/** A learned hold bridges the regretted gap with this much to spare: the next gap is not the same length. */
export const REGRET_MARGIN = 1.25;

/** The scale-down delay regret taught (nextRegret), while remembered; 0 without one. */
function learnedHoldSeconds(spec: DeciderSpec, state: DeciderState, nowSeconds: number): number {
  const r = state.regret;
  if (!spec.extensions.holdPeaks || r === undefined || nowSeconds - r.atSeconds > REGRET_MEMORY_SECONDS)
    return 0;
  return Math.min(r.holdSeconds, delayWindowSpan(spec));
}

/**
 * Regret, the ski-rental test after the fact: groups given back and asked for again, by demand, within one
 * cold start were worth keeping (holding them that long would have cost no more than restarting them, and
 * dropped nothing). The gap then bridged, from the last want that held them (the release less its hold)
 * to now, becomes the pool's scale-down delay, with REGRET_MARGIN to spare, so a load that recurs (bursts
 * every quarter-hour) is held through its troughs. A horizon plan's scale-up teaches nothing: the plan may
 * be wrong, the demand was not. Memory: the last release until it is regretted or superseded.
 */
export function nextRegret(
  state: DeciderState,
  d: {
    requested: number;
    desired: number;
    demandWant: number;
    holdSeconds: number;
    coldStartSeconds: number;
    nowSeconds: number;
  },
): Pick<DeciderState, 'lastRelease' | 'regret'> {
  const remembered =
    state.regret !== undefined && d.nowSeconds - state.regret.atSeconds <= REGRET_MEMORY_SECONDS
      ? state.regret
      : undefined;
  const keep = {
    ...(state.lastRelease !== undefined ? { lastRelease: state.lastRelease } : {}),
    ...(remembered !== undefined ? { regret: remembered } : {}),
  };
  if (d.desired < d.requested) {
    return { ...keep, lastRelease: { atSeconds: d.nowSeconds, holdSeconds: d.holdSeconds } };
  }
  const release = state.lastRelease;
  const regretted =
    release !== undefined &&
    d.desired > d.requested &&
    d.demandWant > d.requested &&
    d.nowSeconds - release.atSeconds <= d.coldStartSeconds;
  if (!regretted) return keep;
  const bridged = d.nowSeconds - release.atSeconds + release.holdSeconds;
  return {
    regret: {
      holdSeconds: Math.max(remembered?.holdSeconds ?? 0, Math.ceil(bridged * REGRET_MARGIN)),
      atSeconds: d.nowSeconds,
    },
  };
}

/**
 * The SLO guard: while a latency quantile is above the pool's SLO, the pool does not shrink, and it gets
 * one more group when none is on its way (one at a time, so a slow start cannot pile groups up). An
 * unknown latency leaves the guard off: a missing histogram is not a zero.
 */
function applySloGuard(
  stages: Stages,
  spec: DeciderSpec,
  ctx: { readyRaw: number; requested: number; latency: LatencyObservation | undefined },
): void {
  const slo = spec.extensions.slo;
  const over = overSlo(slo, ctx.latency);
  if (over.length === 0) {
    const known = slo.ttftSeconds !== undefined || slo.tpotSeconds !== undefined;
    stages.apply('sloGuard', stages.want, known ? 'latency within the SLO or unknown' : 'no SLO set');
    return;
  }
  const noneStarting = ctx.requested <= ctx.readyRaw;
  const floor = noneStarting ? Math.max(ctx.requested, ctx.readyRaw + 1) : ctx.requested;
  stages.apply(
    'sloGuard',
    Math.max(stages.want, floor),
    `${over.join(', ')}: no scale-down${noneStarting ? ', and one more group' : ' (a group is on its way)'}`,
  );
}

/**
 * The group count the scale-up rate multiplies: ready groups (Knative), or, with the startup extension,
 * the requested groups while some are still inside their startup timeout.
 */
export function scaleUpBase(
  startupTimeoutSeconds: number,
  ready: number,
  requested: number,
  pendingSinceSeconds: number | null,
  nowSeconds: number,
): number {
  const starting =
    startupTimeoutSeconds > 0 &&
    pendingSinceSeconds !== null &&
    nowSeconds - pendingSinceSeconds < startupTimeoutSeconds;
  return starting ? Math.max(ready, requested) : ready;
}

interface HoldContext {
  readonly readyRaw: number;
  readonly requested: number;
  readonly signals: readonly SignalExplanation[];
  readonly missingSinceSeconds: number | null;
  readonly pendingSinceSeconds: number | null;
  readonly nowSeconds: number;
  readonly inPanic: boolean;
}

/** No usable signal: Knative's invalid result. The previous decision stands; panic state is untouched. */
function holdWithoutSignals(spec: DeciderSpec, state: DeciderState, ctx: HoldContext): DecideResult {
  const previous = state.lastDesired ?? ctx.requested;
  const stages = new Stages(ctx.requested);
  const names = ctx.signals.map((s) => `${s.name}: ${s.state}`).join(', ') || 'no signals configured';
  stages.apply('compute', previous, `no usable signal (${names}); keeping the previous decision ${previous}`);
  applyMissingData(stages, spec, {
    requested: ctx.requested,
    missing: ctx.signals.map((s) => s.name),
    missingSinceSeconds: ctx.missingSinceSeconds,
    nowSeconds: ctx.nowSeconds,
  });
  applyBounds(stages, spec);
  const desiredGroups = stages.want;
  const explanation: Explanation = {
    readyGroups: ctx.readyRaw,
    requestedGroups: ctx.requested,
    signals: ctx.signals,
    stableWinner: null,
    panicWinner: null,
    rawStableWant: null,
    rawPanicWant: null,
    maxScaleUp: null,
    maxScaleDown: null,
    panic: { inPanic: ctx.inPanic, transition: 'none', ratio: null, threshold: spec.panicThreshold },
    stages: stages.records,
    holdReason: `no usable signal (${names})`,
    summary: '',
  };
  return {
    state: {
      ...state,
      lastDesired: desiredGroups,
      pendingSinceSeconds: ctx.pendingSinceSeconds,
      missingSinceSeconds: ctx.missingSinceSeconds,
    },
    decision: {
      desiredGroups,
      valid: false,
      inPanic: ctx.inPanic,
      explanation: { ...explanation, summary: summarize(explanation, desiredGroups) },
    },
  };
}

/**
 * Startup-aware scaling. Groups that were requested but are not ready yet are capacity in flight.
 * While they start (up to startupTimeoutSeconds), a further scale-up is held at the requested count
 * unless the want exceeds it by the panic threshold: demand has outgrown even the groups on their way.
 * Scale-down is never held here, so a pool stuck waiting for GPUs can still shrink. A want set by a work
 * signal is not held: its demand already counts the queue by its growth, not its size.
 */
function applyStartupGate(
  stages: Stages,
  spec: DeciderSpec,
  ctx: {
    readyRaw: number;
    /** Requested groups that cannot be scheduled: not starting, whatever their age. */
    stuck: number;
    requested: number;
    pendingSinceSeconds: number | null;
    nowSeconds: number;
    workDriven: boolean;
  },
): void {
  const timeout = spec.extensions.startupTimeoutSeconds;
  const starting = ctx.requested - ctx.readyRaw - ctx.stuck;
  const stuck = ctx.stuck > 0 ? `; ${ctx.stuck} unschedulable, not counted as starting` : '';
  if (timeout <= 0 || starting <= 0 || ctx.pendingSinceSeconds === null) {
    stages.apply(
      'startup',
      stages.want,
      (starting > 0 ? `${starting} group(s) starting; gate off` : 'no groups starting') + stuck,
    );
    return;
  }
  const startingForSeconds = ctx.nowSeconds - ctx.pendingSinceSeconds;
  if (startingForSeconds >= timeout) {
    stages.apply(
      'startup',
      stages.want,
      `${starting} group(s) starting for ${Math.round(startingForSeconds)}s, past startupTimeoutSeconds ${timeout}: no longer counted as capacity`,
    );
    return;
  }
  const want = stages.want;
  if (want > ctx.requested && ctx.workDriven) {
    stages.apply(
      'startup',
      want,
      `${starting} group(s) starting; want ${want} comes from a work signal (demand by conservation, which a growing queue does not inflate), so no wait`,
    );
    return;
  }
  if (want > ctx.requested && want < ctx.requested * spec.panicThreshold) {
    stages.apply(
      'startup',
      ctx.requested,
      `${starting} of ${ctx.requested} requested group(s) still starting; want ${want} is below ${spec.panicThreshold}× the request, so wait for them`,
    );
    return;
  }
  stages.apply(
    'startup',
    want,
    want > ctx.requested
      ? `want ${want} is at least ${spec.panicThreshold}× the ${ctx.requested} requested: scale up despite ${starting} starting`
      : `${starting} group(s) starting`,
  );
}

/** Missing or stale data never scales down: hold the requested level, and after a while raise to a floor. */
function applyMissingData(
  stages: Stages,
  spec: DeciderSpec,
  ctx: {
    requested: number;
    missing: readonly string[];
    missingSinceSeconds: number | null;
    nowSeconds: number;
  },
): void {
  const ext = spec.extensions;
  if (ctx.missing.length === 0 || !ext.holdOnMissingData) {
    stages.apply(
      'missingData',
      stages.want,
      ctx.missing.length === 0 ? 'all signals present' : 'hold disabled',
    );
    return;
  }
  let floor = ctx.requested;
  let reason = `missing ${ctx.missing.join(', ')}: no scale-down below the requested ${ctx.requested}`;
  const missingForSeconds = ctx.missingSinceSeconds === null ? 0 : ctx.nowSeconds - ctx.missingSinceSeconds;
  if (ext.missingFallbackAfterSeconds > 0 && missingForSeconds >= ext.missingFallbackAfterSeconds) {
    floor = Math.max(floor, ext.fallbackMinReplicas);
    reason += `; missing for ${Math.round(missingForSeconds)}s, so at least fallbackMinReplicas ${ext.fallbackMinReplicas}`;
  }
  stages.apply('missingData', Math.max(stages.want, floor), reason);
}

/** The KPA reconciler's bounds: min is 0 for an unreachable pool; max 0 means unbounded. */
function applyBounds(stages: Stages, spec: DeciderSpec): void {
  const min = spec.reachable ? spec.minReplicas : 0;
  let want = stages.want;
  let reason = `within [${min}, ${spec.maxReplicas === 0 ? '∞' : spec.maxReplicas}]`;
  if (want < min) {
    want = min;
    reason = `raised to minReplicas ${min}`;
  } else if (spec.maxReplicas !== 0 && want > spec.maxReplicas) {
    want = spec.maxReplicas;
    reason = `capped at maxReplicas ${spec.maxReplicas}`;
  }
  stages.apply('bounds', want, reason);
}

function holdReasonOf(records: readonly StageRecord[]): string | null {
  const held = records.find((r) => (r.stage === 'startup' || r.stage === 'missingData') && r.applied);
  return held ? held.reason : null;
}

function argMax<T>(items: readonly T[], key: (item: T) => number): T {
  let best = items[0] as T;
  for (const item of items) if (key(item) > key(best)) best = item;
  return best;
}

function panicPhrase(transition: PanicTransition, secondsLeft: number): string {
  if (transition === 'started') return 'panic started';
  if (transition === 'extended') return 'panic extended (still over the threshold)';
  return `panic holds for ${Math.max(0, Math.round(secondsLeft))}s more (one stable window after the last tick over the threshold)`;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** The horizon stage's reason: the winning plan with its numbers, and its time to exhaustion when that triggered it. */
function horizonReason(w: SignalExplanation, coldStart: number, maxGrowthFactor: number): string {
  if (w.projectedTotal === undefined) return 'no trend to plan on';
  const runsOut =
    w.exhaustionSeconds !== undefined && w.exhaustionSeconds < coldStart
      ? `${w.kind === 'work' ? 'runs out of capacity' : 'reaches its ceiling'} on the requested groups in ${Math.round(w.exhaustionSeconds)}s, sooner than a group can start; `
      : '';
  const basis =
    w.plannedBy === 'seasonal'
      ? `the same hour ${(w.seasonal ?? []).map((r) => `${lookbackPhrase(r.lookbackSeconds)} rose ×${round3(r.ratio)}`).join(', ')} (mean ×${round3(w.seasonalRatio ?? 1)})`
      : 'trend';
  return `${w.name} ${runsOut}expected at ${round3(w.projectedTotal)} in ${coldStart}s (one cold start; ${basis}, at most ${maxGrowthFactor}× now) needs ${w.horizonWant ?? 0}`;
}

/** 86400 → "1 day ago", 604800 → "7 days ago", 3600 → "3600s ago". */
function lookbackPhrase(seconds: number): string {
  const days = seconds / 86_400;
  return Number.isInteger(days) ? `${days} day${days === 1 ? '' : 's'} ago` : `${seconds}s ago`;
}

/** A signal's backlog and horizon terms, for the summary. */
function planPhrase(s: SignalExplanation): string {
  const clear =
    s.kind === 'work'
      ? ` (incl. ${round3(s.clearancePerSecond ?? 0)}/s to clear a backlog of ${round3(s.backlogTotal ?? 0)})`
      : '';
  const plan = s.projectedTotal !== undefined ? `, expected ${round3(s.projectedTotal)} at the horizon` : '';
  const runsOut =
    s.exhaustionSeconds !== undefined && s.projectedTotal !== undefined
      ? `, exhausted in ${Math.round(s.exhaustionSeconds)}s at the trend`
      : '';
  return clear + plan + runsOut;
}

/**
 * A decision moved by a stage that runs after the pool's own pipeline (placement, coupling): the stage is
 * recorded like the others, and the summary is rebuilt. A stage that changes nothing is still recorded.
 */
export function withStage(
  decision: Decision,
  stage: StageName,
  after: number,
  reason: string,
  shown = false,
): Decision {
  const before = decision.desiredGroups;
  const record = { stage, before, after, applied: after !== before, reason, ...(shown ? { shown } : {}) };
  const explanation = { ...decision.explanation, stages: [...decision.explanation.stages, record] };
  return {
    ...decision,
    desiredGroups: after,
    explanation: { ...explanation, summary: summarize(explanation, after) },
  };
}

/** e.g. "3 → 5 groups (panic): kvCacheUtilization stable 2.45 panic 3.1 per-group target 0.7; limited by rateLimit". */
export function summarize(explanation: Explanation, desiredGroups: number): string {
  const mode = explanation.panic.inPanic ? 'panic' : 'stable';
  const trim = explanation.sloTrim !== undefined ? `, SLO trim ×${round3(explanation.sloTrim)}` : '';
  const head = `${explanation.requestedGroups} → ${desiredGroups} groups (${mode}, ${explanation.readyGroups} ready${trim})`;
  const parts = explanation.signals.map((s) =>
    s.state === 'ok'
      ? `${s.name} stable ${round3(s.stableTotal ?? 0)} panic ${round3(s.panicTotal ?? 0)} target ${round3(s.targetPerGroup)}/group${planPhrase(s)}`
      : `${s.name} ${s.state}${s.detail !== undefined ? ` (${s.detail})` : ''}`,
  );
  const limits = explanation.stages
    .filter((r) => (r.applied || r.shown === true) && r.stage !== 'compute')
    .map((r) => `${r.stage}: ${r.reason}`);
  return [head, parts.join('; '), ...limits].filter((p) => p.length > 0).join(' | ');
}
