/**
 * NVIDIA Dynamo's SLA planner in throughput mode, re-implemented from ai-dynamo/dynamo
 * `components/src/dynamo/planner/core/throughput_scaling.py` and `core/load/predictors.py`, with the defaults
 * of `config/defaults.py` (`throughput_adjustment_interval` 180 s, `load_predictor` arima, `kalman_q_level`
 * 1.0, `kalman_q_trend` 0.1, `kalman_r` 10.0, `kalman_min_points` 5, `min_endpoint` 1):
 *
 * - Every adjustment interval the planner reads the frontend's request count, mean input length (ISL) and mean
 *   output length (OSL) over the interval and feeds each to its own load predictor; leading zeros (an idle
 *   start) are skipped.
 * - `demand_rps = predicted requests / interval`; prefill = `max(ceil(demand_rps / engine_prefill_rps),
 *   min_endpoint)` and decode = `max(ceil(demand_rps / engine_decode_rps), min_endpoint)`, one decision for
 *   both. The engine capacities come from profiling; here from the calibration: a prefill group's saturated
 *   prompt throughput at the predicted ISL, and the sequences a decode group holds at the ITL SLA with a context
 *   of `ISL + OSL/2`, divided by `OSL × ITL`.
 * - While a pool still has groups starting (scaling in progress), the planner only observes.
 *
 * Each pool's instance runs the same planner on the same frontend counters at the same ticks and applies its
 * own half of the decision, so the pair is decided together.
 *
 * The predictors: `constant` (last value); `kalman` (the local-linear-trend filter of predictors.py, exact);
 * `arima`: pmdarima's `auto_arima` searches orders by AIC, which the lab does not reproduce; it fits an
 * ARIMA(1,1,0) by least squares on the differences (the order auto_arima tends to pick on a ramping load) and,
 * like predictors.py, returns the last value before 5 points and the constant for constant data.
 */

import { counterIncrease } from '../../decide/histogram.ts';
import {
  type Calibration,
  decodeSequencesPerGpuAtItl,
  prefillComputeTokensPerSecond,
  prefillLengthFactor,
} from '../calibration.ts';
import { EngineWindow } from './engine-window.ts';
import type { FrontendSeries, PolicyContext, PoolObservation, ScalingPolicy } from './types.ts';

export type LoadPredictorName = 'constant' | 'arima' | 'kalman';

export interface LoadPredictor {
  add(value: number): void;
  predictNext(): number;
}

/** Leading zeros are an idle start, not load (predictors.py `BasePredictor.add_data_point`). */
abstract class SkipsIdleStart implements LoadPredictor {
  protected readonly values: number[] = [];
  private seenNonZero = false;

  add(value: number): void {
    const v = Number.isFinite(value) ? value : 0;
    if (v === 0 && !this.seenNonZero) return;
    if (v !== 0) this.seenNonZero = true;
    this.values.push(v);
    this.observed(v);
  }

  protected observed(_value: number): void {}

  protected last(): number {
    return this.values[this.values.length - 1] ?? 0;
  }

  abstract predictNext(): number;
}

export class ConstantPredictor extends SkipsIdleStart {
  predictNext(): number {
    return this.last();
  }
}

/** ARIMA(1,1,0): Δy_t = φ·Δy_{t−1}, φ by least squares; last value before 5 points, the constant for constant data. */
export class ArimaPredictor extends SkipsIdleStart {
  predictNext(): number {
    const y = this.values;
    if (y.length < 5) return this.last();
    if (y.every((v) => v === y[0])) return y[0] as number;
    let num = 0;
    let den = 0;
    for (let t = 2; t < y.length; t++) {
      const d = (y[t] as number) - (y[t - 1] as number);
      const dPrev = (y[t - 1] as number) - (y[t - 2] as number);
      num += d * dPrev;
      den += dPrev * dPrev;
    }
    const phi = den > 0 ? Math.max(-0.99, Math.min(0.99, num / den)) : 0;
    const lastDiff = (y[y.length - 1] as number) - (y[y.length - 2] as number);
    return Math.max(0, this.last() + phi * lastDiff);
  }
}

/** The local-linear-trend Kalman filter of predictors.py: state [level, trend], F = [[1,1],[0,1]], H = [1,0]. */
export class KalmanPredictor extends SkipsIdleStart {
  private x = [0, 0];
  private p = [
    [1000, 0],
    [0, 1000],
  ];
  private initialized = false;
  private cached: number | undefined;

  constructor(
    private readonly qLevel = 1.0,
    private readonly qTrend = 0.1,
    private readonly r = 10.0,
  ) {
    super();
  }

