/**
 * The controller: watches PodAutoscalers, samples every pool's signals once a second (one batched
 * call for all pools), decides each pool on its tick, applies the result through the pool's scale
 * target, and reports through status (only when it changed), Events and Grafana annotations.
 *
 * Per tick and pool, the stages run in HPA's order:
 *   read target → decide (pure core) → apply (Apply mode, one write, re-read on conflict) →
 *   events/annotations on transitions → status written once per reconcile, and only if it changed.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ConflictError,
  type HeadPod,
  type ScaleTarget,
  TargetNotFoundError,
  type TargetState,
} from '../actuate/types.ts';
import {
  type PodAutoscalerSpec,
  PodAutoscalerSpecSchema,
  type PodAutoscalerStatus,
} from '../api/podautoscaler.ts';
import type { Policy } from '../api/policy.ts';
import { poolRunnerFor, type ResolvedPool, resolveAll } from '../api/resolve.ts';
import { groupsToWrite, type PoolRunner } from '../decide/pool-runner.ts';
import type { Decision } from '../decide/types.ts';
import type { AnnotationEvent } from '../report/grafana.ts';
import { FRESH_MEMORY, type PoolEvent, type PoolMemory, poolEvents } from './events.ts';
import {
  KubeWriter,
  keyOf,
  type PodAutoscalerWatch,
  type RawPodAutoscaler,
  watchPodAutoscalers,
} from './kube.ts';
import { type PoolSample, type PoolSignalRequest, type SignalSource, signalName } from './signals.ts';
import { computeStatus, type PoolFacts } from './status.ts';

/** Where annotations go; the Grafana client implements it (one per PodAutoscaler with spec.grafana). */
export interface AnnotationSink {
  enqueue(event: AnnotationEvent): boolean;
  close(): Promise<void>;
}

export interface ControllerOptions {
  readonly kubeConfig: KubeConfig;
  readonly signals: SignalSource;
  readonly policies: ReadonlyMap<string, Policy>;
  readonly targetFor: (namespace: string, ref: ResolvedPool['scaleTargetRef']) => ScaleTarget;
  readonly logger: Logger;
  /** Watch one namespace; all namespaces when unset. */
  readonly namespace?: string;
  readonly nowMs?: () => number;
  readonly sampleIntervalMs?: number;
  /** After another writer changes a target, kvpa holds its own writes this long (see README "Other writers"). */
  readonly overrideHoldSeconds?: number;
  /** The dry-run ledger is republished in status at most this often (it changes every tick). */
  readonly ledgerPublishSeconds?: number;
  readonly hostname?: string;
  readonly annotationsFor?: (pa: RawPodAutoscaler, spec: PodAutoscalerSpec) => AnnotationSink | null;
  readonly observer?: ControllerObserver;
}

/** Hooks for the controller's own metrics (report/metrics.ts); all optional. */
export interface ControllerObserver {
  pool?(key: string, pool: string, facts: PoolFacts, decision: Decision | null): void;
  tick?(durationSeconds: number): void;
  writeError?(key: string, pool: string): void;
  /** The PodAutoscaler is gone: drop what was kept for it. */
  deleted?(key: string): void;
}

interface Ledger {
  since: string;
  lastAtSeconds: number;
  recommendedGroupSeconds: number;
  actualGroupSeconds: number;
  published: { since: string; recommendedGroupSeconds: number; actualGroupSeconds: number } | null;
  publishedAtSeconds: number;
}

interface PoolRuntime {
  readonly pool: ResolvedPool;
  readonly runner: PoolRunner;
  readonly target: ScaleTarget;
  heads: readonly HeadPod[];
  latest: PoolSample[];
  nextDecisionAtSeconds: number;
  memory: PoolMemory;
  /** The count kvpa itself last wrote; a different spec count means another writer. */
  lastWritten: number | null;
  lastScaleTime: string | null;
  overrideUntilSeconds: number;
  overriddenMessage: string | null;
  ledger: Ledger | null;
  /** Whether the windows were refilled from the source's history (once per new pool runner). */
  backfilled: boolean;
  shown: { fingerprint: string; time: string; decision: Decision } | null;
  facts: PoolFacts | null;
}

interface AutoscalerRuntime {
  readonly key: string;
  readonly generation: number;
  readonly raw: RawPodAutoscaler;
  readonly spec: PodAutoscalerSpec | null;
  readonly invalid: string | null;
  readonly pools: Map<string, PoolRuntime>;
  readonly annotations: AnnotationSink | null;
  lastStatusJson: string | null;
  invalidReported: boolean;
}

