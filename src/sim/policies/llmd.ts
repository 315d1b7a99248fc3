/**
 * llm-d's KEDA autoscaling recipes (llm-d/llm-d-autoscaling `README.md` and guides; llm-d.ai "Autoscaling"
 * docs): no controller of its own, a KEDA Prometheus trigger per pool feeding the HPA. Two recipes:
 *
 * - **Token backlog** (`llmd-tokens`): prefill on `queued prompt tokens / peakPrefillThroughput`, the seconds
 *   of backlog, with a threshold in seconds per replica; decode on `sum(vllm:kv_cache_usage_perc) / 0.8`
 *   (threshold 1 per replica). vLLM has no queued-token gauge: the lab counts the waiting requests times the
 *   mean prompt length over the window (`rate(vllm:prompt_tokens_total) / rate(vllm:request_success_total)`).
 * - **SLO-aware** (`llmd-slo`, llm-d.ai/docs/dev/operations/autoscaling/slo-aware): a pressure score
 *   `s = max(P90 TTFT / TTFT SLO, P90 TPOT / TPOT SLO)` from the engines' histograms, clamped at 2 and averaged
 *   over 45 s, with a hysteresis band 0.40–0.55 and an in-flight credit on scale-up only. The guide targets one
 *   pool; here each pool reads its own engines (prefill: TTFT; decode: TTFT share and ITL). How s maps to a
 *   count is the HPA's ratio rule: above 0.55, `ceil(ready × s / 0.55)` counted against the requested groups
 *   (the starting ones are the credit); below 0.40, `ceil(ready × s / 0.40)`; in the band, hold.
 *
 * The HPA behind KEDA keeps its defaults (tolerance 0.1, 15 s sync, 300 s scale-down stabilisation, up by
 * max(+100 %, +4)); KEDA polls every 30 s, so the metric the HPA sees changes every 30 s.
 */
import { prefillComputeTokensPerSecond } from '../calibration.ts';
import { EngineWindow, itlQuantile, ttftQuantile } from './engine-window.ts';
import { HpaStabilizer, hpaDefaults } from './hpa.ts';
import type { PolicyContext, PoolObservation, ScalingPolicy } from './types.ts';

const KEDA_POLLING_SECONDS = 30;
const HPA_SYNC_SECONDS = 15;

/** The HPA's replica count for an External/AverageValue metric: `ceil(metric / target)` outside the tolerance. */
export function externalMetricReplicas(
  current: number,
  metric: number,
  targetPerReplica: number,
  tolerance = 0.1,
): number {
  const desired = metric / targetPerReplica;
  if (current > 0 && Math.abs(desired / current - 1) <= tolerance) return current;
  return Math.ceil(desired);
}

export interface LlmdTokenSpec {
  /** Prefill: seconds of queued prompt work one replica may carry. */
  readonly prefillBacklogSecondsPerReplica: number;
  /** Decode: KV use per replica (the recipe's 0.8). */
  readonly decodeKvPerReplica: number;
  readonly scaleDownStabilizationSeconds: number;
}

export const llmdTokenDefaults: LlmdTokenSpec = {
  prefillBacklogSecondsPerReplica: 1,
  decodeKvPerReplica: 0.8,
  scaleDownStabilizationSeconds: 300,
};

/** Prefill backlog in seconds: queued prompt tokens over the pool's peak prefill throughput per replica. */
export function prefillBacklogSeconds(
  waitingRequests: number,
  meanPromptTokens: number,
  peakTokensPerSecondPerReplica: number,
): number {
  return (waitingRequests * meanPromptTokens) / peakTokensPerSecondPerReplica;
}

