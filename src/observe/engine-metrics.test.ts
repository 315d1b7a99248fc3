import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIXTURES, readMetricsFixture } from '../../test/observe/metric-fixtures.ts';
import {
  detectDialect,
  type EngineSignals,
  type ExtractOptions,
  extractEngineSignals,
  extractEngineWork,
  type SignalValue,
} from './engine-metrics.ts';
import { formatValue, parseExposition } from './exposition.ts';

const AUTO: ExtractOptions = { dialect: 'auto' };
const signals = (text: string, options: ExtractOptions = AUTO): EngineSignals =>
  extractEngineSignals(parseExposition(text), options);

function okValue(s: SignalValue): number {
  if (s.state !== 'ok') throw new Error(`expected ok, got ${s.state}: ${s.reason}`);
  return s.value;
}

const capture = readMetricsFixture(FIXTURES.vllmEngineLabel);
const sglang = readMetricsFixture(FIXTURES.sglangDocs);

/**
 * Rewrites the capture's single `engine="0"` sample of `metric` into one sample per DP rank,
 * as a `--data-parallel-size N` server prints them.
 */
function withRanks(text: string, metric: string, values: readonly number[]): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`${metric}{engine="0",`));
  if (i < 0) throw new Error(`no engine="0" sample of ${metric} in the fixture`);
  const template = lines[i] as string;
  const perRank = values.map((v, rank) =>
    template.replace('engine="0"', `engine="${rank}"`).replace(/ \S+$/, ` ${formatValue(v)}`),
  );
  lines.splice(i, 1, ...perRank);
  return lines.join('\n');
}

function withoutMetric(text: string, metric: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith(`${metric}{`))
    .join('\n');
}

describe('extraction from the real fixtures', () => {
  it('vLLM V1 capture: all four signals ok at 0 from the engine="0" series', () => {
    const s = signals(capture);
    expect(s.dialect).toBe('vllm');
    expect(s.kvCacheUsageFraction).toEqual({
      state: 'ok',
      value: 0,
      metric: 'vllm:kv_cache_usage_perc',
      ranks: [{ labels: { engine: '0', model_name: 'meta-llama/Llama-3.1-8B-Instruct' }, value: 0 }],
    });
    expect(okValue(s.requestsWaiting)).toBe(0);
    expect(okValue(s.requestsRunning)).toBe(0);
    expect(s.preemptionsTotal).toMatchObject({ state: 'ok', value: 0, metric: 'vllm:num_preemptions_total' });
    expect(s.rejections).toEqual([]);
  });

  it('SGLang docs example: token_usage, queue and running; preemptions missing with a reason', () => {
    const s = signals(sglang);
    expect(s.dialect).toBe('sglang');
    expect(s.kvCacheUsageFraction).toMatchObject({ state: 'ok', value: 0.28, metric: 'sglang:token_usage' });
    expect(okValue(s.requestsWaiting)).toBe(2826);
    expect(okValue(s.requestsRunning)).toBe(162);
    expect(s.preemptionsTotal.state).toBe('missing');
    expect(s.preemptionsTotal.state === 'missing' && s.preemptionsTotal.reason).toMatch(/SGLang/);
  });

  it('vLLM docs example (invalid page): running is read, absent signals are missing, not 0', () => {
    const s = signals(readMetricsFixture(FIXTURES.vllmDocsInvalid));
    expect(s.dialect).toBe('vllm');
    expect(okValue(s.requestsRunning)).toBe(8);
    expect(s.requestsWaiting).toEqual({
      state: 'missing',
      reason: 'no sample of vllm:num_requests_waiting_by_reason or vllm:num_requests_waiting in the scrape',
    });
    expect(s.kvCacheUsageFraction).toEqual({
      state: 'missing',
      reason: 'no sample of vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc in the scrape',
    });
    expect(s.preemptionsTotal.state).toBe('missing');
  });
});

describe('SGLang ITL histogram', () => {
  it('reads sglang:inter_token_latency_seconds (current name), else the older time_per_output_token', () => {
    const older = extractEngineWork(parseExposition(sglang), AUTO).itl;
    expect(older?.cumulative.at(-1)).toBeGreaterThan(0);
    const renamed = sglang.replaceAll(
      'sglang:time_per_output_token_seconds',
      'sglang:inter_token_latency_seconds',
    );
    expect(extractEngineWork(parseExposition(renamed), AUTO).itl).toEqual(older);
  });
});

