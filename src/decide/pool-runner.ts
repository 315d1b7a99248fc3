/**
 * The in-memory decider of one pool: its signal windows and decision state. It owns no I/O; the
 * caller feeds it samples and the target's counts, and it returns an explained decision. The
 * controller, the lab (`kvpa simulate`), `kvpa decide`, `recommend` and `backtest` all run this one
 * runner, so what the lab measures is what the controller does.
 */
import { coldStartSeconds, decide, initialState, summarize } from './kpa.ts';
import { SeasonalMemory } from './seasonal.ts';
import { type SignalWindowSpec, SignalWindows, type WorkSignalSpec } from './signal-windows.ts';
import type {
  DeciderSpec,
  DeciderState,
  Decision,
  LatencyObservation,
  SignalReading,
  SignalState,
} from './types.ts';
import { type CapacityEstimate, CapacityEstimator, Trend } from './work.ts';

/** One signal of one pool at one instant. `total` is Σ over ready groups, present iff state is ok. */
export interface PoolSample {
  readonly name: string;
  readonly state: SignalState;
  readonly total?: number;
  /**
   * Ready groups that sent no usable value; `total` counts them at the reporting mean. A silent group
   * may be the busy one, so the pool may grow on such a total but never shrink (silentHold).
   */
  readonly silentGroups?: number;
  readonly detail?: string;
  /** Work signals: `total` is the served flow (tokens/s); this is the tokens waiting (Σ over ready groups). */
  readonly backlog?: number;
  /** Work signals: one group's flow for each saturated group (a capacity sample). */
  readonly capacitySamples?: readonly number[];
  /** The pool's latency quantiles read with this sample (the same on every sample of the pool), for the guard. */
  readonly latency?: LatencyObservation;
}

/**
 * A work signal's memory: the last backlog (for its growth), the recent demand (for the trend) and the
 * capacity estimate. Demand = served flow + backlog growth: under overload the queue grows at the unserved
 * rate, so the demand is the arrival rate and does not climb while groups start.
 */
class WorkMemory {
  private last: { t: number; backlog: number } | undefined;
  readonly demand: Trend;
  latestBacklog = 0;
  readonly capacity: CapacityEstimator;
  /** The demand one day, one week… back, for the seasonal plan; undefined without look-backs. */
  readonly seasonal: SeasonalMemory | undefined;

  constructor(readonly spec: WorkSignalSpec) {
    this.capacity = new CapacityEstimator(spec.capacity);
    this.demand = new Trend(spec.trendWindowSeconds);
    const lookbacks = spec.seasonalLookbacksSeconds ?? [];
    this.seasonal = lookbacks.length > 0 ? new SeasonalMemory(lookbacks) : undefined;
  }

  /** The demand to record for this sample (tokens/s). */
  demandOf(
    t: number,
    flow: number,
    backlog: number | undefined,
    samples: readonly number[],
  ): number | undefined {
    this.capacity.add(samples);
    let growth = 0;
    if (backlog !== undefined) {
      const last = this.last;
      this.last = { t, backlog };
      this.latestBacklog = backlog;
      // The first backlog has no growth to read yet: the served flow alone would under-read an overload.
      if (last === undefined) return undefined;
      if (t > last.t) growth = (backlog - last.backlog) / (t - last.t);
    }
    const v = Math.max(0, flow + growth);
    this.demand.add(t, v);
    this.seasonal?.record(t, v);
    return v;
  }

  /** The per-group target a capacity estimate gives: the capacity less the headroom kept above demand. */
  targetOf(capacity: CapacityEstimate): number {
    return capacity.usedPerSecond / (1 + this.spec.headroom);
  }
}

export class PoolRunner {
  /** Created at the first decision, when the target's counts are known (restart safety needs them). */
  private state: DeciderState | null = null;
  private readonly windows: Map<string, SignalWindows>;
  private readonly work = new Map<string, WorkMemory>();
  /**
   * Level signals with a ceiling: their recent totals, for the time-to-exhaustion trigger. Read on a fixed
   * fleet: a group that lands or leaves moves the level (the router spreads the same demand anew), so the
   * trend restarts whenever the ready count changes, or a group landing would read as growth.
   */
  private readonly levels = new Map<string, Trend>();
  private levelsReadyGroups: number | undefined;