  private predictStep(): void {
    const [l, v] = this.x as [number, number];
    this.x = [l + v, v];
    const [[a, b], [c, d]] = this.p as [[number, number], [number, number]];
    // P = F P Fᵀ + Q
    this.p = [
      [a + b + c + d + this.qLevel, b + d],
      [c + d, d + this.qTrend],
    ];
  }

  protected override observed(z: number): void {
    if (!this.initialized) {
      this.x = [z, 0];
      this.initialized = true;
      this.cached = undefined;
      return;
    }
    if (this.cached === undefined) this.predictStep();
    const [[a, b], [c, d]] = this.p as [[number, number], [number, number]];
    const s = a + this.r;
    const k0 = a / s;
    const k1 = c / s;
    const innovation = z - (this.x[0] as number);
    this.x = [(this.x[0] as number) + k0 * innovation, (this.x[1] as number) + k1 * innovation];
    this.p = [
      [(1 - k0) * a, (1 - k0) * b],
      [c - k1 * a, d - k1 * b],
    ];
    this.cached = undefined;
  }

  predictNext(): number {
    if (!this.initialized) return this.last();
    if (this.cached === undefined) {
      this.predictStep();
      this.cached = this.x[0] as number;
    }
    return this.cached;
  }
}

export function createPredictor(name: LoadPredictorName): LoadPredictor {
  if (name === 'constant') return new ConstantPredictor();
  if (name === 'kalman') return new KalmanPredictor();
  return new ArimaPredictor();
}

export interface DynamoSpec {
  readonly adjustmentIntervalSeconds: number;
  readonly predictor: LoadPredictorName;
  readonly ttftSloSeconds: number;
  readonly itlSloSeconds: number;
  readonly minEndpoint: number;
  readonly maxGroups: number;
  /** Multiplies the profiled per-engine capacity (1 = as profiled): the lab's target knob. */
  readonly capacityScale: number;
}

export function dynamoDefaults(c: Calibration, maxGroups = 64): DynamoSpec {
  return {
    adjustmentIntervalSeconds: 180,
    predictor: 'arima',
    ttftSloSeconds: c.slo.ttftSeconds,
    itlSloSeconds: c.slo.tpotSeconds,
    minEndpoint: 1,
    maxGroups,
    capacityScale: 1,
  };
}

/** Requests/s one prefill group serves at a prompt length (saturated, as the profiled best throughput). */
export function prefillEngineRps(c: Calibration, isl: number): number {
  return prefillComputeTokensPerSecond(c) / (Math.max(1, isl) * prefillLengthFactor(c, Math.max(1, isl)));
}

/** Requests/s one decode group serves: sequences held at the ITL SLA (context ISL + OSL/2) over OSL × ITL. */
export function decodeEngineRps(c: Calibration, isl: number, osl: number, itlSeconds: number): number {
  const perGpu = decodeSequencesPerGpuAtItl(c, itlSeconds, isl + osl / 2);
  return (perGpu * c.decode.gpusPerGroup) / (Math.max(1, osl) * itlSeconds);
}

/** One throughput-mode decision: both pools' counts from the predicted load. */
export function dynamoThroughputDecision(
  c: Calibration,
  spec: DynamoSpec,
  predicted: { readonly requests: number; readonly isl: number; readonly osl: number },
): { readonly prefill: number; readonly decode: number } {
  const demandRps = predicted.requests / spec.adjustmentIntervalSeconds;
  const bound = (n: number) => Math.min(spec.maxGroups, Math.max(spec.minEndpoint, n));
  return {
    prefill: bound(Math.ceil(demandRps / (prefillEngineRps(c, predicted.isl) * spec.capacityScale))),
    decode: bound(
      Math.ceil(
        demandRps /
          (decodeEngineRps(c, predicted.isl, predicted.osl, spec.itlSloSeconds) * spec.capacityScale),
      ),
    ),
  };
}

