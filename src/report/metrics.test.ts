// The controller's own metrics, driven through the ControllerObserver hooks and read back the way
// Prometheus would: an HTTP scrape of /metrics, parsed by our own exposition parser.
import { afterEach, describe, expect, it } from 'vitest';
import type { PoolFacts } from '../control/status.ts';
import type { Decision, SignalExplanation, StageName, StageRecord } from '../decide/types.ts';
import { type MetricFamily, parseExposition } from '../observe/exposition.ts';
import {
  ControllerMetrics,
  holdReason,
  Liveness,
  limitingStage,
  type MetricsServer,
  startMetricsServer,
} from './metrics.ts';

const KEY = 'llm/deepseek';

function facts(over: Partial<PoolFacts> = {}): PoolFacts {
  return {
    name: 'decode',
    specGroups: 3,
    readyGroups: 2,
    desiredGroups: 3,
    recommendedGroups: 4,
    decision: null,
    lastScaleTime: null,
    decisionTime: null,
    ledger: null,
    writeError: null,
    overriddenMessage: null,
    drain: null,
    drainUnavailable: null,
    ...over,
  };
}

function stage(s: StageName, applied: boolean): StageRecord {
  return { stage: s, before: 0, after: 0, applied, reason: `${s} test` };
}

function decision(
  over: { desired?: number; valid?: boolean; inPanic?: boolean; stages?: StageRecord[] } = {},
  signals: SignalExplanation[] = [
    { name: 'kvCacheUtilization', state: 'ok', targetPerGroup: 0.7, stableTotal: 2.1, panicTotal: 2.6 },
  ],
): Decision {
  return {
    desiredGroups: over.desired ?? 4,
    valid: over.valid ?? true,
    inPanic: over.inPanic ?? false,
    explanation: {
      readyGroups: 2,
      requestedGroups: 3,
      signals,
      stableWinner: null,
      panicWinner: null,
      rawStableWant: null,
      rawPanicWant: null,
      maxScaleUp: null,
      maxScaleDown: null,
      panic: { inPanic: over.inPanic ?? false, transition: 'none', ratio: null, threshold: 2 },
      stages: over.stages ?? [stage('compute', true), stage('rateLimit', false), stage('bounds', false)],
      holdReason: null,
      summary: 'test',
    },
  };
}

let server: MetricsServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function scrape(metrics: ControllerMetrics): Promise<Map<string, MetricFamily>> {
  server ??= await startMetricsServer(metrics, { port: 0, host: '127.0.0.1' });
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  const parsed = parseExposition(await res.text());
  expect(parsed.errors).toEqual([]);
  return new Map(parsed.families.map((f) => [f.name, f]));
}

