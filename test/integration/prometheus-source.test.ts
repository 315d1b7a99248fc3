/**
 * The Prometheus source against a REAL Prometheus (Debian's 2.42 binary, scrape every 1 s) that
 * scrapes a test exporter serving the fixture text from test/fixtures/metrics/.
 *
 * One Prometheus and one exporter for the whole file, with every target registered once: Prometheus
 * applies target changes at most every 5 s, so scenarios switch pods up/down in the exporter instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../../src/api/documents.ts';
import type { MetricSpec, PodAutoscalerSpec } from '../../src/api/podautoscaler.ts';
import { poolRunnerFor, type ResolvedPool, resolveAll } from '../../src/api/resolve.ts';
import { endpointKeyOf, type PoolSignalRequest } from '../../src/control/signals.ts';
import { RoutingSignalSource } from '../../src/control/sources.ts';
import { decide, initialState } from '../../src/decide/kpa.ts';
import { SignalWindows } from '../../src/decide/signal-windows.ts';
import { KNATIVE_DEFAULTS, KVPA_EXTENSIONS } from '../../src/decide/spec.ts';
import { extractEngineSignals } from '../../src/observe/engine-metrics.ts';
import { parseExposition } from '../../src/observe/exposition.ts';
import {
  type ControlPoolRequest,
  PrometheusPoolSignals,
  registrationOf,
} from '../../src/observe/prometheus-control.ts';
import type { EngineSetting, PoolRegistration, SignalKind } from '../../src/observe/prometheus-join.ts';
import { feedWindows, PrometheusSignalSource } from '../../src/observe/prometheus-source.ts';
import { toSignalReading } from '../../src/observe/quality.ts';
import { type EngineExporter, type PodScript, startEngineExporter } from '../harness/engine-exporter.ts';
import { type PrometheusHarness, type ScrapeTarget, startPrometheus } from '../harness/prometheus.ts';
import { FIXTURES, readMetricsFixture } from '../observe/metric-fixtures.ts';

const LWS_LEADER = { 'leaderworkerset.sigs.k8s.io/worker-index': '0' };
const LWS_WORKER = { 'leaderworkerset.sigs.k8s.io/worker-index': '1' };
const BATCH_POOLS = 50;
const FROZEN_AGE_SECONDS = 100;

interface Pod {
  readonly namespace: string;
  readonly pod: string;
  readonly script: PodScript;
  readonly labels: Record<string, string>;
}

const vllm = (kv: number, waiting: number, running = 1): PodScript => ({
  dialect: 'vllm',
  ranks: [{ kv, waiting, running, preemptionsTotal: 0 }],
});

function pods(): Pod[] {
  const list: Pod[] = [
    // Data parallel: two ranks per head pod, plus a worker pod that must be ignored.
    {
      namespace: 'ns-dp',
      pod: 'dp-0',
      labels: LWS_LEADER,
      script: {
        dialect: 'vllm',
        ranks: [
          { kv: 0.2, waiting: 3, running: 5 },
          { kv: 0.6, waiting: 4, running: 6 },
        ],
      },
    },
    {
      namespace: 'ns-dp',
      pod: 'dp-1',
      labels: LWS_LEADER,
      script: {
        dialect: 'vllm',
        ranks: [
          { kv: 0.5, waiting: 1, running: 2 },
          { kv: 0.1, waiting: 2, running: 2 },
        ],
      },
    },
    { namespace: 'ns-dp', pod: 'dp-0-1', labels: LWS_WORKER, script: vllm(0.99, 50) },
    {
      namespace: 'ns-old',
      pod: 'old-0',
      labels: LWS_LEADER,
      script: { dialect: 'vllmLegacy', ranks: [{ kv: 0.35, waiting: 2, running: 1 }] },
    },
    {
      namespace: 'ns-sg',
      pod: 'sg-0',
      labels: { 'ray.io/node-type': 'head' },
      script: {
        dialect: 'sglang',
        ranks: [
          { kv: 0.6, waiting: 9, running: 100 },
          { kv: 0.2, waiting: 1, running: 62 },
        ],
      },
    },
    {
      namespace: 'ns-sgp',
      pod: 'sgp-0',
      labels: LWS_LEADER,
      script: { dialect: 'sglang', ranks: [], verbatim: FIXTURES.sglangDpPriority },
    },
    {
      namespace: 'ns-sgpp',
      pod: 'sgpp-0',
      labels: LWS_LEADER,
      script: { dialect: 'sglang', ranks: [], verbatim: FIXTURES.sglangPpCopies },
    },
    // A P/D decode pod: of 9 waiting, 6 wait on KV transfer (deferred), 3 on capacity.
    {
      namespace: 'ns-pd',
      pod: 'pd-0',
      labels: LWS_LEADER,
      script: { dialect: 'vllm', ranks: [{ kv: 0.5, waiting: 9, running: 4, waitingDeferred: 6 }] },
    },
    {
      namespace: 'ns-trt',
      pod: 'trt-0',
      labels: LWS_LEADER,
      script: { dialect: 'trtllm', ranks: [{ kv: 0.25, waiting: 2, running: 3 }] },
    },
    {
      namespace: 'ns-trt',
      pod: 'trt-1',
      labels: LWS_LEADER,
      script: { dialect: 'trtllm', ranks: [{ kv: 0.75, waiting: 5, running: 1 }] },
    },
    // Dynamo: a group whose head pod runs the frontend, a worker head pod, and a shared frontend pod
    // that is no group's head.
    {
      namespace: 'ns-dyn',
      pod: 'agg-0',
      labels: LWS_LEADER,
      script: { dialect: 'vllm', ranks: [], verbatim: FIXTURES.dynamoFrontend },
    },
    {
      namespace: 'ns-dyn',
      pod: 'wk-0',
      labels: LWS_LEADER,
      script: { dialect: 'vllm', ranks: [], verbatim: FIXTURES.dynamoWorker },
    },
    {
      namespace: 'ns-dyn',
      pod: 'frontend-7c9',
      labels: {},
      script: { dialect: 'vllm', ranks: [], verbatim: FIXTURES.dynamoFrontend },
    },
    // A group whose head pod runs the frontend while requests flow: every second adds the fixture's
    // 3 finished requests (6000 input, 650 output tokens) once more.
    {
      namespace: 'ns-dynflow',
      pod: 'flow-0',
      labels: LWS_LEADER,
      script: { dialect: 'vllm', ranks: [], verbatim: FIXTURES.dynamoFrontend, grow: true },
    },
    { namespace: 'ns-q', pod: 'q-0', labels: LWS_LEADER, script: vllm(0.3, 4) },
    { namespace: 'ns-q', pod: 'q-1', labels: LWS_LEADER, script: vllm(0.5, 6) },
    // q-2 is registered as a head but never scraped: its group is missing.
    { namespace: 'ns-oor', pod: 'oor-0', labels: LWS_LEADER, script: vllm(57, 1) },
    {
      namespace: 'ns-frozen',
      pod: 'fz-0',
      labels: LWS_LEADER,
      script: { ...vllm(0.1, 0), timestampMs: Date.now() - FROZEN_AGE_SECONDS * 1000 },
    },
    { namespace: 'ns-down', pod: 'down-0', labels: LWS_LEADER, script: vllm(0.05, 0) },
    { namespace: 'ns-down', pod: 'down-1', labels: LWS_LEADER, script: vllm(0.05, 0) },
    { namespace: 'ns-bf', pod: 'bf-0', labels: LWS_LEADER, script: vllm(0.1, 1) },
  ];
  for (let i = 0; i < BATCH_POOLS; i++) {
    list.push({ namespace: 'ns-batch', pod: `b${i}-0`, labels: LWS_LEADER, script: vllm(i / 100, i) });
  }
  return list;
}

function pool(
  namespace: string,
  name: string,
  headPods: string[],
  over: Partial<PoolRegistration> & { engine?: EngineSetting; signals?: SignalKind[] } = {},
): PoolRegistration {
  return {
    poolKey: `${namespace}/pa/${name}`,
    namespace,
    heads: headPods.map((pod) => ({ pod, groupKey: pod, ready: true })),
    engine: 'auto',
    signals: ['kvCacheUtilization', 'queueDepth'],
    staleAfterSeconds: 30,
    minQuorumPercentage: 50,
    ...over,
  };
}

const batchPools = Array.from({ length: BATCH_POOLS }, (_, i) => pool('ns-batch', `p${i}`, [`b${i}-0`]));
const dpPool = pool('ns-dp', 'decode', ['dp-0', 'dp-1'], {
  signals: ['kvCacheUtilization', 'queueDepth', 'runningRequests', 'preemptionRate'],
});
const oldPool = pool('ns-old', 'decode', ['old-0'], { engine: 'vllm' });
const sgPool = pool('ns-sg', 'prefill', ['sg-0'], {
  signals: ['kvCacheUtilization', 'queueDepth', 'runningRequests', 'preemptionRate'],
});

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('expected a value');
  return value;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

let prom: PrometheusHarness;
let exporter: EngineExporter;
let source: PrometheusSignalSource;
/** When every target had been scraped once: a rate window needs its span of scrapes after this. */
let scrapedSinceMs = 0;

