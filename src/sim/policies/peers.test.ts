/**
 * Pins each peer re-implementation to its published behaviour: numbers worked from
 * the upstream sources (knative/serving pkg/autoscaler/scaling/autoscaler.go; vllm-project/aibrix
 * pkg/controller/podautoscaler/algorithm/{kpa,apa}.go; kubernetes.io "Horizontal Pod Autoscaling").
 */
import { describe, expect, it } from 'vitest';
import { loadCalibration } from '../calibration.ts';
import type { DemandProfile } from '../demand.ts';
import {
  AibrixCooldown,
  aibrixApaPolicy,
  aibrixApaRecommend,
  aibrixDefaults,
  aibrixKpaPolicy,
  aibrixKpaRecommend,
  SampleWindow,
} from './aibrix.ts';
import { HpaStabilizer, hpaDefaults, hpaPolicy, hpaReplicas } from './hpa.ts';
import { knativeDefaults, knativePolicy, knativeScale, TimedBuckets } from './knative.ts';
import { oraclePolicy } from './oracle.ts';
import { staticPolicy } from './static.ts';
import { concurrencyPerGroup, kvPolicyTarget } from './targets.ts';
import type { GroupMetrics, PolicyContext, Pool, PoolObservation } from './types.ts';

const h200 = loadCalibration('deepseek-r1-h200');

function demand(prefill: number[], decode: number[], binSeconds = 10): DemandProfile {
  return { binSeconds, prefillGroups: Float64Array.from(prefill), decodeGroups: Float64Array.from(decode) };
}

function context(pool: Pool, profile = demand([1], [1]), startupSeconds = 600): PolicyContext {
  return { pool, calibration: h200, startupSeconds, minGroups: 1, maxGroups: 64, demand: profile };
}

function kv(usage: number, running = 0, waiting = 0): GroupMetrics {
  return { kvCacheUsagePerc: usage, numRequestsRunning: running, numRequestsWaiting: waiting };
}

function observation(
  nowSeconds: number,
  requested: number,
  metrics: GroupMetrics[],
  pool: Pool = 'decode',
): PoolObservation {
  return { nowSeconds, pool, requestedGroups: requested, readyGroups: metrics.length, metrics };
}

describe('Knative KPA (knative/serving pkg/autoscaler)', () => {
  it('linear buckets: partial windows average over their length; interior gaps are zeros; trailing gaps excluded', () => {
    const w = new TimedBuckets(60);
    w.record(0, 10);
    w.record(1, 20);
    expect(w.windowAverage(1)).toBe(15); // young series: over its 2 seconds, not 60
    w.record(3, 30); // second 2 is an interior gap: a zero
    expect(w.windowAverage(3)).toBe(15); // (10+20+0+30)/4
    expect(w.windowAverage(5)).toBe(15); // trailing seconds 4–5 are left out
    // At 62 the window is [3, 62]: seconds 0–2 have left it and 4–62 are a trailing gap, so only second 3 counts.
    expect(w.windowAverage(62)).toBe(30);
    expect(w.windowAverage(63)).toBeUndefined(); // silent for a whole window: no data
  });

  it('rate bounds: scale-down at most halves the ready count; scale-up by at least one', () => {
    const spec = knativeDefaults(10);
    const calm = { panicStartedAt: Number.NaN, maxPanicPods: 0 };
    expect(knativeScale(spec, calm, 10, 0, 0, 100).want).toBe(5); // floor(10/2)
    expect(knativeScale(spec, calm, 4, 35, 35, 100).want).toBe(4); // ceil(35/10)=4, no panic (4/4 < 2)
  });

  it('panic at one ready pod: any panic want ≥ 2 panics, and the ratchet forbids scale-down for a stable window', () => {
    const spec = knativeDefaults(10, 1);
    let r = knativeScale(spec, { panicStartedAt: Number.NaN, maxPanicPods: 0 }, 1, 5, 25, 0);
    expect(r.want).toBe(3); // panic: max(stable 1, panic 3)
    expect(r.state.panicStartedAt).toBe(0);
    r = knativeScale(spec, r.state, 3, 5, 5, 30); // load gone, but still within 60 s of the last over-threshold tick
    expect(r.want).toBe(3);
    r = knativeScale(spec, r.state, 3, 5, 5, 60); // 0 + 60 < 60 is false: still panicking
    expect(r.want).toBe(3);
    r = knativeScale(spec, r.state, 3, 5, 5, 62); // un-panic: back to the stable want
    expect(r.want).toBe(1); // clamp(ceil(5/10) = 1, floor(3/2) = 1, 3000)
    expect(Number.isNaN(r.state.panicStartedAt)).toBe(true);
  });

  it('the policy records total concurrency each second, decides every 2 s, and sizes by ceil(total / target)', () => {
    const policy = knativePolicy(context('decode'));
    const target = concurrencyPerGroup('decode', h200) * 0.7;
    const perGroup = [kv(0, Math.round(target * 1.5)), kv(0, Math.round(target * 1.5))];
    expect(policy.decide(observation(1, 2, perGroup))).toBeUndefined(); // odd second: no tick
    const want = policy.decide(observation(2, 2, perGroup));
    expect(want).toBe(Math.ceil((2 * Math.round(target * 1.5)) / target)); // 3 groups for 3 groups' worth
  });
});

