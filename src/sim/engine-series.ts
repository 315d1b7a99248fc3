/**
 * The counters and histograms one simulated engine (a group head) exposes besides its gauges, named after
 * vLLM v1's (`vllm/v1/metrics/loggers.py`): `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`,
 * `vllm:num_preemptions_total`, `vllm:request_success_total`, `vllm:time_to_first_token_seconds` and
 * `vllm:inter_token_latency_seconds` with vLLM's bucket bounds.
 *
 * What each engine counts, as vLLM does in a disaggregated deployment (the router sends a prompt to a prefill
 * engine with one output token, then the whole request to a decode engine that pulls the KV):
 * - prefill: prompt tokens and one generated token per prefilled request, TTFT = arrival → batch end;
 * - decode: prompt tokens of each admitted request (vLLM counts a request's prompt at its first token, computed
 *   or pulled), one token per running sequence per step, TTFT = prefill end → first token (transfer and
 *   admission wait), one ITL observation of the step time per sequence that stepped, preemptions, successes.
 */
import {
  BucketHistogram,
  type HistogramSnapshot,
  VLLM_ITL_BUCKETS_SECONDS,
  VLLM_TTFT_BUCKETS_SECONDS,
} from '../decide/histogram.ts';

/** One engine's cumulative series at a moment, as a scrape returns them. */
export interface EngineSeries {
  /** Stable for the group's life and never reused: the series identity a rate is computed per. */
  readonly groupId: number;
  readonly promptTokensTotal: number;
  readonly generationTokensTotal: number;
  readonly preemptionsTotal: number;
  readonly requestSuccessTotal: number;
  readonly timeToFirstTokenSeconds: HistogramSnapshot;
  readonly interTokenLatencySeconds: HistogramSnapshot;
}

/**
 * The request frontend's counters (what Dynamo's frontend exports as `dynamo_frontend_requests_total` and its
 * input/output sequence-length histograms' sums): arrivals and their prompt tokens, completions and their
 * output tokens.
 */
export interface FrontendSeries {
  readonly requestsTotal: number;
  readonly inputTokensTotal: number;
  readonly completedTotal: number;
  readonly outputTokensTotal: number;
}

/** The live series of one engine: the fleet counts into it; `snapshot()` is what a scrape reads. */
export class LiveEngineSeries {
  promptTokensTotal = 0;
  generationTokensTotal = 0;
  preemptionsTotal = 0;
  requestSuccessTotal = 0;
  readonly ttft = new BucketHistogram(VLLM_TTFT_BUCKETS_SECONDS);
  readonly itl = new BucketHistogram(VLLM_ITL_BUCKETS_SECONDS);

  constructor(readonly groupId: number) {}

  snapshot(): EngineSeries {
    return {
      groupId: this.groupId,
      promptTokensTotal: this.promptTokensTotal,
      generationTokensTotal: this.generationTokensTotal,
      preemptionsTotal: this.preemptionsTotal,
      requestSuccessTotal: this.requestSuccessTotal,
      timeToFirstTokenSeconds: this.ttft.snapshot(),
      interTokenLatencySeconds: this.itl.snapshot(),
    };
  }
}
