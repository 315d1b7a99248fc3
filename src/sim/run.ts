/**
 * One simulated run: a trace, a calibration, a policy per pool, and the KPIs that come out.
 */

import { poolRunnerFor } from '../api/resolve.ts';
import { type CoupledWant, type CouplingOutcome, type RatioBand, reconcileBand } from '../decide/coupling.ts';
import { deriveBand, flowOf, reconcileDerived } from '../decide/coupling-flows.ts';
import type { PoolRunner, PoolSample } from '../decide/pool-runner.ts';
import type { Calibration } from './calibration.ts';
import { computeDemand, type DemandProfile, maxGroupsOver } from './demand.ts';
import { Fleet, type MetricsDelivery, type TimelineRow, type VictimRule } from './fleet.ts';
import {
  costPerMillionOutputTokens,
  countFlaps,
  type LatencyHistogram,
  type Quantiles,
  quantilesOf,
} from './kpi.ts';
import { createPolicy } from './policies/index.ts';
import { resolveKvpaPool, workSampler } from './policies/kvpa.ts';
import { type OraclePlan, type OracleSearch, oraclePolicy, searchOracle } from './policies/oracle.ts';
import type { EngineSeries, PolicyContext, Pool, PoolObservation, ScalingPolicy } from './policies/types.ts';
import { readTrace, type TraceOptions } from './trace.ts';

export interface SimulationSettings {
  readonly tracePath: string;
  readonly trace: TraceOptions;
  readonly calibration: Calibration;
  readonly startupSeconds: number;
  readonly metricsDelivery: MetricsDelivery;
  /** A request not in a prefill batch this long after arriving is dropped (a client timeout). */
  readonly requestTimeoutSeconds: number;
  readonly minGroups: number;
  readonly maxGroups: number;
  readonly ttftSloSeconds: number;
  readonly tpotSloSeconds: number;
  /** Direction reversals closer than this count as flaps. */
  readonly flapWindowSeconds: number;
  readonly usdPerGpuHour: number;
  /** After the last arrival, keep serving (with the fleet frozen) at most this long. */
  readonly tailSeconds: number;
  /** Which groups a scale-down removes: the target kind's rule (src/sim/fleet.ts). */
  readonly victimRule: VictimRule;
  /**
   * Whether a policy may drain before scale-down (the pods carry kvpa's readiness gate): take the victims out of
   * routing, then lower the count. Off, scale-down removes groups with whatever they hold.
   */
  readonly drain: boolean;
  /**
   * A prefill/decode ratio band (prefill groups per decode group, src/decide/coupling.ts) applied after both
   * pools' policies decide, for any policy, or one derived from the measured token flows each second
   * (src/decide/coupling-flows.ts); null (the default) leaves each pool to its own policy.
   */
  readonly coupling: RatioBand | FlowsCoupling | null;
  /** The oracle's target SLO attainment (a fraction); default min(static's attainment, 0.99). */
  readonly oracleSloTarget?: number;
}

/** Defaults for everything but the trace and calibration; the calibration supplies SLOs, startup and price. */
export function defaultSettings(
  tracePath: string,
  calibration: Calibration,
  overrides: Partial<SimulationSettings> = {},
): SimulationSettings {
  return {
    tracePath,
    trace: {},
    calibration,
    startupSeconds: calibration.lifecycle.startupSeconds,
    metricsDelivery: { kind: 'direct' },
    requestTimeoutSeconds: 600,
    minGroups: 1,
    maxGroups: 64,
    ttftSloSeconds: calibration.slo.ttftSeconds,
    tpotSloSeconds: calibration.slo.tpotSeconds,
    flapWindowSeconds: 600,
    usdPerGpuHour: calibration.cost.usdPerGpuHour,
    tailSeconds: 3600,
    victimRule: 'highest-index',
    drain: true,
    coupling: null,
    ...overrides,
  };
}

export interface PoolSummary {
  /** The pool's share of latency: prefill = arrival → KV landed; decode = KV landed → admission (TTFT), and TPOT. */
  readonly latencySeconds: Readonly<Record<string, Quantiles & { readonly mean: number }>>;
  readonly gpuHours: number;
  readonly gpuHoursSampled: number;
  /** GPU-hours held by groups out of routing while they drained (part of gpuHours). */
  readonly drainGpuHours: number;
  readonly scaleEvents: number;
  readonly flaps: number;
  readonly peakGroups: number;
}

/** `--coupling flows[:TOL]`: the band is derived from the token flows, ratio × [1 − tolerance, 1 + tolerance]. */
export interface FlowsCoupling {
  readonly fromFlows: { readonly tolerance: number };
}