describe('AIBrix KPA and APA (aibrix pkg/controller/podautoscaler)', () => {
  const spec = (strategy: 'kpa' | 'apa') => aibrixDefaults(strategy, 0.5, 1, 64);

  it('the mean-into-total defect: 4 groups at KV 0.8, target 0.5 → KPA says 2, APA says 7', () => {
    expect(aibrixKpaRecommend(spec('kpa'), 4, 0.8, 0.8)).toBe(2);
    expect(aibrixApaRecommend(spec('apa'), 4, 0.8)).toBe(7);
  });

  it('KPA holds inside the ±10 % band and enters panic on P/S > 2 for one reconcile only', () => {
    expect(aibrixKpaRecommend(spec('kpa'), 6, 0.52, 0.52)).toBe(6);
    // Panic: stable 0.2 → ceil(0.4)=1 → clamp to maxDown 3; panic 0.9 → ceil(1.8)=2 → 3. Max = 3.
    expect(aibrixKpaRecommend(spec('kpa'), 6, 0.2, 0.9)).toBe(3);
    // S ≤ 0 forces panic; want from P: ceil(1.6/0.5)=4 within [0, max(1, 0)]: capped by maxUp = 1 at C = 0.
    expect(aibrixKpaRecommend(spec('kpa'), 0, 0, 1.6)).toBe(1);
  });

  it('APA boundaries are exact doubles: 33/30 and 27/30 are within tolerance', () => {
    const apa = aibrixDefaults('apa', 30, 1, 100);
    expect(aibrixApaRecommend(apa, 10, 33)).toBe(10);
    expect(aibrixApaRecommend(apa, 10, 27)).toBe(10);
    expect(aibrixApaRecommend(apa, 10, 34)).toBe(12); // ceil(10 × 34/30)
    expect(aibrixApaRecommend(apa, 10, 90)).toBe(20); // capped at ceil(2 × 10)
    expect(aibrixApaRecommend(apa, 10, 3)).toBe(5); // floored at floor(10 / 2)
  });

  it('the cooldown takes the minimum over the scale-down window (4→1, 1→4, then 3 → 1)', () => {
    const cooldown = new AibrixCooldown(spec('kpa'));
    expect(cooldown.stabilize(0, 4, 1)).toBe(1);
    expect(cooldown.stabilize(10, 1, 4)).toBe(4); // up: 0 s window, the new recommendation
    expect(cooldown.stabilize(20, 4, 3)).toBe(1); // down: min{1, 4, 3} over the last 300 s
    expect(cooldown.stabilize(400, 4, 3)).toBe(3); // the 1 has left the window
  });

  it('the window keeps the last write per second, evicts on write, and averages the samples present', () => {
    const w = new SampleWindow(180);
    w.record(0, 1);
    w.record(0.5, 3); // same second: last write wins
    w.record(10, 5);
    expect(w.average()).toBe(4);
    w.record(200, 0); // evicts seconds < 20
    expect(w.average()).toBe(0);
  });

  it('starting groups read as 0.0: the APA mean is diluted by groups that are not serving yet', () => {
    const policy = aibrixApaPolicy(context('decode'));
    // 2 ready groups at KV 0.8 plus 2 starting: mean 0.4 → APA ratio 0.8 → ceil(4 × 0.8) = 4 (hold), not 7.
    const o = {
      nowSeconds: 10,
      pool: 'decode' as const,
      requestedGroups: 4,
      readyGroups: 2,
      metrics: [kv(0.8), kv(0.8)],
    };
    expect(policy.decide(o)).toBe(4);
    expect(policy.decide({ ...o, nowSeconds: 11 })).toBeUndefined(); // reconciles every 10 s
  });

  it('KPA policy on a pool far over target still recommends fewer groups (the defect, end to end)', () => {
    const policy = aibrixKpaPolicy(context('decode'));
    expect(
      policy.decide(
        observation(
          10,
          8,
          Array.from({ length: 8 }, () => kv(0.9)),
        ),
      ),
    ).toBe(4);
  });
});

