/**
 * The seasonal memory seeded from a REAL Prometheus (Debian's binary) that holds a day of kvpa's own
 * exported series, written as blocks with promtool (`tsdb create-blocks-from openmetrics`) before it starts,
 * as a long-running Prometheus would hold them. Read through the controller's routing source, as a
 * restarted controller does, then planned on by the one PoolRunner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../../src/api/documents.ts';
import type { PodAutoscalerSpec } from '../../src/api/podautoscaler.ts';
import { poolRunnerFor, type ResolvedPool, resolveAll } from '../../src/api/resolve.ts';
import { RoutingSignalSource } from '../../src/control/sources.ts';
import type { PoolSample } from '../../src/decide/pool-runner.ts';
import { ownHistoryQuery } from '../../src/observe/prometheus-source.ts';
import { type PrometheusHarness, startPrometheus } from '../harness/prometheus.ts';

const DAY = 86_400;
const NOW = Math.floor(Date.now() / 1000 / 60) * 60;
const THEN = NOW - DAY;

/**
 * A day ago team-a's prefill pool carried 100k prompt tokens/s, and 180k from two minutes after this
 * hour; it was scraped without honor_labels (its namespace moved to exported_namespace). team-b's pool of
 * the same names, scraped with honor_labels, carried 999k: it must never reach team-a.
 */
function history(): string {
  const lines = [
    '# HELP kvpa_pool_signal_stable_value kvpa pool signal, stable window',
    '# TYPE kvpa_pool_signal_stable_value gauge',
  ];
  const series = [
    {
      labels:
        'exported_namespace="team-a",namespace="kvpa-system",name="r1",pool="prefill",signal="promptTokens"',
      value: (t: number) => (t < THEN + 120 ? 100_000 : 180_000),
    },
    {
      labels: 'namespace="team-b",name="r1",pool="prefill",signal="promptTokens"',
      value: () => 999_000,
    },
  ];
  for (const s of series)
    for (let t = THEN - 1800; t <= THEN + 1800; t += 60)
      lines.push(`kvpa_pool_signal_stable_value{${s.labels}} ${s.value(t)} ${t}`);
  return `${lines.join('\n')}\n# EOF\n`;
}

let prom: PrometheusHarness;

beforeAll(async () => {
  prom = await startPrometheus({ history: history() });
}, 60_000);

afterAll(async () => {
  await prom?.stop();
}, 15_000);

function prefillPool(address: string): ResolvedPool {
  const { pools, errors } = resolveAll(
    {
      mode: 'Apply',
      policyRef: { name: 'deepseek-r1-disaggregated' },
      metricsSource: { prometheus: { address } },
      pools: [
        {
          name: 'prefill',
          scaleTargetRef: {
            apiVersion: 'leaderworkerset.x-k8s.io/v1',
            kind: 'LeaderWorkerSet',
            name: 'r1-prefill',
          },
          maxReplicas: 64,
        },
      ],
    } as PodAutoscalerSpec,
    loadPolicies().policies,
  );
  const pool = pools[0];
  if (pool === undefined)
    throw new Error(`the test pool did not resolve: ${errors.map((e) => e.message).join('; ')}`);
  return pool;
}

function request(namespace: string, pool: ResolvedPool, address: string) {
  return {
    poolKey: `${namespace}/r1/prefill`,
    namespace,
    pool,
    heads: [],
    metricsSource: { prometheus: { address } },
  };
}

describe('the seasonal memory from kvpa_pool_signal_stable_value in a real Prometheus', () => {
  it('a restarted controller reads a day back for its own pool only: team-a gets 100k then 180k, never team-b’s 999k', async () => {
    const pool = prefillPool(prom.url);
    expect(pool.seasonalLookbackSeconds).toEqual([DAY, 7 * DAY]);
    const routing = new RoutingSignalSource();
    const a = await routing.ownHistory(
      request('team-a', pool, prom.url),
      'r1',
      ['promptTokens'],
      NOW - 7 * DAY - 300,
      NOW - 1,
      60,
    );
    const points = a.get('promptTokens') ?? [];
    expect(points.length).toBeGreaterThanOrEqual(55);
    expect(new Set(points.map((p) => p.total))).toEqual(new Set([100_000, 180_000]));
    expect(points.every((p) => p.atSeconds >= THEN - 1800 && p.atSeconds <= THEN + 1800 + 300)).toBe(true);
    const b = await routing.ownHistory(
      request('team-b', pool, prom.url),
      'r1',
      ['promptTokens'],
      NOW - DAY - 3600,
      NOW - 1,
      60,
    );
    expect(new Set(b.get('promptTokens')?.map((p) => p.total))).toEqual(new Set([999_000]));

    // Seeded into the runner, the plan names the day: 180k / 100k = ×1.8, capped at 1.5× today's flow.
    const runner = poolRunnerFor(pool);
    expect(runner.seedSeasonal(a)).toBe(points.length);
    runner.start(NOW - 200, 2, 2);
    const sample: PoolSample = { name: 'promptTokens', state: 'ok', total: 100_000, backlog: 0 };
    for (let t = NOW - 130; t <= NOW; t++) runner.record([sample], t);
    const d = runner.decide(NOW, 2, 2, [sample]);
    const e = d.explanation.signals.find((s) => s.name === 'promptTokens');
    expect(e?.plannedBy).toBe('seasonal');
    expect(e?.seasonalRatio).toBeCloseTo(1.8, 6);
    expect(e?.projectedTotal).toBeCloseTo(150_000, 0);
    const horizon = d.explanation.stages.find((s) => s.stage === 'horizon');
    expect(horizon?.reason).toContain('1 day ago rose ×1.8');
    expect(horizon?.applied).toBe(true);
  }, 30_000);

  it('an unreachable Prometheus is an error for the caller to log, and a direct-scrape pool has no history', async () => {
    const pool = prefillPool('http://127.0.0.1:9');
    const routing = new RoutingSignalSource();
    await expect(
      routing.ownHistory(
        request('team-a', pool, 'http://127.0.0.1:9'),
        'r1',
        ['promptTokens'],
        NOW - 3600,
        NOW,
        60,
      ),
    ).rejects.toThrow();
    const direct = await routing.ownHistory(
      { ...request('team-a', pool, prom.url), metricsSource: { pods: { port: 8000 } } },
      'r1',
      ['promptTokens'],
      NOW - 3600,
      NOW,
      60,
    );
    expect(direct.size).toBe(0);
  }, 30_000);

  it('label values are quoted for PromQL: a quote in a name cannot widen the selector', () => {
    const q = ownHistoryQuery({ namespace: 'a"b', name: 'r1', pool: 'p' }, ['x|y']);
    expect(q).toContain('namespace="a\\"b"');
    expect(q).toContain('signal=~"x\\\\|y"');
  });
});