describe('TensorRT-LLM', () => {
  const trt = readMetricsFixture(FIXTURES.trtllm);

  it('reads the trtllm_ gauges (KV a 0–1 fraction), detected under auto; no preemption counter', () => {
    const s = signals(trt);
    expect(s.dialect).toBe('trtllm');
    expect(s.kvCacheUsageFraction).toMatchObject({
      state: 'ok',
      value: 0.25,
      metric: 'trtllm_kv_cache_utilization',
    });
    expect(okValue(s.requestsWaiting)).toBe(2);
    expect(okValue(s.requestsRunning)).toBe(3);
    expect(s.preemptionsTotal).toEqual({
      state: 'missing',
      reason: 'TensorRT-LLM exports no preemption counter',
    });
    expect(signals(trt, { dialect: 'vllm' }).requestsWaiting.state).toBe('missing');
  });

  it('reads its token counters, finished requests over finished_reason, and latency histograms', () => {
    const w = extractEngineWork(parseExposition(trt), AUTO);
    expect(okValue(w.promptTokensTotal)).toBe(3000);
    expect(okValue(w.generationTokensTotal)).toBe(600);
    expect(okValue(w.promptRequestsTotal)).toBe(3);
    expect(w.ttft?.cumulative.at(-1)).toBe(3);
    expect(w.ttft?.sum).toBeCloseTo(0.4, 12);
    expect(w.itl?.cumulative.at(-1)).toBe(3);
  });

  it('a KV value reported as a percentage is outOfRange, never an ok value', () => {
    const s = signals(trt.replace(/^(trtllm_kv_cache_utilization\{[^}]*\}) 0\.25$/m, '$1 25.0'));
    expect(s.kvCacheUsageFraction.state).toBe('outOfRange');
  });
});

describe('Dynamo', () => {
  const frontend = readMetricsFixture(FIXTURES.dynamoFrontend);
  const worker = readMetricsFixture(FIXTURES.dynamoWorker);

  it("a frontend's queue and in-flight requests, detected under auto; no KV or preemption metric there", () => {
    const s = signals(frontend);
    expect(s.dialect).toBe('dynamo');
    expect(s.requestsWaiting).toMatchObject({
      state: 'ok',
      value: 4,
      metric: 'dynamo_frontend_queued_requests',
    });
    expect(s.requestsRunning).toMatchObject({
      state: 'ok',
      value: 10,
      metric: 'dynamo_frontend_inflight_requests',
    });
    // The frontend has no KV gauge: missing, never 0.
    expect(s.kvCacheUsageFraction.state === 'missing' && s.kvCacheUsageFraction.reason).toBe(
      'no sample of dynamo_component_gpu_cache_usage_percent in the scrape',
    );
    expect(s.preemptionsTotal.state).toBe('missing');
  });

  it("a worker's KV gauge (a fraction, one series per dp_rank): mean and max over its ranks", () => {
    const s = signals(worker, { dialect: 'dynamo' });
    expect(s.kvCacheUsageFraction).toMatchObject({
      state: 'ok',
      value: 0.5,
      metric: 'dynamo_component_gpu_cache_usage_percent',
    });
    expect(
      s.kvCacheUsageFraction.state === 'ok' && s.kvCacheUsageFraction.ranks.map((r) => r.labels.dp_rank),
    ).toEqual(['0', '1']);
    expect(s.kvCacheUsageMaxFraction).toMatchObject({ state: 'ok', value: 0.75 });
    // A value written as a percentage is out of range, never read as a fraction.
    const percent = worker.replace(/(dp_rank="1"[^\n]*) 0\.75$/m, '$1 75.0');
    expect(signals(percent, { dialect: 'dynamo' }).kvCacheUsageFraction.state).toBe('outOfRange');
  });

  it("a worker alone is no dialect under auto: its dynamo_component_* names sit beside its engine's", () => {
    expect(signals(worker).dialect).toBeUndefined();
  });

  it("a worker's own in-flight count (generate endpoint only) wins over the frontend's", () => {
    const s = signals(`${frontend}${worker}`, { dialect: 'dynamo' });
    expect(s.requestsRunning).toMatchObject({
      state: 'ok',
      value: 6,
      metric: 'dynamo_component_inflight_requests',
    });
    // A worker pod alone has no Dynamo queue: missing, never 0.
    expect(signals(worker, { dialect: 'dynamo' }).requestsWaiting.state).toBe('missing');
  });

  it('a Dynamo vLLM worker (vllm: beside dynamo_component_*) is vLLM under auto', () => {
    const s = signals(`${capture}${worker}`);
    expect(s.dialect).toBe('vllm');
    expect(s.kvCacheUsageFraction).toMatchObject({ state: 'ok', metric: 'vllm:kv_cache_usage_perc' });
  });

  it("the frontend's TTFT and ITL histograms and token counts feed the work signals", () => {
    const w = extractEngineWork(parseExposition(frontend), AUTO);
    expect(okValue(w.promptTokensTotal)).toBe(6000);
    expect(okValue(w.promptRequestsTotal)).toBe(3);
    expect(okValue(w.generationTokensTotal)).toBe(650);
    expect(okValue(w.generationRequestsTotal)).toBe(3);
    expect(w.ttft?.cumulative.at(-1)).toBe(3);
    expect(w.ttft?.sum).toBeCloseTo(0.88, 12);
    expect(w.itl?.cumulative.at(-1)).toBe(3);
  });
});

