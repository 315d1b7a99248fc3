import { describe, expect, it } from 'vitest';
import type { MetricSpec, PodAutoscalerSpec } from './podautoscaler.ts';
import type { Policy } from './policy.ts';
import { resolveAll, trendWindowSeconds } from './resolve.ts';

describe('the trend window a pool resolves to', () => {
  it('is half the horizon, at least 300 s: a 600 s horizon reads 300 s, a 2,400 s one 1,200 s, none 300 s', () => {
    expect(trendWindowSeconds({ horizonSeconds: 600 })).toBe(300);
    expect(trendWindowSeconds({ horizonSeconds: 2400 })).toBe(1200);
    expect(trendWindowSeconds({ horizonSeconds: 0 })).toBe(300);
  });
});

describe('a promql metric on the pods source', () => {
  const promql: MetricSpec = { type: 'promql', name: 'load', query: 'sum(x)', kind: 'total', target: 8 };
  const queue: MetricSpec = { type: 'queueDepth', target: 5 };
  const preset: Policy = {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'ScalingPolicy',
    metadata: { name: 'by-query' },
    spec: { description: 'scales on a query', behavior: { metrics: [queue, promql] } },
  };
  const policies = new Map([['by-query', preset]]);
  const spec = (over: Partial<PodAutoscalerSpec>, metrics?: MetricSpec[]): PodAutoscalerSpec => ({
    mode: 'DryRun',
    policyRef: { name: 'by-query' },
    metricsSource: { pods: { port: 8000 } },
    pools: [
      {
        name: 'decode',
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'd' },
        maxReplicas: 4,
        ...(metrics !== undefined ? { metrics } : {}),
      },
    ],
    ...over,
  });
  const errors = (s: PodAutoscalerSpec) =>
    resolveAll(s, policies).errors.map((e) => ({ path: e.path, message: e.message, hint: e.hint }));

  it('is refused after resolution when a preset supplies it, naming the preset, the pool and the fix', () => {
    expect(errors(spec({}))).toEqual([
      {
        path: 'spec.pools[0].metrics',
        message: expect.stringContaining(
          'preset by-query gives pool "decode" a promql metric, metrics[1] (load): type promql needs metricsSource.prometheus',
        ),
        hint: expect.stringContaining('set metricsSource.prometheus.address'),
      },
    ]);
  });

  it("names the element when the pool's own metrics or the overrides hold it", () => {
    expect(errors(spec({}, [promql])).map((e) => e.path)).toEqual(['spec.pools[0].metrics[0]']);
    const overridden = spec({ policyRef: { name: 'by-query', overrides: { metrics: [queue, promql] } } });
    expect(errors(overridden).map((e) => e.path)).toEqual(['spec.policyRef.overrides.metrics[1]']);
  });

  it('resolves on the Prometheus source, and on pods once the pool sets built-in metrics', () => {
    expect(errors(spec({ metricsSource: { prometheus: { address: 'http://p:9090' } } }))).toEqual([]);
    expect(errors(spec({}, [queue]))).toEqual([]);
  });
});