/** What the ratio band did in one run. */
export interface CouplingSummary {
  /** The fixed band; null when it was derived from the flows. */
  readonly band: RatioBand | null;
  /** A derived band: how many repair decisions had one, how many had none, and the centres it took. */
  readonly fromFlows: {
    readonly tolerance: number;
    readonly decisionsWithBand: number;
    readonly decisionsWithout: number;
    readonly ratioMin: number | null;
    readonly ratioMax: number | null;
  } | null;
  /** Ticks on which at least one pool decided and the band moved the pair the policies asked for. */
  readonly repairs: number;
  /** Of those, per pool: how often its count was raised, and lowered (the other pool at maxGroups). */
  readonly raised: Readonly<Record<Pool, number>>;
  readonly lowered: Readonly<Record<Pool, number>>;
  /** Repairs that could not reach the band within [minGroups, maxGroups]. */
  readonly outOfBand: number;
  /** The starting fleet as sized from demand, and as the band moved it (equal when it was in band). */
  readonly initialGroups: {
    readonly sized: Readonly<Record<Pool, number>>;
    readonly coupled: Readonly<Record<Pool, number>>;
  };
}

export interface SimulationSummary {
  readonly policy: string;
  readonly requests: {
    readonly arrived: number;
    readonly completed: number;
    /** Includes `abortedByScaleDown`. */
    readonly dropped: number;
    /** Requests in flight on a group that a scale-down removed: aborted, and SLO misses. */
    readonly abortedByScaleDown: number;
    readonly preemptions: number;
  };
  readonly sloAttainment: number;
  readonly ttftSeconds: Quantiles & { readonly mean: number };
  readonly tpotSeconds: Quantiles & { readonly mean: number };
  readonly gpuHours: number;
  /** GPU-hours held by groups out of routing while they drained (part of gpuHours). */
  readonly drainGpuHours: number;
  readonly outputTokens: number;
  readonly costPerMillionOutputTokens: number;
  readonly scaleEvents: number;
  readonly flaps: number;
  readonly pools: Readonly<Record<Pool, PoolSummary>>;
  readonly simulatedSeconds: number;
  readonly wallSeconds: number;
  readonly requestsPerWallSecond: number;
  readonly timeline: readonly TimelineRow[];
  /** The ratio band and its repairs; null without `coupling`. */
  readonly coupling: CouplingSummary | null;
  /** The oracle's search: its target, the headroom it landed on and every headroom tried. */
  readonly oracle?: OracleSearch & { readonly targetSloAttainment: number };
}

/** The oracle's default target: static provisioning's attainment or 99 %, whichever is lower. */
export const ORACLE_SLO_CEILING = 0.99;

/** The demand profile of a run's trace; compute once and share across the policies of a comparison. */
export function demandFor(settings: SimulationSettings): DemandProfile {
  return computeDemand(settings.tracePath, settings.trace, settings.calibration);
}

/**
 * Runs one policy over the trace. `oracle` is a search (src/sim/policies/oracle.ts): one run per headroom tried,
 * plus a run of static provisioning when the target is the default; its summary is the run it landed on.
 */
export function runSimulation(
  settings: SimulationSettings,
  policyName: string,
  demand: DemandProfile = demandFor(settings),
  onProgress?: (simulatedSeconds: number) => void,
  onDecision?: DecisionListener,
): SimulationSummary {
  if (policyName === 'oracle') return runOracle(settings, demand, onProgress);
  return simulate(settings, (context) => createPolicy(policyName, context), demand, onProgress, onDecision);
}

/** Hears each decision a policy explains (`ScalingPolicy.explanation`): `kvpa simulate --decisions`. */
export type DecisionListener = (pool: Pool, nowSeconds: number, explanation: string) => void;

function runOracle(
  settings: SimulationSettings,
  demand: DemandProfile,
  onProgress?: (simulatedSeconds: number) => void,
): SimulationSummary {
  const started = performance.now();
  const target =
    settings.oracleSloTarget ??
    Math.min(ORACLE_SLO_CEILING, runSimulation(settings, 'static', demand).sloAttainment);
  const runs = new Map<OraclePlan, SimulationSummary>();
  const search = searchOracle(
    (plan) => {
      const summary = simulate(settings, (context) => oraclePolicy(context, plan), demand, onProgress);
      runs.set(plan, summary);
      return summary.sloAttainment;
    },
    target,
    settings.startupSeconds + demand.binSeconds,
    demand.prefillGroups.length * demand.binSeconds,
  );
  const landed = runs.get(search.plan) as SimulationSummary;
  return {
    ...landed,
    wallSeconds: (performance.now() - started) / 1000,
    oracle: { ...search, targetSloAttainment: target },
  };
}

