/**
 * Work signals and the SLO guard's latency through the batched Prometheus path: a fake Prometheus answers
 * each kind's query with the series a real one would give (per pod, tagged with `kvpa_metric`), and the
 * pools' samples come out with their flow, backlog, capacity samples and p90.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricSpec } from '../api/podautoscaler.ts';
import { type ControlPoolRequest, PrometheusPoolSignals } from './prometheus-control.ts';
import { buildQuery } from './prometheus-join.ts';
import { PrometheusSignalSource } from './prometheus-source.ts';

const NOW = 1_700_000_000;
type Series = { metric: Record<string, string>; value: [number, string] };
const v = (namespace: string, pod: string, metric: string, value: string, extra = {}): Series => ({
  metric: { namespace, pod, kvpa_field: 'value', kvpa_metric: metric, ...extra },
  value: [NOW, value],
});
const ts = (namespace: string, pod: string): Series => ({
  metric: { namespace, pod, kvpa_field: 'ts' },
  value: [NOW, String(NOW - 2)],
});
const buckets = (ns: string, pod: string, name: string, counts: Record<string, number>) =>
  Object.entries(counts).map(([le, c]) => v(ns, pod, name, String(c), { le }));

/** What each kind's query returns, by a name only that kind's query holds. */
function answer(query: string): Series[] {
  const pods: [string, string][] = [
    ['ns-a', 'a-0'],
    ['ns-a', 'a-1'],
    ['ns-b', 'b-0'],
    ['ns-c', 'c-0'],
  ];
  const stamps = pods.map(([ns, pod]) => ts(ns, pod));
  if (query.includes('request_prompt_tokens_sum'))
    // a-1 finished no request in the window: 0/0 is NaN, which is no mean, not a rejection.
    return [
      v('ns-a', 'a-0', 'vllm:request_prompt_tokens_sum', '400'),
      v('ns-a', 'a-1', 'vllm:request_prompt_tokens_sum', 'NaN'),
      v('ns-b', 'b-0', 'vllm:request_prompt_tokens_sum', '500'),
      v('ns-c', 'c-0', 'vllm:request_prompt_tokens_sum', '500'),
      ...stamps,
    ];
  if (query.includes('time_to_first_token'))
    return [
      ...buckets('ns-a', 'a-0', 'vllm:time_to_first_token_seconds', {
        '0.1': 1,
        '0.25': 5,
        '0.5': 9,
        '1': 10,
        '+Inf': 10,
      }),
      ...buckets('ns-a', 'a-1', 'vllm:time_to_first_token_seconds', {
        '0.1': 0,
        '0.25': 2,
        '0.5': 6,
        '1': 10,
        '+Inf': 10,
      }),
      ...stamps,
    ];
  if (query.includes('inter_token_latency')) return stamps; // no decode histogram exported anywhere
  if (query.includes('num_requests_waiting'))
    return [
      v('ns-a', 'a-0', 'vllm:num_requests_waiting', '3', { __name__: 'vllm:num_requests_waiting' }),
      v('ns-a', 'a-1', 'vllm:num_requests_waiting', '0', { __name__: 'vllm:num_requests_waiting' }),
      v('ns-b', 'b-0', 'vllm:num_requests_waiting', '2', { __name__: 'vllm:num_requests_waiting' }),
      v('ns-c', 'c-0', 'vllm:num_requests_waiting', '1', { __name__: 'vllm:num_requests_waiting' }),
      ...stamps,
    ];
  if (query.includes('prompt_tokens_total'))
    return [
      v('ns-a', 'a-0', 'vllm:prompt_tokens_total', '1200'),
      v('ns-a', 'a-1', 'vllm:prompt_tokens_total', '800'),
      // b-0's exporter is broken: a negative rate is no flow, and must not become 0.
      v('ns-b', 'b-0', 'vllm:prompt_tokens_total', '-5'),
      v('ns-c', 'c-0', 'vllm:prompt_tokens_total', '900'),
      ...stamps,
    ];
  return stamps;
}

let server: Server;
let url: string;
const queries: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const params = new URLSearchParams(body || (req.url ?? '').split('?')[1] || '');
      const query = params.get('query') ?? '';
      queries.push(query);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: answer(query) } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