beforeAll(async () => {
  prom = await startPrometheus({ scrapeIntervalSeconds: 1 });
  exporter = await startEngineExporter();
  const all = pods();
  for (const p of all) exporter.set(p.namespace, p.pod, p.script);
  const targets: ScrapeTarget[] = all.map((p) => ({
    address: exporter.address,
    metricsPath: exporter.pathFor(p.namespace, p.pod),
    namespace: p.namespace,
    pod: p.pod,
    podLabels: p.labels,
  }));
  await prom.setTargets(targets, 20_000);
  scrapedSinceMs = Date.now();
  await sleep(1500); // a second scrape of every target, so counters have a rate
  source = new PrometheusSignalSource({ address: prom.url, queryTimeoutSeconds: 5 });
}, 45_000);

afterAll(async () => {
  await prom?.stop();
  await exporter?.close();
}, 15_000);

describe('Prometheus source against a real Prometheus', () => {
  it('sends one query per signal kind per tick, for 1 pool as for 50 (batching)', async () => {
    const perTick = async (pools: PoolRegistration[]) => {
      const served = await prom.servedRequests('/api/v1/query');
      const sent = source.requestsSent;
      const tick = await source.tick(pools);
      // Prometheus counts a request after writing its response: give the counter a moment.
      await sleep(100);
      return {
        tick,
        served: (await prom.servedRequests('/api/v1/query')) - served,
        sent: source.requestsSent - sent,
      };
    };
    const one = await perTick(batchPools.slice(0, 1));
    const fifty = await perTick(batchPools);
    const everything = await perTick([...batchPools, dpPool, oldPool, sgPool]);
    expect(one).toMatchObject({ served: 2, sent: 2 });
    expect(fifty).toMatchObject({ served: 2, sent: 2 });
    // Four signal kinds in use: four queries, still independent of the 53 pools.
    expect(everything).toMatchObject({ served: 4, sent: 4 });
    expect(fifty.tick.queries).toBe(2);
    // And every pool got its own value back from the one shared answer.
    batchPools.forEach((p, i) => {
      const kv = fifty.tick.pools.get(p.poolKey)?.signals.get('kvCacheUtilization');
      expect(kv?.state).toBe('ok');
      expect(kv?.poolTotal).toBeCloseTo(i / 100, 9);
      expect(fifty.tick.pools.get(p.poolKey)?.signals.get('queueDepth')?.poolTotal).toBe(i);
    });
  }, 20_000);

  it('aggregates data-parallel ranks per pod (KV mean, queue sum) and ignores worker pods', async () => {
    const tick = await source.tick([dpPool]);
    const s = tick.pools.get(dpPool.poolKey)?.signals;
    // KV: mean(0.2, 0.6) + mean(0.5, 0.1) = 0.4 + 0.3; the worker's 0.99 is not counted.
    expect(s?.get('kvCacheUtilization')?.poolTotal).toBeCloseTo(0.7, 9);
    expect(s?.get('queueDepth')?.poolTotal).toBe(3 + 4 + 1 + 2);
    expect(s?.get('runningRequests')?.poolTotal).toBe(5 + 6 + 2 + 2);
    expect(s?.get('preemptionRate')).toMatchObject({ state: 'ok', poolTotal: 0 });
    expect(tick.pools.get(dpPool.poolKey)?.dialect).toBe('vllm');
    expect(tick.nonHeadSeries).toBeGreaterThan(0);
  }, 15_000);

  it('falls back to the old vLLM name, and reads SGLang names (with dp_rank ranks)', async () => {
    const tick = await source.tick([
      oldPool,
      sgPool,
      pool('ns-dp', 'wrong-engine', ['dp-0'], { engine: 'sglang' }),
    ]);
    const old = tick.pools.get(oldPool.poolKey);
    expect(old?.dialect).toBe('vllmLegacy');
    expect(old?.signals.get('kvCacheUtilization')?.poolTotal).toBeCloseTo(0.35, 9);
    expect(old?.signals.get('queueDepth')?.poolTotal).toBe(2);
    const sg = tick.pools.get(sgPool.poolKey);
    expect(sg?.dialect).toBe('sglang');
    expect(sg?.signals.get('kvCacheUtilization')?.poolTotal).toBeCloseTo(0.4, 9);
    expect(sg?.signals.get('queueDepth')?.poolTotal).toBe(10);
    expect(sg?.signals.get('runningRequests')?.poolTotal).toBe(162);
    expect(sg?.signals.get('preemptionRate')).toMatchObject({ state: 'noData' });
    expect(sg?.signals.get('preemptionRate')?.detail).toContain('SGLang');
    // A pool configured as SGLang does not read a vLLM pod's names.
    const wrong = tick.pools.get('ns-dp/pa/wrong-engine')?.signals.get('kvCacheUtilization');
    expect(wrong?.state).toBe('noData');
    expect(wrong?.detail).toContain('dp-0: vllm:kv_cache_usage_perc');
  }, 15_000);

  it('SGLang with priority scheduling and DP attention: each queue counted once (real Prometheus)', async () => {
    const p = pool('ns-sgp', 'decode', ['sgp-0'], {
      engine: 'sglang',
      signals: ['kvCacheUtilization', 'queueDepth', 'runningRequests'],
    });
    const s = (await source.tick([p])).pools.get(p.poolKey)?.signals;
    // Totals under priority="" of dp_rank 0 and 1; every series summed would be 14 and 26.
    expect(s?.get('queueDepth')).toMatchObject({ state: 'ok', poolTotal: 7 });
    expect(s?.get('runningRequests')).toMatchObject({ state: 'ok', poolTotal: 13 });
    expect(s?.get('kvCacheUtilization')?.poolTotal).toBeCloseTo(0.3, 9);
  }, 15_000);

  it('SGLang --tp 2 --pp 2, four copies per gauge: pp_rank 0, tp_rank 0 is read, 3 waiting (max 9), as the direct scrape', async () => {
    const p = pool('ns-sgpp', 'unified', ['sgpp-0'], {
      engine: 'sglang',
      signals: ['kvCacheUtilization', 'queueDepth', 'runningRequests'],
    });
    const s = (await source.tick([p])).pools.get(p.poolKey)?.signals;
    expect(s?.get('queueDepth')).toMatchObject({ state: 'ok', poolTotal: 3 });
    expect(s?.get('runningRequests')).toMatchObject({ state: 'ok', poolTotal: 12 });
    expect(s?.get('kvCacheUtilization')?.poolTotal).toBeCloseTo(0.31, 9);
    // The direct scrape of the same text reads the same copy.
    const direct = extractEngineSignals(parseExposition(readMetricsFixture(FIXTURES.sglangPpCopies)), {
      dialect: 'sglang',
    });
    expect(direct.requestsWaiting).toMatchObject({ state: 'ok', value: 3 });
    expect(direct.requestsRunning).toMatchObject({ state: 'ok', value: 12 });
    // A restart backfill picks the same copy at every step.
    const now = Math.floor(Date.now() / 1000) - 1;
    const replay = (await source.backfill(p, now - 2, now)).signals.get('queueDepth');
    expect(replay?.samples.length).toBeGreaterThan(0);
    for (const sample of replay?.samples ?? []) expect(sample.poolTotal).toBe(3);
  }, 15_000);

  it('vLLM waiting by reason: the queue is the capacity waits; without the split, all waits', async () => {
    const pd = pool('ns-pd', 'decode', ['pd-0'], { signals: ['queueDepth'] });
    const plain = pool('ns-q', 'plain', ['q-0'], { signals: ['queueDepth'] });
    const tick = await source.tick([pd, plain]);
    expect(tick.pools.get(pd.poolKey)?.signals.get('queueDepth')).toMatchObject({
      state: 'ok',
      poolTotal: 3,
    });
    expect(tick.pools.get(plain.poolKey)?.signals.get('queueDepth')).toMatchObject({
      state: 'ok',
      poolTotal: 4,
    });
    // A restart backfill reads the same series.
    const now = Math.floor(Date.now() / 1000) - 1;
    const replay = (await source.backfill(pd, now - 2, now)).signals.get('queueDepth');
    expect(replay?.samples.length).toBeGreaterThan(0);
    for (const sample of replay?.samples ?? []) expect(sample.poolTotal).toBe(3);
  }, 15_000);

  it('ranksOn all: group dp-0 is its head (2 ranks, waiting 3 + 4) and worker dp-0-1 (waiting 50): 57, not 7', async () => {
    const request = (name: string, expectedRanks?: number): ControlPoolRequest => ({
      poolKey: `ns-dp/pa/${name}`,
      namespace: 'ns-dp',
      pool: {
        engine: 'vllm',
        ranksOn: 'all',
        ...(expectedRanks !== undefined ? { expectedRanks } : {}),
        metrics: [
          { type: 'queueDepth', target: 1 },
          { type: 'kvCacheUtilization', target: 0.7 },
        ],
        missingData: { staleAfterSeconds: 30, minQuorumPercentage: 50 },
      },
      heads: [
        { name: 'dp-0', groupKey: 'g0', groupReady: true, surge: false, members: [{ name: 'dp-0-1' }] },
      ],
    });
    const all = registrationOf(request('all', 3));
    const short = registrationOf(request('short', 4));
    const tick = await source.tick([all, short]);
    const signals = tick.pools.get(all.poolKey)?.signals;
    expect(signals?.get('queueDepth')).toMatchObject({ state: 'ok', poolTotal: 57 });
    // KV: the mean over the group's 3 ranks, (0.2 + 0.6 + 0.99) / 3
    expect(signals?.get('kvCacheUtilization')?.poolTotal).toBeCloseTo(1.79 / 3, 9);
    // 4 ranks expected, 3 report: the group is missing, never its partial sum
    const partial = tick.pools.get(short.poolKey)?.signals.get('queueDepth');
    expect(partial?.state).toBe('noData');
    expect(partial?.detail).toContain('g0 (3 of 4 expected DP ranks)');
    // A drain of the group waits on every pod's requests: running 5 + 6 + 1, waiting 57.
    expect((await source.inFlight(all)).get('g0')?.requests).toBe(69);
  }, 15_000);

  it('a drain waits on every request: 4 running + all 9 waiting (6 deferred KV transfers) = 13, not 7', async () => {
    const pd = pool('ns-pd', 'decode', ['pd-0'], { signals: [] });
    const inFlight = await source.inFlight(pd);
    expect(inFlight.get('pd-0')?.requests).toBe(13);
  }, 15_000);

  it('reads TensorRT-LLM (trtllm_ names), detected under auto; it has no preemption metric', async () => {
    const signals: SignalKind[] = ['kvCacheUtilization', 'queueDepth', 'runningRequests', 'preemptionRate'];
    const trt = pool('ns-trt', 'decode', ['trt-0', 'trt-1'], { engine: 'trtllm', signals });
    const auto = pool('ns-trt', 'auto', ['trt-0', 'trt-1'], { signals });
    const tick = await source.tick([trt, auto]);
    for (const p of [trt, auto]) {
      const t = tick.pools.get(p.poolKey);
      expect(t?.dialect).toBe('trtllm');
      expect(t?.signals.get('kvCacheUtilization')?.poolTotal).toBeCloseTo(1.0, 9);
      expect(t?.signals.get('queueDepth')).toMatchObject({ state: 'ok', poolTotal: 7 });
      expect(t?.signals.get('runningRequests')).toMatchObject({ state: 'ok', poolTotal: 4 });
      expect(t?.signals.get('preemptionRate')).toMatchObject({ state: 'noData' });
      expect(t?.signals.get('preemptionRate')?.detail).toContain('TensorRT-LLM exports no such metric');
    }
    // A vLLM pool does not read TensorRT-LLM names.
    const wrong = (await source.tick([{ ...trt, poolKey: 'ns-trt/pa/wrong', engine: 'vllm' }])).pools
      .get('ns-trt/pa/wrong')
      ?.signals.get('queueDepth');
    expect(wrong?.state).toBe('noData');
  }, 15_000);

  it("Dynamo's series count for the group whose head pod exports them, never for another", async () => {
    const agg = pool('ns-dyn', 'agg', ['agg-0'], {
      engine: 'dynamo',
      signals: ['queueDepth', 'runningRequests', 'kvCacheUtilization', 'ttftHistogram'],
    });
    const wk = pool('ns-dyn', 'workers', ['wk-0'], {
      engine: 'dynamo',
      signals: ['queueDepth', 'runningRequests', 'kvCacheUtilization'],
    });
    const tick = await source.tick([agg, wk]);
    const a = tick.pools.get(agg.poolKey);
    expect(a?.signals.get('queueDepth')).toMatchObject({ state: 'ok', poolTotal: 4 });
    expect(a?.signals.get('runningRequests')).toMatchObject({ state: 'ok', poolTotal: 10 });
    // KV use is the worker's gauge: a head pod running only the frontend has none, missing, never 0.
    expect(a?.signals.get('kvCacheUtilization')).toMatchObject({ state: 'noData' });
    expect(a?.signals.get('kvCacheUtilization')?.detail).toContain('empty result');
    const ttft = a?.histograms.get('ttftHistogram');
    expect(ttft !== undefined && !('error' in ttft) && ttft.groups.get('agg-0')?.metric).toBe(
      'dynamo_frontend_time_to_first_token_seconds',
    );
    const w = tick.pools.get(wk.poolKey)?.signals;
    // The worker's generate endpoint only (6, not 7); the shared frontend's queue belongs to no group.
    expect(w?.get('runningRequests')).toMatchObject({ state: 'ok', poolTotal: 6 });
    // The worker's KV gauge, the mean over its two dp_rank series (0.25 and 0.75).
    expect(w?.get('kvCacheUtilization')).toMatchObject({ state: 'ok', poolTotal: 0.5 });
    expect(w?.get('queueDepth')).toMatchObject({ state: 'noData' });
    expect(tick.nonHeadSeries).toBeGreaterThan(0);
  }, 15_000);

  it("Dynamo's frontend flows: 6000 input and 650 output tokens/s, backlog 4 × 2000 and 4 × 200, ITL p90 0.041 s for the guard", async () => {
    // A 4 s rate window: 4 scrapes at the 1 s interval, all while the flow is steady. A window reaching
    // back before the first scrape would extrapolate a shorter span and read a smaller rate.
    await sleep(Math.max(0, scrapedSinceMs + 6_000 - Date.now()));
    const flows = new PrometheusPoolSignals(
      new PrometheusSignalSource({ address: prom.url, queryTimeoutSeconds: 5, rateWindowSeconds: 4 }),
    );
    const request: ControlPoolRequest = {
      poolKey: 'ns-dynflow/pa/agg',
      namespace: 'ns-dynflow',
      pool: {
        engine: 'dynamo',
        metrics: [
          { type: 'promptTokens', target: 3000 },
          { type: 'generationTokens', target: 300 },
        ],
        missingData: { staleAfterSeconds: 30, minQuorumPercentage: 50 },
        slo: { tpotSeconds: 0.05 },
      },
      heads: [{ name: 'flow-0', groupKey: 'flow-0', groupReady: true, surge: false }],
    };
    const [prompt, generation] =
      (await flows.sample([request], Date.now() / 1000)).get(request.poolKey) ?? [];
    // promptTokens: rate(dynamo_frontend_input_sequence_tokens_sum); the queue (dynamo_frontend_queued_requests,
    // 4) times the mean input per finished request (_sum / _count: 6000 / 3) is the backlog.
    expect(prompt).toMatchObject({ name: 'promptTokens', state: 'ok' });
    expect(prompt?.backlog).toBeCloseTo(8000, 6);
    expect(prompt?.total).toBeGreaterThan(6000 * 0.95);
    expect(prompt?.total).toBeLessThan(6000 * 1.05);
    // generationTokens: rate(dynamo_frontend_output_tokens_total); the mean output per request from the
    // output_sequence_tokens histogram (600 / 3).
    expect(generation).toMatchObject({ name: 'generationTokens', state: 'ok' });
    expect(generation?.backlog).toBeCloseTo(800, 6);
    expect(generation?.total).toBeGreaterThan(650 * 0.95);
    expect(generation?.total).toBeLessThan(650 * 1.05);
    // The group queues, so its flow is a capacity sample.
    expect(generation?.capacitySamples).toEqual([generation?.total]);
    // ITL for the SLO guard: p90 of dynamo_frontend_inter_token_latency_seconds' bucket rates, 2 of 3
    // observations at or below 0.02 s and the third in (0.02, 0.05]: 0.02 + 0.03 × 0.7 = 0.041 s.
    expect(prompt?.latency?.tpotSeconds).toBeCloseTo(0.041, 9);
    expect(generation?.latency).toEqual(prompt?.latency);
    expect(prompt?.latency?.ttftSeconds).toBeUndefined(); // not asked for by the SLO
  }, 15_000);

  it('judges quorum over ready groups and names the missing ones', async () => {
    const heads = ['q-0', 'q-1', 'q-2'];
    const strict = pool('ns-q', 'strict', heads, { minQuorumPercentage: 80 });
    const lax = pool('ns-q', 'lax', heads, { minQuorumPercentage: 50 });
    const tick = await source.tick([strict, lax]);
    const s = tick.pools.get(strict.poolKey)?.signals.get('queueDepth');
    expect(s?.state).toBe('noQuorum');
    expect(s?.detail).toContain('q-2');
    expect(s?.poolTotal).toBeUndefined();
    const l = tick.pools.get(lax.poolKey)?.signals.get('queueDepth');
    // 4 + 6 from the two that report; the missing group is counted at their mean, not at zero.
    expect(l).toMatchObject({ state: 'ok', poolTotal: 15, estimatedGroups: 1 });
  }, 15_000);

  it('rejects an out-of-range KV value (a percentage) and counts it', async () => {
    const p = pool('ns-oor', 'decode', ['oor-0']);
    const before = source.rejections.get(p.poolKey, 'kvCacheUtilization').rejectedValues;
    const tick = await source.tick([p]);
    const kv = tick.pools.get(p.poolKey)?.signals.get('kvCacheUtilization');
    expect(kv?.state).toBe('outOfRange');
    expect(kv?.detail).toContain('57 > 1');
    expect(source.rejections.get(p.poolKey, 'kvCacheUtilization').rejectedValues).toBe(before + 1);
    expect(tick.pools.get(p.poolKey)?.signals.get('queueDepth')?.state).toBe('ok');
  }, 15_000);

  it('a sample frozen in the past is stale by its Prometheus timestamp, and the pool holds', async () => {
    const p = pool('ns-frozen', 'decode', ['fz-0']);
    const tick = await source.tick([p]);
    const q = tick.pools.get(p.poolKey)?.signals.get('queueDepth');
    expect(q?.state).toBe('stale');
    expect(q?.poolTotal).toBeUndefined();
    expect(q?.detail).toMatch(/fz-0 1\d\ds old/);
    // The decision core sees `stale` (not a zero queue) and does not scale down from 4 groups.
    const spec = { ...KNATIVE_DEFAULTS, extensions: KVPA_EXTENSIONS };
    const now = tick.atSeconds;
    const windows = new SignalWindows({
      name: 'queueDepth',
      targetPerGroup: 5,
      stableWindowSeconds: 60,
      panicWindowPercentage: 10,
      aggregation: 'linear',
    });
    const reading = toSignalReading(must(q), windows.read(now));
    const state = { ...initialState(spec, 4, now - 120), lastDesired: 4 };
    const { decision } = decide(spec, state, { readyGroups: 4, signals: [reading] }, now);
    expect(reading.state).toBe('stale');
    expect(decision.desiredGroups).toBeGreaterThanOrEqual(4);
  }, 15_000);

  it('a stopped target becomes noData (never zero) and never causes a scale-down', async () => {
    const p = pool('ns-down', 'decode', ['down-0', 'down-1']);
    const first = await source.tick([p]);
    expect(first.pools.get(p.poolKey)?.signals.get('queueDepth')).toMatchObject({
      state: 'ok',
      poolTotal: 0,
    });
    const spec = { ...KNATIVE_DEFAULTS, extensions: KVPA_EXTENSIONS };
    const windows = new SignalWindows({
      name: 'kvCacheUtilization',
      targetPerGroup: 0.7,
      stableWindowSeconds: 60,
      panicWindowPercentage: 10,
      aggregation: 'linear',
    });
    const kv0 = first.pools.get(p.poolKey)?.signals.get('kvCacheUtilization');
    windows.record(first.atSeconds, kv0?.poolTotal ?? Number.NaN);

    for (const pod of ['down-0', 'down-1']) exporter.set('ns-down', pod, { ...vllm(0.05, 0), down: true });
    // Prometheus writes staleness markers after the first failed scrape (≤ 1 s + scrape timeout).
    const deadline = Date.now() + 10_000;
    let last = first;
    for (;;) {
      await sleep(500);
      last = await source.tick([p]);
      const states = [...(last.pools.get(p.poolKey)?.signals.values() ?? [])].map((g) => g.state);
      if (states.every((s) => s === 'noData') || Date.now() > deadline) break;
    }
    const kv = last.pools.get(p.poolKey)?.signals.get('kvCacheUtilization');
    expect(kv?.state).toBe('noData');
    expect(kv?.poolTotal).toBeUndefined();
    expect(kv?.detail).toContain('down-0, down-1');
    // Decision: two ready groups at 0.05 KV each would want 1 group; with the signal missing it holds at 2.
    const reading = toSignalReading(must(kv), windows.read(last.atSeconds));
    const state = { ...initialState(spec, 2, last.atSeconds - 120), lastDesired: 2 };
    const { decision } = decide(spec, state, { readyGroups: 2, signals: [reading] }, last.atSeconds);
    expect(decision.desiredGroups).toBe(2);
    // A backfill across the outage applies the same gate at every step: noData steps, no zeros.
    // Steps are whole seconds: wait until one lies after the staleness markers.
    await sleep(1200);
    const replay = await source.backfill(p, first.atSeconds - 3, Date.now() / 1000);
    const kvReplay = replay.signals.get('kvCacheUtilization');
    expect(kvReplay?.states.noData).toBeGreaterThan(0);
    expect(kvReplay?.states.ok).toBeGreaterThan(0);
    for (const sample of kvReplay?.samples ?? []) expect(sample.poolTotal).toBeCloseTo(0.1, 9);
  }, 20_000);

  it('serves the controller interface: one sample per metric, surge heads left out', async () => {
    const signals = new PrometheusPoolSignals(source);
    const request = {
      poolKey: 'ns-dp/pa/decode',
      namespace: 'ns-dp',
      pool: {
        engine: 'auto' as const,
        metrics: [
          { type: 'kvCacheUtilization' as const, target: 0.7 },
          { type: 'queueDepth' as const, target: 4 },
          { type: 'promql' as const, target: 1, query: 'up', name: 'custom', kind: 'total' as const },
        ],
        missingData: { staleAfterSeconds: 30, minQuorumPercentage: 50 },
      },
      heads: [
        { name: 'dp-0', groupKey: 'dp-0', groupReady: true, surge: false },
        { name: 'dp-1', groupKey: 'dp-1', groupReady: true, surge: true },
      ],
    };
    const out = await signals.sample([request], Date.now() / 1000);
    const [kv, queue, custom] = out.get(request.poolKey) ?? [];
    expect(kv).toMatchObject({ name: 'kvCacheUtilization', state: 'ok' });
    expect(kv?.total).toBeCloseTo(0.4, 9); // dp-0 only: mean(0.2, 0.6)
    expect(queue).toMatchObject({ name: 'queueDepth', state: 'ok', total: 7 });
    // `up` is one series per target: a total query must return exactly one, so no value (never 0).
    expect(custom).toMatchObject({ name: 'custom', state: 'outOfRange' });
    expect(custom?.detail).toContain('exactly one series');
  }, 15_000);

  it('a query Prometheus rejects (HTTP 400) is state error with its message, not an exception', async () => {
    const broken = new PrometheusSignalSource({ address: prom.url, extraMatchers: 'pod=~"("' });
    const tick = await broken.tick([dpPool]);
    const kv = tick.pools.get(dpPool.poolKey)?.signals.get('kvCacheUtilization');
    expect(kv?.state).toBe('error');
    expect(kv?.detail).toMatch(/HTTP 400|parse|regex/i);
  }, 15_000);

  it('restart backfill with query_range at 1 s reproduces the live windows', async () => {
    const p = pool('ns-bf', 'decode', ['bf-0'], { signals: ['queueDepth'] });
    const spec = {
      name: 'queueDepth',
      targetPerGroup: 5,
      stableWindowSeconds: 10,
      panicWindowPercentage: 30,
      aggregation: 'linear' as const,
    };
    const live = new SignalWindows(spec);
    const queue = [1, 1, 8, 8, 3, 3, 12, 12, 5, 5];
    const ticks: number[] = [];
    // Ticks on whole seconds, evaluated 300 ms late so every scrape stamped at or before the tick
    // has landed, as a range query run afterwards sees it.
    let t = Math.ceil(Date.now() / 1000) + 1;
    for (const waiting of queue) {
      exporter.set('ns-bf', 'bf-0', vllm(0.1, waiting));
      await sleep(Math.max(0, t * 1000 + 300 - Date.now()));
      const tick = await source.tick([p], t);
      const g = tick.pools.get(p.poolKey)?.signals.get('queueDepth');
      if (g?.state === 'ok' && g.poolTotal !== undefined) live.record(t, g.poolTotal);
      ticks.push(t);
      t += 1;
    }
    const from = ticks[0] ?? 0;
    const to = ticks[ticks.length - 1] ?? 0;
    const served = await prom.servedRequests('/api/v1/query_range');
    const result = await source.backfill(p, from, to);
    await sleep(100);
    expect((await prom.servedRequests('/api/v1/query_range')) - served).toBe(1);
    const signal = result.signals.get('queueDepth');
    expect(signal?.error).toBeUndefined();
    expect(signal?.samples.length).toBe(queue.length);
    const restarted = new SignalWindows(spec);
    expect(feedWindows(result, new Map([['queueDepth', restarted]]))).toBe(queue.length);
    const a = live.read(to);
    const b = restarted.read(to);
    expect(b.state).toBe('ok');
    expect(b.stableTotal).toBeCloseTo(a.stableTotal ?? Number.NaN, 6);
    expect(b.panicTotal).toBeCloseTo(a.panicTotal ?? Number.NaN, 6);
    // The values moved during the run, so agreement is not a constant by accident.
    expect(new Set(signal?.samples.map((s) => s.poolTotal)).size).toBeGreaterThan(2);

    // The controller's routing source serves the same history for a pool whose PodAutoscaler names
    // this Prometheus, keyed by the signal's name; a direct-scrape pool has none.
    const { pools } = resolveAll(
      {
        mode: 'Apply',
        policyRef: { name: 'default' },
        metricsSource: { prometheus: { address: prom.url } },
        pools: [
          {
            name: 'decode',
            scaleTargetRef: {
              apiVersion: 'leaderworkerset.x-k8s.io/v1',
              kind: 'LeaderWorkerSet',
              name: 'bf',
            },
            maxReplicas: 4,
            metrics: [{ type: 'queueDepth', target: 5 }],
          },
        ],
      } as PodAutoscalerSpec,
      loadPolicies().policies,
    );
    const resolved = pools[0];
    if (resolved === undefined) throw new Error('the test pool did not resolve');
    const request = {
      poolKey: p.poolKey,
      namespace: 'ns-bf',
      pool: resolved,
      heads: [{ namespace: 'ns-bf', name: 'bf-0', groupKey: 'bf-0', groupReady: true, surge: false }],
    };
    const routed = await new RoutingSignalSource().backfill(
      { ...request, metricsSource: { prometheus: { address: prom.url } } },
      from,
      to,
    );
    expect(routed.get('queueDepth')?.map((s) => s.total)).toEqual(signal?.samples.map((s) => s.poolTotal));
    const direct = await new RoutingSignalSource().backfill(
      { ...request, metricsSource: { pods: { port: 8000 } } },
      from,
      to,
    );
    expect(direct.size).toBe(0);
  }, 30_000);
});