/** The value of the one sample of `family` whose labels include `labels`, or undefined. */
function value(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string>,
  sampleName = name,
): number | undefined {
  const matches = (families.get(name)?.samples ?? []).filter(
    (s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  expect(matches.length).toBeLessThanOrEqual(1);
  return matches[0]?.value;
}

const POOL = { namespace: 'llm', name: 'deepseek', pool: 'decode' };

describe('ControllerMetrics', () => {
  it('exports desired, spec and ready groups, panic and signal values per pool', async () => {
    const m = new ControllerMetrics({ processMetrics: false });
    m.pool(KEY, 'decode', facts(), decision({ desired: 4, inPanic: true }));
    const f = await scrape(m);
    expect(f.get('kvpa_pool_desired_groups')?.type).toBe('gauge');
    expect(value(f, 'kvpa_pool_desired_groups', POOL)).toBe(4);
    expect(value(f, 'kvpa_pool_spec_groups', POOL)).toBe(3);
    expect(value(f, 'kvpa_pool_ready_groups', POOL)).toBe(2);
    expect(value(f, 'kvpa_pool_target_found', POOL)).toBe(1);
    expect(value(f, 'kvpa_pool_panic', POOL)).toBe(1);
    const sig = { ...POOL, signal: 'kvCacheUtilization' };
    expect(value(f, 'kvpa_pool_signal_stable_value', sig)).toBe(2.1);
    expect(value(f, 'kvpa_pool_signal_panic_value', sig)).toBe(2.6);
    expect(value(f, 'kvpa_pool_signal_target_per_group', sig)).toBe(0.7);
    expect(value(f, 'kvpa_pool_signal_usable', sig)).toBe(1);
  });

  it('an unusable signal loses its values but stays visible as usable=0; a removed signal disappears', async () => {
    const m = new ControllerMetrics({ processMetrics: false });
    m.pool(
      KEY,
      'decode',
      facts(),
      decision({}, [
        { name: 'kvCacheUtilization', state: 'ok', targetPerGroup: 0.7, stableTotal: 2.1, panicTotal: 2.6 },
        { name: 'queueDepth', state: 'ok', targetPerGroup: 4, stableTotal: 9, panicTotal: 12 },
      ]),
    );
    m.pool(
      KEY,
      'decode',
      facts(),
      decision({}, [{ name: 'kvCacheUtilization', state: 'stale', targetPerGroup: 0.7, detail: 'old' }]),
    );
    const f = await scrape(m);
    const kv = { ...POOL, signal: 'kvCacheUtilization' };
    expect(value(f, 'kvpa_pool_signal_usable', kv)).toBe(0);
    expect(value(f, 'kvpa_pool_signal_stable_value', kv)).toBeUndefined();
    expect(value(f, 'kvpa_pool_signal_panic_value', kv)).toBeUndefined();
    const q = { ...POOL, signal: 'queueDepth' };
    expect(value(f, 'kvpa_pool_signal_usable', q)).toBeUndefined();
    expect(value(f, 'kvpa_pool_signal_target_per_group', q)).toBeUndefined();
  });

  it('a missing target drops spec/ready, says target_found 0, and keeps the last decision', async () => {
    const m = new ControllerMetrics({ processMetrics: false });
    m.pool(KEY, 'decode', facts(), decision({ desired: 5 }));
    m.pool(KEY, 'decode', facts({ specGroups: null, readyGroups: null, recommendedGroups: 0 }), null);
    const f = await scrape(m);
    expect(value(f, 'kvpa_pool_target_found', POOL)).toBe(0);
    expect(value(f, 'kvpa_pool_spec_groups', POOL)).toBeUndefined();
    expect(value(f, 'kvpa_pool_ready_groups', POOL)).toBeUndefined();
    expect(value(f, 'kvpa_pool_desired_groups', POOL)).toBe(5);
    // Only the first call decided; the unreadable tick is not counted as a decision.
    expect(value(f, 'kvpa_decisions_total', { ...POOL, limited_by: 'none' })).toBe(1);
  });

  it('counts decisions by the stage that limited the want, and holds by reason', async () => {
    const m = new ControllerMetrics({ processMetrics: false });
    m.pool(KEY, 'decode', facts(), decision());
    m.pool(KEY, 'decode', facts(), decision());
    m.pool(
      KEY,
      'decode',
      facts(),
      decision({ stages: [stage('compute', true), stage('rateLimit', true), stage('bounds', false)] }),
    );
    // rateLimit then bounds both changed it: bounds set the final value.
    m.pool(
      KEY,
      'decode',
      facts(),
      decision({ stages: [stage('compute', true), stage('rateLimit', true), stage('bounds', true)] }),
    );
    m.pool(KEY, 'decode', facts(), decision({ stages: [stage('compute', true), stage('startup', true)] }));
    m.pool(
      KEY,
      'decode',
      facts(),
      decision({ valid: false, stages: [stage('compute', true), stage('missingData', true)] }),
    );
    const f = await scrape(m);
    expect(f.get('kvpa_decisions_total')?.type).toBe('counter');
    const d = (limited_by: string) => value(f, 'kvpa_decisions_total', { ...POOL, limited_by });
    expect(d('none')).toBe(2);
    expect(d('rateLimit')).toBe(1);
    expect(d('bounds')).toBe(1);
    expect(d('startup')).toBe(1);
    expect(d('missingData')).toBe(1);
    const h = (reason: string) => value(f, 'kvpa_decision_holds_total', { ...POOL, reason });
    expect(h('startup')).toBe(1);
    expect(h('noSignal')).toBe(1);
    expect(h('missingData')).toBeUndefined(); // the invalid decision counts once, as noSignal
  });

  it('counts write errors per pool and observes tick durations in a histogram', async () => {
    const m = new ControllerMetrics({ processMetrics: false });
    m.writeError(KEY, 'decode');
    m.writeError(KEY, 'decode');
    m.writeError(KEY, 'prefill');
    m.tick(0.003);
    m.tick(0.2);
    m.tick(3);
    const f = await scrape(m);
    expect(value(f, 'kvpa_write_errors_total', POOL)).toBe(2);
    expect(value(f, 'kvpa_write_errors_total', { ...POOL, pool: 'prefill' })).toBe(1);
    const hist = f.get('kvpa_tick_duration_seconds');
    expect(hist?.type).toBe('histogram');
    const bucket = (le: string) =>
      value(f, 'kvpa_tick_duration_seconds', { le }, 'kvpa_tick_duration_seconds_bucket');
    expect(bucket('0.005')).toBe(1);
    expect(bucket('0.25')).toBe(2);
    expect(bucket('2.5')).toBe(2);
    expect(bucket('+Inf')).toBe(3);
    expect(value(f, 'kvpa_tick_duration_seconds', {}, 'kvpa_tick_duration_seconds_count')).toBe(3);
    expect(value(f, 'kvpa_tick_duration_seconds', {}, 'kvpa_tick_duration_seconds_sum')).toBeCloseTo(
      3.203,
      6,
    );
  });

  it('drops every series of a pool that stops reporting (deleted autoscaler), and only those', async () => {
    let nowMs = 1_000_000;
    const m = new ControllerMetrics({ processMetrics: false, nowMs: () => nowMs, staleAfterSeconds: 60 });
    m.pool(KEY, 'decode', facts(), decision({ stages: [stage('compute', true), stage('startup', true)] }));
    m.writeError(KEY, 'decode');
    m.pool('llm/other', 'decode', facts(), decision());
    nowMs += 30_000;
    m.pool('llm/other', 'decode', facts(), decision());
    m.tick(0.01);
    let f = await scrape(m);
    expect(value(f, 'kvpa_pool_spec_groups', POOL)).toBe(3); // 30 s quiet: still live
    nowMs += 31_000;
    m.pool('llm/other', 'decode', facts(), decision());
    f = await scrape(m);
    const gone = (family: string) =>
      (f.get(family)?.samples ?? []).filter((s) => s.labels.name === 'deepseek').length;
    for (const family of [
      'kvpa_pool_desired_groups',
      'kvpa_pool_spec_groups',
      'kvpa_pool_ready_groups',
      'kvpa_pool_target_found',
      'kvpa_pool_panic',
      'kvpa_pool_signal_stable_value',
      'kvpa_pool_signal_panic_value',
      'kvpa_pool_signal_target_per_group',
      'kvpa_pool_signal_usable',
      'kvpa_decisions_total',
      'kvpa_decision_holds_total',
      'kvpa_write_errors_total',
    ]) {
      expect(gone(family), family).toBe(0);
    }
    expect(value(f, 'kvpa_pool_spec_groups', { ...POOL, name: 'other' })).toBe(3);
  });

  it('forget(key) drops one autoscaler at once', async () => {
    const m = new ControllerMetrics({ processMetrics: false });
    m.pool(KEY, 'decode', facts(), decision());
    m.pool(KEY, 'prefill', facts(), decision());
    m.pool('llm/deepseek-v2', 'decode', facts(), decision()); // shares a prefix, must survive
    m.forget(KEY);
    const f = await scrape(m);
    const names = (f.get('kvpa_pool_spec_groups')?.samples ?? []).map(
      (s) => `${s.labels.name}/${s.labels.pool}`,
    );
    expect(names).toEqual(['deepseek-v2/decode']);
  });

  it('serves /healthz, 404 elsewhere, and process metrics when asked', async () => {
    const m = new ControllerMetrics({ processMetrics: true });
    const f = await scrape(m);
    expect(f.has('process_cpu_user_seconds_total')).toBe(true);
    const port = server?.port;
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});

describe('Liveness (/healthz)', () => {
  it('1 s ticks, 30 allowed: live at 30 s without a tick, not at 31 s; a tick revives it', () => {
    let nowMs = 0;
    const live = new Liveness({ tickPeriodMs: 1000, maxMissedTicks: 30, monoMs: () => nowMs });
    live.expect(true);
    nowMs = 30_000;
    expect(live.check().ok).toBe(true);
    nowMs = 31_000;
    expect(live.check()).toEqual({ ok: false, detail: 'no tick completed for 31s (limit 30s)' });
    live.ticked();
    expect(live.check().ok).toBe(true);
  });

  it('a standby, whose loop is not running, stays live however long it waits', () => {
    let nowMs = 0;
    const live = new Liveness({ monoMs: () => nowMs }); // default: 300 × 1 s
    nowMs = 3_600_000;
    expect(live.check().ok).toBe(true);
    live.expect(true);
    live.expect(false);
    nowMs += 3_600_000;
    expect(live.check().ok).toBe(true);
    live.expect(true);
    nowMs += 300_000;
    expect(live.check().ok).toBe(true);
    nowMs += 1_000;
    expect(live.check()).toEqual({ ok: false, detail: 'no tick completed for 301s (limit 300s)' });
  });

  it('/healthz answers 503 with the reason once ticks stop', async () => {
    let nowMs = 0;
    const m = new ControllerMetrics({
      processMetrics: false,
      liveness: { tickPeriodMs: 1000, maxMissedTicks: 30, monoMs: () => nowMs },
    });
    m.liveness.expect(true);
    const s = await startMetricsServer(m, { port: 0, health: () => m.liveness.check() });
    try {
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
      nowMs = 60_000;
      const res = await fetch(`http://127.0.0.1:${s.port}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('no tick completed for 60s');
      m.tick(0.01);
      expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('label helpers', () => {
  it('limitingStage ignores compute and picks the last applied stage', () => {
    expect(limitingStage(decision({ stages: [stage('compute', true)] }))).toBe('none');
    expect(
      limitingStage(
        decision({ stages: [stage('compute', true), stage('panic', true), stage('bounds', false)] }),
      ),
    ).toBe('panic');
  });

  it('holdReason is null when the decision followed its signals', () => {
    expect(holdReason(decision())).toBeNull();
    expect(holdReason(decision({ stages: [stage('compute', true), stage('missingData', true)] }))).toBe(
      'missingData',
    );
  });
});