describe('Kubernetes HPA v2 (kubernetes.io Horizontal Pod Autoscaling)', () => {
  it('tolerance 10 %: a ratio of 1.1 holds; above it, ceil(ready × ratio)', () => {
    const spec = hpaDefaults(0.5);
    expect(hpaReplicas(spec, 4, [0.54, 0.54, 0.54, 0.54], 0)).toBe(4); // ratio 1.08
    expect(hpaReplicas(spec, 4, [0.8, 0.8, 0.8, 0.8], 0)).toBe(7); // ceil(4 × 1.6)
    expect(hpaReplicas(spec, 4, [0.1, 0.1, 0.1, 0.1], 0)).toBe(1);
  });

  it('missing pods count as 0 on scale-up and as the target on scale-down; a flipped direction holds', () => {
    const spec = hpaDefaults(0.5);
    // 2 ready at 0.8 + 2 starting: up-ratio (1.6) → with zeros 1.6/2 = 0.8 < 1: direction flips → hold 4.
    expect(hpaReplicas(spec, 4, [0.8, 0.8], 2)).toBe(4);
    // 3 ready at 1.0 + 1 starting: up; with a zero, 3.0 / (0.5 · 4) = 1.5 → ceil(4 × 1.5) = 6.
    expect(hpaReplicas(spec, 4, [1.0, 1.0, 1.0], 1)).toBe(6);
    // 2 ready at 0.1 + 2 missing counted at target: (0.2 + 1.0) / 2 = 0.6 → ceil(4 × 0.6) = 3.
    expect(hpaReplicas(spec, 4, [0.1, 0.1], 2)).toBe(3);
  });

  it('scale-down stabilisation keeps the highest recommendation of the last 300 s; scale-up is limited to max(2×, +4)', () => {
    const stabilizer = new HpaStabilizer(hpaDefaults(0.5));
    expect(stabilizer.normalize(0, 4, 8)).toBe(8);
    expect(stabilizer.normalize(15, 8, 2)).toBe(8); // max{8, 2} over 300 s
    expect(stabilizer.normalize(299, 8, 2)).toBe(8);
    expect(stabilizer.normalize(301, 8, 2)).toBe(2); // the 8 from t=0 has left the window
    const fresh = new HpaStabilizer(hpaDefaults(0.5));
    expect(fresh.normalize(0, 2, 40)).toBe(6); // max(2 × 2, 2 + 4)
    expect(fresh.normalize(15, 10, 40)).toBe(20); // max(2 × 10, 10 + 4)
  });

  it('the policy syncs every 15 s', () => {
    const policy = hpaPolicy(context('decode'));
    expect(policy.decide(observation(14, 2, [kv(0.9), kv(0.9)]))).toBeUndefined();
    expect(policy.decide(observation(15, 2, [kv(0.9), kv(0.9)]))).toBe(4); // ceil(2 × 1.8)
  });

  it('prefill is driven by the running count: a 70 %-utilised H200 group of 2K prompts runs ≈ 7 at a time', () => {
    const target = kvPolicyTarget('prefill', h200);
    expect(target.metric).toBe('numRequestsRunning');
    // λ = 0.7 × 115,968 / 2,048 = 39.6 prompts/s; 0.08 s × 39.6 / 0.3 = 10.6 → 11.
    expect(target.targetPerGroup).toBe(11);
  });
});

