/**
 * Each cross-field rule exists twice: as CEL in the CRD (the API server enforces it) and as a
 * TypeScript check (kvpa validate and the controller enforce it). This evaluates both on the same
 * generated objects with a CEL interpreter, so the two cannot drift apart.
 */
import { evaluate } from '@marcbachmann/cel-js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  httpUrlRules,
  type MetricSpec,
  type MetricsSource,
  metricListRules,
  metricRules,
  metricsSourceRules,
  type PodAutoscalerSpec,
  PodAutoscalerSpecSchema,
  type PoolSpec,
  poolRules,
  promqlSourceRule,
  type Ratio,
  ratioRules,
  SCALE_TARGET_KINDS,
  type ScaleTargetRef,
  scaleTargetRules,
  specRules,
} from './podautoscaler.ts';
import type { CrossFieldRule } from './rules.ts';

const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
/** Drops undefined fields, as YAML/JSON would: CEL's has() sees only present fields. */
const clean = <T extends object>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

const targetRef: fc.Arbitrary<ScaleTargetRef> = fc
  .record({
    apiVersion: fc.oneof(
      fc.constantFrom(
        'x/v1',
        'leaderworkerset.x-k8s.io/v1',
        'apps/v1',
        'ray.io/v1',
        'grove.io/v1alpha1',
        'orchestration.aibrix.ai/v1alpha1',
        'nvidia.com/v1alpha1',
        'disaggregatedset.x-k8s.io/v1beta2',
        'apps/',
        'apps',
        'leaderworkersetXx-k8s.io/v1',
        'ray.io/v1/x',
      ),
      fc.string({ maxLength: 30 }),
    ),
    kind: fc.constantFrom(...SCALE_TARGET_KINDS),
    name: fc.constantFrom('a', 'b'),
    workerGroupName: opt(fc.constantFrom('w1', 'w2')),
    roleName: opt(fc.constantFrom('prefill', 'decode')),
  })
  .map(clean);

const metric: fc.Arbitrary<MetricSpec> = fc
  .record({
    type: fc.constantFrom('kvCacheUtilization', 'queueDepth', 'runningRequests', 'promql' as const),
    target: fc.oneof(fc.double({ min: 0.01, max: 3, noNaN: true }), fc.constantFrom(1, 0.7, 1.0000001)),
    query: opt(fc.constantFrom('sum(x)', 'sum(x)', ' ', '\n\t')),
    name: opt(fc.constant('x')),
    kind: opt(fc.constantFrom('perGroup', 'total' as const)),
  })
  .map(clean);

const pool: fc.Arbitrary<PoolSpec> = fc
  .record({
    name: fc.constantFrom('prefill', 'decode', 'x'),
    scaleTargetRef: targetRef,
    minReplicas: opt(fc.integer({ min: 0, max: 6 })),
    maxReplicas: fc.integer({ min: 1, max: 6 }),
    missingData: opt(fc.record({ fallbackMinReplicas: opt(fc.integer({ min: 0, max: 8 })) }).map(clean)),
    ranksOn: opt(fc.constantFrom('head' as const, 'all' as const)),
  })
  .map(clean);

const source: fc.Arbitrary<MetricsSource> = fc
  .record({
    prometheus: opt(fc.constant({ address: 'http://p:9090' })),
    pods: opt(fc.constant({ port: 8000 })),
  })
  .map(clean);

const spec = fc
  .record({
    mode: fc.constant('DryRun' as const),
    metricsSource: source,
    pools: fc.array(pool, { minLength: 1, maxLength: 4 }),
  })
  .map((s) => clean(s) as PodAutoscalerSpec);

/** Pools with and without their own metrics, and overrides.metrics now and then: where a pool's metrics come from. */
const specWithMetrics = fc
  .record({
    mode: fc.constant('DryRun' as const),
    metricsSource: source,
    policyRef: opt(
      fc
        .record({
          name: fc.constant('default'),
          overrides: opt(
            fc.record({ metrics: opt(fc.array(metric, { minLength: 1, maxLength: 3 })) }).map(clean),
          ),
        })
        .map(clean),
    ),
    pools: fc.array(
      fc
        .tuple(pool, opt(fc.array(metric, { minLength: 1, maxLength: 3 })))
        .map(([p, metrics]) => clean({ ...p, metrics })),
      { minLength: 1, maxLength: 3 },
    ),
  })
  .map((s) => clean(s) as PodAutoscalerSpec);

