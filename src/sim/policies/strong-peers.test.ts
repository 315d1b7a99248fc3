/**
 * Pins the strongest peers to their documented behaviour: Dynamo's SLA planner in throughput mode
 * (ai-dynamo/dynamo components/src/dynamo/planner), llm-d's KEDA recipes and Kthena's autoscaler
 * (volcano-sh/kthena pkg/autoscaler). Worked numbers in the test names.
 */
import { describe, expect, it } from 'vitest';
import { loadCalibration } from '../calibration.ts';
import type { DemandProfile } from '../demand.ts';
import type { FrontendSeries } from '../engine-series.ts';
import {
  ArimaPredictor,
  ConstantPredictor,
  decodeEngineRps,
  dynamoDefaults,
  dynamoPolicy,
  dynamoThroughputDecision,
  easyLoadStep,
  KalmanPredictor,
  prefillEngineRps,
} from './dynamo.ts';
import { EngineWindow, ttftQuantile } from './engine-window.ts';
import { enforceRoleRatio, KthenaPool, kthenaDefaults, kthenaPolicy, kthenaRecommend } from './kthena.ts';
import {
  externalMetricReplicas,
  llmdSloDefaults,
  prefillBacklogSeconds,
  sloAwareReplicas,
  sloPressure,
} from './llmd.ts';
import type { GroupMetrics, PolicyContext, Pool, PoolObservation } from './types.ts';

const h200 = loadCalibration('deepseek-r1-h200');

function context(
  pool: Pool,
  demand: DemandProfile = {
    binSeconds: 10,
    prefillGroups: Float64Array.of(1),
    decodeGroups: Float64Array.of(1),
  },
): PolicyContext {
  return { pool, calibration: h200, startupSeconds: 600, minGroups: 1, maxGroups: 64, demand };
}

function gauges(kv: number, running = 0, waiting = 0): GroupMetrics {
  return { kvCacheUsagePerc: kv, numRequestsRunning: running, numRequestsWaiting: waiting };
}

describe('Dynamo planner: load predictors (core/load/predictors.py)', () => {
  it('constant: leading zeros are an idle start and skipped; 0, 0, 5, 7 predicts 7', () => {
    const p = new ConstantPredictor();
    for (const v of [0, 0, 5, 7]) p.add(v);
    expect(p.predictNext()).toBe(7);
  });
  it('arima: the last value before 5 points (3 points: 30); constant data 3 ×5 predicts 3', () => {
    const few = new ArimaPredictor();
    for (const v of [10, 20, 30]) few.add(v);
    expect(few.predictNext()).toBe(30);
    const flat = new ArimaPredictor();
    for (let i = 0; i < 5; i++) flat.add(3);
    expect(flat.predictNext()).toBe(3);
  });
  it('arima(1,1,0): a ramp 10…50 (steps of 10, φ → 0.99) predicts 50 + 9.9 = 59.9', () => {
    const p = new ArimaPredictor();
    for (const v of [10, 20, 30, 40, 50]) p.add(v);
    expect(p.predictNext()).toBeCloseTo(59.9, 9);
  });
  it('kalman (q_level 1, q_trend 0.1, r 10): flat 100 predicts 100; a ramp 100…150 predicts above the last value (≈160)', () => {
    const flat = new KalmanPredictor();
    for (let i = 0; i < 10; i++) flat.add(100);
    expect(flat.predictNext()).toBeCloseTo(100, 9);
    const ramp = new KalmanPredictor();
    for (const v of [100, 110, 120, 130, 140, 150]) ramp.add(v);
    const next = ramp.predictNext();
    expect(next).toBeGreaterThan(150);
    expect(next).toBeLessThan(165);
    expect(ramp.predictNext()).toBe(next); // repeated calls do not advance the filter
  });
});