describe('static provisioning and the oracle', () => {
  it('static holds the peak demand of the whole trace from the start', () => {
    const policy = staticPolicy(context('decode', demand([1], [2, 5, 3, 1])));
    expect(policy.decide(observation(0, 2, []))).toBe(5);
    expect(policy.decide(observation(1000, 5, []))).toBe(5);
  });

  it('the oracle requests a rise exactly one startup ahead, and releases only when nothing higher comes within a startup', () => {
    // Need 1 group until 1,000 s, 4 groups over [1,000, 1,100), then 1 again; startup 600 s; 10 s bins.
    const need = Array.from({ length: 300 }, (_, bin) => (bin >= 100 && bin < 110 ? 4 : 1));
    const policy = oraclePolicy(context('decode', demand([1], need), 600));
    expect(policy.decide(observation(380, 1, []))).toBe(1); // 380 + 600 + 10 < 1,000
    expect(policy.decide(observation(400, 1, []))).toBe(4); // ready at 1,000
    expect(policy.decide(observation(1099, 4, []))).toBe(4);
    expect(policy.decide(observation(1100, 4, []))).toBe(1);
  });
});

describe('kvpa adapter (drives src/api/resolve + src/decide with the policies/ preset; no re-implementation)', () => {
  it('resolves deepseek-r1-disaggregated per pool: prefill on prompt tokens/s, decode on KV use and generated tokens/s', async () => {
    const { resolveKvpaPool } = await import('./kvpa.ts');
    const prefill = resolveKvpaPool('prefill', 1, 64);
    const decode = resolveKvpaPool('decode', 1, 64);
    expect(prefill.metrics.map((m) => [m.type, m.target])).toEqual([['promptTokens', 112000]]);
    expect(decode.metrics.map((m) => [m.type, m.target])).toEqual([
      ['kvCacheUtilization', 0.7],
      ['generationTokens', 60000],
    ]);
    expect([prefill.slo, decode.slo]).toEqual([{ ttftSeconds: 2 }, { tpotSeconds: 0.08 }]);
    expect(decode.scaleDownDelaySeconds).toBeGreaterThan(prefill.stableWindowSeconds);
    expect(prefill.maxReplicas).toBe(64);
  });

  it("the presets' capacities are the ones the H200 calibration derives: 7,000 tok/s/GPU × 16 = 112,000; 151 seqs/GPU × 32 / 80 ms ≈ 60,000", async () => {
    const { resolveKvpaPool } = await import('./kvpa.ts');
    const { prefillTokensCapacity, decodeTokensCapacity } = await import('./targets.ts');
    const target = (pool: 'prefill' | 'decode', type: string) =>
      resolveKvpaPool(pool, 1, 64).metrics.find((m) => m.type === type)?.target;
    expect(target('prefill', 'promptTokens')).toBe(prefillTokensCapacity(h200));
    expect(target('decode', 'generationTokens')).toBe(decodeTokensCapacity(h200));
    expect(prefillTokensCapacity(h200)).toBe(112000);
    expect(decodeTokensCapacity(h200)).toBe(60000);
  });

  it('sums each signal over ready groups and decides on its tick through the decision core', async () => {
    const { kvpaPolicy } = await import('./kvpa.ts');
    const policy = kvpaPolicy(context('decode'));
    // 2 ready groups at KV 0.9, target 0.7 per group: the pool total 1.8 wants ceil(1.8 / 0.7) = 3 groups.
    // It decides at its first tick and then every tickSeconds (2 s), as the controller does.
    expect(policy.decide(observation(1, 2, [kv(0.9), kv(0.9)]))).toBe(3);
    expect(policy.decide(observation(2, 3, [kv(0.9), kv(0.9)]))).toBeUndefined();
  });

  it('holds further scale-up while requested groups are starting (the startup gate)', async () => {
    const { kvpaPolicy } = await import('./kvpa.ts');
    const policy = kvpaPolicy(context('decode'));
    // 4 requested, 3 ready at KV 1.0: total 3.0 wants ceil(3 / 0.7) = 5, below 2 × 4, so it waits at 4
    // (nothing to write: the target already asks for 4).
    const metrics = [kv(1.0), kv(1.0), kv(1.0)];
    const starting = { nowSeconds: 2, pool: 'decode' as const, requestedGroups: 4, readyGroups: 3, metrics };
    expect(policy.decide(starting)).toBeUndefined();
    // Once everything requested is ready, the same load scales to 5.
    const ready = kvpaPolicy(context('decode'));
    expect(ready.decide({ ...starting, requestedGroups: 3 })).toBe(5);
  });
});
