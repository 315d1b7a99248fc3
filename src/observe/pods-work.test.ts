/**
 * Work signals and the SLO guard's latency through the direct scrape (metricsSource.pods): rates from
 * successive scrapes of real vLLM exposition text, a counter reset, a missing histogram, and a neighbour
 * pool whose endpoint refuses connections.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, readMetricsFixture } from '../../test/observe/metric-fixtures.ts';
import type { MetricSpec } from '../api/podautoscaler.ts';
import { type PodsPoolRequest, PodsSignalSource } from './pods-control.ts';

const MODEL = 'model_name="meta-llama/Llama-3.1-8B-Instruct"';

/**
 * The real vLLM capture with this pod's counters written in, plus the request-size and TTFT histograms in
 * the form vLLM's prometheus_client registers them (vllm/v1/metrics/loggers.py).
 */
function page(o: {
  tokens: number;
  requests: number;
  waiting: number;
  ttft?: Record<string, number>;
}): string {
  const base = readMetricsFixture(FIXTURES.vllmEngineLabel)
    .replace(/^(vllm:prompt_tokens_total\{[^}]*\}) .*$/m, `$1 ${o.tokens}.0`)
    .replace(/^(vllm:num_requests_waiting\{[^}]*\}) .*$/m, `$1 ${o.waiting}.0`);
  const lines = [
    '# HELP vllm:request_prompt_tokens Number of prefill tokens processed.',
    '# TYPE vllm:request_prompt_tokens histogram',
    `vllm:request_prompt_tokens_bucket{engine="0",le="+Inf",${MODEL}} ${o.requests}.0`,
    `vllm:request_prompt_tokens_count{engine="0",${MODEL}} ${o.requests}.0`,
    `vllm:request_prompt_tokens_sum{engine="0",${MODEL}} ${o.tokens}.0`,
  ];
  if (o.ttft) {
    lines.push(
      '# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.',
      '# TYPE vllm:time_to_first_token_seconds histogram',
      ...Object.entries(o.ttft).map(
        ([le, c]) => `vllm:time_to_first_token_seconds_bucket{engine="0",le="${le}",${MODEL}} ${c}.0`,
      ),
      `vllm:time_to_first_token_seconds_count{engine="0",${MODEL}} ${o.ttft['+Inf']}.0`,
      `vllm:time_to_first_token_seconds_sum{engine="0",${MODEL}} 1.0`,
    );
  }
  return `${base.trimEnd()}\n${lines.join('\n')}\n`;
}