describe('Dynamo planner: throughput mode (core/throughput_scaling.py)', () => {
  it('capacity from the calibration: a prefill group serves ≈56.5 req/s of 2K prompts, a decode group ≈60.9 req/s of 2K/1K at 80 ms', () => {
    expect(prefillEngineRps(h200, 2048)).toBeCloseTo(56.54, 1);
    expect(decodeEngineRps(h200, 2048, 1024, 0.08)).toBeCloseTo(60.86, 1);
  });
  it('54,000 requests predicted in 180 s (300 req/s) at 2K/1K: prefill ceil(300/56.5) = 6, decode ceil(300/60.9) = 5, together', () => {
    expect(
      dynamoThroughputDecision(h200, dynamoDefaults(h200), { requests: 54_000, isl: 2048, osl: 1024 }),
    ).toEqual({
      prefill: 6,
      decode: 5,
    });
    // no load: min_endpoint 1 for each
    expect(
      dynamoThroughputDecision(h200, dynamoDefaults(h200), { requests: 0, isl: 2048, osl: 1024 }),
    ).toEqual({
      prefill: 1,
      decode: 1,
    });
  });
  it('decides every 180 s from the frontend counters, skips the first interval and any interval with groups starting', () => {
    const policy = dynamoPolicy(context('prefill'));
    let front: FrontendSeries = {
      requestsTotal: 0,
      inputTokensTotal: 0,
      completedTotal: 0,
      outputTokensTotal: 0,
    };
    const obs = (t: number, requested = 1, ready = 1): PoolObservation => ({
      nowSeconds: t,
      pool: 'prefill',
      requestedGroups: requested,
      readyGroups: ready,
      metrics: [gauges(0)],
      frontend: () => front,
    });
    expect(policy.decide(obs(90))).toBeUndefined(); // not an adjustment tick
    expect(policy.decide(obs(0))).toBeUndefined(); // first interval: no rate yet
    front = {
      requestsTotal: 54_000,
      inputTokensTotal: 54_000 * 2048,
      completedTotal: 54_000,
      outputTokensTotal: 54_000 * 1024,
    };
    expect(policy.decide(obs(180))).toBe(6);
    front = {
      requestsTotal: 108_000,
      inputTokensTotal: 108_000 * 2048,
      completedTotal: 108_000,
      outputTokensTotal: 108_000 * 1024,
    };
    expect(policy.decide(obs(360, 6, 1))).toBeUndefined(); // 5 groups still starting: observe only
  });
});

describe('Dynamo planner: load mode, easy thresholds (core/load_scaling.py)', () => {
  it('decode: any engine over 1.0 KV → +1; all under 0.6 → −1; 0.7 holds; prefill: queued ≥ context length → +1', () => {
    expect(easyLoadStep(3, [0.5, 1.05, 0.7], 1.0, 0.6, true)).toBe(4);
    expect(easyLoadStep(3, [0.5, 0.55, 0.2], 1.0, 0.6, true)).toBe(2);
    expect(easyLoadStep(3, [0.5, 0.7], 1.0, 0.6, true)).toBe(3);
    expect(easyLoadStep(1, [0.1], 1.0, 0.6, true)).toBe(1); // never below one
    expect(easyLoadStep(2, [1.0, 0], 1.0, 0.1, false)).toBe(3); // prefill: ≥ (not >) the threshold
  });
});

describe('llm-d KEDA recipes', () => {
  it('HPA on an External AverageValue metric: 4.2 on 4 replicas is inside the 10 % tolerance (4); 6.0 asks for 6', () => {
    expect(externalMetricReplicas(4, 4.2, 1)).toBe(4);
    expect(externalMetricReplicas(4, 6, 1)).toBe(6);
  });
  it('decode Σ KV ÷ 0.8: 5 groups at 0.9 give 4.5 / 0.8 = 5.6 → 6 replicas', () => {
    expect(externalMetricReplicas(5, (5 * 0.9) / 0.8, 1)).toBe(6);
  });
  it('prefill backlog: 10 waiting × 2,048 tokens over 112,000 tok/s peak = 0.183 s', () => {
    expect(prefillBacklogSeconds(10, 2048, 112_000)).toBeCloseTo(0.18286, 4);
  });
  it('SLO pressure: max(0.3, 1.2) = 1.2; 3 clamps to 2; NaN (no requests) is 0', () => {
    expect(sloPressure([0.3, 1.2], 2)).toBe(1.2);
    expect(sloPressure([3], 2)).toBe(2);
    expect(sloPressure([Number.NaN], 2)).toBe(0);
  });
  it('SLO-aware law, band 0.40–0.55: s 0.8 on 4 ready → ceil(4 × 0.8 / 0.55) = 6; with 7 requested (3 starting) 7; s 0.5 holds; s 0.2 → 2', () => {
    expect(sloAwareReplicas(llmdSloDefaults, 4, 4, 0.8)).toBe(6);
    expect(sloAwareReplicas(llmdSloDefaults, 4, 7, 0.8)).toBe(7);
    expect(sloAwareReplicas(llmdSloDefaults, 4, 4, 0.5)).toBe(4);
    expect(sloAwareReplicas(llmdSloDefaults, 4, 4, 0.2)).toBe(2);
  });
  it('P90 TTFT from two scrapes of the engines’ buckets: 10 first tokens in le=0.5, 10 in le=1 → 0.9 s', () => {
    const w = new EngineWindow(45);
    const series = (n: number) => ({
      groupId: 7,
      promptTokensTotal: 0,
      generationTokensTotal: 0,
      preemptionsTotal: 0,
      requestSuccessTotal: 0,
      timeToFirstTokenSeconds: {
        upperBounds: [0.1, 0.5, 1],
        cumulative: [0, 10 * n, 20 * n, 20 * n],
        sum: 0,
      },
      interTokenLatencySeconds: { upperBounds: [0.1], cumulative: [0, 0], sum: 0 },
    });
    w.record(0, [series(1)]);
    w.record(15, [series(2)]);
    const rates = w.rates();
    expect(rates?.spanSeconds).toBe(15);
    expect(ttftQuantile(rates ?? ({} as never), 0.9)).toBeCloseTo(0.9, 12);
  });
});

