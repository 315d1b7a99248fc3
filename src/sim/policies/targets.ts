/**
 * How the peers are pointed at this fleet. Each peer's algorithm and defaults are its own; what a user must
 * configure for any of them (the metric and its target per group) is chosen here once, from the calibration,
 * and shared, so that differences in the comparison come from the algorithms. (kvpa takes its metrics and
 * targets from the `policies/` preset instead; see kvpa.ts.)
 *
 * | pool    | KV-cache policies (AIBrix KPA/APA, HPA)                          | Knative KPA (`containerConcurrency`) |
 * |---------|------------------------------------------------------------------|--------------------------------------|
 * | decode  | `kv_cache_usage_perc`, target 0.5 (AIBrix's DeepSeek-R1 sample)  | the decode running target (below)    |
 * | prefill | `num_requests_running` = the prefill running target (below)      | the prefill running target           |
 *
 * - **Decode KV target 0.5:** AIBrix's DeepSeek-R1 sample autoscaler, vllm-project/aibrix
 *   samples/deepseek-r1/deepseek-r1-autoscaling.yaml (KPA, `targetValue: '50'`).
 * - **Decode running target:** the sequences one group carries at 90 % of the TPOT SLO with a 3K context
 *   (the calibration's step-time model).
 * - **Prefill running target:** the batch a group runs at 70 % utilisation with 2K prompts. A batching server
 *   with forward overhead o and utilisation ρ runs batches of about o·λ / (1 − ρ) prompts (λ prompts/s), so
 *   concurrency tracks load below saturation, where the queue stays near 0 until the group is overloaded.
 * - **Prefill queue target:** prompts/s per group at 2K × TTFT / 4 (kept for experiments).
 *
 * A prefill group's KV usage is tiny and transient (prompts leave after one batch), so a KV target would keep
 * prefill at its minimum whatever the load; AIBrix and the HPA take any vLLM gauge (aibrix pkg/controller/podautoscaler/metrics/fetcher.go), so
 * their prefill pools use the running count.
 */
import {
  type Calibration,
  decodeSequencesPerGpuAtItl,
  prefillComputeTokensPerSecond,
} from '../calibration.ts';
import type { GroupMetrics, Pool } from './types.ts';

/** The reference prompt and context lengths of the calibration (deepseek-r1-h200.yaml). */
const REFERENCE_PROMPT_TOKENS = 2048;
const REFERENCE_DECODE_CONTEXT_TOKENS = 3072;
const PREFILL_UTILIZATION = 0.7;

export type PeerMetric = keyof GroupMetrics;

export interface PeerTarget {
  readonly metric: PeerMetric;
  readonly targetPerGroup: number;
}

/** Prompts per second one prefill group sustains at the reference length. */
function prefillPromptsPerSecond(c: Calibration): number {
  return prefillComputeTokensPerSecond(c) / REFERENCE_PROMPT_TOKENS;
}

export function decodeRunningTarget(c: Calibration): number {
  const perGpu = decodeSequencesPerGpuAtItl(c, c.slo.tpotSeconds * 0.9, REFERENCE_DECODE_CONTEXT_TOKENS);
  return Math.max(1, Math.floor(perGpu * c.decode.gpusPerGroup));
}

export function prefillRunningTarget(c: Calibration): number {
  const lambda = prefillPromptsPerSecond(c) * PREFILL_UTILIZATION;
  return Math.max(1, Math.round((c.prefill.forwardOverheadSeconds * lambda) / (1 - PREFILL_UTILIZATION)));
}

/**
 * kvpa's prefill capacity per group (promptTokens): the prompt tokens/s a saturated group serves at the
 * reference 2K prompt, the calibration's measured throughput per GPU times the group's GPUs. Rounded down
 * to a thousand, as the preset writes it.
 */
export function prefillTokensCapacity(c: Calibration): number {
  return Math.floor((c.prefill.throughputTokensPerSecondPerGpu * c.prefill.gpusPerGroup) / 1000) * 1000;
}

/**
 * kvpa's decode capacity per group (generationTokens): the tokens/s a group generates with as many 3K-context
 * sequences as keep one step at the TPOT SLO (the calibration's step-time model), each making one token per
 * step. Rounded down to a thousand.
 */
export function decodeTokensCapacity(c: Calibration): number {
  const slo = c.slo.tpotSeconds;
  const perGpu = decodeSequencesPerGpuAtItl(c, slo, REFERENCE_DECODE_CONTEXT_TOKENS);
  return Math.floor((perGpu * c.decode.gpusPerGroup) / slo / 1000) * 1000;
}

export function prefillQueueTarget(c: Calibration): number {
  return Math.max(1, Math.round((prefillPromptsPerSecond(c) * c.slo.ttftSeconds) / 4));
}

/** The metric and per-group target of the KV-cache policies (AIBrix KPA/APA, HPA). */
export function kvPolicyTarget(pool: Pool, c: Calibration): PeerTarget {
  if (pool === 'decode') return { metric: 'kvCacheUsagePerc', targetPerGroup: 0.5 };
  return { metric: 'numRequestsRunning', targetPerGroup: prefillRunningTarget(c) };
}

/** Knative `containerConcurrency` for a group of the pool (Knative's target is this × its 0.7 utilisation). */
export function concurrencyPerGroup(pool: Pool, c: Calibration): number {
  return pool === 'prefill' ? prefillRunningTarget(c) : decodeRunningTarget(c);
}