describe('vLLM waiting by reason', () => {
  const byReason = (capacity: readonly number[], deferred: readonly number[]) =>
    [
      '# HELP vllm:num_requests_waiting_by_reason Number of waiting requests by reason.',
      '# TYPE vllm:num_requests_waiting_by_reason gauge',
      ...capacity.flatMap((c, rank) => [
        `vllm:num_requests_waiting_by_reason{engine="${rank}",model_name="m",reason="capacity"} ${formatValue(c)}`,
        `vllm:num_requests_waiting_by_reason{engine="${rank}",model_name="m",reason="deferred"} ${formatValue(deferred[rank] ?? 0)}`,
      ]),
    ].join('\n');

  it('reads the capacity waits only where the split is exported (a P/D decode pod)', () => {
    const text = `${withRanks(capture, 'vllm:num_requests_waiting', [7, 4])}\n${byReason([2, 1], [5, 3])}\n`;
    const w = signals(text).requestsWaiting;
    expect(w).toMatchObject({ state: 'ok', value: 3, metric: 'vllm:num_requests_waiting_by_reason' });
    expect(w.state === 'ok' && w.ranks.map((r) => r.labels.reason)).toEqual(['capacity', 'capacity']);
  });

  it('every wait is 11 (7 + 4) beside the 3 capacity waits: what a drain must let finish', () => {
    const text = `${withRanks(capture, 'vllm:num_requests_waiting', [7, 4])}\n${byReason([2, 1], [5, 3])}\n`;
    expect(signals(text).requestsWaitingAll).toMatchObject({
      state: 'ok',
      value: 11,
      metric: 'vllm:num_requests_waiting',
    });
  });

  it('falls back to vllm:num_requests_waiting without the split', () => {
    expect(signals(capture).requestsWaiting).toMatchObject({
      state: 'ok',
      value: 0,
      metric: 'vllm:num_requests_waiting',
    });
  });

  it('a bad capacity value is outOfRange, not a fallback to the total', () => {
    const text = `${capture}\n${byReason([-1], [2])}\n`;
    expect(signals(text).requestsWaiting.state).toBe('outOfRange');
  });
});

