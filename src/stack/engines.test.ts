import { afterEach, describe, expect, it } from 'vitest';
import { extractEngineSignals } from '../observe/engine-metrics.ts';
import { parseExposition } from '../observe/exposition.ts';
import { loadCalibration } from '../sim/calibration.ts';
import { LiveEngines, type LiveEnginesOptions, renderVllmMetrics, virtualSecondsAt } from './engines.ts';

const h200 = loadCalibration('deepseek-r1-h200');

class FakeClock {
  ms = 1_000_000;
  nowMs(): number {
    return this.ms;
  }
}

const running: LiveEngines[] = [];
function engines(clock: FakeClock, overrides: Partial<LiveEnginesOptions> = {}): LiveEngines {
  const e = new LiveEngines({
    calibration: h200,
    accelerationFactor: 10,
    advanceIntervalMs: 0,
    clock,
    serveHttp: false,
    ...overrides,
  });
  running.push(e);
  return e;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
});

const p0 = { namespace: 'ns', pod: 'p-0' };
const d0 = { namespace: 'ns', pod: 'd-0' };
const d1 = { namespace: 'ns', pod: 'd-1' };

describe('rendering', () => {
  it('our own parser and extractor read the text as vLLM v1 with one rank', () => {
    const text = renderVllmMetrics(
      { kvCacheUsagePerc: 0.25, numRequestsWaiting: 3, numRequestsRunning: 7 },
      'deepseek-ai/DeepSeek-R1',
    );
    const parsed = parseExposition(text);
    expect(parsed.errorCount).toBe(0);
    const signals = extractEngineSignals(parsed, { dialect: 'auto', modelName: 'deepseek-ai/DeepSeek-R1' });
    expect(signals.dialect).toBe('vllm');
    expect(signals.kvCacheUsageFraction).toMatchObject({
      state: 'ok',
      value: 0.25,
      metric: 'vllm:kv_cache_usage_perc',
    });
    expect(signals.requestsWaiting).toMatchObject({ state: 'ok', value: 3 });
    expect(signals.requestsRunning).toMatchObject({ state: 'ok', value: 7 });
    const kv = parsed.families.find((f) => f.name === 'vllm:kv_cache_usage_perc');
    expect(kv?.type).toBe('gauge');
    expect(kv?.samples[0]?.labels).toEqual({ engine: '0', model_name: 'deepseek-ai/DeepSeek-R1' });
  });

  it('an override replaces only the fields it sets', () => {
    const text = renderVllmMetrics(
      { kvCacheUsagePerc: 0.25, numRequestsWaiting: 3, numRequestsRunning: 7 },
      'm',
      {
        kvCacheUsage: 0.9,
      },
    );
    const signals = extractEngineSignals(parseExposition(text), { dialect: 'vllm' });
    expect(signals.kvCacheUsageFraction).toMatchObject({ value: 0.9 });
    expect(signals.requestsWaiting).toMatchObject({ value: 3 });
  });

  it('virtual time is wall time since the start times the acceleration factor', () => {
    expect(virtualSecondsAt(5000, 1000, 30)).toBe(120);
    expect(virtualSecondsAt(500, 1000, 30)).toBe(0);
  });
});