/** A Prometheus-sourced Apply pool of LeaderWorkerSet `name`, resolved with the default policy. */
function resolvedPool(name: string, metrics: PodAutoscalerSpec['pools'][number]['metrics']): ResolvedPool {
  const { pools, errors } = resolveAll(
    {
      mode: 'Apply',
      policyRef: { name: 'default' },
      metricsSource: { prometheus: { address: 'http://127.0.0.1:9' } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name },
          maxReplicas: 8,
          metrics,
        },
      ],
    } as PodAutoscalerSpec,
    loadPolicies().policies,
  );
  const resolved = pools[0];
  if (resolved === undefined) throw new Error(`the test pool did not resolve: ${JSON.stringify(errors)}`);
  return resolved;
}

function promqlRequest(
  poolKey: string,
  namespace: string,
  headPods: string[],
  metrics: PodAutoscalerSpec['pools'][number]['metrics'],
): PoolSignalRequest {
  return {
    poolKey,
    namespace,
    pool: resolvedPool(poolKey.replaceAll('/', '-'), metrics),
    heads: headPods.map((name) => ({ namespace, name, groupKey: name, groupReady: true, surge: false })),
    metricsSource: { prometheus: { address: prom.url, queryTimeoutSeconds: 5 } },
  };
}

describe('promql metrics against a real Prometheus', () => {
  const waiting = (ns: string) => `vllm:num_requests_waiting{namespace="${ns}"}`;
  /** ns-q's queue read two ways: the batched kind and a perGroup promql query of the same series. */
  function queueAndWaiting(): MetricSpec[] {
    return [
      { type: 'queueDepth', target: 4 },
      {
        type: 'promql',
        name: 'waiting',
        kind: 'perGroup',
        query: `max by (namespace, pod) (${waiting('ns-q')})`,
        target: 2,
      },
    ];
  }

  it('a perGroup query gives per-group values joined to head pods, and the pool scales on them', async () => {
    const request = promqlRequest(
      'ns-q/pa/decode',
      'ns-q',
      ['q-0', 'q-1'],
      [
        {
          type: 'promql',
          name: 'waiting',
          kind: 'perGroup',
          // The head pods' queues plus a worker-free namespace: one series per (namespace, pod).
          query: `max by (namespace, pod) (${waiting('ns-q')})`,
          target: 2,
        },
      ],
    );
    const routing = new RoutingSignalSource();
    const runner = poolRunnerFor(request.pool);
    let decision: ReturnType<typeof runner.decide> | undefined;
    const start = Math.floor(Date.now() / 1000);
    for (let t = start; t < start + 3; t++) {
      const samples = (await routing.sample([request], t)).get(request.poolKey) ?? [];
      const [sample] = samples;
      expect(sample).toMatchObject({ name: 'waiting', state: 'ok', total: 10 });
      runner.record(samples, t);
      decision = runner.decide(t, 2, 2, samples);
    }
    // 4 + 6 waiting against 2 per group: 5 groups wanted, from 2 ready.
    expect(decision?.desiredGroups).toBeGreaterThan(2);
  }, 20_000);

  it('a total query is the pool total', async () => {
    const request = promqlRequest(
      'ns-q/pa/total',
      'ns-q',
      ['q-0', 'q-1'],
      [{ type: 'promql', name: 'queued', kind: 'total', query: `sum(${waiting('ns-q')})`, target: 4 }],
    );
    const [sample] = (await new RoutingSignalSource().sample([request], Date.now() / 1000)).get(
      request.poolKey,
    ) ?? [undefined];
    expect(sample).toMatchObject({ name: 'queued', state: 'ok', total: 10 });
  }, 15_000);

  it('a perGroup query that aggregates the pod label away is noData naming the rule', async () => {
    const request = promqlRequest(
      'ns-q/pa/nopod',
      'ns-q',
      ['q-0', 'q-1'],
      [
        {
          type: 'promql',
          name: 'waiting',
          kind: 'perGroup',
          query: `sum by (namespace) (${waiting('ns-q')})`,
          target: 2,
        },
      ],
    );
    const [sample] = (await new RoutingSignalSource().sample([request], Date.now() / 1000)).get(
      request.poolKey,
    ) ?? [undefined];
    expect(sample?.state).toBe('noData');
    expect(sample?.total).toBeUndefined();
    expect(sample?.detail).toContain('without namespace and pod labels');
    expect(sample?.detail).toContain('keeping its namespace and pod labels');
    // And the decision holds: a signal with no value never scales down.
    const runner = poolRunnerFor(request.pool);
    const now = Date.now() / 1000;
    runner.start(now - 120, 2, 2);
    expect(runner.decide(now, 2, 2, sample ? [sample] : []).desiredGroups).toBe(2);
  }, 15_000);

  it('restart backfill replays a promql query with query_range, judged step by step', async () => {
    const request = promqlRequest(
      'ns-q/pa/backfill',
      'ns-q',
      ['q-0', 'q-1'],
      [
        ...queueAndWaiting(),
        { type: 'promql', name: 'bad', kind: 'total', query: `${waiting('ns-q')}`, target: 2 },
      ],
    );
    const to = Math.floor(Date.now() / 1000) - 1;
    const served = await prom.servedRequests('/api/v1/query_range');
    const history = await new RoutingSignalSource().backfill(request, to - 4, to);
    await sleep(100);
    // One range query for the batched kind, one per promql metric.
    expect((await prom.servedRequests('/api/v1/query_range')) - served).toBe(3);
    expect(history.get('waiting')?.map((p) => p.total)).toEqual([10, 10, 10, 10, 10]);
    expect(history.get('queueDepth')?.map((p) => p.total)).toEqual([10, 10, 10, 10, 10]);
    // Two series where a total needs one: no step passes, so nothing is replayed (never zeros).
    expect(history.get('bad')).toEqual([]);
  }, 15_000);

  it("one pool's broken promql query leaves other pools, and its own batched kinds, untouched", async () => {
    const broken = promqlRequest(
      'ns-dp/pa/broken',
      'ns-dp',
      ['dp-0', 'dp-1'],
      [
        { type: 'kvCacheUtilization', target: 0.7 },
        { type: 'promql', name: 'bad', kind: 'perGroup', query: 'max by (namespace, pod) (rate(', target: 1 },
      ],
    );
    const healthy = promqlRequest('ns-q/pa/healthy', 'ns-q', ['q-0', 'q-1'], queueAndWaiting());
    const batchedOnly = promqlRequest(
      'ns-old/pa/plain',
      'ns-old',
      ['old-0'],
      [{ type: 'queueDepth', target: 4 }],
    );
    // The controller makes one source call per endpoint key: a promql pool never shares its call.
    const keys = new Set([broken, healthy, batchedOnly].map(endpointKeyOf));
    expect(keys.size).toBe(3);
    // Even in one call (the pools' queries side by side), the broken query is its own pool's error.
    const out = await new RoutingSignalSource().sample([broken, healthy, batchedOnly], Date.now() / 1000);
    const [kv, bad] = out.get(broken.poolKey) ?? [];
    expect(kv).toMatchObject({ name: 'kvCacheUtilization', state: 'ok' });
    expect(bad?.state).toBe('error');
    expect(bad?.detail).toMatch(/parse error/);
    expect(out.get(healthy.poolKey)).toMatchObject([
      { name: 'queueDepth', state: 'ok', total: 10 },
      { name: 'waiting', state: 'ok', total: 10 },
    ]);
    expect(out.get(batchedOnly.poolKey)).toMatchObject([{ name: 'queueDepth', state: 'ok', total: 2 }]);
  }, 15_000);
});
