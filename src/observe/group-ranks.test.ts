import { describe, expect, it } from 'vitest';
import { extractEngineSignals, extractEngineWork, missingSignals } from './engine-metrics.ts';
import { parseExposition } from './exposition.ts';
import { mergeGroup, mergeHistograms, type PodReading } from './group-ranks.ts';

/** A vLLM page of one node serving DP ranks `first`, `first + 1`, … with these KV uses and queues. */
function node(first: number, ranks: readonly { kv: number; waiting: number; prompt: number }[]): string {
  const series = (type: string, name: string, value: (r: (typeof ranks)[number]) => number) => [
    `# TYPE ${type} ${type.endsWith('tokens') ? 'counter' : 'gauge'}`,
    ...ranks.map((r, i) => `${name}{engine="${first + i}",model_name="m"} ${value(r)}`),
  ];
  return `${[
    ...series('vllm:kv_cache_usage_perc', 'vllm:kv_cache_usage_perc', (r) => r.kv),
    ...series('vllm:num_requests_waiting', 'vllm:num_requests_waiting', (r) => r.waiting),
    ...series('vllm:num_requests_running', 'vllm:num_requests_running', () => 4),
    ...series('vllm:prompt_tokens', 'vllm:prompt_tokens_total', (r) => r.prompt),
  ].join('\n')}\n`;
}

function reading(pod: string, text: string): PodReading {
  const parsed = parseExposition(text);
  return {
    pod,
    signals: extractEngineSignals(parsed, { dialect: 'vllm' }),
    work: extractEngineWork(parsed, { dialect: 'vllm' }),
  };
}

const head = reading(
  'g-0',
  node(0, [
    { kv: 0.8, waiting: 3, prompt: 1000 },
    { kv: 0.6, waiting: 1, prompt: 2000 },
  ]),
);
const worker = reading(
  'g-0-1',
  node(2, [
    { kv: 0.2, waiting: 5, prompt: 500 },
    { kv: 0.4, waiting: 7, prompt: 500 },
  ]),
);

describe('a group read from every pod (ranksOn: all)', () => {
  it('2 nodes × 2 DP ranks: queue 3 + 1 + 5 + 7 = 16, not the head’s 4; KV the mean over 4 ranks, 0.5', () => {
    const g = mergeGroup([head, worker]);
    expect(g.signals.requestsWaiting).toMatchObject({ state: 'ok', value: 16 });
    expect(g.signals.kvCacheUsageFraction).toMatchObject({ state: 'ok' });
    expect(g.signals.kvCacheUsageFraction.state === 'ok' && g.signals.kvCacheUsageFraction.value).toBeCloseTo(
      0.5,
      12,
    );
    expect(g.signals.kvCacheUsageMaxFraction).toMatchObject({ state: 'ok', value: 0.8 });
    expect(g.signals.requestsRunning).toMatchObject({ state: 'ok', value: 16 });
    expect(g.work?.promptTokensTotal).toMatchObject({ state: 'ok', value: 4000 });
    const ranks = g.signals.requestsWaiting.state === 'ok' ? g.signals.requestsWaiting.ranks : [];
    expect(ranks.map((r) => `${r.labels.pod}/${r.labels.engine}`)).toEqual([
      'g-0/0',
      'g-0/1',
      'g-0-1/2',
      'g-0-1/3',
    ]);
  });

  it('expectedRanks 4 passes; 6 expected makes the group missing (4 of 6), 3 expected out of range', () => {
    expect(mergeGroup([head, worker], 4).signals.requestsWaiting).toMatchObject({ state: 'ok', value: 16 });
    expect(mergeGroup([head, worker], 6).signals.requestsWaiting).toEqual({
      state: 'missing',
      reason: '4 of 6 expected DP ranks report vllm:num_requests_waiting',
    });
    expect(mergeGroup([head, worker], 3).signals.requestsWaiting.state).toBe('outOfRange');
  });

  it('the head alone with expectedRanks 4 is missing: 2 of 4 ranks (the hybrid-LB head-only read)', () => {
    expect(mergeGroup([head], 4).signals.requestsWaiting).toMatchObject({ state: 'missing' });
  });

  it('a silent worker makes the group missing with its pod named, never the head’s partial 4', () => {
    const silent: PodReading = {
      pod: 'g-0-1',
      signals: missingSignals('connection refused'),
      work: undefined,
      error: 'unreachable',
    };
    const g = mergeGroup([head, silent]);
    expect(g.signals.requestsWaiting).toEqual({ state: 'missing', reason: 'g-0-1: connection refused' });
    expect(g.work).toBeUndefined();
    expect(g.error).toBe('g-0-1: unreachable');
  });

  it('histograms add bucket by bucket; different bounds give none (the guard is off, not zero)', () => {
    const a = { upperBounds: [0.1, 1], cumulative: [1, 3, 4], sum: 2 };
    const b = { upperBounds: [0.1, 1], cumulative: [2, 2, 5], sum: 3 };
    expect(mergeHistograms([a, b])).toEqual({ upperBounds: [0.1, 1], cumulative: [3, 5, 9], sum: 5 });
    expect(mergeHistograms([a, { ...b, upperBounds: [0.2, 1] }])).toBeUndefined();
    expect(mergeHistograms([a, undefined])).toBeUndefined();
  });
});
