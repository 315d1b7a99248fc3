/**
 * Mutated metric pages through parse, extract and gate, by both paths a value takes: a direct scrape
 * (parseExposition → extractEngineSignals → the pods source's poolTotal) and Prometheus (the page's
 * samples as an instant-vector answer → decodeVector → attribute → judgeSignal). Whatever the page
 * holds (1e308, NaN, ±Inf, 1e309, truncation, duplicated and garbled lines, thousands of series),
 * nothing throws and every `ok` value is finite and within its signal's range.
 * Pages: KVPA_FUZZ_PAGES (default 2,000, CI-sized; the acceptance run uses 20,000 or more).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MetricSpec } from '../api/podautoscaler.ts';
import { extractEngineSignals, type SignalValue } from './engine-metrics.ts';
import { parseExposition } from './exposition.ts';
import { poolTotal } from './pods-control.ts';
import {
  attribute,
  buildHeadIndex,
  COUNT_MAX,
  decodeVector,
  FIELD_LABEL,
  kindNames,
  type PoolRegistration,
  type RawVector,
  SIGNAL_KINDS,
  type SignalKind,
} from './prometheus-join.ts';
import { judgeSignal } from './quality.ts';

const PAGES = Number(process.env.KVPA_FUZZ_PAGES ?? 2_000);
const NOW = 1_800_000_000;

const HOSTILE_VALUES = [
  '1e308',
  '-1e308',
  '1.7976931348623157e308',
  '1e309',
  'NaN',
  '+Inf',
  '-Inf',
  'Inf',
  '5e-324',
  '-0',
  '0x10',
  '',
  '1_000',
  '99999999999999999999999',
  '1e15',
  '1000001',
  '0.5',
  '100',
  '-1',
  'abc',
];

/** A plausible page of one engine with `ranks` DP ranks. */
function page(dialect: 'vllm' | 'sglang', ranks: number, v: readonly number[]): string {
  const at = (i: number) => v[i % v.length] ?? 0;
  const lines: string[] = [];
  const family = (name: string, type: string, value: (rank: number) => string) => {
    lines.push(`# HELP ${name} help text`, `# TYPE ${name} ${type}`);
    for (let r = 0; r < ranks; r++) {
      const label = dialect === 'vllm' ? `engine="${r}"` : `dp_rank="${r}"`;
      lines.push(`${name}{model_name="m",${label}} ${value(r)}`);
    }
  };
  if (dialect === 'vllm') {
    family('vllm:kv_cache_usage_perc', 'gauge', (r) => String(at(r) % 1));
    family('vllm:num_requests_waiting', 'gauge', (r) => String(Math.round(at(r + 1) * 10)));
    family('vllm:num_requests_running', 'gauge', (r) => String(Math.round(at(r + 2) * 10)));
    family('vllm:num_preemptions_total', 'counter', (r) => String(Math.round(at(r + 3) * 100)));
  } else {
    family('sglang:token_usage', 'gauge', (r) => String(at(r) % 1));
    family('sglang:num_queue_reqs', 'gauge', (r) => String(Math.round(at(r + 1) * 10)));
    family('sglang:num_running_reqs', 'gauge', (r) => String(Math.round(at(r + 2) * 10)));
  }
  return `${lines.join('\n')}\n`;
}

