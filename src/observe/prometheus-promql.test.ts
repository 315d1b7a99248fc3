import { describe, expect, it } from 'vitest';
import { endpointKeyOf } from '../control/signals.ts';
import type { PoolRegistration, PromSample } from './prometheus-join.ts';
import {
  judgePromqlPerGroup,
  judgePromqlTotal,
  labelText,
  type PromqlMetric,
  promqlLabelRule,
  promqlMetricOf,
} from './prometheus-promql.ts';

const NOW = 1_000_000;

const pool: PoolRegistration = {
  poolKey: 'ns/pa/decode',
  namespace: 'ns',
  heads: [
    { pod: 'd-0', groupKey: 'g0', ready: true },
    { pod: 'd-1', groupKey: 'g1', ready: true },
    { pod: 'd-2', groupKey: 'g2', ready: false },
  ],
  engine: 'auto',
  signals: [],
};

const perGroup: PromqlMetric = { name: 'load', query: 'x', kind: 'perGroup' };
const total: PromqlMetric = { name: 'gw', query: 'sum(x)', kind: 'total' };

const s = (labels: Record<string, string>, value: number): PromSample => ({ labels, value });
const judge = (samples: PromSample[], quorum = 50) =>
  judgePromqlPerGroup(perGroup, samples, pool, NOW, 60, quorum);

describe('promql perGroup verdict', () => {
  it('joins series to head pods by namespace/pod and sums ready groups only', () => {
    const r = judge([
      s({ namespace: 'ns', pod: 'd-0' }, 2),
      s({ namespace: 'ns', pod: 'd-1' }, 3),
      s({ namespace: 'ns', pod: 'd-2' }, 100), // not ready: no load we can scale on
      s({ namespace: 'other', pod: 'd-0' }, 50), // another namespace's pod of the same name
    ]);
    expect(r).toMatchObject({ state: 'ok', poolTotal: 5, estimatedGroups: 0 });
    expect(r.groupValues?.get('g1')).toBe(3);
    expect(r.detail).toContain('other/d-0');
  });

  it('a missing group is counted at the reporting mean (no scale-down), not at 0', () => {
    const r = judge([s({ namespace: 'ns', pod: 'd-0' }, 4)]);
    expect(r).toMatchObject({ state: 'ok', poolTotal: 8, estimatedGroups: 1 });
    expect(judge([s({ namespace: 'ns', pod: 'd-0' }, 4)], 100).state).toBe('noQuorum');
  });

  it('series without the pod label give noData naming the rule', () => {
    const r = judge([s({ namespace: 'ns' }, 7)]);
    expect(r.state).toBe('noData');
    expect(r.poolTotal).toBeUndefined();
    expect(r.detail).toContain('without namespace and pod labels');
    expect(r.detail).toContain(promqlLabelRule('perGroup'));
  });

  it('a reason shows at most three series, each cut short', () => {
    const long = Array.from({ length: 10 }, (_, i) => s({ namespace: 'ns', job: 'x'.repeat(500 + i) }, 1));
    const r = judge(long);
    expect(r.state).toBe('noData');
    expect(r.detail).toContain('and 7 more');
    expect(r.detail.length).toBeLessThan(1000);
    expect(labelText({ a: 'b' })).toBe('{a="b"}');
  });

  it('an empty answer is noData, never zero', () => {
    const r = judge([]);
    expect(r.state).toBe('noData');
    expect(r.detail).toContain('missing is not zero');
  });

  it('several series for one head pod break the rule: outOfRange', () => {
    const r = judge([
      s({ namespace: 'ns', pod: 'd-0', engine: '0' }, 1),
      s({ namespace: 'ns', pod: 'd-0', engine: '1' }, 1),
      s({ namespace: 'ns', pod: 'd-1' }, 1),
    ]);
    expect(r.state).toBe('outOfRange');
    expect(r.detail).toContain('ns/d-0 (2)');
    expect(r.detail).toContain('one series per group head pod');
  });

  it.each([
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [-1, '-1 < 0'],
    [1e13, '> 1000000000000'],
  ])('rejects %s and names the value rule', (bad, why) => {
    const r = judge([s({ namespace: 'ns', pod: 'd-0' }, bad), s({ namespace: 'ns', pod: 'd-1' }, bad)]);
    expect(r.state).toBe('outOfRange');
    expect(r.poolTotal).toBeUndefined();
    expect(r.detail).toContain(why);
    expect(r.detail).toContain('must be finite');
  });
});

describe('promql total verdict', () => {
  it('one series is the pool total, whatever its labels', () => {
    expect(judgePromqlTotal(total, [s({ job: 'gateway' }, 12.5)], pool)).toMatchObject({
      state: 'ok',
      poolTotal: 12.5,
    });
  });

  it('no series is noData; several are outOfRange naming the rule', () => {
    expect(judgePromqlTotal(total, [], pool).state).toBe('noData');
    const r = judgePromqlTotal(total, [s({ pod: 'a' }, 1), s({ pod: 'b' }, 2)], pool);
    expect(r.state).toBe('outOfRange');
    expect(r.detail).toContain('returned 2 series');
    expect(r.detail).toContain('exactly one series');
  });

  it('a NaN or negative total is outOfRange, never 0', () => {
    for (const bad of [Number.NaN, -3, Number.NEGATIVE_INFINITY]) {
      const r = judgePromqlTotal(total, [s({}, bad)], pool);
      expect(r.state).toBe('outOfRange');
      expect(r.poolTotal).toBeUndefined();
    }
  });
});

describe('promql wiring rules', () => {
  it('a spec entry becomes a promql metric only with query and kind', () => {
    expect(promqlMetricOf({ type: 'promql', target: 1, query: 'q', name: 'n', kind: 'total' })).toEqual({
      name: 'n',
      query: 'q',
      kind: 'total',
    });
    expect(promqlMetricOf({ type: 'queueDepth', target: 1 })).toBeNull();
  });

  it('a pool with a promql metric gets its own source call; other pools stay batched', () => {
    const request = (poolKey: string, promql: boolean) =>
      ({
        poolKey,
        namespace: 'ns',
        heads: [],
        metricsSource: { prometheus: { address: 'http://prom:9090' } },
        pool: {
          metrics: promql
            ? [{ type: 'promql', target: 1, query: 'q', name: 'n', kind: 'total' }]
            : [{ type: 'queueDepth', target: 1 }],
        },
      }) as unknown as Parameters<typeof endpointKeyOf>[0];
    expect(endpointKeyOf(request('a', false))).toBe(endpointKeyOf(request('b', false)));
    expect(endpointKeyOf(request('a', true))).not.toBe(endpointKeyOf(request('b', true)));
    expect(endpointKeyOf(request('a', true))).not.toBe(endpointKeyOf(request('a', false)));
  });
});