export function dynamoPolicyWith(
  overrides: Partial<DynamoSpec> = {},
): (context: PolicyContext) => ScalingPolicy {
  return (context) => {
    const c = context.calibration;
    const spec = { ...dynamoDefaults(c, context.maxGroups), ...overrides };
    const predictors = {
      requests: createPredictor(spec.predictor),
      isl: createPredictor(spec.predictor),
      osl: createPredictor(spec.predictor),
    };
    let previous: FrontendSeries | undefined;
    let islSeen = 2048;
    let oslSeen = 512;
    return {
      name: spec.predictor === 'arima' ? 'dynamo' : `dynamo-${spec.predictor}`,
      decide(o: PoolObservation) {
        if (o.nowSeconds % spec.adjustmentIntervalSeconds !== 0 || o.frontend === undefined) return undefined;
        const now = o.frontend();
        const before = previous;
        previous = now;
        if (before === undefined) return undefined; // the first interval has no rate yet
        const requests = counterIncrease(before.requestsTotal, now.requestsTotal);
        const completed = counterIncrease(before.completedTotal, now.completedTotal);
        if (requests > 0) islSeen = counterIncrease(before.inputTokensTotal, now.inputTokensTotal) / requests;
        if (completed > 0)
          oslSeen = counterIncrease(before.outputTokensTotal, now.outputTokensTotal) / completed;
        predictors.requests.add(requests);
        predictors.isl.add(islSeen);
        predictors.osl.add(oslSeen);
        // Scaling still in progress: observe only (the predictors still learn).
        if (o.requestedGroups !== o.readyGroups) return undefined;
        const decision = dynamoThroughputDecision(c, spec, {
          requests: predictors.requests.predictNext(),
          isl: predictors.isl.predictNext(),
          osl: predictors.osl.predictNext(),
        });
        return decision[o.pool];
      },
    };
  };
}

export const dynamoPolicy = dynamoPolicyWith();

/**
 * Dynamo's load mode in its easy form (`core/load_scaling.py`, optimization target throughput), every
 * `load_adjustment_interval` (5 s): decode scales up by one group when any engine's KV utilisation
 * (scheduled + queued KV tokens over its capacity) exceeds 1.0 and down by one when every engine is under 0.6;
 * prefill scales up by one when any engine's queued prefill tokens reach the context length and down by one when
 * all are under a tenth of it. While a pool has groups starting it only observes. The lab has no forward-pass
 * metrics: scheduled KV is `vllm:kv_cache_usage_perc`, queued tokens are waiting requests × the mean prompt
 * (from the token and request counters over the last minute).
 */
export interface DynamoLoadSpec {
  readonly adjustmentIntervalSeconds: number;
  readonly decodeUp: number;
  readonly decodeDown: number;
  readonly prefillUp: number;
  readonly prefillDown: number;
  /** DeepSeek-R1's context length (tokens). */
  readonly contextLength: number;
}

export const dynamoLoadDefaults: DynamoLoadSpec = {
  adjustmentIntervalSeconds: 5,
  decodeUp: 1.0,
  decodeDown: 0.6,
  prefillUp: 1.0,
  prefillDown: 0.1,
  contextLength: 163_840,
};

/** One easy-mode step: +1 when any engine is over `up`, −1 when all are under `down` (never below 1). */
export function easyLoadStep(
  current: number,
  ratios: readonly number[],
  up: number,
  down: number,
  strictUp: boolean,
): number {
  if (ratios.length === 0) return current;
  if (ratios.some((r) => (strictUp ? r > up : r >= up))) return current + 1;
  if (current > 1 && ratios.every((r) => r < down)) return current - 1;
  return current;
}

export function dynamoLoadPolicyWith(overrides: Partial<DynamoLoadSpec> = {}) {
  return (context: PolicyContext): ScalingPolicy => {
    const spec = { ...dynamoLoadDefaults, ...overrides };
    const c = context.calibration;
    const window = new EngineWindow(60);
    let meanPrompt = 2048;
    return {
      name: 'dynamo-load',
      decide(o: PoolObservation) {
        if (o.nowSeconds % spec.adjustmentIntervalSeconds !== 0) return undefined;
        window.record(o.nowSeconds, o.engineSeries?.() ?? []);
        const rates = window.rates();
        if (rates !== undefined && rates.requestsPerSecond > 0) {
          meanPrompt = rates.promptTokensPerSecond / rates.requestsPerSecond;
        }
        if (o.requestedGroups !== o.readyGroups || o.metrics.length === 0) return undefined;
        const current = o.readyGroups;
        let desired: number;
        if (context.pool === 'decode') {
          const capacity = c.decode.kvCapacityTokensPerGpu * c.decode.gpusPerGroup;
          const utils = o.metrics.map(
            (m) => m.kvCacheUsagePerc + (m.numRequestsWaiting * meanPrompt) / capacity,
          );
          desired = easyLoadStep(current, utils, spec.decodeUp, spec.decodeDown, true);
        } else {
          const ratios = o.metrics.map((m) => (m.numRequestsWaiting * meanPrompt) / spec.contextLength);
          desired = easyLoadStep(current, ratios, spec.prefillUp, spec.prefillDown, false);
        }
        return Math.min(context.maxGroups, Math.max(context.minGroups, desired));
      },
    };
  };
}

export const dynamoLoadPolicy = dynamoLoadPolicyWith();
