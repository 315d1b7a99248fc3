/**
 * How the peers are pointed at this fleet. Their algorithms and defaults are their own; what a user must
 * configure for any of them (the metric and its target per group) is chosen here once, the same for every
 * peer, from the calibration:
 *
 * | pool    | KV-cache policies (AIBrix KPA/APA, HPA)                         | Knative KPA (concurrency)                        |
 * |---------|-----------------------------------------------------------------|--------------------------------------------------|
 * | decode  | `kv_cache_usage_perc`, target 0.5 (AIBrix's DeepSeek-R1 sample [S10]) | `containerConcurrency` = sequences per group at the TPOT SLO with a 3K context (calibration.md §9) |
 * | prefill | `num_requests_waiting`, target = prompts/s per group at 2K × TTFT/4 | `containerConcurrency` = prompts/s per group at 2K × TTFT/2 (Little's law at half the TTFT) |
 *
 * A prefill group's KV usage is tiny and transient (prompts leave after one batch), so a KV target would keep
 * prefill at its minimum whatever the load; queue length is what AIBrix users configure for prefill roles
 * (aibrix-kpa.md §2.2: any vLLM gauge the fetcher parses).
 */
import {
  type Calibration,
  decodeSequencesPerGpuAtItl,
  prefillComputeTokensPerSecond,
} from '../calibration.ts';
import type { Pool } from './types.ts';

/** The reference prompt and context lengths of calibration.md §9. */
const REFERENCE_PROMPT_TOKENS = 2048;
const REFERENCE_DECODE_CONTEXT_TOKENS = 3072;

export type PeerMetric = 'kvCacheUsagePerc' | 'numRequestsWaiting';

export interface PeerTarget {
  readonly metric: PeerMetric;
  readonly targetPerGroup: number;
}

/** Prompts per second one prefill group sustains at the reference length. */
function prefillPromptsPerSecond(c: Calibration): number {
  return prefillComputeTokensPerSecond(c) / REFERENCE_PROMPT_TOKENS;
}

export function kvPolicyTarget(pool: Pool, c: Calibration): PeerTarget {
  if (pool === 'decode') return { metric: 'kvCacheUsagePerc', targetPerGroup: 0.5 };
  return {
    metric: 'numRequestsWaiting',
    targetPerGroup: Math.max(1, Math.round((prefillPromptsPerSecond(c) * c.slo.ttftSeconds) / 4)),
  };
}

/** Knative `containerConcurrency` for a group of the pool (the target is this × the 0.7 utilisation). */
export function concurrencyPerGroup(pool: Pool, c: Calibration): number {
  if (pool === 'prefill')
    return Math.max(1, Math.round((prefillPromptsPerSecond(c) * c.slo.ttftSeconds) / 2));
  const perGpu = decodeSequencesPerGpuAtItl(c, c.slo.tpotSeconds, REFERENCE_DECODE_CONTEXT_TOKENS);
  return Math.max(1, Math.floor(perGpu * c.decode.gpusPerGroup));
}