  constructor(
    readonly spec: DeciderSpec,
    signals: readonly SignalWindowSpec[],
  ) {
    this.windows = new Map(signals.map((s) => [s.name, new SignalWindows(s)]));
    for (const s of signals) {
      if (s.kind === 'work' && s.work) this.work.set(s.name, new WorkMemory(s.work));
      else if (s.exhaustion) this.levels.set(s.name, new Trend(s.exhaustion.trendWindowSeconds));
    }
  }

  /**
   * Starts the decider with known counts before the first decision (a scenario's `initialReadyGroups`);
   * otherwise the first decision starts it from the counts it is given.
   */
  start(nowSeconds: number, readyGroups: number, requestedGroups = 0): void {
    this.state = initialState(this.spec, readyGroups, nowSeconds, requestedGroups);
  }

  /** Records this instant's samples; samples that did not pass the quality gate are not recorded. */
  record(samples: readonly PoolSample[], nowSeconds: number): void {
    for (const s of samples) {
      if (s.state !== 'ok' || s.total === undefined) continue;
      const work = this.work.get(s.name);
      const total =
        work === undefined ? s.total : work.demandOf(nowSeconds, s.total, s.backlog, s.capacitySamples ?? []);
      if (total === undefined || !this.windows.get(s.name)?.record(nowSeconds, total)) continue;
      this.levels.get(s.name)?.add(nowSeconds, total);
    }
  }

  /** One cold start as the decider plans over it: measured, else the configured horizon (kpa.ts coldStartSeconds). */
  coldStartSeconds(): number {
    return coldStartSeconds(this.spec, this.state?.measuredStartupSeconds);
  }

  /** The work signals that keep a seasonal memory, with the longest span their look-backs read. */
  seasonalSignals(): { name: string; lookbacksSeconds: readonly number[] }[] {
    return [...this.work.entries()].flatMap(([name, w]) =>
      w.seasonal !== undefined ? [{ name, lookbacksSeconds: w.seasonal.lookbacksSeconds }] : [],
    );
  }

  /** Seeds the seasonal memories from history (kvpa's own series in Prometheus); returns the points kept. */
  seedSeasonal(history: ReadonlyMap<string, readonly { atSeconds: number; total: number }[]>): number {
    let seeded = 0;
    for (const [name, points] of history) {
      const memory = this.work.get(name)?.seasonal;
      if (memory === undefined) continue;
      for (const p of points) if (memory.record(p.atSeconds, p.total)) seeded++;
    }
    return seeded;
  }

  /** Refills the windows from history (restart recovery); returns how many samples were recorded. */
  backfill(history: ReadonlyMap<string, readonly { atSeconds: number; total: number }[]>): number {
    let recorded = 0;
    for (const [name, points] of history) {
      const w = this.windows.get(name);
      if (w === undefined) continue;
      for (const p of points) if (w.record(p.atSeconds, p.total)) recorded++;
    }
    return recorded;
  }

  /**
   * Decides at `nowSeconds`. A signal whose latest sample failed the gate is passed on in that state
   * (so the decision holds), even if its window still has older data.
   */
  decide(
    nowSeconds: number,
    readyGroups: number,
    requestedGroups: number | undefined,
    latest: readonly PoolSample[],
    latency?: LatencyObservation,
    /** Requested groups the scheduler cannot place (Observation.unschedulableGroups); absent: unknown. */
    unschedulableGroups?: number,
  ): Decision {
    const latestByName = new Map(latest.map((s) => [s.name, s]));
    if (this.levelsReadyGroups !== readyGroups) for (const trend of this.levels.values()) trend.clear();
    this.levelsReadyGroups = readyGroups;
    const readings: SignalReading[] = [...this.windows.entries()].map(([name, w]) => {
      const work = this.work.get(name);
      // One estimate per decision: it sorts the recent samples, and status shows the same one.
      const capacity = work?.capacity.estimate();
      const shape = {
        targetPerGroup:
          work !== undefined && capacity !== undefined ? work.targetOf(capacity) : w.spec.targetPerGroup,
        ...(w.spec.kind !== undefined ? { kind: w.spec.kind } : {}),
      };
      const s = latestByName.get(name);
      if (s !== undefined && s.state !== 'ok') {
        return { name, ...shape, state: s.state, ...(s.detail !== undefined ? { detail: s.detail } : {}) };
      }
      const read = { ...w.read(nowSeconds), ...shape };
      if (read.state !== 'ok') return read;
      const level = this.levels.get(name);
      if (level !== undefined && w.spec.exhaustion !== undefined) {
        return {
          ...read,
          ceilingPerGroup: w.spec.exhaustion.ceilingPerGroup,
          trendPerSecond: level.perSecond(),
        };
      }
      if (work === undefined) return read;
      const seasonal = work.seasonal?.lookbacks(nowSeconds, this.coldStartSeconds());
      return {
        ...read,
        backlogTotal: work.latestBacklog,
        trendPerSecond: work.demand.perSecond(),
        ...(capacity !== undefined ? { capacity } : {}),
        ...(seasonal !== undefined && seasonal.length > 0 ? { seasonal } : {}),
      };
    });
    const hold = silentHold(this.spec, latest, requestedGroups ?? 0);
    if (hold === null)
      return this.decideReadings(
        nowSeconds,
        readyGroups,
        requestedGroups,
        readings,
        this.spec,
        latency,
        unschedulableGroups,
      );
    const decision = this.decideReadings(
      nowSeconds,
      readyGroups,
      requestedGroups,
      readings,
      { ...this.spec, minReplicas: hold.floor },
      latency,
      unschedulableGroups,
    );
    return explainSilentHold(decision, hold);
  }