const prompt: MetricSpec = { type: 'promptTokens', target: 1000 } as MetricSpec;

function request(
  ns: string,
  pods: string[],
  slo: { ttftSeconds?: number; tpotSeconds?: number } = {},
): ControlPoolRequest {
  return {
    poolKey: `${ns}/pa/prefill`,
    namespace: ns,
    pool: {
      engine: 'vllm',
      metrics: [prompt],
      missingData: { staleAfterSeconds: 60, minQuorumPercentage: 50 },
      slo,
    },
    heads: pods.map((name) => ({ name, groupKey: name, groupReady: true, surge: false })),
  };
}

describe('work signals through the batched Prometheus source', () => {
  it('1200 + 800 tok/s served, 3 waiting × 400 tokens = backlog 1200, one capacity sample 1200, p90 TTFT 0.8 s', async () => {
    const signals = new PrometheusPoolSignals(new PrometheusSignalSource({ address: url }));
    queries.length = 0;
    const out = await signals.sample(
      [
        request('ns-a', ['a-0', 'a-1'], { ttftSeconds: 2 }),
        request('ns-b', ['b-0']),
        request('ns-c', ['c-0'], { tpotSeconds: 0.05 }),
      ],
      NOW,
    );
    // One query per kind for all three pools: flow, queue, mean per request, TTFT, ITL.
    expect(queries).toHaveLength(5);
    const a = out.get('ns-a/pa/prefill')?.[0];
    expect(a).toMatchObject({ name: 'promptTokens', state: 'ok', total: 2000, backlog: 1200 });
    expect(a?.capacitySamples).toEqual([1200]);
    // Buckets summed over a-0 and a-1: 18 of 20 falls in (0.5, 1] at 3/5 of its 5 → 0.5 + 0.5 × 0.6.
    expect(a?.latency?.ttftSeconds).toBeCloseTo(0.8, 9);
    expect(a?.latency?.tpotSeconds).toBeUndefined();
    // The neighbour's broken exporter is its own outOfRange, with the value named.
    const b = out.get('ns-b/pa/prefill')?.[0];
    expect(b?.state).toBe('outOfRange');
    expect(b?.total).toBeUndefined();
    expect(b?.detail).toContain('-5 < 0');
    // No ITL histogram: the guard's field is absent (guard off), never 0.
    const c = out.get('ns-c/pa/prefill')?.[0];
    expect(c).toMatchObject({ state: 'ok', total: 900, backlog: 500 });
    expect(c?.latency).toBeUndefined();
  });

  it('800 tok/s, 0 waiting and no finished request (NaN mean): backlog 0 is known, no capacity sample', async () => {
    const signals = new PrometheusPoolSignals(new PrometheusSignalSource({ address: url }));
    const idle = (await signals.sample([request('ns-a', ['a-1'])], NOW)).get('ns-a/pa/prefill')?.[0];
    expect(idle).toMatchObject({ state: 'ok', total: 800, backlog: 0 });
    expect(idle?.capacitySamples).toEqual([]);
  });

  it('the flow query tags each dialect name and keeps the rate window', () => {
    const q = buildQuery('promptTokens', { namespaces: ['a'], rateWindowSeconds: 30 });
    expect(q).toContain('rate(vllm:prompt_tokens_total{namespace=~"a"}[30s])');
    expect(q).toContain('"kvpa_metric", "sglang:prompt_tokens_total"');
    const r = buildQuery('promptTokensPerRequest', { namespaces: ['a'], rateWindowSeconds: 30 });
    expect(r).toContain(
      'sum by (namespace, pod) (rate(vllm:request_prompt_tokens_sum{namespace=~"a"}[30s])) / sum by (namespace, pod) (rate(vllm:request_prompt_tokens_count{namespace=~"a"}[30s]))',
    );
    expect(r).toContain('rate(sglang:num_requests_total{namespace=~"a"}[30s])');
    const h = buildQuery('itlHistogram', { namespaces: ['a'], rateWindowSeconds: 30 });
    expect(h).toContain('sum by (namespace, pod, le) (rate(vllm:inter_token_latency_seconds_bucket');
    expect(h).toContain('vllm:time_per_output_token_seconds_bucket');
  });
});