function simulate(
  settings: SimulationSettings,
  makePolicy: (context: PolicyContext) => ScalingPolicy,
  demand: DemandProfile,
  onProgress?: (simulatedSeconds: number) => void,
  onDecision?: DecisionListener,
): SimulationSummary {
  const started = performance.now();
  const c = settings.calibration;
  const sized = {
    prefill: initialGroupsFor(demand, demand.prefillGroups, settings),
    decode: initialGroupsFor(demand, demand.decodeGroups, settings),
  };
  const coupling = settings.coupling;
  const coupled = coupling === null ? null : new Coupler(coupling, settings);
  // With a band, every policy starts from the sized fleet moved into the band (the same for every policy).
  const initialGroups = coupled === null ? sized : coupled.initial(sized);
  const fleet = new Fleet({
    calibration: c,
    startupSeconds: settings.startupSeconds,
    victimRule: settings.victimRule,
    victimSeed: settings.trace.seed ?? 1,
    metricsDelivery: settings.metricsDelivery,
    requestTimeoutSeconds: settings.requestTimeoutSeconds,
    initialGroups,
    maxGroups: { prefill: settings.maxGroups, decode: settings.maxGroups },
    ttftSloSeconds: settings.ttftSloSeconds,
    tpotSloSeconds: settings.tpotSloSeconds,
  });
  const policies: Record<Pool, ScalingPolicy> = {
    prefill: makePolicy(policyContext('prefill', settings, demand)),
    decode: makePolicy(policyContext('decode', settings, demand)),
  };
  let policiesActive = true;
  const onTick = (second: number) => {
    if (!policiesActive) return;
    const asked: Record<Pool, number | undefined> = { prefill: undefined, decode: undefined };
    const requested: Record<Pool, number> = { prefill: 0, decode: 0 };
    for (const pool of ['prefill', 'decode'] as const) {
      const { routing, ...seen } = fleet.observe(pool);
      requested[pool] = seen.requestedGroups;
      coupled?.observe({ nowSeconds: second, pool, ...seen });
      const desired = policies[pool].decide({
        nowSeconds: second,
        pool,
        ...seen,
        ...(settings.drain ? { routing } : {}),
      });
      const why = onDecision === undefined ? undefined : policies[pool].explanation?.();
      if (why !== undefined) onDecision?.(pool, second, why);
      if (coupled === null) {
        if (desired !== undefined) fleet.setDesired(pool, desired);
      } else asked[pool] = desired;
    }
    if (coupled === null) return;
    const pair = coupled.repair(asked, requested, second);
    if (pair === undefined) return;
    fleet.setDesired('prefill', pair.prefill);
    fleet.setDesired('decode', pair.decode);
  };

  let lastArrival = 0;
  for (const batch of readTrace(settings.tracePath, settings.trace)) {
    const times = batch.tSeconds;
    const inputs = batch.inputTokens;
    const outputs = batch.outputTokens;
    for (let i = 0; i < batch.count; i++) {
      const t = times[i] as number;
      fleet.advanceTo(t, onTick);
      fleet.arrive(t, inputs[i] as number, outputs[i] as number);
    }
    if (batch.count > 0) lastArrival = times[batch.count - 1] as number;
    onProgress?.(lastArrival);
  }
  // The trace is over: bill up to the last whole second, freeze the fleet, and let in-flight requests finish.
  const endSeconds = Math.ceil(lastArrival);
  fleet.advanceTo(endSeconds, onTick);
  fleet.stopAccountingAt(endSeconds);
  policiesActive = false;
  for (let t = endSeconds; fleet.requestsInFlight > 0 && t < endSeconds + settings.tailSeconds; t += 60) {
    fleet.advanceTo(t + 60, onTick);
  }
  fleet.finish();

  const wallSeconds = (performance.now() - started) / 1000;
  const poolSummary = (pool: Pool): PoolSummary => {
    const record = fleet.pools[pool];
    const q = (h: LatencyHistogram) => ({ ...quantilesOf(h), mean: h.mean() });
    return {
      latencySeconds:
        pool === 'prefill'
          ? { ttftShare: q(fleet.prefillLatency) }
          : { ttftShare: q(fleet.decodeAdmissionWait), tpot: q(fleet.tpot) },
      gpuHours: record.gpuHours,
      gpuHoursSampled: record.gpuSecondsSampled / 3600,
      drainGpuHours: record.drainGpuSeconds / 3600,
      scaleEvents: record.scaleEvents.length,
      flaps: countFlaps(record.scaleEvents, settings.flapWindowSeconds),
      peakGroups: Math.max(record.peakGroups, initialGroups[pool]),
    };
  };
  const pools = { prefill: poolSummary('prefill'), decode: poolSummary('decode') };
  const gpuHours = pools.prefill.gpuHours + pools.decode.gpuHours;
  return {
    policy: policies.prefill.name,
    requests: {
      arrived: fleet.arrived,
      completed: fleet.completed,
      dropped: fleet.dropped,
      abortedByScaleDown: fleet.abortedByScaleDown,
      preemptions: fleet.preemptions,
    },
    // Dropped requests count as misses: attainment is over all arrivals.
    sloAttainment: fleet.arrived > 0 ? fleet.sloMet / fleet.arrived : Number.NaN,
    ttftSeconds: { ...quantilesOf(fleet.ttft), mean: fleet.ttft.mean() },
    tpotSeconds: { ...quantilesOf(fleet.tpot), mean: fleet.tpot.mean() },
    gpuHours,
    drainGpuHours: pools.prefill.drainGpuHours + pools.decode.drainGpuHours,
    outputTokens: fleet.outputTokensCompleted,
    costPerMillionOutputTokens: costPerMillionOutputTokens(
      gpuHours,
      settings.usdPerGpuHour,
      fleet.outputTokensCompleted,
    ),
    scaleEvents: pools.prefill.scaleEvents + pools.decode.scaleEvents,
    flaps: pools.prefill.flaps + pools.decode.flaps,
    pools,
    simulatedSeconds: endSeconds,
    wallSeconds,
    requestsPerWallSecond: fleet.arrived / Math.max(1e-9, wallSeconds),
    timeline: fleet.timeline,
    coupling: coupled?.summary(sized, initialGroups) ?? null,
  };
}

