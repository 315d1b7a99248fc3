import { describe, expect, it } from 'vitest';
import {
  attribute,
  buildHeadIndex,
  buildQuery,
  decodeVector,
  FIELD_LABEL,
  type PoolRegistration,
  type PromSample,
  parsePromValue,
  signalKindOf,
} from './prometheus-join.ts';

const pool = (over: Partial<PoolRegistration> = {}): PoolRegistration => ({
  poolKey: 'ns1/pa/decode',
  namespace: 'ns1',
  heads: [
    { pod: 'lws-0', groupKey: 'lws-0', ready: true },
    { pod: 'lws-1', groupKey: 'lws-1', ready: true },
  ],
  engine: 'auto',
  signals: ['kvCacheUtilization'],
  ...over,
});

function value(pod: string, metric: string, v: number, extra: Record<string, string> = {}): PromSample {
  return { labels: { __name__: metric, namespace: 'ns1', pod, [FIELD_LABEL]: 'value', ...extra }, value: v };
}
function ts(pod: string, t: number, extra: Record<string, string> = {}): PromSample {
  return { labels: { namespace: 'ns1', pod, [FIELD_LABEL]: 'ts', ...extra }, value: t };
}

describe('signalKindOf', () => {
  it('maps the API metric types and leaves promql out', () => {
    expect(signalKindOf({ type: 'queueDepth', target: 5 })).toBe('queueDepth');
    expect(signalKindOf({ type: 'promql', target: 1, query: 'x', name: 'x', kind: 'total' })).toBeNull();
  });
});

describe('buildQuery', () => {
  it('covers every dialect name and namespace in one query, keeping ranks', () => {
    const q = buildQuery('kvCacheUtilization', { namespaces: ['b', 'a.x'], rateWindowSeconds: 60 });
    expect(q).toContain('vllm:kv_cache_usage_perc|vllm:gpu_cache_usage_perc|sglang:token_usage');
    expect(q).toContain('namespace=~"a\\\\.x|b"');
    expect(q).toContain('max by (__name__, namespace, pod, engine, dp_rank, pp_rank, tp_rank)');
    expect(q).toContain('min by (namespace, pod) (timestamp(');
  });

  it('reads SGLang queue totals only (priority=""), each pp_rank/tp_rank copy apart for the join to pick', () => {
    const q = buildQuery('queueDepth', { namespaces: ['a'], rateWindowSeconds: 60 });
    expect(q).toContain('namespace=~"a",priority=""');
    expect(q).toContain('max by (__name__, namespace, pod, engine, dp_rank, pp_rank, tp_rank)');
  });

  it('reads vLLM capacity waits beside the total, each selector timestamped on its own', () => {
    const q = buildQuery('queueDepth', { namespaces: ['a'], rateWindowSeconds: 60 });
    expect(q).toContain(
      'vllm:num_requests_waiting_by_reason{namespace=~"a",priority="",reason="capacity"} or {__name__=~"vllm:num_requests_waiting|sglang:num_queue_reqs',
    );
    expect(q).toContain('timestamp(vllm:num_requests_waiting_by_reason{');
  });

  it('reads counters as a rate', () => {
    const q = buildQuery('preemptionRate', { namespaces: ['a'], rateWindowSeconds: 120 });
    expect(q).toContain('rate(vllm:num_preemptions_total{namespace=~"a"}[120s])');
  });
});

describe('parsePromValue / decodeVector', () => {
  it('reads the special floats Prometheus spells as strings', () => {
    expect(parsePromValue('+Inf')).toBe(Number.POSITIVE_INFINITY);
    expect(parsePromValue('-Inf')).toBe(Number.NEGATIVE_INFINITY);
    expect(parsePromValue('NaN')).toBeNaN();
    expect(parsePromValue('1.5e-3')).toBe(0.0015);
    expect(parsePromValue(undefined)).toBeNaN();
  });

  it('decodes a vector without copying labels and survives malformed entries', () => {
    const metric = { __name__: 'x', pod: 'p' };
    const raw = { resultType: 'vector' as const, result: [{ metric, value: [1, '2'] as const }] };
    const [first] = decodeVector(raw);
    expect(first?.labels).toBe(metric);
    expect(first?.value).toBe(2);
    const broken = { resultType: 'vector', result: [null, { metric: {} }] } as unknown as Parameters<
      typeof decodeVector
    >[0];
    expect(decodeVector(broken).map((s) => s.value)).toEqual([Number.NaN, Number.NaN]);
  });
});