const url: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    'http://prometheus.monitoring:9090',
    'https://grafana.example.com/sub/',
    'https://g.example.com/a?b=c#d',
    'http://user:pass@grafana.example.com',
    'http://user@h',
    'file:///etc/passwd',
    'gopher://h:70',
    'HTTP://h',
    'http://h\\@evil',
    'http://h/ a',
    'http://h/a@b',
  ),
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.string({ maxLength: 40 }).map((t) => `http://${t}`),
);

function agree<T>(rules: readonly CrossFieldRule<T>[], arb: fc.Arbitrary<T>) {
  // Both outcomes must occur, or the comparison proves little.
  const seen = new Set<boolean>();
  fc.assert(
    fc.property(arb, (self) => {
      for (const rule of rules) {
        const viaCel = evaluate(rule.cel, { self });
        const viaTs = rule.check(self);
        seen.add(viaTs);
        expect(viaCel, `${rule.cel} on ${JSON.stringify(self)}`).toBe(viaTs);
      }
    }),
    { numRuns: 400 },
  );
  expect([...seen].sort()).toEqual([false, true]);
}

/** A coupling ratio with any of min, max and fromFlows, min above max now and then. */
const ratio: fc.Arbitrary<Ratio> = fc
  .record({
    min: opt(fc.constantFrom(0.5, 1, 2)),
    max: opt(fc.constantFrom(0.5, 1, 2)),
    fromFlows: opt(fc.record({ tolerance: opt(fc.constantFrom(0.1, 0.25)) }).map(clean)),
  })
  .map(clean);

describe('CEL and TypeScript say the same for every cross-field rule', () => {
  it('coupling.ratio: either min and max or fromFlows, and min ≤ max', () => agree(ratioRules, ratio));
  it("scaleTargetRef: apiVersion names the kind's group; RayCluster needs workerGroupName, StormService roleName", () =>
    agree(scaleTargetRules, targetRef));
  it('metrics: KV targets are fractions; promql needs query, name and kind; only promql has query/kind', () =>
    agree(metricRules, metric));
  it("metric lists: each metric's signal name is unique in its pool", () =>
    agree(metricListRules, fc.array(metric, { minLength: 1, maxLength: 4 })));
  it('pools: min ≤ max, fallback floor ≤ max, ranksOn all only where group members are listed', () =>
    agree(poolRules, pool));
  it('metricsSource: exactly one of prometheus or pods', () => agree(metricsSourceRules, source));
  it('URLs: http(s) only, no user:pass@, no whitespace or backslash', () => agree(httpUrlRules, url));
  it('spec: unique pool names, one scale target per pool', () => agree(specRules, spec));
  it("spec: a promql metric (the pool's own, else policyRef.overrides') needs metricsSource.prometheus", () =>
    agree([promqlSourceRule], specWithMetrics));
});

describe('a broken rule is reported where it is broken', () => {
  const promql = { type: 'promql', name: 'load', query: 'sum(x)', kind: 'total', target: 1 };
  const base = {
    metricsSource: { pods: { port: 8000 } },
    pools: [
      {
        name: 'decode',
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'd' },
        maxReplicas: 4,
        metrics: [{ type: 'queueDepth', target: 4 }, promql],
      },
    ],
  };
  const issues = (spec: unknown) => {
    const r = PodAutoscalerSpecSchema.safeParse(spec);
    return r.success ? [] : r.error.issues.map((i) => ({ path: i.path, message: i.message }));
  };

  it('names the promql metric of a pods-source pool, and the fix', () => {
    expect(issues(base)).toEqual([
      {
        path: ['pools', 0, 'metrics', 1],
        message: expect.stringMatching(
          /^type promql needs metricsSource\.prometheus .*: set metricsSource\.prometheus\.address or use a built-in metric type$/,
        ),
      },
    ]);
    expect(issues({ ...base, metricsSource: { prometheus: { address: 'http://p:9090' } } })).toEqual([]);
  });

  it("names policyRef.overrides' promql metric when a pool takes its metrics from there", () => {
    const { metrics: _m, ...ownless } = base.pools[0] ?? {};
    const spec = {
      ...base,
      policyRef: { name: 'default', overrides: { metrics: [promql] } },
      pools: [ownless],
    };
    expect(issues(spec).map((i) => i.path)).toEqual([['policyRef', 'overrides', 'metrics', 0]]);
  });

  it('falls back to the CEL fieldPath when a rule has no locate', () => {
    const pool = { ...base.pools[0], minReplicas: 9 };
    expect(
      issues({ ...base, metricsSource: { prometheus: { address: 'http://p:9090' } }, pools: [pool] }),
    ).toEqual([{ path: ['pools', 0, 'minReplicas'], message: 'minReplicas must not exceed maxReplicas' }]);
  });
});