/**
 * The ratio band between the policies and the fleet. A pool whose policy did not decide this second wants its
 * current count; the pair is moved into the band by `reconcileBand` within [minGroups, maxGroups] (never below
 * a want that is itself under minGroups). Both policies silent: nothing is written, the pair is as last left.
 * A band from the flows is derived each time from FlowMeters, whatever the policy.
 */
class Coupler {
  private repairs = 0;
  private outOfBand = 0;
  private readonly raised: Record<Pool, number> = { prefill: 0, decode: 0 };
  private readonly lowered: Record<Pool, number> = { prefill: 0, decode: 0 };
  private readonly meters: FlowMeters | null;
  private centre: number | null = null;
  private withBand = 0;
  private without = 0;
  private ratioMin: number | null = null;
  private ratioMax: number | null = null;

  constructor(
    private readonly coupling: RatioBand | FlowsCoupling,
    private readonly settings: SimulationSettings,
  ) {
    this.meters = 'fromFlows' in coupling ? new FlowMeters(settings) : null;
  }

  /** A count as the fleet would apply it, with the run's bounds. */
  private want(n: number): CoupledWant {
    const want = Math.max(0, Math.min(this.settings.maxGroups, Math.round(n)));
    return {
      want,
      minReplicas: Math.min(this.settings.minGroups, want),
      maxReplicas: this.settings.maxGroups,
    };
  }

  /** The starting fleet moved into a fixed band; a derived one has no flows yet, so the fleet is as sized. */
  initial(sized: Readonly<Record<Pool, number>>): Record<Pool, number> {
    if ('fromFlows' in this.coupling) return { ...sized };
    const o = reconcileBand(this.coupling, this.want(sized.prefill), this.want(sized.decode));
    return { prefill: o.prefill, decode: o.decode };
  }

  /** This second's view of a pool, for the flow meters. */
  observe(o: Omit<PoolObservation, 'routing'>): void {
    this.meters?.record(o);
  }

  private reconcile(p: CoupledWant, d: CoupledWant, nowSeconds: number): CouplingOutcome {
    const c = this.coupling;
    if (!('fromFlows' in c)) return reconcileBand(c, p, d);
    const flows = (this.meters as FlowMeters).flows(nowSeconds);
    const derived = deriveBand(flows.prefill, flows.decode, c.fromFlows.tolerance, this.centre);
    this.centre = derived.on ? derived.ratio : null;
    if (derived.on) {
      this.withBand++;
      this.ratioMin = Math.min(this.ratioMin ?? derived.ratio, derived.ratio);
      this.ratioMax = Math.max(this.ratioMax ?? derived.ratio, derived.ratio);
    } else this.without++;
    return reconcileDerived(derived, p, d);
  }