describe('attribute', () => {
  it('joins by namespace/pod to head pods only and keeps ranks, stamped with the pod scrape time', () => {
    const index = buildHeadIndex([pool()]);
    const { pools, stats } = attribute(
      'kvCacheUtilization',
      [
        value('lws-0', 'vllm:kv_cache_usage_perc', 0.2, { engine: '0' }),
        value('lws-0', 'vllm:kv_cache_usage_perc', 0.4, { engine: '1' }),
        ts('lws-0', 98),
        value('lws-0-1', 'vllm:kv_cache_usage_perc', 0.9, { engine: '0' }),
      ],
      index,
    );
    const g = pools.get('ns1/pa/decode')?.groups.get('lws-0');
    expect(g?.ranks).toEqual([
      { rank: '0', value: 0.2, timestampSeconds: 98 },
      { rank: '1', value: 0.4, timestampSeconds: 98 },
    ]);
    expect(g?.dialect).toBe('vllm');
    expect(pools.get('ns1/pa/decode')?.groups.has('lws-1')).toBe(false);
    expect(stats.nonHeadSeries).toBe(1);
  });

  it('prefers the new vLLM name, falls back to the old one, and honours a configured engine', () => {
    const samples = [
      value('lws-0', 'vllm:kv_cache_usage_perc', 0.2),
      value('lws-0', 'vllm:gpu_cache_usage_perc', 0.3),
      value('lws-1', 'vllm:gpu_cache_usage_perc', 0.5),
      ts('lws-0', 1),
      ts('lws-1', 1),
    ];
    const auto = attribute('kvCacheUtilization', samples, buildHeadIndex([pool()])).pools.get(
      'ns1/pa/decode',
    );
    expect(auto?.groups.get('lws-0')?.metric).toBe('vllm:kv_cache_usage_perc');
    expect(auto?.groups.get('lws-1')?.dialect).toBe('vllmLegacy');
    const sglang = attribute('kvCacheUtilization', samples, buildHeadIndex([pool({ engine: 'sglang' })]));
    expect(sglang.pools.size).toBe(0);
  });

  it('SGLang copies of dp_rank 0 (pp/tp 0/0: 3, 1/0: 8, 0/1: 4) and dp_rank 1 (0/2: 2, 1/0: 6): 3 and 2 read, as the direct scrape', () => {
    const index = buildHeadIndex([pool({ signals: ['queueDepth'], engine: 'sglang' })]);
    const q = (dp: string, pp: string, tp: string, v: number) =>
      value('lws-0', 'sglang:num_queue_reqs', v, { dp_rank: dp, pp_rank: pp, tp_rank: tp });
    const { pools } = attribute(
      'queueDepth',
      [
        q('0', '0', '0', 3),
        q('0', '1', '0', 8),
        q('0', '0', '1', 4),
        q('1', '0', '2', 2),
        q('1', '1', '0', 6),
      ],
      index,
    );
    expect(
      pools
        .get('ns1/pa/decode')
        ?.groups.get('lws-0')
        ?.ranks.map((r) => [r.rank, r.value]),
    ).toEqual([
      ['0', 3],
      ['1', 2],
    ]);
  });

  it('prefers the capacity waits of vLLM where a pod exports them, ignoring the deferred ones', () => {
    const index = buildHeadIndex([pool({ signals: ['queueDepth'] })]);
    const by = 'vllm:num_requests_waiting_by_reason';
    const { pools } = attribute(
      'queueDepth',
      [
        value('lws-0', 'vllm:num_requests_waiting', 9, { engine: '0' }),
        value('lws-0', by, 3, { engine: '0', reason: 'capacity' }),
        value('lws-0', by, 6, { engine: '0', reason: 'deferred' }),
        ts('lws-0', 100),
        value('lws-1', 'vllm:num_requests_waiting', 4, { engine: '0' }),
        ts('lws-1', 100),
      ],
      index,
    );
    const groups = pools.get('ns1/pa/decode')?.groups;
    expect(groups?.get('lws-0')).toMatchObject({
      metric: by,
      dialect: 'vllm',
      ranks: [{ rank: '0', value: 3 }],
    });
    expect(groups?.get('lws-1')).toMatchObject({
      metric: 'vllm:num_requests_waiting',
      ranks: [{ value: 4 }],
    });
  });

  it('ranksOn all: group lws-0 reads its head (ranks 0, 1) and worker lws-0-1 (ranks 2, 3): queue 3+1+5+7 = 16', () => {
    const reg = pool({
      signals: ['queueDepth'],
      heads: [
        { pod: 'lws-0', groupKey: 'lws-0', ready: true },
        { pod: 'lws-0-1', groupKey: 'lws-0', ready: true, member: true },
        { pod: 'lws-1', groupKey: 'lws-1', ready: true },
        { pod: 'lws-1-1', groupKey: 'lws-1', ready: true, member: true },
      ],
    });
    const w = 'vllm:num_requests_waiting';
    const { pools } = attribute(
      'queueDepth',
      [
        value('lws-0', w, 3, { engine: '0' }),
        value('lws-0', w, 1, { engine: '1' }),
        ts('lws-0', 100),
        value('lws-0-1', w, 5, { engine: '2' }),
        value('lws-0-1', w, 7, { engine: '3' }),
        ts('lws-0-1', 99),
        // lws-1's worker exports nothing: the group is missing, not its head's 2
        value('lws-1', w, 2, { engine: '0' }),
        ts('lws-1', 100),
      ],
      buildHeadIndex([reg]),
    );
    const groups = pools.get('ns1/pa/decode')?.groups;
    const g0 = groups?.get('lws-0');
    expect(g0?.ranks.map((r) => [r.rank, r.value])).toEqual([
      ['lws-0/0', 3],
      ['lws-0/1', 1],
      ['lws-0-1/2', 5],
      ['lws-0-1/3', 7],
    ]);
    expect(Math.min(...(g0?.ranks ?? []).map((r) => r.timestampSeconds))).toBe(99);
    expect(groups?.get('lws-1')).toMatchObject({
      ranks: [],
      missingReason: 'ranksOn all: 1 of its 2 pods without series (lws-1-1)',
    });
  });

  it("Dynamo: a worker's generate in-flight count wins over the frontend's; other endpoints are ignored", () => {
    const index = buildHeadIndex([pool({ engine: 'dynamo', signals: ['runningRequests'] })]);
    const w = 'dynamo_component_inflight_requests';
    const { pools } = attribute(
      'runningRequests',
      [
        value('lws-0', 'dynamo_frontend_inflight_requests', 10, { model: 'm' }),
        value('lws-0', w, 6, { dynamo_endpoint: 'generate' }),
        value('lws-0', w, 1, { dynamo_endpoint: 'clear_kv_blocks' }),
        ts('lws-0', 100),
        value('lws-1', 'dynamo_frontend_inflight_requests', 4, { model: 'm' }),
        ts('lws-1', 100),
      ],
      index,
    );
    const groups = pools.get('ns1/pa/decode')?.groups;
    expect(groups?.get('lws-0')).toMatchObject({ metric: w, dialect: 'dynamo', ranks: [{ value: 6 }] });
    expect(groups?.get('lws-1')).toMatchObject({
      metric: 'dynamo_frontend_inflight_requests',
      ranks: [{ value: 4 }],
    });
  });

  it("Dynamo: KV use from the worker's gauge per dp_rank; a vLLM worker under auto reads vLLM's", () => {
    const kv = 'dynamo_component_gpu_cache_usage_percent';
    expect(buildQuery('kvCacheUtilization', { namespaces: ['ns1'], rateWindowSeconds: 60 })).toContain(kv);
    const samples = [
      value('lws-0', kv, 0.25, { dp_rank: '0', model: 'm', dynamo_component: 'backend' }),
      value('lws-0', kv, 0.75, { dp_rank: '1', model: 'm', dynamo_component: 'backend' }),
      value('lws-0', 'vllm:kv_cache_usage_perc', 0.5, { engine: '0' }),
      ts('lws-0', 100),
      // A head pod running only a frontend has no KV gauge: its group stays missing.
      value('lws-1', 'dynamo_frontend_inflight_requests', 4, { model: 'm' }),
      ts('lws-1', 100),
    ];
    const dynamo = attribute('kvCacheUtilization', samples, buildHeadIndex([pool({ engine: 'dynamo' })]));
    const groups = dynamo.pools.get('ns1/pa/decode')?.groups;
    expect(groups?.get('lws-0')).toMatchObject({
      metric: kv,
      dialect: 'dynamo',
      ranks: [
        { rank: '0', value: 0.25 },
        { rank: '1', value: 0.75 },
      ],
    });
    expect(groups?.has('lws-1')).toBe(false);
    const auto = attribute('kvCacheUtilization', samples, buildHeadIndex([pool()]));
    expect(auto.pools.get('ns1/pa/decode')?.groups.get('lws-0')?.metric).toBe('vllm:kv_cache_usage_perc');
  });

  it("SGLang's ITL histogram: the current name is queried beside the older and wins", () => {
    const q = buildQuery('itlHistogram', { namespaces: ['ns1'], rateWindowSeconds: 60 });
    expect(q).toContain('rate(sglang:inter_token_latency_seconds_bucket{namespace=~"ns1"}[60s])');
    expect(q).toContain('rate(sglang:time_per_output_token_seconds_bucket{namespace=~"ns1"}[60s])');
    const index = buildHeadIndex([pool({ engine: 'sglang', signals: ['itlHistogram'] })]);
    const tag = (pod: string, name: string, le: string, v: number): PromSample => ({
      labels: { namespace: 'ns1', pod, le, kvpa_metric: name, [FIELD_LABEL]: 'value' },
      value: v,
    });
    const { pools } = attribute(
      'itlHistogram',
      [
        tag('lws-0', 'sglang:inter_token_latency_seconds', '+Inf', 2),
        tag('lws-1', 'sglang:time_per_output_token_seconds', '+Inf', 3),
        ts('lws-0', 100),
        ts('lws-1', 100),
      ],
      index,
    );
    const groups = pools.get('ns1/pa/decode')?.groups;
    expect(groups?.get('lws-0')?.metric).toBe('sglang:inter_token_latency_seconds');
    expect(groups?.get('lws-1')?.metric).toBe('sglang:time_per_output_token_seconds');
  });

  it('keeps pools apart when pod names repeat across namespaces', () => {
    const a = pool();
    const b = pool({ poolKey: 'ns2/pa/decode', namespace: 'ns2' });
    const samples: PromSample[] = [
      value('lws-0', 'vllm:num_requests_waiting', 3),
      { labels: { ...value('lws-0', 'vllm:num_requests_waiting', 7).labels, namespace: 'ns2' }, value: 7 },
    ];
    const { pools } = attribute('queueDepth', samples, buildHeadIndex([a, b]));
    expect(pools.get('ns1/pa/decode')?.groups.get('lws-0')?.ranks[0]?.value).toBe(3);
    expect(pools.get('ns2/pa/decode')?.groups.get('lws-0')?.ranks[0]?.value).toBe(7);
  });
});