const CONFLICT_ATTEMPTS = 3;

export class Controller {
  private readonly autoscalers = new Map<string, AutoscalerRuntime>();
  private readonly writer: KubeWriter;
  private readonly now: () => number;
  private watch: PodAutoscalerWatch | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly options: ControllerOptions) {
    this.writer = new KubeWriter(options.kubeConfig, options.hostname ?? 'kvpa');
    this.now = options.nowMs ?? Date.now;
  }

  /** Starts watching and ticking. */
  async start(): Promise<void> {
    this.watch = watchPodAutoscalers(
      this.options.kubeConfig,
      this.options.namespace,
      () => {},
      (err) => this.options.logger.warn({ err: String(err) }, 'podautoscaler watch failed; restarting'),
    );
    await this.watch.start();
    const interval = this.options.sampleIntervalMs ?? 1000;
    this.timer = setInterval(() => {
      // Never overlap ticks: a slow API server delays the next tick instead of stacking them.
      if (this.running !== null) return;
      this.running = this.tick().finally(() => {
        this.running = null;
      });
    }, interval);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await this.watch?.stop();
    await Promise.all([...this.autoscalers.values()].map((a) => a.annotations?.close()));
    this.autoscalers.clear();
  }

  /** `namespace/name` of every PodAutoscaler the watch currently holds (for readiness checks). */
  watched(): string[] {
    return (this.watch?.list() ?? []).map((o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`);
  }

  /** One sample-and-decide pass over every PodAutoscaler. Never throws. */
  async tick(): Promise<void> {
    const startedMs = this.now();
    try {
      this.sync(this.watch?.list() ?? []);
      const nowSeconds = startedMs / 1000;
      await this.sample(nowSeconds);
      for (const a of this.autoscalers.values()) await this.reconcile(a, nowSeconds);
    } catch (err) {
      this.options.logger.error({ err: errorText(err) }, 'tick failed');
    } finally {
      this.options.observer?.tick?.((this.now() - startedMs) / 1000);
    }
  }

  /** Brings the runtimes in line with the watched objects: new, changed (generation) and deleted. */
  sync(objects: readonly RawPodAutoscaler[]): void {
    const seen = new Set<string>();
    for (const raw of objects) {
      const key = keyOf(raw);
      seen.add(key);
      const generation = raw.metadata?.generation ?? 0;
      const existing = this.autoscalers.get(key);
      if (existing !== undefined && existing.generation === generation) continue;
      this.autoscalers.set(key, this.build(raw, generation, existing));
    }
    for (const [key, a] of this.autoscalers) {
      if (!seen.has(key)) {
        void a.annotations?.close();
        this.autoscalers.delete(key);
        this.options.observer?.deleted?.(key);
      }
    }
  }

  private build(
    raw: RawPodAutoscaler,
    generation: number,
    previous: AutoscalerRuntime | undefined,
  ): AutoscalerRuntime {
    const key = keyOf(raw);
    const namespace = raw.metadata?.namespace ?? 'default';
    const base = {
      key,
      generation,
      raw,
      lastStatusJson: previous?.lastStatusJson ?? null,
      invalidReported: false,
    };
    const parsed = PodAutoscalerSpecSchema.safeParse(raw.spec);
    if (!parsed.success) {
      const message = parsed.error.issues
        .map((i) => `spec.${i.path.map(String).join('.')}: ${i.message}`)
        .join('; ');
      return { ...base, spec: null, invalid: message, pools: new Map(), annotations: null };
    }
    const spec = parsed.data;
    const { pools, errors } = resolveAll(spec, this.options.policies);
    if (errors.length > 0) {
      const message = errors.map((e) => `${e.path}: ${e.message} (${e.hint})`).join('; ');
      return { ...base, spec, invalid: message, pools: new Map(), annotations: null };
    }
    const runtimes = new Map<string, PoolRuntime>();
    for (const pool of pools) {
      const old = previous?.pools.get(pool.name);
      // An unchanged pool keeps its windows and panic state across unrelated spec edits.
      if (old !== undefined && JSON.stringify(old.pool) === JSON.stringify(pool)) {
        runtimes.set(pool.name, old);
        continue;
      }
      runtimes.set(pool.name, {
        pool,
        runner: poolRunnerFor(pool),
        target: this.options.targetFor(namespace, pool.scaleTargetRef),
        heads: old?.heads ?? [],
        latest: [],
        nextDecisionAtSeconds: 0, // decide at the first tick
        memory: old?.memory ?? FRESH_MEMORY,
        lastWritten: old?.lastWritten ?? null,
        lastScaleTime: old?.lastScaleTime ?? null,
        overrideUntilSeconds: old?.overrideUntilSeconds ?? 0,
        overriddenMessage: old?.overriddenMessage ?? null,
        ledger: spec.mode === 'DryRun' ? (old?.ledger ?? null) : null,
        backfilled: false,
        shown: null,
        facts: null,
      });
    }
    if (previous?.annotations) void previous.annotations.close();
    const annotations =
      spec.grafana !== undefined ? (this.options.annotationsFor?.(raw, spec) ?? null) : null;
    return { ...base, spec, invalid: null, pools: runtimes, annotations };
  }

  /** One batched call to the signal source for every pool, then each pool records its samples. */
  private async sample(nowSeconds: number): Promise<void> {
    const requests: PoolSignalRequest[] = [];
    const byKey = new Map<string, PoolRuntime>();
    for (const a of this.autoscalers.values()) {
      if (a.spec === null) continue;
      for (const p of a.pools.values()) {
        const poolKey = `${a.key}/${p.pool.name}`;
        byKey.set(poolKey, p);
        requests.push({
          poolKey,
          namespace: a.raw.metadata?.namespace ?? 'default',
          pool: p.pool,
          heads: p.heads,
          metricsSource: a.spec.metricsSource,
        });
      }
    }
    if (requests.length === 0) return;
    let samples: Map<string, PoolSample[]>;
    try {
      samples = await this.options.signals.sample(requests, nowSeconds);
    } catch (err) {
      // A failed source is missing data for everyone: hold, never zero.
      const detail = `signal source failed: ${errorText(err)}`;
      samples = new Map(
        requests.map((r) => [
          r.poolKey,
          r.pool.metrics.map((m) => ({
            name: signalName(m),
            state: 'error' as const,
            detail,
          })),
        ]),
      );
    }
    for (const [poolKey, p] of byKey) {
      const s = samples.get(poolKey) ?? [];
      p.latest = s;
      p.runner.record(s, nowSeconds);
    }
  }

  private async reconcile(a: AutoscalerRuntime, nowSeconds: number): Promise<void> {
    const nowIso = new Date(nowSeconds * 1000).toISOString();
    const mode = a.spec?.mode ?? 'DryRun';
    const events: PoolEvent[] = [];
    if (a.invalid !== null && !a.invalidReported) {
      events.push({ type: 'Warning', reason: 'InvalidSpec', message: a.invalid.slice(0, 1000) });
      a.invalidReported = true;
    }
    for (const p of a.pools.values()) {
      if (nowSeconds < p.nextDecisionAtSeconds) continue;
      p.nextDecisionAtSeconds = nowSeconds + p.pool.tickSeconds;
      events.push(...(await this.decidePool(a, p, mode, nowSeconds, nowIso)));
    }
    // Until every pool has decided once there is nothing true to report ("every pool observed").
    const undecided = a.invalid === null && [...a.pools.values()].some((p) => p.facts === null);
    if (!undecided) await this.writeStatus(a, mode, nowIso);
    await this.emit(a, events, nowIso);
  }

  private async writeStatus(a: AutoscalerRuntime, mode: 'Apply' | 'DryRun', nowIso: string): Promise<void> {
    const facts = {
      generation: a.generation,
      mode,
      invalidSpec: a.invalid,
      pools: [...a.pools.values()].flatMap((p) => (p.facts !== null ? [p.facts] : [])),
    } as const;
    const previous = this.lastStatus(a);
    const status = computeStatus(facts, previous, nowIso);
    const json = JSON.stringify(status);
    if (json !== a.lastStatusJson) {
      try {
        await this.writer.patchStatus(
          a.raw.metadata?.namespace ?? 'default',
          a.raw.metadata?.name ?? '',
          status,
        );
        a.lastStatusJson = json;
      } catch (err) {
        this.options.logger.warn({ autoscaler: a.key, err: errorText(err) }, 'status write failed');
      }
    }
  }

  private async emit(a: AutoscalerRuntime, events: readonly PoolEvent[], nowIso: string): Promise<void> {
    for (const e of events) {
      try {
        await this.writer.event(a.raw, e, nowIso);
      } catch (err) {
        this.options.logger.warn(
          { autoscaler: a.key, reason: e.reason, err: errorText(err) },
          'event write failed',
        );
      }
      this.options.logger.info({ autoscaler: a.key, reason: e.reason, detail: e.message }, 'event');
    }
  }

  private lastStatus(a: AutoscalerRuntime): PodAutoscalerStatus | undefined {
    if (a.lastStatusJson !== null) return JSON.parse(a.lastStatusJson) as PodAutoscalerStatus;
    return a.raw.status;
  }

  private async decidePool(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    nowIso: string,
  ): Promise<PoolEvent[]> {
    const log = this.options.logger;
    let state: TargetState | null = null;
    let decision: Decision | null = null;
    let wrote: { from: number; to: number } | null = null;
    let writeError: string | null = null;
    let overriddenNow: string | null = null;

    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt++) {
      try {
        state = await p.target.read();
      } catch (err) {
        if (err instanceof TargetNotFoundError) {
          state = null;
          break;
        }
        writeError = `reading the target failed: ${errorText(err)}`;
        break;
      }
      if (attempt === 1) {
        try {
          p.heads = await p.target.heads();
        } catch (err) {
          log.warn(
            { autoscaler: a.key, pool: p.pool.name, err: errorText(err) },
            'listing head pods failed; keeping the previous list',
          );
        }
        if (!p.backfilled) await this.backfill(a, p, nowSeconds);
      }
      // Another writer changed the count since kvpa's own write: report, adopt, and hold for a while.
      if (p.lastWritten !== null && state.specGroups !== p.lastWritten) {
        overriddenNow = `the group count was changed from ${p.lastWritten} to ${state.specGroups} by another writer; kvpa adopts ${state.specGroups} and holds its own writes for ${this.overrideHold()}s (remove the other writer, or set spec.mode: DryRun)`;
        p.overrideUntilSeconds = nowSeconds + this.overrideHold();
        p.overriddenMessage = overriddenNow;
        p.lastWritten = null;
      }
      if (nowSeconds >= p.overrideUntilSeconds) p.overriddenMessage = null;

      decision = p.runner.decide(nowSeconds, state.readyGroups, state.specGroups, p.latest);
      const desired = groupsToWrite(decision, state.specGroups);
      const mayWrite = mode === 'Apply' && p.overriddenMessage === null && desired !== undefined;
      if (!mayWrite) break;
      try {
        await p.target.write(desired, state.resourceVersion);
        wrote = { from: state.specGroups, to: desired };
        p.lastWritten = desired;
        p.lastScaleTime = nowIso;
        state = { ...state, specGroups: desired };
        break;
      } catch (err) {
        if (err instanceof ConflictError && attempt < CONFLICT_ATTEMPTS) {
          log.info(
            { autoscaler: a.key, pool: p.pool.name, attempt },
            'conflict writing the target; re-reading',
          );
          continue;
        }
        writeError = errorText(err);
        this.options.observer?.writeError?.(a.key, p.pool.name);
        break;
      }
    }

    if (mode === 'DryRun' && state !== null && decision !== null)
      this.updateLedger(p, nowSeconds, nowIso, decision, state);
    if (decision !== null) this.updateShown(p, decision, nowIso);

    const specGroups = state?.specGroups ?? null;
    const facts: PoolFacts = {
      name: p.pool.name,
      specGroups,
      readyGroups: state?.readyGroups ?? null,
      desiredGroups: mode === 'Apply' ? (p.lastWritten ?? specGroups ?? 0) : (specGroups ?? 0),
      recommendedGroups: decision?.desiredGroups ?? specGroups ?? 0,
      decision: p.shown?.decision ?? null,
      lastScaleTime: p.lastScaleTime,
      decisionTime: p.shown?.time ?? null,
      ledger: p.ledger?.published ?? null,
      writeError,
      overriddenMessage: p.overriddenMessage,
    };
    p.facts = facts;
    this.options.observer?.pool?.(a.key, p.pool.name, facts, decision);

    const { events, memory } = poolEvents(p.memory, {
      pool: p.pool.name,
      mode,
      targetFound: state !== null || writeError !== null,
      specGroups,
      decision,
      wrote,
      writeError,
      overriddenMessage: overriddenNow,
    });
    p.memory = memory;
    this.annotate(a, p, mode, nowSeconds, events, decision, wrote?.from ?? specGroups);
    return events;
  }

  /**
   * Restart recovery: refill a new pool's windows with the last stable window of history (query_range
   * at 1 s for Prometheus), so a restarted controller keeps its stable and panic averages.
   */
  private async backfill(a: AutoscalerRuntime, p: PoolRuntime, nowSeconds: number): Promise<void> {
    p.backfilled = true;
    const source = this.options.signals;
    if (source.backfill === undefined || a.spec === null) return;
    try {
      const history = await source.backfill(
        {
          poolKey: `${a.key}/${p.pool.name}`,
          namespace: a.raw.metadata?.namespace ?? 'default',
          pool: p.pool,
          heads: p.heads,
          metricsSource: a.spec.metricsSource,
        },
        nowSeconds - p.pool.stableWindowSeconds,
        nowSeconds - 1,
      );
      const recorded = p.runner.backfill(history);
      this.options.logger.info(
        { autoscaler: a.key, pool: p.pool.name, recorded },
        'windows backfilled from history',
      );
    } catch (err) {
      this.options.logger.warn(
        { autoscaler: a.key, pool: p.pool.name, err: errorText(err) },
        'backfill failed; windows start young',
      );
    }
  }

  private overrideHold(): number {
    return this.options.overrideHoldSeconds ?? 600;
  }

  /** Refreshes the decision shown in status only when something a user would care about changed. */
  private updateShown(p: PoolRuntime, d: Decision, nowIso: string): void {
    const e = d.explanation;
    const fingerprint = JSON.stringify([
      d.desiredGroups,
      d.valid,
      d.inPanic,
      e.stableWinner,
      e.panicWinner,
      e.holdReason,
      e.stages.filter((s) => s.applied && s.stage !== 'compute').map((s) => s.stage),
      e.signals.map((s) => [s.name, s.state, s.stableWant, s.panicWant]),
    ]);
    if (p.shown?.fingerprint !== fingerprint) p.shown = { fingerprint, time: nowIso, decision: d };
  }

  /** Group-seconds the recommendation would have used against those the target actually held. */
  private updateLedger(
    p: PoolRuntime,
    nowSeconds: number,
    nowIso: string,
    d: Decision,
    state: TargetState,
  ): void {
    const l = p.ledger;
    if (l === null) {
      p.ledger = {
        since: nowIso,
        lastAtSeconds: nowSeconds,
        recommendedGroupSeconds: 0,
        actualGroupSeconds: 0,
        published: { since: nowIso, recommendedGroupSeconds: 0, actualGroupSeconds: 0 },
        publishedAtSeconds: nowSeconds,
      };
      return;
    }
    const dt = Math.max(0, nowSeconds - l.lastAtSeconds);
    l.recommendedGroupSeconds += dt * d.desiredGroups;
    l.actualGroupSeconds += dt * state.specGroups;
    l.lastAtSeconds = nowSeconds;
    if (nowSeconds - l.publishedAtSeconds >= (this.options.ledgerPublishSeconds ?? 60)) {
      l.published = {
        since: l.since,
        recommendedGroupSeconds: Math.round(l.recommendedGroupSeconds),
        actualGroupSeconds: Math.round(l.actualGroupSeconds),
      };
      l.publishedAtSeconds = nowSeconds;
    }
  }

  private annotate(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    events: readonly PoolEvent[],
    decision: Decision | null,
    /** The count before this tick's change: the write's `from`, or the target's spec in dry-run. */
    fromGroups: number | null,
  ): void {
    const sink = a.annotations;
    if (sink === null || decision === null) return;
    const ref = {
      namespace: a.raw.metadata?.namespace ?? '',
      name: a.raw.metadata?.name ?? '',
      pool: p.pool.name,
    };
    const timeMs = Math.round(nowSeconds * 1000);
    const dryRun = mode === 'DryRun';
    for (const e of events) {
      if (e.reason === 'SuccessfulRescale' || e.reason === 'WouldScale') {
        sink.enqueue({
          kind: 'decision',
          ...ref,
          timeMs,
          mode: decision.inPanic ? 'Panic' : 'Stable',
          dryRun,
          fromGroups: fromGroups ?? 0,
          toGroups: decision.desiredGroups,
          explanation: decision.explanation.summary,
        });
      } else if (e.reason === 'PanicStarted') {
        sink.enqueue({
          kind: 'panicStart',
          ...ref,
          timeMs,
          dryRun,
          explanation: decision.explanation.summary,
        });
      } else if (e.reason === 'PanicEnded') {
        sink.enqueue({ kind: 'panicEnd', ...ref, timeMs });
      }
    }
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { code?: number; body?: unknown };
  if (typeof e?.code === 'number') return `HTTP ${e.code}: ${JSON.stringify(e.body).slice(0, 300)}`;
  return String(err);
}
