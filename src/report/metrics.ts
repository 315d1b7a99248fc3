/**
 * The controller's own Prometheus metrics (prom-client) and a tiny `/metrics` server.
 *
 * ControllerMetrics is a ControllerObserver: the controller calls pool() after each pool decision,
 * tick() after each pass and writeError() when a scale write fails. Every pool series is labelled
 * namespace, name (the PodAutoscaler) and pool; signal series add `signal`.
 *
 * Series of a pool that stops reporting (its PodAutoscaler was deleted, the pool renamed, or this
 * replica lost leadership) are dropped after `staleAfterSeconds`, checked on every tick and scrape,
 * so a deleted autoscaler never leaves a frozen gauge behind and a standby does not echo the leader.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ControllerObserver } from '../control/controller.ts';
import type { PoolFacts } from '../control/status.ts';
import type { Decision, StageName } from '../decide/types.ts';

export interface ControllerMetricsOptions {
  /** Clock for staleness (tests inject one). */
  readonly nowMs?: () => number;
  /**
   * A pool not reported for this long loses its series. Pools report every tick (≤ 60 s by the CRD's
   * tickSeconds bound), so the default of three maximal ticks never drops a live pool.
   */
  readonly staleAfterSeconds?: number;
  /** Node process metrics (CPU, memory, event-loop lag, GC) under the standard names. */
  readonly processMetrics?: boolean;
  /** For /healthz: see Liveness. */
  readonly liveness?: LivenessOptions;
}

export interface LivenessOptions {
  /** The controller's tick period (sampleIntervalMs). */
  readonly tickPeriodMs?: number;
  /** Unhealthy after this many periods without a completed tick. */
  readonly maxMissedTicks?: number;
  /** Monotonic clock (performance.now by default). */
  readonly monoMs?: () => number;
}

export interface HealthReport {
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * Liveness of the control loop: unhealthy when, while the loop is meant to run, no tick has completed
 * for maxMissedTicks tick periods, and the kubelet restarts the pod. The default, 300 × 1 s, sits above
 * a slow but progressing tick (one Prometheus call may take 121 s, a Kubernetes call 10 s), so a
 * tenant's slow endpoint cannot get the controller restarted; a loop that makes no progress at all
 * is. A standby replica, whose loop is not meant to run, is always live.
 */
export class Liveness {
  private readonly limitMs: number;
  private readonly mono: () => number;
  /** When the loop last completed a tick, or started; null while it is not meant to run. */
  private lastMs: number | null = null;

  constructor(options: LivenessOptions = {}) {
    this.limitMs = (options.tickPeriodMs ?? 1000) * (options.maxMissedTicks ?? 300);
    this.mono = options.monoMs ?? (() => performance.now());
  }

  /** The loop starts (true: leading, or no election) or stops (false: standby, shutting down). */
  expect(running: boolean): void {
    this.lastMs = running ? this.mono() : null;
  }

  ticked(): void {
    if (this.lastMs !== null) this.lastMs = this.mono();
  }

  check(): HealthReport {
    if (this.lastMs === null) return { ok: true, detail: 'standby: the loop is not running here' };
    const sinceMs = this.mono() - this.lastMs;
    return sinceMs > this.limitMs
      ? {
          ok: false,
          detail: `no tick completed for ${Math.round(sinceMs / 1000)}s (limit ${this.limitMs / 1000}s)`,
        }
      : { ok: true, detail: `last tick ${Math.round(sinceMs / 1000)}s ago` };
  }
}

const POOL_LABELS = ['namespace', 'name', 'pool'] as const;
const SIGNAL_LABELS = ['namespace', 'name', 'pool', 'signal'] as const;

type PoolLabels = Record<(typeof POOL_LABELS)[number], string>;
type SignalLabels = Record<(typeof SIGNAL_LABELS)[number], string>;

/** Why a decision held the current level instead of following the signals (bounded label values). */
export type HoldReason = 'noSignal' | 'startup' | 'missingData';

/** Tick durations from a fast in-memory pass to a slow API server; the loop ticks every second. */
const TICK_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What was exported for one pool, so its series can be removed label set by label set. */
interface PoolSeries {
  readonly labels: PoolLabels;
  readonly signals: Set<string>;
  readonly limitedBy: Set<string>;
  readonly holds: Set<string>;
  lastSeenMs: number;
}

export class ControllerMetrics implements ControllerObserver {
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly staleAfterMs: number;
  private readonly pools = new Map<string, PoolSeries>();
  readonly liveness: Liveness;