let text = '';
let server: Server;
let port = 0;
beforeAll(async () => {
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise((r) => server.close(r)));

/** 127.0.0.1 is the engine; any other address refuses (a bad endpoint). */
const route: typeof fetch = (input, init) => {
  const host = new URL(String(input)).hostname;
  return fetch(`http://127.0.0.1:${host === '127.0.0.1' ? port : 1}/metrics`, init);
};

const prompt = { type: 'promptTokens', target: 1000 } as MetricSpec;

function request(poolKey: string, podIP: string, slo = { ttftSeconds: 2 }): PodsPoolRequest {
  return {
    poolKey,
    namespace: 'ns',
    pool: {
      engine: 'vllm',
      metrics: [prompt],
      missingData: { staleAfterSeconds: 60, minQuorumPercentage: 50 },
      slo,
      stableWindowSeconds: 60,
      panicWindowPercentage: 10,
    },
    heads: [{ name: 'prefill-0', groupKey: 'g0', groupReady: true, surge: false, podIP }],
    endpoint: { port: 0, timeoutSeconds: 1 },
  };
}

describe('work signals through the direct scrape', () => {
  it('10000 → 12000 tokens in 2 s = 1000 tok/s, 3 waiting × 400 = backlog 1200 (over 1 s of work: a capacity sample); a reset to 300 gives 2300/4 s = 575', async () => {
    let nowMs = 1_000_000;
    const source = new PodsSignalSource({ fetch: route, clock: () => nowMs });
    const pool = request('ns/pa/prefill', '127.0.0.1');

    text = page({
      tokens: 10_000,
      requests: 20,
      waiting: 3,
      ttft: { '0.1': 0, '0.5': 10, '1.0': 20, '+Inf': 20 },
    });
    const first = (await source.sample([pool])).get('ns/pa/prefill')?.[0];
    // One scrape is no rate, and not 0: noData holds the pool.
    expect(first?.state).toBe('noData');

    nowMs += 2000;
    text = page({
      tokens: 12_000,
      requests: 25,
      waiting: 3,
      ttft: { '0.1': 0, '0.5': 14, '1.0': 30, '+Inf': 30 },
    });
    const second = (await source.sample([pool])).get('ns/pa/prefill')?.[0];
    expect(second).toMatchObject({ name: 'promptTokens', state: 'ok', total: 1000, backlog: 1200 });
    // Over a second of work queued at both scrapes (3 × 400 ≥ 1000 tok/s × 1 s): a capacity sample.
    expect(second?.capacitySamples).toEqual([1000]);
    // 10 first tokens in the window, 4 ≤ 0.5 s: rank 9 is 5/6 into (0.5, 1] → 0.9167 s.
    expect(second?.latency?.ttftSeconds).toBeCloseTo(0.5 + 0.5 * (5 / 6), 9);

    nowMs += 2000;
    // The engine restarted at the same address: every counter fell.
    text = page({ tokens: 300, requests: 1, waiting: 0, ttft: { '0.1': 0, '0.5': 1, '1.0': 1, '+Inf': 1 } });
    const third = (await source.sample([pool])).get('ns/pa/prefill')?.[0];
    expect(third).toMatchObject({ state: 'ok', total: 575, backlog: 0 });
    expect(third?.capacitySamples).toEqual([]);
    // The reset's buckets count from zero: 11 in the window, rank 9.9 is 4.9/6 into (0.5, 1].
    expect(third?.latency?.ttftSeconds).toBeCloseTo(0.5 + 0.5 * (4.9 / 6), 9);
  });

  it('no TTFT histogram exported: the latency is absent (guard off), never 0', async () => {
    let nowMs = 2_000_000;
    const source = new PodsSignalSource({ fetch: route, clock: () => nowMs });
    const pool = request('ns/pa/prefill', '127.0.0.1');
    text = page({ tokens: 100, requests: 1, waiting: 0 });
    await source.sample([pool]);
    nowMs += 1000;
    text = page({ tokens: 600, requests: 2, waiting: 0 });
    const s = (await source.sample([pool])).get('ns/pa/prefill')?.[0];
    expect(s).toMatchObject({ state: 'ok', total: 500 });
    expect(s?.latency).toBeUndefined();
  });

  it('a pool whose head refuses connections is noData beside a pool served at 250 tok/s', async () => {
    let nowMs = 3_000_000;
    const source = new PodsSignalSource({ fetch: route, clock: () => nowMs });
    const good = request('ns/pa/good', '127.0.0.1');
    const bad = request('ns/pa/bad', '127.0.0.2');
    text = page({ tokens: 1000, requests: 4, waiting: 1 });
    await source.sample([good, bad]);
    nowMs += 4000;
    text = page({ tokens: 2000, requests: 8, waiting: 1 });
    const out = await source.sample([good, bad]);
    // 1000 tokens / 4 s; 1 waiting × (1000 / 4 requests) = 250 tokens waiting.
    expect(out.get('ns/pa/good')?.[0]).toMatchObject({ state: 'ok', total: 250, backlog: 250 });
    const b = out.get('ns/pa/bad')?.[0];
    expect(b?.state).toBe('noData');
    expect(b?.total).toBeUndefined();
    expect(b?.detail).toContain('unreachable');
  });

  it('a negative token counter is outOfRange with its reason, not a flow', async () => {
    const source = new PodsSignalSource({ fetch: route, clock: () => 4_000_000 });
    text = page({ tokens: -5, requests: 1, waiting: 0 });
    const s = (await source.sample([request('ns/pa/prefill', '127.0.0.1')])).get('ns/pa/prefill')?.[0];
    expect(s?.state).toBe('outOfRange');
    expect(s?.detail).toContain('negative');
  });
});