export function llmdTokenPolicyWith(overrides: Partial<LlmdTokenSpec> = {}) {
  return (context: PolicyContext): ScalingPolicy => {
    const spec = { ...llmdTokenDefaults, ...overrides };
    const hpa = {
      ...hpaDefaults(1, context.minGroups, context.maxGroups),
      scaleDownStabilizationSeconds: spec.scaleDownStabilizationSeconds,
    };
    const stabilizer = new HpaStabilizer(hpa);
    const window = new EngineWindow(60);
    const peak = prefillComputeTokensPerSecond(context.calibration);
    let meanPrompt = 2048;
    let metric: number | undefined;
    return {
      name: 'llmd-tokens',
      decide(o: PoolObservation) {
        if (o.nowSeconds % KEDA_POLLING_SECONDS === 0) {
          if (context.pool === 'prefill') {
            window.record(o.nowSeconds, o.engineSeries?.() ?? []);
            const rates = window.rates();
            if (rates !== undefined && rates.requestsPerSecond > 0) {
              meanPrompt = rates.promptTokensPerSecond / rates.requestsPerSecond;
            }
            let waiting = 0;
            for (const m of o.metrics) waiting += m.numRequestsWaiting;
            metric = prefillBacklogSeconds(waiting, meanPrompt, peak) / spec.prefillBacklogSecondsPerReplica;
          } else {
            let kv = 0;
            for (const m of o.metrics) kv += m.kvCacheUsagePerc;
            metric = kv / spec.decodeKvPerReplica;
          }
        }
        if (o.nowSeconds % HPA_SYNC_SECONDS !== 0 || metric === undefined || o.metrics.length === 0)
          return undefined;
        const raw = externalMetricReplicas(o.requestedGroups, metric, 1, hpa.tolerance);
        return stabilizer.normalize(o.nowSeconds, o.requestedGroups, raw);
      },
    };
  };
}

export interface LlmdSloSpec {
  readonly scaleUpAbove: number;
  readonly scaleDownBelow: number;
  readonly averageSeconds: number;
  readonly maxScore: number;
  readonly quantile: number;
  readonly scaleDownStabilizationSeconds: number;
}

export const llmdSloDefaults: LlmdSloSpec = {
  scaleUpAbove: 0.55,
  scaleDownBelow: 0.4,
  averageSeconds: 45,
  maxScore: 2,
  quantile: 0.9,
  scaleDownStabilizationSeconds: 300,
};

/** The SLO pressure score: the worse of the latency quantiles over their SLOs, clamped; no data is no pressure. */
export function sloPressure(ratios: readonly number[], maxScore: number): number {
  let s = 0;
  for (const r of ratios) if (Number.isFinite(r)) s = Math.max(s, r);
  return Math.min(maxScore, s);
}

/** The count for a score: scale up above the band (starting groups credited), down below it, hold inside. */
export function sloAwareReplicas(spec: LlmdSloSpec, ready: number, requested: number, score: number): number {
  if (score > spec.scaleUpAbove) return Math.max(requested, Math.ceil((ready * score) / spec.scaleUpAbove));
  if (score < spec.scaleDownBelow)
    return Math.min(requested, Math.ceil((ready * score) / spec.scaleDownBelow));
  return requested;
}

export function llmdSloPolicyWith(overrides: Partial<LlmdSloSpec> = {}) {
  return (context: PolicyContext): ScalingPolicy => {
    const spec = { ...llmdSloDefaults, ...overrides };
    const hpa = {
      ...hpaDefaults(1, context.minGroups, context.maxGroups),
      scaleDownStabilizationSeconds: spec.scaleDownStabilizationSeconds,
    };
    const stabilizer = new HpaStabilizer(hpa);
    const window = new EngineWindow(spec.averageSeconds);
    const slo = context.calibration.slo;
    return {
      name: 'llmd-slo',
      decide(o: PoolObservation) {
        if (o.nowSeconds % HPA_SYNC_SECONDS !== 0) return undefined;
        window.record(o.nowSeconds, o.engineSeries?.() ?? []);
        const rates = window.rates();
        if (rates === undefined || o.metrics.length === 0) return undefined;
        const ratios = [ttftQuantile(rates, spec.quantile) / slo.ttftSeconds];
        if (context.pool === 'decode') ratios.push(itlQuantile(rates, spec.quantile) / slo.tpotSeconds);
        const score = sloPressure(ratios, spec.maxScore);
        const raw = sloAwareReplicas(spec, o.readyGroups, o.requestedGroups, score);
        return stabilizer.normalize(o.nowSeconds, o.requestedGroups, Math.max(1, raw));
      },
    };
  };
}

export const llmdTokenPolicy = llmdTokenPolicyWith();
export const llmdSloPolicy = llmdSloPolicyWith();