  private readonly desiredGroups: Gauge<(typeof POOL_LABELS)[number]>;
  private readonly specGroups: Gauge<(typeof POOL_LABELS)[number]>;
  private readonly readyGroups: Gauge<(typeof POOL_LABELS)[number]>;
  private readonly targetFound: Gauge<(typeof POOL_LABELS)[number]>;
  private readonly panic: Gauge<(typeof POOL_LABELS)[number]>;
  private readonly signalStable: Gauge<(typeof SIGNAL_LABELS)[number]>;
  private readonly signalPanic: Gauge<(typeof SIGNAL_LABELS)[number]>;
  private readonly signalTarget: Gauge<(typeof SIGNAL_LABELS)[number]>;
  private readonly signalUsable: Gauge<(typeof SIGNAL_LABELS)[number]>;
  private readonly decisions: Counter<(typeof POOL_LABELS)[number] | 'limited_by'>;
  private readonly holds: Counter<(typeof POOL_LABELS)[number] | 'reason'>;
  private readonly writeErrors: Counter<(typeof POOL_LABELS)[number]>;
  private readonly tickDuration: Histogram;

  constructor(options: ControllerMetricsOptions = {}) {
    this.now = options.nowMs ?? Date.now;
    this.staleAfterMs = (options.staleAfterSeconds ?? 180) * 1000;
    this.liveness = new Liveness(options.liveness);
    const registers = [this.registry];
    const poolGauge = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: POOL_LABELS, registers });
    const signalGauge = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: SIGNAL_LABELS, registers });

    this.desiredGroups = poolGauge(
      'kvpa_pool_desired_groups',
      'Groups the latest decision wants (in DryRun: the recommendation).',
    );
    this.specGroups = poolGauge(
      'kvpa_pool_spec_groups',
      "Groups the scale target's spec asks for now (absent while the target is not found).",
    );
    this.readyGroups = poolGauge(
      'kvpa_pool_ready_groups',
      'Groups whose leader and all workers are Ready; surge groups excluded (absent while the target is not found).',
    );
    this.targetFound = poolGauge(
      'kvpa_pool_target_found',
      '1 when the last read of the scale target succeeded, else 0.',
    );
    this.panic = poolGauge('kvpa_pool_panic', '1 while the pool is in panic mode, else 0.');
    this.signalStable = signalGauge(
      'kvpa_pool_signal_stable_value',
      "Σ over ready groups of the signal, averaged over the stable window, in the signal's own unit (absent while unusable).",
    );
    this.signalPanic = signalGauge(
      'kvpa_pool_signal_panic_value',
      "Σ over ready groups of the signal, averaged over the panic window, in the signal's own unit (absent while unusable).",
    );
    this.signalTarget = signalGauge(
      'kvpa_pool_signal_target_per_group',
      'The value of the signal one group should carry (the metric target).',
    );
    this.signalUsable = signalGauge(
      'kvpa_pool_signal_usable',
      '1 when the signal was usable at the last decision, 0 when it was missing, stale or out of range.',
    );
    this.decisions = new Counter({
      name: 'kvpa_decisions_total',
      help: 'Pool decisions, by the last pipeline stage that changed the want (none: the raw signal want stood).',
      labelNames: [...POOL_LABELS, 'limited_by'],
      registers,
    });
    this.holds = new Counter({
      name: 'kvpa_decision_holds_total',
      help: 'Decisions that held instead of following the signals: noSignal, startup (groups still starting), missingData.',
      labelNames: [...POOL_LABELS, 'reason'],
      registers,
    });
    this.writeErrors = new Counter({
      name: 'kvpa_write_errors_total',
      help: 'Failed writes of a scale target (after conflict retries), per pool.',
      labelNames: POOL_LABELS,
      registers,
    });
    this.tickDuration = new Histogram({
      name: 'kvpa_tick_duration_seconds',
      help: 'Duration of one controller pass: sampling every pool, deciding and writing.',
      buckets: TICK_BUCKETS_SECONDS,
      registers,
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  pool(key: string, pool: string, facts: PoolFacts, decision: Decision | null): void {
    const series = this.seriesOf(key, pool);
    const labels = series.labels;
    const found = facts.specGroups !== null;
    this.targetFound.set(labels, found ? 1 : 0);
    if (facts.specGroups !== null) this.specGroups.set(labels, facts.specGroups);
    else this.specGroups.remove(labels);
    if (facts.readyGroups !== null) this.readyGroups.set(labels, facts.readyGroups);
    else this.readyGroups.remove(labels);
    // Target unreadable: no decision, so desired, panic and signals keep their last values.
    if (decision === null) return;
    this.desiredGroups.set(labels, decision.desiredGroups);
    this.panic.set(labels, decision.inPanic ? 1 : 0);

    const seen = new Set<string>();
    for (const s of decision.explanation.signals) {
      seen.add(s.name);
      series.signals.add(s.name);
      const l: SignalLabels = { ...labels, signal: s.name };
      this.signalTarget.set(l, s.targetPerGroup);
      this.signalUsable.set(l, s.state === 'ok' ? 1 : 0);
      setOrRemove(this.signalStable, l, s.state === 'ok' ? s.stableTotal : undefined);
      setOrRemove(this.signalPanic, l, s.state === 'ok' ? s.panicTotal : undefined);
    }
    // A signal removed from the spec must not linger with its last value.
    for (const name of series.signals) {
      if (!seen.has(name)) {
        this.removeSignal(labels, name);
        series.signals.delete(name);
      }
    }

    const limitedBy = limitingStage(decision);
    series.limitedBy.add(limitedBy);
    this.decisions.inc({ ...labels, limited_by: limitedBy });
    const hold = holdReason(decision);
    if (hold !== null) {
      series.holds.add(hold);
      this.holds.inc({ ...labels, reason: hold });
    }
  }

  tick(durationSeconds: number): void {
    this.liveness.ticked();
    this.tickDuration.observe(durationSeconds);
    this.sweep();
  }

  writeError(key: string, pool: string): void {
    this.writeErrors.inc(this.seriesOf(key, pool).labels);
  }

  /** Drops every series of one PodAutoscaler (key "namespace/name") at once. */
  deleted(key: string): void {
    this.forget(key);
  }

  forget(key: string): void {
    for (const [poolKey, series] of this.pools) {
      if (poolKey.startsWith(`${key}/`)) this.removePool(poolKey, series);
    }
  }

  /** The exposition text, after dropping pools that stopped reporting. */
  async metricsText(): Promise<string> {
    this.sweep();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private seriesOf(key: string, pool: string): PoolSeries {
    const poolKey = `${key}/${pool}`;
    let series = this.pools.get(poolKey);
    if (series === undefined) {
      const slash = key.indexOf('/');
      series = {
        labels: { namespace: key.slice(0, slash), name: key.slice(slash + 1), pool },
        signals: new Set(),
        limitedBy: new Set(),
        holds: new Set(),
        lastSeenMs: 0,
      };
      this.pools.set(poolKey, series);
    }
    series.lastSeenMs = this.now();
    return series;
  }

  private sweep(): void {
    const cutoffMs = this.now() - this.staleAfterMs;
    for (const [poolKey, series] of this.pools) {
      if (series.lastSeenMs < cutoffMs) this.removePool(poolKey, series);
    }
  }

  private removePool(poolKey: string, series: PoolSeries): void {
    const l = series.labels;
    for (const g of [this.desiredGroups, this.specGroups, this.readyGroups, this.targetFound, this.panic]) {
      g.remove(l);
    }
    this.writeErrors.remove(l);
    for (const name of series.signals) this.removeSignal(l, name);
    for (const limitedBy of series.limitedBy) this.decisions.remove({ ...l, limited_by: limitedBy });
    for (const reason of series.holds) this.holds.remove({ ...l, reason });
    this.pools.delete(poolKey);
  }

  private removeSignal(labels: PoolLabels, name: string): void {
    const l: SignalLabels = { ...labels, signal: name };
    for (const g of [this.signalStable, this.signalPanic, this.signalTarget, this.signalUsable]) g.remove(l);
  }
}

function setOrRemove(g: Gauge<(typeof SIGNAL_LABELS)[number]>, l: SignalLabels, v: number | undefined): void {
  if (v === undefined || !Number.isFinite(v)) g.remove(l);
  else g.set(l, v);
}

/** The last stage after `compute` that changed the want: it is the one that set the final value. */
export function limitingStage(decision: Decision): StageName | 'none' {
  const applied = decision.explanation.stages.filter((s) => s.applied && s.stage !== 'compute');
  return applied[applied.length - 1]?.stage ?? 'none';
}

/** Mirrors the decision core's holdReason as a bounded label (the text itself has free-form numbers). */
export function holdReason(decision: Decision): HoldReason | null {
  if (!decision.valid) return 'noSignal';
  const held = decision.explanation.stages.find(
    (s) => (s.stage === 'startup' || s.stage === 'missingData') && s.applied,
  );
  return held ? (held.stage as 'startup' | 'missingData') : null;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text), `/healthz` (liveness: 503 when `health` says the loop is
 * wedged) and `/readyz` (the event loop answers). Listens on 127.0.0.1 unless `host` says otherwise
 * (`kvpa controller --metrics-address`). Port 0 picks a free port; the chosen one is in the result.
 */
export async function startMetricsServer(
  metrics: Pick<ControllerMetrics, 'metricsText' | 'contentType'>,
  options: { port: number; host?: string; health?: () => HealthReport },
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      const h = options.health?.() ?? { ok: true, detail: 'ok' };
      res.writeHead(h.ok ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${h.detail}\n`);
      return;
    }
    if (path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ok\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    metrics.metricsText().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': metrics.contentType }).end(req.method === 'HEAD' ? '' : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${String(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