  /** Decides from readings already aggregated (a scenario's stable and panic totals). */
  decideReadings(
    nowSeconds: number,
    readyGroups: number,
    requestedGroups: number | undefined,
    readings: readonly SignalReading[],
    spec: DeciderSpec = this.spec,
    latency?: LatencyObservation,
    unschedulableGroups?: number,
  ): Decision {
    const state = this.state ?? initialState(this.spec, readyGroups, nowSeconds, requestedGroups ?? 0);
    const out = decide(
      spec,
      state,
      {
        readyGroups,
        ...(requestedGroups !== undefined ? { requestedGroups } : {}),
        signals: readings,
        ...(latency !== undefined ? { latency } : {}),
        ...(unschedulableGroups !== undefined ? { unschedulableGroups } : {}),
      },
      nowSeconds,
    );
    this.state = out.state;
    return out.decision;
  }

  get deciderState(): DeciderState | null {
    return this.state;
  }
}

interface SilentHold {
  readonly floor: number;
  readonly reason: string;
}

/**
 * Missing is never "like the others": a ready group that sent nothing is counted at the reporting
 * mean (enough to grow on), but it may be the busy one, so the pool does not shrink below the
 * requested count while any group is silent. Null when no group is silent or the floor changes nothing.
 */
export function silentHold(
  spec: DeciderSpec,
  latest: readonly PoolSample[],
  requestedGroups: number,
): SilentHold | null {
  const silent = latest.filter((s) => s.state === 'ok' && (s.silentGroups ?? 0) > 0);
  if (silent.length === 0 || !spec.reachable) return null;
  const floor = spec.maxReplicas > 0 ? Math.min(requestedGroups, spec.maxReplicas) : requestedGroups;
  if (floor <= spec.minReplicas) return null;
  const names = silent.map((s) => `${s.name} (${s.silentGroups} silent)`).join(', ');
  return {
    floor,
    reason: `${names}: a silent group may be the busy one, so no scale-down below the requested ${floor}`,
  };
}

/** The bounds stage raised the want to the silent-group floor: say so, rather than "minReplicas". */
function explainSilentHold(d: Decision, hold: SilentHold): Decision {
  const e = d.explanation;
  const stages = e.stages.map((st) =>
    st.stage === 'bounds' && st.applied && st.after === hold.floor && st.before < hold.floor
      ? { ...st, reason: hold.reason }
      : st,
  );
  if (stages.every((st, i) => st === e.stages[i])) return d;
  const explanation = { ...e, stages, holdReason: e.holdReason ?? hold.reason };
  return { ...d, explanation: { ...explanation, summary: summarize(explanation, d.desiredGroups) } };
}

/**
 * The count to write to the target, or undefined to leave it: a valid decision that differs from the
 * requested count, or an invalid one (no usable signal) that raises it (the missing-data fallback).
 * An invalid decision never lowers a pool.
 */
export function groupsToWrite(decision: Decision, requestedGroups: number): number | undefined {
  const desired = decision.desiredGroups;
  if (desired === requestedGroups) return undefined;
  return decision.valid || desired > requestedGroups ? desired : undefined;
}