describe('Kthena (pkg/autoscaler)', () => {
  it('recommendation: 4 groups at 0.75 KV, target 0.5 → ceil(1.5 × 4) = 6; at 0.52 inside the 10 % tolerance → 4', () => {
    expect(kthenaRecommend(4, 0.1, 0.5, [0.75, 0.75, 0.75, 0.75], 0)).toBe(6);
    expect(kthenaRecommend(4, 0.1, 0.5, [0.52, 0.52, 0.52, 0.52], 0)).toBe(4);
  });
  it('unready instances join on scale-up: 4 at 0.9 plus 2 starting → 3.6 / 6 / 0.5 = 1.2 → ceil(7.2) = 8', () => {
    expect(kthenaRecommend(6, 0.1, 0.5, [0.9, 0.9, 0.9, 0.9], 2)).toBe(8);
  });
  it('ratio repair is scale-up biased: P/D 1/8 under minRatio 0.25 → prefill raised to 2; 10/2 over maxRatio 1 → decode raised to 10', () => {
    expect(enforceRoleRatio(1, 8, { min: 1, max: 64 }, 0.25, 1)).toEqual({
      prefill: 2,
      decode: 8,
      adjusted: true,
    });
    expect(enforceRoleRatio(10, 2, { min: 1, max: 64 }, 0.25, 1)).toEqual({
      prefill: 10,
      decode: 10,
      adjusted: true,
    });
    expect(enforceRoleRatio(3, 4, { min: 1, max: 64 }, 0.25, 1)).toEqual({
      prefill: 3,
      decode: 4,
      adjusted: false,
    });
  });
  it('panic at 200 %: 2 → 4 enters panic; no scale-down for the 60 s hold; then the 300 s stabilisation keeps 4 until it passes', () => {
    const spec = { ...kthenaDefaults(context('decode')), minReplicas: 1 };
    const pool = new KthenaPool(spec);
    expect(pool.correct(0, 2, 4)).toBe(4);
    expect(pool.inPanic(30)).toBe(true);
    expect(pool.correct(30, 4, 1)).toBe(4); // panic: no scale-down
    expect(pool.inPanic(75)).toBe(false);
    expect(pool.correct(75, 4, 1)).toBe(4); // stabilisation holds the max of 300 s
    expect(pool.correct(400, 4, 1)).toBe(1);
  });
  it('stable scale-up limit max(+4, +100 %) per period: 10 → 19 passes (limit 20); panic takes 3 → 6 in one step', () => {
    const spec = kthenaDefaults(context('decode'));
    expect(new KthenaPool(spec).correct(0, 10, 19)).toBe(19);
    expect(new KthenaPool(spec).correct(0, 3, 6)).toBe(6);
  });
  it('the two pools of a run share a coordinator: decode asked 8 with prefill at 1 lifts prefill at its next tick', () => {
    const demand = { binSeconds: 10, prefillGroups: Float64Array.of(1), decodeGroups: Float64Array.of(1) };
    const prefill = kthenaPolicy(context('prefill', demand));
    const decode = kthenaPolicy(context('decode', demand));
    const spec = kthenaDefaults(context('decode', demand));
    const obs = (pool: Pool, t: number, requested: number, metrics: GroupMetrics[]): PoolObservation => ({
      nowSeconds: t,
      pool,
      requestedGroups: requested,
      readyGroups: metrics.length,
      metrics,
    });
    expect(prefill.decide(obs('prefill', 0, 1, [gauges(0, 0)]))).toBe(1);
    const d = decode.decide(obs('decode', 0, 4, [gauges(1), gauges(1), gauges(1), gauges(1)])) ?? 0;
    expect(d).toBe(8); // 4 × 1.0 / 0.5
    const p = prefill.decide(obs('prefill', 15, 1, [gauges(0, 0)])) ?? 0;
    expect(p / 8).toBeGreaterThanOrEqual(spec.minRatio - 1e-9);
    expect(p).toBeGreaterThan(1);
  });
});