describe('LiveEngines on a fake clock', () => {
  it('groups follow syncGroups; the model advances with the wall clock times the acceleration', async () => {
    const clock = new FakeClock();
    const e = engines(clock);
    await e.syncGroups('prefill', [p0]);
    await e.syncGroups('decode', [d0, d1]);
    expect(e.fleet.externalGroupIds('decode').sort()).toEqual(['ns/d-0', 'ns/d-1']);
    for (let i = 0; i < 50; i++) e.arrive(2000, 3000);
    clock.ms += 3000; // 30 virtual seconds
    expect(e.advance()).toBeCloseTo(30, 9);
    const snap = e.snapshot();
    expect(snap.virtualSeconds).toBeCloseTo(30, 9);
    expect(snap.wallSeconds).toBeCloseTo(3, 9);
    expect(snap.requests.arrived).toBe(50);
    expect(snap.pools.decode.readyGroups).toBe(2);
    expect(snap.pools.decode.requestsRunning).toBe(50); // 3,000 output tokens take longer than 30 s
    expect(snap.pools.decode.kvCacheUsageMean).toBeGreaterThan(0);
    expect(snap.pools.prefill.readyGroups).toBe(1);

    await e.syncGroups('decode', [d0]); // d-1's pod went away: its engine died with its requests
    expect(e.fleet.externalGroupIds('decode')).toEqual(['ns/d-0']);
    expect(e.metricsText('ns', 'd-1')).toBeUndefined();
    expect(e.metricsText('ns', 'd-0')).toContain('vllm:num_requests_running{engine="0"');
    clock.ms += 120_000;
    const done = e.snapshot();
    // The 25 sequences on d-1 were aborted by its removal; the 25 on d-0 finished.
    expect(done.requests.abortedByScaleDown).toBe(25);
    expect(done.requests.completed).toBe(25);
    expect(done.requests.completed + done.requests.dropped).toBe(50);
    expect(done.sloAttainment).toBeGreaterThan(0);
    expect(done.ttftSeconds.p50).toBeGreaterThan(0);
    expect(e.timeline().length).toBeGreaterThan(10);
    expect(e.timeline()[1]?.virtualSeconds).toBe(10);
  });

  it('/metrics carries the counters and TTFT/ITL histograms: 20 requests of 1,000 + 50 tokens, parsed by our parser', async () => {
    const clock = new FakeClock();
    const e = engines(clock);
    await e.syncGroups('prefill', [p0]);
    await e.syncGroups('decode', [d0]);
    for (let i = 0; i < 20; i++) e.arrive(1000, 50);
    clock.ms += 6000; // 60 virtual seconds: all done
    e.advance();
    const parsed = parseExposition(e.metricsText('ns', 'd-0') ?? '');
    expect(parsed.errorCount).toBe(0);
    const value = (family: string, sample = family) =>
      parsed.families.find((f) => f.name === family)?.samples.find((s) => s.name === sample)?.value;
    expect(value('vllm:prompt_tokens_total')).toBe(20_000);
    expect(value('vllm:generation_tokens_total')).toBe(20 * 50);
    expect(value('vllm:request_success_total')).toBe(20);
    const ttft = parsed.families.find((f) => f.name === 'vllm:time_to_first_token_seconds');
    expect(ttft?.type).toBe('histogram');
    expect(ttft?.samples.filter((s) => s.name.endsWith('_bucket'))).toHaveLength(23); // 22 bounds + +Inf
    expect(value('vllm:time_to_first_token_seconds', 'vllm:time_to_first_token_seconds_count')).toBe(20);
    expect(value('vllm:inter_token_latency_seconds', 'vllm:inter_token_latency_seconds_count')).toBe(20 * 49);
    // The gauges still read as before next to the new families.
    const signals = extractEngineSignals(parsed, { dialect: 'auto', modelName: 'deepseek-ai/DeepSeek-R1' });
    expect(signals.dialect).toBe('vllm');
    expect(signals.kvCacheUsageFraction).toMatchObject({ state: 'ok' });
    expect(signals.requestsRunning).toMatchObject({ state: 'ok', value: 0 });
    const prefill = parseExposition(e.metricsText('ns', 'p-0') ?? '');
    expect(prefill.errorCount).toBe(0);
    const prompt = prefill.families.find((f) => f.name === 'vllm:prompt_tokens_total');
    expect(prompt?.type).toBe('counter');
    expect(prompt?.samples[0]?.value).toBe(20_000);
  });

  it('a namespace-scoped sync leaves the other namespaces alone; a pod changing role moves pool', async () => {
    const clock = new FakeClock();
    const e = engines(clock);
    const other = { namespace: 'other', pod: 'd-0' };
    await e.syncGroups('decode', [d0, other]);
    await e.syncGroups('decode', [], 'ns');
    expect(e.fleet.externalGroupIds('decode')).toEqual(['other/d-0']);
    await e.syncGroups('prefill', [other], 'other');
    expect(e.fleet.externalGroupIds('decode')).toEqual([]);
    expect(e.fleet.externalGroupIds('prefill')).toEqual(['other/d-0']);
  });

  it('a feeder is pulled before each advance, so arrivals enter at their exact virtual time', () => {
    const clock = new FakeClock();
    const e = engines(clock);
    const seen: number[] = [];
    const times = [0.5, 1.25, 7, 19.9, 20.1];
    e.addFeeder({
      feedUntil(until, arrive) {
        while (times.length > 0 && (times[0] as number) <= until) {
          const t = times.shift() as number;
          arrive(t, 100, 10);
          seen.push(e.fleet.nowSeconds);
        }
      },
    });
    clock.ms += 2000; // 20 virtual seconds, delivered in one late advance
    e.advance();
    expect(seen).toEqual([0.5, 1.25, 7, 19.9]);
    expect(e.fleet.arrived).toBe(4);
  });

  it('an override shows on /metrics text and not in the snapshot; an empty one clears it', async () => {
    const e = engines(new FakeClock());
    await e.syncGroups('decode', [d0]);
    e.setOverride('ns', 'd-0', { kvCacheUsage: 0.97, waiting: 12 });
    const signals = extractEngineSignals(parseExposition(e.metricsText('ns', 'd-0') ?? ''), {
      dialect: 'vllm',
    });
    expect(signals.kvCacheUsageFraction).toMatchObject({ value: 0.97 });
    expect(signals.requestsWaiting).toMatchObject({ value: 12 });
    expect(e.snapshot().pools.decode.kvCacheUsageMean).toBe(0);
    e.setOverride('ns', 'd-0', {});
    expect(e.metricsText('ns', 'd-0')).toContain(
      'vllm:kv_cache_usage_perc{engine="0",model_name="deepseek-ai/DeepSeek-R1"} 0\n',
    );
  });
});

describe('LiveEngines over HTTP', () => {
  it('each group serves /metrics on its own loopback port until its pod goes', async () => {
    const e = engines(new FakeClock(), { serveHttp: true });
    await e.syncGroups('decode', [d0, d1]);
    const port0 = e.metricsPort('ns', 'd-0');
    const port1 = e.metricsPort('ns', 'd-1');
    expect(port0).toBeGreaterThan(0);
    expect(port1).not.toBe(port0);
    e.setOverride('ns', 'd-0', { kvCacheUsage: 0.5 });
    const res = await fetch(`http://127.0.0.1:${port0}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const signals = extractEngineSignals(parseExposition(await res.text()), { dialect: 'auto' });
    expect(signals.kvCacheUsageFraction).toMatchObject({ state: 'ok', value: 0.5 });
    expect((await fetch(`http://127.0.0.1:${port0}/nope`)).status).toBe(404);
    await e.syncGroups('decode', [d0]);
    expect(e.metricsPort('ns', 'd-1')).toBeUndefined();
    await expect(fetch(`http://127.0.0.1:${port1}/metrics`)).rejects.toThrow();
    await e.stop();
    await expect(fetch(`http://127.0.0.1:${port0}/metrics`)).rejects.toThrow();
  });
});