type Mutation = (text: string) => string;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Replace the n-th value token with a hostile one.
  fc.tuple(fc.nat(40), fc.constantFrom(...HOSTILE_VALUES)).map(
    ([n, bad]): Mutation =>
      (t) => {
        let i = 0;
        return t.replace(/ (\S+)$/gm, (m, _v: string) => (i++ === n ? ` ${bad}` : m));
      },
  ),
  // Every value of one line set to a hostile token.
  fc.constantFrom(...HOSTILE_VALUES).map(
    (bad): Mutation =>
      (t) =>
        t.replace(/ (\S+)$/gm, ` ${bad}`),
  ),
  // Truncate anywhere.
  fc.double({ min: 0, max: 1, noNaN: true }).map(
    (f): Mutation =>
      (t) =>
        t.slice(0, Math.floor(t.length * f)),
  ),
  // Duplicate or drop a line.
  fc.tuple(fc.nat(60), fc.boolean()).map(
    ([n, dup]): Mutation =>
      (t) => {
        const lines = t.split('\n');
        const k = n % Math.max(1, lines.length);
        if (dup) lines.splice(k, 0, lines[k] ?? '');
        else lines.splice(k, 1);
        return lines.join('\n');
      },
  ),
  // Insert random characters (including quotes, braces, NUL, CR).
  fc
    .tuple(
      fc.nat(4000),
      fc.string({
        unit: fc.constantFrom('{', '}', '"', '\\', '=', ',', ' ', '\n', '\r', '\0', '#', 'e', '9', '.'),
        maxLength: 8,
      }),
    )
    .map(
      ([at, junk]): Mutation =>
        (t) =>
          t.slice(0, at % (t.length + 1)) + junk + t.slice(at % (t.length + 1)),
    ),
  // Many more series of one name (the 140,000-series page has its own test below).
  fc.tuple(fc.integer({ min: 100, max: 1000 }), fc.constantFrom(...HOSTILE_VALUES, '0.5', '3')).map(
    ([n, value]): Mutation =>
      (t) => {
        const extra: string[] = [];
        for (let i = 0; i < n; i++)
          extra.push(`vllm:kv_cache_usage_perc{model_name="m",engine="x${i}"} ${value}`);
        return `${t}${extra.join('\n')}\n`;
      },
  ),
  // Rename a metric, or label it with another model.
  fc.constant<Mutation>((t) => t.replaceAll('model_name="m"', 'model_name="other"')),
  fc.constant<Mutation>((t) => t.replaceAll('vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc')),
);

const pageArb = fc
  .record({
    dialect: fc.constantFrom('vllm', 'sglang' as const),
    ranks: fc.integer({ min: 1, max: 4 }),
    values: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 8 }),
    // Mostly small edits; the 140,000-series one is rare so the suite stays fast.
    mutations: fc.array(mutation, { maxLength: 3 }),
  })
  .map(({ dialect, ranks, values, mutations }) =>
    mutations.reduce((t, m) => m(t), page(dialect, ranks, values)),
  );

const RANGE_MAX = { fraction: 1, count: COUNT_MAX } as const;

/** A plain check, not expect(): it runs for every value of every page. */
function assertUsable(value: number, max: number, what: string): void {
  if (!(Number.isFinite(value) && value >= 0 && value <= max)) {
    throw new Error(`${what}: ${value} is ok but not a finite value in [0, ${max}]`);
  }
}

const METRICS: readonly MetricSpec[] = [
  { type: 'kvCacheUtilization', target: 0.7 },
  { type: 'queueDepth', target: 4 },
  { type: 'runningRequests', target: 16 },
];

/** The pods path: 3 groups, each the same mutated page (or silent), then the pool total. */
function podsPath(text: string): void {
  const parsed = parseExposition(text);
  const signals = extractEngineSignals(parsed, { dialect: 'auto' });
  const checks: [SignalValue, number][] = [
    [signals.kvCacheUsageFraction, 1],
    [signals.kvCacheUsageMaxFraction, 1],
    [signals.requestsWaiting, COUNT_MAX * 4],
    [signals.requestsRunning, COUNT_MAX * 4],
    [signals.preemptionsTotal, Number.MAX_SAFE_INTEGER * 4],
  ];
  for (const [v, max] of checks) if (v.state === 'ok') assertUsable(v.value, max, 'scraped value');
  for (const metric of METRICS) {
    const value =
      metric.type === 'kvCacheUtilization'
        ? signals.kvCacheUsageFraction
        : metric.type === 'queueDepth'
          ? signals.requestsWaiting
          : signals.requestsRunning;
    const perGroup = new Map([
      ['g0', { value }],
      ['g1', { value }],
      ['g2', { value: null, error: 'timeout' }],
    ]);
    const out = poolTotal(metric, perGroup, 50);
    if (out.state === 'ok')
      assertUsable(
        out.total ?? Number.NaN,
        3 * 4 * (metric.type === 'kvCacheUtilization' ? 1 : COUNT_MAX),
        'pods total',
      );
  }
}