describe('data-parallel ranks (engine label)', () => {
  it('KV usage is the mean over ranks (max beside it); waiting, running and preemptions are summed', () => {
    let text = withRanks(capture, 'vllm:kv_cache_usage_perc', [0.2, 0.4, 0.9, 0.5]);
    text = withRanks(text, 'vllm:num_requests_waiting', [3, 0, 5, 1]);
    text = withRanks(text, 'vllm:num_requests_running', [8, 8, 7, 8]);
    text = withRanks(text, 'vllm:num_preemptions_total', [0, 2, 11, 0]);
    const parsed = parseExposition(text);
    expect(parsed.errors).toEqual([]);
    const s = extractEngineSignals(parsed, AUTO);
    expect(okValue(s.kvCacheUsageFraction)).toBeCloseTo(0.5, 12);
    expect(okValue(s.kvCacheUsageMaxFraction)).toBe(0.9);
    expect(okValue(s.requestsWaiting)).toBe(9);
    expect(okValue(s.requestsRunning)).toBe(31);
    expect(okValue(s.preemptionsTotal)).toBe(13);
    const kv = s.kvCacheUsageFraction;
    expect(kv.state === 'ok' && kv.ranks.map((r) => r.labels.engine)).toEqual(['0', '1', '2', '3']);
  });

  it('one bad rank rejects the whole signal instead of dropping the rank', () => {
    const text = withRanks(capture, 'vllm:num_requests_waiting', [3, -1, 5, 1]);
    const s = signals(text);
    expect(s.requestsWaiting).toEqual({
      state: 'outOfRange',
      reason:
        'vllm:num_requests_waiting{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"}: count -1 is negative',
    });
    expect(s.rejections).toEqual([
      {
        signal: 'requestsWaiting',
        metric: 'vllm:num_requests_waiting',
        labels: { engine: '1', model_name: 'meta-llama/Llama-3.1-8B-Instruct' },
        value: -1,
        reason: 'count -1 is negative',
      },
    ]);
    // Other signals are unaffected.
    expect(okValue(s.requestsRunning)).toBe(0);
  });

  it('checks the rank count when the expected DP size is given', () => {
    const text = withRanks(capture, 'vllm:num_requests_waiting', [1, 2]);
    expect(okValue(signals(text, { dialect: 'vllm', expectedRanks: 2 }).requestsWaiting)).toBe(3);
    expect(signals(text, { dialect: 'vllm', expectedRanks: 4 }).requestsWaiting).toEqual({
      state: 'missing',
      reason: 'vllm:num_requests_waiting has 2 series, expected 4 DP ranks',
    });
    expect(signals(text, { dialect: 'vllm', expectedRanks: 1 }).requestsWaiting.state).toBe('outOfRange');
  });

  it('SGLang ranks (dp_rank label) follow the same rules', () => {
    const lines = sglang.split('\n');
    const i = lines.findIndex((l) => l.startsWith('sglang:token_usage{'));
    lines.splice(
      i,
      1,
      'sglang:token_usage{dp_rank="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.28',
      'sglang:token_usage{dp_rank="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.72',
    );
    const s = signals(lines.join('\n'));
    expect(okValue(s.kvCacheUsageFraction)).toBeCloseTo(0.5, 12);
    expect(okValue(s.kvCacheUsageMaxFraction)).toBe(0.72);
  });

  it('SGLang with priority scheduling and DP attention: each queue counted once per DP rank', () => {
    const s = signals(readMetricsFixture(FIXTURES.sglangDpPriority));
    expect(s.dialect).toBe('sglang');
    // Totals under priority="" only: 5 + 2 waiting, 7 + 6 running (summing every series gives 14 and 26).
    expect(okValue(s.requestsWaiting)).toBe(7);
    expect(okValue(s.requestsRunning)).toBe(13);
    expect(okValue(s.kvCacheUsageFraction)).toBeCloseTo(0.3, 12);
    const waiting = s.requestsWaiting;
    expect(waiting.state === 'ok' && waiting.ranks.map((r) => [r.labels.dp_rank, r.labels.priority])).toEqual(
      [
        ['0', ''],
        ['1', ''],
      ],
    );
    expect(
      okValue(
        signals(readMetricsFixture(FIXTURES.sglangDpPriority), { dialect: 'sglang', expectedRanks: 2 })
          .requestsWaiting,
      ),
    ).toBe(7);
  });

  it('SGLang: TP and PP peers are copies; the lowest pp_rank, then tp_rank, of each DP rank is read', () => {
    const text = readMetricsFixture(FIXTURES.sglangDpPriority);
    const copy = (line: string, tp: string, pp: string, value: string) =>
      line
        .replace(/tp_rank="\d+"/, `tp_rank="${tp}"`)
        .replace(/pp_rank="\d+"/, `pp_rank="${pp}"`)
        .replace(/ \S+$/, ` ${value}`);
    const lines = text.split('\n');
    const dp0Total = lines.find(
      (l) => l.startsWith('sglang:num_queue_reqs{dp_rank="0"') && l.includes('priority=""'),
    );
    if (dp0Total === undefined) throw new Error('fixture lacks the dp_rank 0 queue total');
    // --enable-metrics-for-all-schedulers (tp_rank 1) and a second pipeline stage (pp_rank 1), listed first.
    const i = lines.indexOf(dp0Total);
    lines.splice(
      i,
      0,
      copy(dp0Total, '1', '0', '40.0'),
      copy(dp0Total, '0', '1', '50.0'),
      copy(dp0Total, '1', '1', '60.0'),
    );
    const s = signals(lines.join('\n'));
    expect(okValue(s.requestsWaiting)).toBe(7);
    const w = s.requestsWaiting;
    expect(w.state === 'ok' && w.ranks.map((r) => `${r.labels.tp_rank}/${r.labels.pp_rank}`)).toEqual([
      '0/0',
      '2/0',
    ]);
  });

  it('SGLang --tp 2 --pp 2, every scheduler reporting: the pp 0 / tp 0 copy is read, 3 waiting (not 9 or 24)', () => {
    const s = signals(readMetricsFixture(FIXTURES.sglangPpCopies));
    expect(s.dialect).toBe('sglang');
    expect(okValue(s.requestsWaiting)).toBe(3);
    expect(okValue(s.requestsRunning)).toBe(12);
    expect(okValue(s.kvCacheUsageFraction)).toBe(0.31);
  });

  it('SGLang: the older label set (no priority, tp_rank) reads as before', () => {
    expect(okValue(signals(sglang).requestsWaiting)).toBe(2826);
  });

  it('property: for in-range ranks, mean lies within [min, max] and the sum is exact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(10_000), { minLength: 1, maxLength: 8 }),
        (kv, waiting) => {
          let text = withRanks(capture, 'vllm:kv_cache_usage_perc', kv);
          text = withRanks(text, 'vllm:num_requests_waiting', waiting);
          const s = signals(text);
          const mean = okValue(s.kvCacheUsageFraction);
          expect(mean).toBeGreaterThanOrEqual(Math.min(...kv) - 1e-12);
          expect(mean).toBeLessThanOrEqual(Math.max(...kv) + 1e-12);
          expect(okValue(s.kvCacheUsageMaxFraction)).toBe(Math.max(...kv));
          expect(okValue(s.requestsWaiting)).toBe(waiting.reduce((a, b) => a + b, 0));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('property: a KV value outside [0, 1] or non-finite on any rank never yields an ok signal', () => {
    const bad = fc.oneof(
      fc.double({ min: 1, max: 1e9, minExcluded: true, noNaN: true }),
      // not maxExcluded at 0: fast-check would then yield -0, which is a valid 0.
      fc.double({ min: -1e9, max: -Number.MIN_VALUE, noNaN: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    );
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
        bad,
        fc.nat(),
        (good, badValue, at) => {
          const values = [...good];
          values.splice(at % (good.length + 1), 0, badValue);
          const s = signals(withRanks(capture, 'vllm:kv_cache_usage_perc', values));
          expect(s.kvCacheUsageFraction.state).toBe('outOfRange');
          expect(s.kvCacheUsageMaxFraction.state).toBe('outOfRange');
          expect(s.rejections).toHaveLength(1);
          expect(s.rejections[0]?.reason.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('quality gate', () => {
  const cases: [string, string, number, RegExp][] = [
    ['KV above 1', 'vllm:kv_cache_usage_perc', 1.5, /fraction 1.5 is outside \[0, 1\]/],
    [
      'KV as a 0–100 percentage (AIBrix mock style)',
      'vllm:kv_cache_usage_perc',
      45,
      /fraction 45 is outside/,
    ],
    ['KV below 0', 'vllm:kv_cache_usage_perc', -0.1, /fraction -0.1 is outside/],
    ['NaN queue', 'vllm:num_requests_waiting', Number.NaN, /value is NaN/],
    ['+Inf running', 'vllm:num_requests_running', Number.POSITIVE_INFINITY, /value is \+Inf/],
    ['-Inf preemptions', 'vllm:num_preemptions_total', Number.NEGATIVE_INFINITY, /value is -Inf/],
    ['fractional queue', 'vllm:num_requests_waiting', 2.5, /count 2.5 is not an integer/],
  ];
  for (const [title, metric, value, reason] of cases) {
    it(`rejects ${title} with a reason and never reports it as a number`, () => {
      const s = signals(withRanks(capture, metric, [value]));
      const all = [s.kvCacheUsageFraction, s.requestsWaiting, s.requestsRunning, s.preemptionsTotal];
      const rejected = all.filter((x) => x.state === 'outOfRange');
      expect(rejected).toHaveLength(1);
      expect(rejected[0]?.state === 'outOfRange' && rejected[0].reason).toMatch(reason);
      expect(s.rejections).toHaveLength(1);
      expect(Object.is(s.rejections[0]?.value, value)).toBe(true);
    });
  }

  it('accepts the boundaries: KV exactly 0 and 1, counts of 0', () => {
    const s = signals(withRanks(capture, 'vllm:kv_cache_usage_perc', [0, 1]));
    expect(okValue(s.kvCacheUsageFraction)).toBe(0.5);
    expect(okValue(s.kvCacheUsageMaxFraction)).toBe(1);
  });

  it('an absent metric is missing, never 0', () => {
    const s = signals(withoutMetric(capture, 'vllm:num_requests_waiting'));
    expect(s.requestsWaiting.state).toBe('missing');
    expect(okValue(s.requestsRunning)).toBe(0);
  });

  it('a family with HELP/TYPE but no sample is missing', () => {
    const s = signals('# HELP vllm:num_requests_running x\n# TYPE vllm:num_requests_running gauge\n', {
      dialect: 'vllm',
    });
    expect(s.requestsRunning).toEqual({
      state: 'missing',
      reason: 'no sample of vllm:num_requests_running in the scrape',
    });
  });

  it('a malformed line for the metric is missing, and the reason points at the rejected line', () => {
    const text = capture.replace(
      'vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0',
      'vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} zero',
    );
    const s = signals(text);
    expect(s.kvCacheUsageFraction).toEqual({
      state: 'missing',
      reason:
        'no valid sample of vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc: line 9 was rejected (invalid sample value "zero")',
    });
  });

  it('an empty page yields every signal missing and no dialect', () => {
    const s = signals('');
    expect(s.dialect).toBeUndefined();
    for (const v of [s.kvCacheUsageFraction, s.requestsWaiting, s.requestsRunning, s.preemptionsTotal]) {
      expect(v).toEqual({
        state: 'missing',
        reason: 'no vllm:, sglang:, trtllm_, dynamo_frontend_ engine signal in the scrape',
      });
    }
  });
});

describe('dialects and fallbacks', () => {
  const renameKv = (text: string) => text.replaceAll('vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc');

  it('falls back to the pre-0.9 name vllm:gpu_cache_usage_perc', () => {
    const text = withRanks(renameKv(capture), 'vllm:gpu_cache_usage_perc', [0.3, 0.5]);
    const s = signals(text);
    expect(s.kvCacheUsageFraction).toMatchObject({ state: 'ok', metric: 'vllm:gpu_cache_usage_perc' });
    expect(okValue(s.kvCacheUsageFraction)).toBeCloseTo(0.4, 12);
  });

  it('prefers the new name when both are present (0.9–0.10 print both)', () => {
    const legacy = withRanks(renameKv(capture), 'vllm:gpu_cache_usage_perc', [0.9])
      .split('\n')
      .filter((l) => l.startsWith('vllm:gpu_cache_usage_perc{'));
    const text = `${withRanks(capture, 'vllm:kv_cache_usage_perc', [0.25])}\n${legacy.join('\n')}\n`;
    const s = signals(text);
    expect(s.kvCacheUsageFraction).toMatchObject({
      state: 'ok',
      value: 0.25,
      metric: 'vllm:kv_cache_usage_perc',
    });
  });

  it('a configured dialect reads only its own names', () => {
    expect(signals(capture, { dialect: 'vllm' }).dialect).toBe('vllm');
    const wrong = signals(capture, { dialect: 'sglang' });
    expect(wrong.dialect).toBe('sglang');
    expect(wrong.kvCacheUsageFraction).toEqual({
      state: 'missing',
      reason: 'no sample of sglang:token_usage in the scrape',
    });
  });

  it('auto-detection refuses to guess when both engines are present', () => {
    const parsed = parseExposition(`${capture}\n${sglang}`);
    const d = detectDialect(parsed);
    expect(d.dialect).toBeUndefined();
    expect(d.reason).toMatch(/vllm: and sglang: signals are present/);
    expect(extractEngineSignals(parsed, AUTO).requestsWaiting.state).toBe('missing');
  });

  it('filters by model_name and says which names exist when none match', () => {
    const other = withRanks(capture, 'vllm:num_requests_waiting', [4])
      .split('\n')
      .filter((l) => l.startsWith('vllm:num_requests_waiting{'))
      .map((l) => l.replace('meta-llama/Llama-3.1-8B-Instruct', 'other-model').replace(/ \S+$/, ' 6.0'));
    const text = `${withRanks(capture, 'vllm:num_requests_waiting', [4])}\n${other.join('\n')}\n`;
    expect(okValue(signals(text).requestsWaiting)).toBe(10);
    expect(okValue(signals(text, { dialect: 'vllm', modelName: 'other-model' }).requestsWaiting)).toBe(6);
    expect(signals(text, { dialect: 'vllm', modelName: 'nope' }).requestsWaiting).toEqual({
      state: 'missing',
      reason:
        'vllm:num_requests_waiting has no series with model_name="nope" (found: meta-llama/Llama-3.1-8B-Instruct, other-model)',
    });
  });
});
