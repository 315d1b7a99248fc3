/**
 * The contract between the simulated fleet and a scaling policy. A policy scales one pool; the fleet calls
 * `decide` once per simulated second with what a controller would see at that moment, and the policy keeps its
 * own cadence (Knative decides every 2 s, AIBrix every 10 s, the HPA every 15 s) by returning `undefined` on the
 * seconds it does not decide.
 */
import type { Calibration } from '../calibration.ts';
import type { DemandProfile } from '../demand.ts';
import type { EngineSeries, FrontendSeries } from '../engine-series.ts';

export type { EngineSeries, FrontendSeries } from '../engine-series.ts';

export type Pool = 'prefill' | 'decode';

/** One group head's vLLM metrics (names follow vLLM's `vllm:*` gauges; usage is a 0–1 fraction). */
export interface GroupMetrics {
  readonly kvCacheUsagePerc: number;
  readonly numRequestsWaiting: number;
  readonly numRequestsRunning: number;
}

export interface PoolObservation {
  readonly nowSeconds: number;
  readonly pool: Pool;
  /** Groups requested and not being released: ready plus starting (the `spec.replicas` a controller wrote). */
  readonly requestedGroups: number;
  /** Groups serving. */
  readonly readyGroups: number;
  /** Delivered metrics of the ready groups' heads, as of the last scrape (or this second when direct). */
  readonly metrics: readonly GroupMetrics[];
  /**
   * The ready groups' vLLM counters and histograms (token totals, TTFT, ITL), delivered like `metrics`. A
   * function, so that the series are snapshotted only by the policies that read them; absent reads as none.
   */
  readonly engineSeries?: () => readonly EngineSeries[];
  /** The request frontend's counters (arrivals, completions, tokens), read now; absent reads as none. */
  readonly frontend?: () => FrontendSeries;
  /** What a draining policy may do before it lowers the pool; absent where the fleet offers no drain. */
  readonly routing?: PoolRouting;
}

/** The pool's groups as a drain sees them, and the readiness gate it flips (src/decide/drain.ts). */
export interface PoolRouting {
  /** The groups in the order a scale-down removes them, with what each holds now; null when unpredictable. */
  removalOrder():
    | readonly { readonly id: number; readonly serving: boolean; readonly inFlight: number }[]
    | null;
  /** Takes a group out of routing (it serves what it holds and gets nothing new) or puts it back. */
  setRouting(id: number, routable: boolean): void;
}

export interface ScalingPolicy {
  readonly name: string;
  /** Desired groups for the pool, or undefined to keep the current request. */
  decide(observation: PoolObservation): number | undefined;
  /** Why, in one line, when the last `decide` call made a decision (kvpa: its explanation's summary). */
  explanation?(): string | undefined;
}

/** What a policy may know when it is built: the pool, the calibration and the run's settings. */
export interface PolicyContext {
  readonly pool: Pool;
  readonly calibration: Calibration;
  readonly startupSeconds: number;
  readonly minGroups: number;
  readonly maxGroups: number;
  /** The trace's demand, per bin: only the oracle and static provisioning may read it. */
  readonly demand: DemandProfile;
}

export type PolicyFactory = (context: PolicyContext) => ScalingPolicy;