  /** The pair to write, or undefined when neither policy decided. */
  repair(
    asked: Readonly<Record<Pool, number | undefined>>,
    requested: Readonly<Record<Pool, number>>,
    nowSeconds: number,
  ): Record<Pool, number> | undefined {
    if (asked.prefill === undefined && asked.decode === undefined) return undefined;
    const p = this.want(asked.prefill ?? requested.prefill);
    const d = this.want(asked.decode ?? requested.decode);
    const o = this.reconcile(p, d, nowSeconds);
    if (o.prefill !== p.want || o.decode !== d.want) {
      this.repairs++;
      if (!o.inBand) this.outOfBand++;
      for (const [pool, w, got] of [
        ['prefill', p.want, o.prefill],
        ['decode', d.want, o.decode],
      ] as const) {
        if (got > w) this.raised[pool]++;
        if (got < w) this.lowered[pool]++;
      }
    }
    return { prefill: o.prefill, decode: o.decode };
  }

  summary(sized: Readonly<Record<Pool, number>>, coupled: Readonly<Record<Pool, number>>): CouplingSummary {
    return {
      band: 'fromFlows' in this.coupling ? null : this.coupling,
      fromFlows:
        'fromFlows' in this.coupling
          ? {
              tolerance: this.coupling.fromFlows.tolerance,
              decisionsWithBand: this.withBand,
              decisionsWithout: this.without,
              ratioMin: this.ratioMin,
              ratioMax: this.ratioMax,
            }
          : null,
      repairs: this.repairs,
      raised: { ...this.raised },
      lowered: { ...this.lowered },
      outOfBand: this.outOfBand,
      initialGroups: { sized: { ...sized }, coupled: { ...coupled } },
    };
  }
}

/**
 * The token flows a derived band reads, measured as kvpa measures them whatever policy scales the pools: each
 * pool's work signal of the bundled kvpa preset (promptTokens on prefill, generationTokens on decode, with
 * their capacities and headrooms), read from the engines' counters by the lab's work sampler and windowed by
 * the controller's own PoolRunner. The runner's decision is not used, only its explanation of the signal.
 */
class FlowMeters {
  private readonly meters: Record<
    Pool,
    {
      readonly signal: string;
      readonly headroom: number;
      readonly runner: PoolRunner;
      readonly sample: (o: PoolObservation, series: readonly EngineSeries[]) => PoolSample;
      latest: PoolSample[];
      seen: { readyGroups: number; requestedGroups: number };
    }
  >;

  constructor(settings: SimulationSettings) {
    const meter = (pool: Pool, type: 'promptTokens' | 'generationTokens') => {
      const resolved = resolveKvpaPool(pool, settings.minGroups, settings.maxGroups);
      const metric = resolved.metrics.find((m) => m.type === type);
      if (metric === undefined)
        throw new Error(`--coupling flows: the kvpa preset gives pool ${pool} no ${type} metric to read`);
      return {
        signal: type,
        headroom: resolved.headroomPercentage / 100,
        runner: poolRunnerFor({ ...resolved, metrics: [metric] }),
        sample: workSampler(metric, resolved.slo.tpotSeconds),
        latest: [],
        seen: { readyGroups: 0, requestedGroups: 0 },
      };
    };
    this.meters = { prefill: meter('prefill', 'promptTokens'), decode: meter('decode', 'generationTokens') };
  }

  record(o: Omit<PoolObservation, 'routing'>): void {
    const m = this.meters[o.pool];
    m.latest = [m.sample(o, o.engineSeries?.() ?? [])];
    m.runner.record(m.latest, o.nowSeconds);
    m.seen = { readyGroups: o.readyGroups, requestedGroups: o.requestedGroups };
  }

  flows(nowSeconds: number) {
    const flow = (pool: Pool) => {
      const m = this.meters[pool];
      const d = m.runner.decide(nowSeconds, m.seen.readyGroups, m.seen.requestedGroups, m.latest);
      return flowOf(d.explanation.signals, m.signal, m.headroom);
    };
    return { prefill: flow('prefill'), decode: flow('decode') };
  }
}

/** Every policy starts from the same fleet: the demand of the first startup window, within the bounds. */
function initialGroupsFor(demand: DemandProfile, groups: Float64Array, settings: SimulationSettings): number {
  const need = maxGroupsOver(demand, groups, 0, settings.startupSeconds + demand.binSeconds);
  return Math.min(settings.maxGroups, Math.max(settings.minGroups, need));
}

function policyContext(pool: Pool, settings: SimulationSettings, demand: DemandProfile): PolicyContext {
  return {
    pool,
    calibration: settings.calibration,
    startupSeconds: settings.startupSeconds,
    minGroups: settings.minGroups,
    maxGroups: settings.maxGroups,
    demand,
  };
}