/** The Prometheus path: the page's samples as a vector answer, attributed to two heads, then gated. */
function prometheusPath(text: string): void {
  const parsed = parseExposition(text);
  const pool: PoolRegistration = {
    poolKey: 'ns/pa/decode',
    namespace: 'ns',
    heads: [
      { pod: 'p0', groupKey: 'g0', ready: true },
      { pod: 'p1', groupKey: 'g1', ready: true },
    ],
    engine: 'auto',
    signals: ['kvCacheUtilization', 'queueDepth', 'runningRequests', 'preemptionRate'],
  };
  const index = buildHeadIndex([pool]);
  for (const kind of pool.signals as SignalKind[]) {
    const names = new Set(kindNames(kind));
    const result: RawVector['result'][number][] = [];
    for (const family of parsed.families.values()) {
      for (const s of family.samples) {
        if (!names.has(s.name)) continue;
        for (const pod of ['p0', 'p1']) {
          result.push({
            metric: { ...s.labels, __name__: s.name, namespace: 'ns', pod, [FIELD_LABEL]: 'value' },
            value: [NOW, String(s.value)],
          });
        }
      }
    }
    for (const pod of ['p0', 'p1']) {
      result.push({ metric: { namespace: 'ns', pod, [FIELD_LABEL]: 'ts' }, value: [NOW, String(NOW - 5)] });
    }
    const { pools } = attribute(kind, decodeVector({ resultType: 'vector', result }), index);
    const groups = pools.get(pool.poolKey)?.groups;
    const spec = SIGNAL_KINDS[kind];
    const gate = judgeSignal({
      signal: kind,
      range: spec.range,
      rankRule: spec.rankRule,
      nowSeconds: NOW,
      staleAfterSeconds: 60,
      minQuorumPercentage: 50,
      groups: pool.heads.map((h) => {
        const g = groups?.get(h.groupKey);
        return { groupKey: h.groupKey, ready: true, ...(g ? { ranks: g.ranks } : {}) };
      }),
    });
    if (gate.state === 'ok') {
      // Two groups, each at most (ranks × per-rank max); a page has far fewer than 1e6 ranks.
      assertUsable(gate.poolTotal ?? Number.NaN, 2 * 200_000 * RANGE_MAX[spec.range], `${kind} gate total`);
    } else if (gate.poolTotal !== undefined) {
      throw new Error(`${kind}: state ${gate.state} carries a total`);
    }
  }
}

describe(`${PAGES} mutated metric pages through parse, extract and gate`, () => {
  it('never throw, and every ok value is finite and within its range', {
    timeout: Math.max(60_000, PAGES * 30),
  }, () => {
    fc.assert(
      fc.property(pageArb, (text) => {
        podsPath(text);
        prometheusPath(text);
      }),
      { numRuns: PAGES },
    );
  });

  it('a count of 1e308 on one rank: the scrape and the gate both say outOfRange, not ok', () => {
    const text = 'vllm:num_requests_waiting{engine="0"} 1e308\nvllm:num_requests_waiting{engine="1"} 1e308\n';
    expect(extractEngineSignals(parseExposition(text), { dialect: 'vllm' }).requestsWaiting.state).toBe(
      'outOfRange',
    );
    const gate = judgeSignal({
      signal: 'queueDepth',
      range: 'count',
      rankRule: 'sum',
      nowSeconds: NOW,
      staleAfterSeconds: 60,
      minQuorumPercentage: 50,
      groups: [
        {
          groupKey: 'g0',
          ready: true,
          ranks: [
            { rank: '0', value: 1e308, timestampSeconds: NOW },
            { rank: '1', value: 1e308, timestampSeconds: NOW },
          ],
        },
      ],
    });
    expect(gate.state).toBe('outOfRange');
    expect(gate.poolTotal).toBeUndefined();
  });

  it('140,000 series of one name: the max over ranks is computed without a stack overflow', () => {
    const lines = Array.from(
      { length: 140_000 },
      (_, i) => `vllm:kv_cache_usage_perc{engine="${i}"} ${(i % 10) / 10}`,
    );
    const signals = extractEngineSignals(parseExposition(`${lines.join('\n')}\n`), { dialect: 'vllm' });
    expect(signals.kvCacheUsageMaxFraction).toMatchObject({ state: 'ok', value: 0.9 });
  });
});
