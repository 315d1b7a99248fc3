/**
 * The controller: watches PodAutoscalers, samples every pool's signals once a second (one batched
 * call per Prometheus endpoint, one call per direct-scrape pool), decides each pool on its tick,
 * applies the result through the pool's scale target, and reports through status (only when it
 * changed), Events and Grafana annotations.
 *
 * Per tick and pool, the stages run in HPA's order:
 *   read target → decide (pure core) → apply (Apply mode, one write, re-read on conflict) →
 *   events/annotations on transitions → status written once per reconcile, and only if it changed.
 *
 * Isolation: every PodAutoscaler is built, and every pool sampled, decided and written, inside its own
 * failure boundary with its own deadline. A bad spec, a slow endpoint or a failing call sets that
 * PodAutoscaler's conditions and Events (InvalidSpec, MetricsMissing, FailedRescale) and nobody
 * else's: a PodAutoscaler whose last run has not finished is skipped, the others keep their cadence.
 */

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type KubeClients, kubeClients } from '../actuate/kube.ts';
import { type RoutingOwner, routingOwnerKey } from '../actuate/routing.ts';
import {
  ConflictError,
  type HeadPod,
  type ScaleTarget,
  TargetNotFoundError,
  type TargetRefusal,
  type TargetState,
} from '../actuate/types.ts';
import {
  DEFAULT_FLOWS_TOLERANCE,
  type PodAutoscalerSpec,
  PodAutoscalerSpecSchema,
  type PodAutoscalerStatus,
  type Ratio,
} from '../api/podautoscaler.ts';
import type { Policy } from '../api/policy.ts';
import { poolRunnerFor, type ResolvedPool, resolveAll } from '../api/resolve.ts';
import {
  type CoupledWrite,
  planWrites,
  type RatioBand,
  reconcileBand,
  type WritePlan,
} from '../decide/coupling.ts';
import { deriveBand, flowOf, OPEN_BAND, reconcileDerived } from '../decide/coupling-flows.ts';
import { type DrainRecord, requestedForDecision } from '../decide/drain.ts';
import { withStage } from '../decide/kpa.ts';
import { applyPlacement, type CapacityShortfall, needsRoom, observePlacement } from '../decide/placement.ts';
import { groupsToWrite, type PoolRunner } from '../decide/pool-runner.ts';
import { SEASONAL_BUCKET_SECONDS, SEASONAL_MEAN_SECONDS } from '../decide/seasonal.ts';
import type { Decision } from '../decide/types.ts';
import { applyWorkloadBounds } from '../decide/workload-bounds.ts';
import { type ClusterRoom, readClusterRoom } from '../observe/cluster-room.ts';
import type { AnnotationEvent } from '../report/grafana.ts';
import { effectiveBounds } from './coupled-bounds.ts';
import { DeadlineError, type PendingCall, trackCalls, withDeadline } from './deadline.ts';
import { type DrainRun, drainRecordOf, drainStatus, runDrain, sweepRouting } from './drain.ts';
import { FRESH_MEMORY, type PoolEvent, type PoolMemory, poolEvents, stableKey } from './events.ts';
import {
  KubeWriter,
  keyOf,
  type PodAutoscalerWatch,
  type RawPodAutoscaler,
  watchPodAutoscalers,
} from './kube.ts';
import {
  accrue,
  type LedgerAccount,
  type LedgerStatus,
  ledgerStatus,
  resumeLedger,
  startLedger,
} from './ledger.ts';
import {
  endpointKeyOf,
  failedSamples,
  type PoolSample,
  type PoolSignalRequest,
  type SignalSource,
  sampleDeadlineMs,
} from './signals.ts';
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
  /** How long one pool's read, decision and write may take after its sample (default 30 s). */
  readonly poolDeadlineSeconds?: number;
  readonly annotationsFor?: (pa: RawPodAutoscaler, spec: PodAutoscalerSpec) => AnnotationSink | null;
  readonly observer?: ControllerObserver;
  /** The cluster's free room for a GPU resource (nodes, bound pods, the namespace's quotas); default: the API server. */
  readonly clusterRoom?: (
    namespace: string,
    gpuResource: string,
    kueueQueue?: string,
  ) => Promise<ClusterRoom>;
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
  account: LedgerAccount;
  published: LedgerStatus;
  publishedAtSeconds: number;
}

/** ", waiting on writing the count of LeaderWorkerSet ns/a": the target calls a pool (or pair) is stuck in. */
function waitingOn(group: readonly { readonly p: { readonly pending: PendingCall } }[]): string {
  const calls = [
    ...new Set(group.flatMap((g) => (g.p.pending.waitingOn !== null ? [g.p.pending.waitingOn] : []))),
  ];
  return calls.length > 0 ? `, waiting on ${calls.join(' and ')}` : '';
}

interface PoolRuntime {
  readonly pool: ResolvedPool;
  readonly runner: PoolRunner;
  /** The workload, its calls recorded in `pending` while they run. */
  readonly target: ScaleTarget;
  readonly pending: PendingCall;
  heads: readonly HeadPod[];
  /** False until this runtime has listed its heads once: its first tick's batched sample saw none. */
  headsListed: boolean;
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
  /** True while this pool's work runs, including work that outlived its deadline. */
  busy: boolean;
  /** The last failure reported for this pool (an Event is raised only when it changes). */
  failure: string | null;
  /** A drain in progress (src/decide/drain.ts), resumed from status after a restart. */
  drain: DrainRecord | null;
  /** Times (s) another writer changed the count kvpa wrote: two within REVERT_WINDOW_HOLDS holds latch a conflict. */
  reverts: number[];
  /** The latched conflict with another owner of the count (kept in status); null while kvpa may write. */
  ownerConflict: string | null;
  /** The target's refusal at the last read (TargetRefusal), or null. */
  refusal: TargetRefusal | null;
  drainRun: DrainRun | null;
}

interface AutoscalerRuntime {
  readonly key: string;
  readonly generation: number;
  readonly raw: RawPodAutoscaler;
  readonly spec: PodAutoscalerSpec | null;
  readonly invalid: string | null;
  readonly pools: Map<string, PoolRuntime>;
  /** spec.coupling's two pools, decided together; null when the spec couples none. */
  readonly coupled: CoupledRuntimes | null;
  readonly annotations: AnnotationSink | null;
  lastStatusJson: string | null;
  invalidReported: boolean;
}

/** What one pool's tick saw and did, from the read to the write. */
interface PoolTick {
  state: TargetState | null;
  decision: Decision | null;
  wrote: { from: number; to: number } | null;
  writeError: string | null;
  overriddenNow: string | null;
  shortfall: CapacityShortfall | null;
}

function blankTick(): PoolTick {
  return { state: null, decision: null, wrote: null, writeError: null, overriddenNow: null, shortfall: null };
}

/** The two pools of spec.coupling, decided together. */
interface CoupledRuntimes {
  /** spec.coupling.ratio: a fixed band, or one derived from the flows each tick (src/decide/coupling-flows.ts). */
  readonly ratio: { readonly band: RatioBand } | { readonly fromFlows: { readonly tolerance: number } };
  readonly prefill: PoolRuntime;
  readonly decode: PoolRuntime;
  /** The centre of the last derived band (its dead band); null when there was none. */
  flowsCentre: number | null;
}

const CONFLICT_ATTEMPTS = 3;
/** Two reverts of kvpa's writes within this many override holds latch an owner conflict. */
const REVERT_WINDOW_HOLDS = 4;
const ROOM_DEADLINE_MS = 20_000;
const POOL_DEADLINE_SECONDS = 30;
/** Status and Event writes of one PodAutoscaler, after its pools. */
const REPORT_DEADLINE_MS = 30_000;
/** The sweep of pods a gone pool left out of routing, besides after each change: a backstop for a missed event. */
const SWEEP_SECONDS = 600;
const SWEEP_DEADLINE_MS = 60_000;

export class Controller {
  private readonly autoscalers = new Map<string, AutoscalerRuntime>();
  private readonly writer: KubeWriter;
  private readonly now: () => number;
  private watch: PodAutoscalerWatch | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Ticks in progress (a tick waits for the runs it started; a slow one does not delay the next). */
  private readonly ticks = new Set<Promise<void>>();
  /** The run of each PodAutoscaler in progress, by key: a PodAutoscaler never runs twice at once. */
  private readonly runs = new Map<string, Promise<void>>();
  /** The runtime each run in `runs` runs (sync may have replaced it since). */
  private readonly running = new Map<string, AutoscalerRuntime>();
  /** A PodAutoscaler or pool went away (or this controller started): sweep for pods it left out of routing. */
  private sweepDue = true;
  private sweeping = false;
  private lastSweepSeconds = Number.NEGATIVE_INFINITY;
  /** Source calls in progress, by endpoint key: a slow endpoint is never asked again while it thinks. */
  private readonly sampling = new Map<string, Promise<unknown>>();
  private apiClients: KubeClients | undefined;

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
      // Ticks may overlap; a PodAutoscaler whose previous run is still going is skipped by the next,
      // so one slow tenant delays only itself.
      const tick = this.tick().finally(() => this.ticks.delete(tick));
      this.ticks.add(tick);
    }, interval);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.ticks, ...this.runs.values()]);
    await this.watch?.stop();
    await Promise.all([...this.autoscalers.values()].map((a) => a.annotations?.close()));
    this.autoscalers.clear();
  }

  /**
   * Why the PodAutoscaler `namespace/name` is not acted on (its InvalidSpec message); null when it is
   * built and scaling, undefined when the controller does not hold it.
   */
  invalidReason(key: string): string | null | undefined {
    return this.autoscalers.get(key)?.invalid;
  }

  /** `namespace/name` of every PodAutoscaler the watch currently holds (for readiness checks). */
  watched(): string[] {
    return (this.watch?.list() ?? []).map((o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`);
  }

  /**
   * One sample-and-decide pass over every PodAutoscaler that is not still busy with the previous one;
   * they run side by side, each in its own boundary. Never throws.
   */
  async tick(): Promise<void> {
    const startedMs = this.now();
    try {
      this.sync(this.watch?.list() ?? []);
      const nowSeconds = startedMs / 1000;
      const due = [...this.autoscalers.values()].filter((a) => !this.runs.has(a.key));
      const samples = this.startSampling(due, nowSeconds);
      await Promise.all(due.map((a) => this.run(a, samples, nowSeconds)));
      await this.sweep(nowSeconds);
    } catch (err) {
      this.options.logger.error({ err: errorText(err) }, 'tick failed');
    } finally {
      this.options.observer?.tick?.((this.now() - startedMs) / 1000);
    }
  }

  /**
   * Routes again the pods that no live pool holds out of routing (drain.ts sweepRouting), after a PodAutoscaler
   * or pool went away, at start, and every SWEEP_SECONDS. Never throws; a failure leaves the sweep due.
   */
  private async sweep(nowSeconds: number): Promise<void> {
    if (this.sweeping || (!this.sweepDue && nowSeconds - this.lastSweepSeconds < SWEEP_SECONDS)) return;
    // Until the watch has listed the PodAutoscalers once, a live pool would look gone.
    if (this.watch?.synced() !== true) return;
    // A run of a runtime sync has replaced may still set pods False in the name of a pool that is gone.
    for (const [key, a] of this.running) if (this.autoscalers.get(key) !== a) return;
    const live = new Set<string>();
    for (const a of this.autoscalers.values()) {
      if (a.invalid !== null) continue;
      for (const p of a.pools.values())
        live.add(routingOwnerKey(a.raw.metadata?.namespace ?? 'default', ownerOf(a, p)));
    }
    this.sweeping = true;
    this.sweepDue = false;
    this.lastSweepSeconds = nowSeconds;
    const log = this.options.logger;
    try {
      const { restored, error } = await withDeadline(
        sweepRouting(this.clients(), this.options.namespace, live),
        SWEEP_DEADLINE_MS,
        'routing again the pods of gone pools',
      );
      if (restored.length > 0)
        log.info({ pods: restored }, 'routed again pods a gone pool left out of routing');
      if (error !== null) {
        this.sweepDue = true;
        log.warn({ err: error }, 'routing again a pod a gone pool left out of routing failed');
      }
    } catch (err) {
      this.sweepDue = true;
      log.warn({ err: errorText(err) }, 'sweeping pods left out of routing failed');
    } finally {
      this.sweeping = false;
    }
  }

  private clients(): KubeClients {
    this.apiClients ??= kubeClients(this.options.kubeConfig);
    return this.apiClients;
  }

  /**
   * Brings the runtimes in line with the watched objects: new, changed (generation) and deleted.
   * Never throws: an object that cannot be built becomes an InvalidSpec runtime of its own.
   */
  sync(objects: readonly RawPodAutoscaler[]): void {
    const seen = new Set<string>();
    for (const raw of objects) {
      const key = keyOf(raw);
      seen.add(key);
      const generation = raw.metadata?.generation ?? 0;
      const existing = this.autoscalers.get(key);
      if (existing !== undefined && existing.generation === generation) continue;
      // A changed spec may drop a pool, retarget it or turn invalid: its pods out of routing are nobody's now.
      if (existing !== undefined) this.sweepDue = true;
      let built: AutoscalerRuntime;
      try {
        built = this.build(raw, generation, existing);
      } catch (err) {
        built = invalidRuntime(raw, generation, existing, `the spec could not be built: ${errorText(err)}`);
      }
      this.autoscalers.set(key, built);
    }
    for (const [key, a] of this.autoscalers) {
      if (!seen.has(key)) {
        void a.annotations?.close();
        this.autoscalers.delete(key);
        this.sweepDue = true;
        this.options.observer?.deleted?.(key);
      }
    }
  }

  private build(
    raw: RawPodAutoscaler,
    generation: number,
    previous: AutoscalerRuntime | undefined,
  ): AutoscalerRuntime {
    const namespace = raw.metadata?.namespace ?? 'default';
    const parsed = PodAutoscalerSpecSchema.safeParse(raw.spec);
    if (!parsed.success) {
      const message = parsed.error.issues
        .map((i) => `spec.${i.path.map(String).join('.')}: ${i.message}`)
        .join('; ');
      return invalidRuntime(raw, generation, previous, message);
    }
    const spec = parsed.data;
    const { pools, errors } = resolveAll(spec, this.options.policies);
    if (errors.length > 0) {
      const message = errors.map((e) => `${e.path}: ${e.message} (${e.hint})`).join('; ');
      return invalidRuntime(raw, generation, previous, message, spec);
    }
    const runtimes = new Map<string, PoolRuntime>();
    for (const [index, pool] of pools.entries()) {
      const old = previous?.pools.get(pool.name);
      // An unchanged pool keeps its windows and panic state across unrelated spec edits.
      if (old !== undefined && JSON.stringify(old.pool) === JSON.stringify(pool)) {
        // Any spec change is the user's answer to a latched conflict: try writing again.
        if (previous?.generation !== generation) {
          old.ownerConflict = null;
          old.reverts = [];
        }
        runtimes.set(pool.name, old);
        continue;
      }
      let target: ScaleTarget;
      try {
        target = this.options.targetFor(namespace, pool.scaleTargetRef);
      } catch (err) {
        return invalidRuntime(
          raw,
          generation,
          previous,
          `spec.pools[${index}].scaleTargetRef: ${errorText(err)}`,
          spec,
        );
      }
      const pending: PendingCall = { waitingOn: null };
      runtimes.set(pool.name, {
        pool,
        runner: poolRunnerFor(pool),
        target: trackCalls(target, pending),
        pending,
        heads: old?.heads ?? [],
        headsListed: old?.headsListed ?? false,
        latest: [],
        nextDecisionAtSeconds: 0, // decide at the first tick
        memory: old?.memory ?? FRESH_MEMORY,
        lastWritten: old?.lastWritten ?? null,
        lastScaleTime: old?.lastScaleTime ?? null,
        overrideUntilSeconds: old?.overrideUntilSeconds ?? 0,
        overriddenMessage: old?.overriddenMessage ?? null,
        // A restarted controller goes on with the ledger its predecessor left in status.
        ledger:
          spec.mode === 'DryRun' ? (old !== undefined ? old.ledger : resumedLedger(raw, pool.name)) : null,
        backfilled: false,
        shown: null,
        facts: null,
        busy: false,
        failure: null,
        drain:
          old !== undefined
            ? old.drain
            : drainRecordOf(raw.status?.pools?.find((s) => s.name === pool.name)?.drain),
        drainRun: null,
        // A changed spec is the user's answer to a conflict: start clean. A restart resumes it, unless the
        // spec changed while no controller ran (the status was written for an older generation).
        reverts: [],
        ownerConflict:
          old !== undefined || raw.status?.observedGeneration !== generation
            ? null
            : (raw.status?.pools?.find((s) => s.name === pool.name)?.ownerConflict ?? null),
        refusal: null,
      });
    }
    let annotations: AnnotationSink | null = null;
    try {
      annotations = spec.grafana !== undefined ? (this.options.annotationsFor?.(raw, spec) ?? null) : null;
    } catch (err) {
      return invalidRuntime(raw, generation, previous, `spec.grafana: ${errorText(err)}`, spec);
    }
    if (previous?.annotations) void previous.annotations.close();
    // The schema's rules guarantee both names exist and differ.
    const c = spec.coupling;
    const prefill = c !== undefined ? runtimes.get(c.prefillPool ?? 'prefill') : undefined;
    const decode = c !== undefined ? runtimes.get(c.decodePool ?? 'decode') : undefined;
    return {
      key: keyOf(raw),
      generation,
      raw,
      lastStatusJson: previous?.lastStatusJson ?? null,
      invalidReported: false,
      spec,
      invalid: null,
      pools: runtimes,
      coupled:
        c !== undefined && prefill !== undefined && decode !== undefined
          ? { ratio: ratioOf(c.ratio), prefill, decode, flowsCentre: null }
          : null,
      annotations,
    };
  }

  /**
   * Starts this tick's source calls: one per endpoint (endpointKeyOf), each bounded by its deadline.
   * Returns each pool's own promise of samples, which never rejects: a failed, late or still-busy
   * endpoint gives that endpoint's pools `error` signals (hold, never zero) and no one else's.
   */
  private startSampling(
    autoscalers: readonly AutoscalerRuntime[],
    nowSeconds: number,
  ): Map<string, Promise<PoolSample[]>> {
    const groups = new Map<string, PoolSignalRequest[]>();
    for (const a of autoscalers) {
      if (a.spec === null || a.invalid !== null) continue;
      for (const p of a.pools.values()) {
        if (p.busy) continue;
        const request = this.requestOf(a, p);
        const key = endpointKeyOf(request);
        groups.set(key, [...(groups.get(key) ?? []), request]);
      }
    }
    const out = new Map<string, Promise<PoolSample[]>>();
    for (const [key, requests] of groups) {
      if (this.sampling.has(key)) {
        for (const r of requests) {
          out.set(
            r.poolKey,
            Promise.resolve(
              failedSamples(r, 'the previous request to the signal source has not answered yet'),
            ),
          );
        }
        continue;
      }
      const call = Promise.resolve().then(() => this.options.signals.sample(requests, nowSeconds));
      this.sampling.set(
        key,
        call.then(
          () => this.sampling.delete(key),
          () => this.sampling.delete(key),
        ),
      );
      // Pools of one endpoint share its timeout; pods pools are alone in their group.
      const deadlineMs = requests.reduce((ms, r) => Math.max(ms, sampleDeadlineMs(r)), 0);
      const bounded = withDeadline(call, deadlineMs, 'the signal source');
      for (const r of requests) {
        out.set(
          r.poolKey,
          bounded.then(
            (m) => m.get(r.poolKey) ?? failedSamples(r, 'the signal source returned nothing for this pool'),
            (err) => {
              // The cause goes to the log; the tenant's status says only "unreachable".
              this.options.logger.warn({ pool: r.poolKey, err: errorText(err) }, 'signal source failed');
              return failedSamples(r, 'signal source unreachable');
            },
          ),
        );
      }
    }
    return out;
  }

  private requestOf(a: AutoscalerRuntime, p: PoolRuntime): PoolSignalRequest {
    return {
      poolKey: `${a.key}/${p.pool.name}`,
      namespace: a.raw.metadata?.namespace ?? 'default',
      pool: p.pool,
      heads: p.heads,
      // requestOf is only called for runtimes with a spec.
      metricsSource: a.spec?.metricsSource ?? {},
    };
  }

  /** One PodAutoscaler's run, tracked so the next tick skips it while it lasts. Never rejects. */
  private run(
    a: AutoscalerRuntime,
    samples: ReadonlyMap<string, Promise<PoolSample[]>>,
    nowSeconds: number,
  ): Promise<void> {
    const run = this.reconcile(a, samples, nowSeconds)
      .catch((err) =>
        this.options.logger.error({ autoscaler: a.key, err: errorText(err) }, 'reconcile failed'),
      )
      .finally(() => {
        this.runs.delete(a.key);
        this.running.delete(a.key);
      });
    this.runs.set(a.key, run);
    this.running.set(a.key, a);
    return run;
  }

  private async reconcile(
    a: AutoscalerRuntime,
    samples: ReadonlyMap<string, Promise<PoolSample[]>>,
    nowSeconds: number,
  ): Promise<void> {
    const nowIso = new Date(nowSeconds * 1000).toISOString();
    const mode = a.spec?.mode ?? 'DryRun';
    const events: PoolEvent[] = [];
    if (a.invalid !== null && !a.invalidReported) {
      events.push({ type: 'Warning', reason: 'InvalidSpec', message: a.invalid.slice(0, 1000) });
      a.invalidReported = true;
    }
    const sampleOf = (p: PoolRuntime) => samples.get(`${a.key}/${p.pool.name}`);
    const pair = a.coupled;
    const alone = [...a.pools.values()].filter((p) => p !== pair?.prefill && p !== pair?.decode);
    const perPool = await Promise.all([
      ...alone.map((p) =>
        this.poolBoundary(a, [{ p, sample: sampleOf(p) }], ([s]) =>
          this.runPool(a, p, s ?? Promise.resolve([]), mode, nowSeconds, nowIso),
        ),
      ),
      ...(pair === null
        ? []
        : [
            this.poolBoundary(
              a,
              [pair.prefill, pair.decode].map((p) => ({ p, sample: sampleOf(p) })),
              (s) => this.runCoupled(a, pair, s, mode, nowSeconds, nowIso),
            ),
          ]),
    ]);
    for (const e of perPool) events.push(...e);
    // Until every pool has decided once there is nothing true to report ("every pool observed").
    const undecided = a.invalid === null && [...a.pools.values()].some((p) => p.facts === null);
    const report = async () => {
      if (!undecided) await this.writeStatus(a, mode, nowIso);
      await this.emit(a, events, nowIso);
    };
    await withDeadline(report(), REPORT_DEADLINE_MS, 'writing status and events').catch((err) =>
      this.options.logger.warn({ autoscaler: a.key, err: errorText(err) }, 'status or event write failed'),
    );
  }

  /**
   * One pool's (or one coupled pair's) sample, decision and write inside its own boundary: an exception or a
   * deadline becomes a FailedRescale on those pools (once per distinct failure), never on their neighbours.
   */
  private async poolBoundary(
    a: AutoscalerRuntime,
    group: readonly { readonly p: PoolRuntime; readonly sample: Promise<PoolSample[]> | undefined }[],
    work: (samples: readonly Promise<PoolSample[]>[]) => Promise<PoolEvent[]>,
  ): Promise<PoolEvent[]> {
    const samples = group.flatMap((g) => (g.sample !== undefined ? [g.sample] : []));
    if (group.some((g) => g.p.busy) || samples.length < group.length) {
      return group.flatMap((g) =>
        this.poolFailed(
          a,
          g.p,
          `the previous reconcile of this pool has not finished${waitingOn(group)}; skipping this tick`,
        ),
      );
    }
    for (const g of group) g.p.busy = true;
    const run = work(samples).finally(() => {
      for (const g of group) g.p.busy = false;
    });
    const seconds = this.options.poolDeadlineSeconds ?? POOL_DEADLINE_SECONDS;
    const sampleMs = Math.max(...group.map((g) => sampleDeadlineMs(this.requestOf(a, g.p))));
    const label = group.map((g) => `pool ${g.p.pool.name}`).join(' and ');
    try {
      const events = await withDeadline(run, seconds * 1000 + sampleMs, label);
      for (const g of group) g.p.failure = null;
      return events;
    } catch (err) {
      const message = err instanceof DeadlineError ? `${errorText(err)}${waitingOn(group)}` : errorText(err);
      return group.flatMap((g) => this.poolFailed(a, g.p, message));
    }
  }

  /** Records the samples; decides when the pool's tick is due. */
  private async runPool(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    sample: Promise<PoolSample[]>,
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    nowIso: string,
  ): Promise<PoolEvent[]> {
    const latest = await this.firstSampled(a, p, sample, nowSeconds);
    p.latest = latest;
    p.runner.record(latest, nowSeconds);
    if (nowSeconds < p.nextDecisionAtSeconds) return [];
    p.nextDecisionAtSeconds = nowSeconds + p.pool.tickSeconds;
    return this.decidePool(a, p, mode, nowSeconds, nowIso);
  }

  /**
   * The tick's sample, except on a new or restarted pool's first tick: the batched sample started before its
   * heads were ever listed, so it read no group and would report every signal missing. List the heads and
   * sample this pool alone (same deadline) instead.
   */
  private async firstSampled(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    sample: Promise<PoolSample[]>,
    nowSeconds: number,
  ): Promise<PoolSample[]> {
    if (p.headsListed) return sample;
    void sample.catch(() => undefined);
    try {
      p.heads = await p.target.heads();
      p.headsListed = true;
    } catch (err) {
      this.options.logger.warn(
        { autoscaler: a.key, pool: p.pool.name, err: errorText(err) },
        'listing head pods failed',
      );
      return sample;
    }
    const request = this.requestOf(a, p);
    return withDeadline(
      this.options.signals.sample([request], nowSeconds),
      sampleDeadlineMs(request),
      'the signal source',
    ).then(
      (m) =>
        m.get(request.poolKey) ?? failedSamples(request, 'the signal source returned nothing for this pool'),
      () => failedSamples(request, 'signal source unreachable'),
    );
  }

  /** A coupled pair records both pools' samples and decides together, on the shorter of their ticks. */
  private async runCoupled(
    a: AutoscalerRuntime,
    pair: CoupledRuntimes,
    samples: readonly Promise<PoolSample[]>[],
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    nowIso: string,
  ): Promise<PoolEvent[]> {
    const pools = [pair.prefill, pair.decode];
    const latest = await Promise.all(
      pools.map((p, i) => this.firstSampled(a, p, samples[i] ?? Promise.resolve([]), nowSeconds)),
    );
    pools.forEach((p, i) => {
      p.latest = latest[i] ?? [];
      p.runner.record(p.latest, nowSeconds);
    });
    if (pools.every((p) => nowSeconds < p.nextDecisionAtSeconds)) return [];
    const tick = Math.min(...pools.map((p) => p.pool.tickSeconds));
    for (const p of pools) p.nextDecisionAtSeconds = nowSeconds + tick;
    return this.decideCoupled(a, pair, mode, nowSeconds, nowIso);
  }

  /** Records a pool's failure in its status (as a write error) and raises FailedRescale when it is new. */
  private poolFailed(a: AutoscalerRuntime, p: PoolRuntime, message: string): PoolEvent[] {
    this.options.logger.warn({ autoscaler: a.key, pool: p.pool.name, err: message }, 'pool reconcile failed');
    p.facts = { ...(p.facts ?? blankFacts(p.pool.name)), writeError: message };
    const event = {
      type: 'Warning',
      reason: 'FailedRescale',
      message: `${p.pool.name}: ${message}`,
      key: `${p.pool.name}|${stableKey(message)}`,
    } as const;
    if (p.failure === message) return [{ ...event, repeat: true }];
    p.failure = message;
    return [event];
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
      // A repeat is the same warning as the last tick's: logged when it was raised.
      if (e.repeat !== true) {
        this.options.logger.info({ autoscaler: a.key, reason: e.reason, detail: e.message }, 'event');
      }
    }
  }

  private lastStatus(a: AutoscalerRuntime): PodAutoscalerStatus | undefined {
    if (a.lastStatusJson !== null) return JSON.parse(a.lastStatusJson) as PodAutoscalerStatus;
    return a.raw.status;
  }

  /** One pool alone: read, decide, drain and write, re-reading on a conflict (someone else wrote). */
  private async decidePool(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    nowIso: string,
  ): Promise<PoolEvent[]> {
    p.drainRun = null;
    let tick = blankTick();
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt++) {
      tick = await this.planPool(a, p, nowSeconds, attempt, tick.overriddenNow);
      if (tick.state === null || tick.decision === null) break;
      const desired = await this.desiredOf(a, p, mode, nowSeconds, tick.state, tick.decision);
      if (!this.writes(p, mode) || desired === undefined) break;
      const result = await this.writeTarget(a, p, tick.state, desired, nowIso);
      if (result.kind === 'wrote') {
        tick.wrote = { from: tick.state.specGroups, to: desired };
        tick.state = { ...tick.state, specGroups: desired };
        break;
      }
      if (result.kind === 'conflict' && attempt < CONFLICT_ATTEMPTS) {
        this.options.logger.info(
          { autoscaler: a.key, pool: p.pool.name, attempt },
          'conflict writing the target; re-reading',
        );
        continue;
      }
      tick.writeError = result.message;
      break;
    }
    return this.finishPool(a, p, mode, nowSeconds, nowIso, tick);
  }

  /**
   * A coupled pair (spec.coupling): both pools read and decide, the pair is moved into the ratio band
   * (src/decide/coupling.ts), each goes through its own drain, and the writes are ordered so that every pair a
   * reader can observe is inside the band; a failed second write undoes the first when it had to leave it.
   * A conflict is not retried here: the pair decides again on the next tick.
   */
  private async decideCoupled(
    a: AutoscalerRuntime,
    pair: CoupledRuntimes,
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    nowIso: string,
  ): Promise<PoolEvent[]> {
    const { prefill, decode } = pair;
    prefill.drainRun = null;
    decode.drainRun = null;
    const [pt, dt] = await Promise.all([
      this.planPool(a, prefill, nowSeconds, 1, null),
      this.planPool(a, decode, nowSeconds, 1, null),
    ]);
    if (pt.state !== null && pt.decision !== null && dt.state !== null && dt.decision !== null) {
      const { band, text } = this.bandOf(pair, pt.decision, dt.decision);
      const prefillWant = { want: pt.decision.desiredGroups, ...effectiveBounds(prefill.pool, pt.state) };
      const decodeWant = { want: dt.decision.desiredGroups, ...effectiveBounds(decode.pool, dt.state) };
      const outcome =
        band !== null
          ? reconcileBand(band, prefillWant, decodeWant)
          : reconcileDerived({ on: false, text }, prefillWant, decodeWant);
      const wants = `prefill wants ${pt.decision.desiredGroups}, decode wants ${dt.decision.desiredGroups}; ${text}`;
      // A derived band is said on every decision, applied or not: it moves with the flows.
      const shown = !('band' in pair.ratio);
      const prefillDecision = withStage(
        pt.decision,
        'coupling',
        outcome.prefill,
        `${wants}: ${outcome.prefillReason ?? 'kept'}`,
        shown,
      );
      const decodeDecision = withStage(
        dt.decision,
        'coupling',
        outcome.decode,
        `${wants}: ${outcome.decodeReason ?? 'kept'}`,
        shown,
      );
      pt.decision = prefillDecision;
      dt.decision = decodeDecision;
      const current = { prefill: pt.state.specGroups, decode: dt.state.specGroups };
      // Each pool goes through its own drain; one that may not write (dry-run, another writer's hold) keeps
      // its count, and the other moves around it.
      const desiredP = await this.desiredOf(a, prefill, mode, nowSeconds, pt.state, prefillDecision);
      const desiredD = await this.desiredOf(a, decode, mode, nowSeconds, dt.state, decodeDecision);
      const target = {
        prefill: this.writes(prefill, mode) ? (desiredP ?? current.prefill) : current.prefill,
        decode: this.writes(decode, mode) ? (desiredD ?? current.decode) : current.decode,
      };
      const ticks = { prefill: pt, decode: dt };
      // Both pools in one object (StormService roles): one patch, one resourceVersion, no order needed.
      if (prefill.target.jointKey !== undefined && prefill.target.jointKey === decode.target.jointKey)
        await this.writePairAtOnce(a, pair, ticks, target, nowIso);
      else await this.writeInOrder(a, pair, ticks, planWrites(band ?? OPEN_BAND, current, target), nowIso);
    }
    return [
      ...this.finishPool(a, prefill, mode, nowSeconds, nowIso, pt),
      ...this.finishPool(a, decode, mode, nowSeconds, nowIso, dt),
    ];
  }

  /**
   * This tick's band of a coupled pair and how it reads: spec.coupling.ratio's own, or the one the two decisions'
   * token flows give (null when they give none: each pool then keeps its own want).
   */
  private bandOf(
    pair: CoupledRuntimes,
    prefill: Decision,
    decode: Decision,
  ): { band: RatioBand | null; text: string } {
    if ('band' in pair.ratio) {
      const { band } = pair.ratio;
      return { band, text: `band [${band.min}, ${band.max}] prefill per decode` };
    }
    const derived = deriveBand(
      flowOf(prefill.explanation.signals, 'promptTokens', pair.prefill.pool.headroomPercentage / 100),
      flowOf(decode.explanation.signals, 'generationTokens', pair.decode.pool.headroomPercentage / 100),
      pair.ratio.fromFlows.tolerance,
      pair.flowsCentre,
    );
    pair.flowsCentre = derived.on ? derived.ratio : null;
    return { band: derived.on ? derived.band : null, text: derived.text };
  }

  /**
   * The plan's writes one after another; a failed write stops the rest, and when the plan says the first write
   * alone may leave the band, that write is undone.
   */
  private async writeInOrder(
    a: AutoscalerRuntime,
    pair: CoupledRuntimes,
    ticks: { readonly prefill: PoolTick; readonly decode: PoolTick },
    plan: WritePlan,
    nowIso: string,
  ): Promise<void> {
    if (plan.writes.length > 0)
      this.options.logger.info(
        { autoscaler: a.key, writes: plan.writes, reason: plan.reason },
        'coupled writes',
      );
    let first: CoupledWrite | null = null;
    for (const w of plan.writes) {
      const t = ticks[w.pool];
      if (t.state === null) return;
      const result = await this.writeTarget(a, pair[w.pool], t.state, w.to, nowIso);
      if (result.kind === 'wrote') {
        t.wrote = { from: w.from, to: w.to };
        t.state = { ...t.state, specGroups: w.to };
        first ??= w;
        continue;
      }
      t.writeError = result.message;
      if (first === null || !plan.compensate) return;
      const undone = await this.compensate(a, pair[first.pool], first, nowIso);
      const f = ticks[first.pool];
      if (undone !== null) {
        t.writeError += `; undoing ${first.pool}'s write ${first.from} → ${first.to} failed too: ${undone}`;
        return;
      }
      f.wrote = null;
      if (f.state !== null) f.state = { ...f.state, specGroups: first.from };
      t.writeError += `; ${first.pool}'s write ${first.from} → ${first.to} was undone to keep the band`;
      return;
    }
  }

  /** The pair's counts in one patch of their shared object, guarded by the resourceVersion both reads saw. */
  private async writePairAtOnce(
    a: AutoscalerRuntime,
    pair: CoupledRuntimes,
    ticks: { readonly prefill: PoolTick; readonly decode: PoolTick },
    target: { readonly prefill: number; readonly decode: number },
    nowIso: string,
  ): Promise<void> {
    const pools = (['prefill', 'decode'] as const).filter(
      (k) => ticks[k].state !== null && ticks[k].state?.specGroups !== target[k],
    );
    const first = pools[0];
    if (first === undefined) return;
    const rv = ticks.prefill.state?.resourceVersion;
    if (rv === undefined || rv !== ticks.decode.state?.resourceVersion) {
      ticks[first].writeError =
        "the shared object changed between the two pools' reads; deciding again next tick";
      return;
    }
    const writeJoint = pair[first].target.writeJoint;
    if (writeJoint === undefined) return;
    try {
      await writeJoint.call(
        pair[first].target,
        pools.map((k) => {
          const removing = removingWith(pair[k], target[k]);
          return {
            target: pair[k].target,
            groups: target[k],
            ...(removing !== undefined ? { removing } : {}),
          };
        }),
        rv,
      );
    } catch (err) {
      for (const k of pools) ticks[k].writeError = errorText(err);
      if (!(err instanceof ConflictError))
        for (const k of pools) this.options.observer?.writeError?.(a.key, pair[k].pool.name);
      return;
    }
    for (const k of pools) {
      const t = ticks[k];
      if (t.state === null) continue;
      t.wrote = { from: t.state.specGroups, to: target[k] };
      t.state = { ...t.state, specGroups: target[k] };
      pair[k].lastWritten = target[k];
      pair[k].lastScaleTime = nowIso;
    }
  }

  /** Writes `first.from` back over kvpa's own write (fresh read, so its resourceVersion is current); null when done. */
  private async compensate(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    first: { from: number; to: number },
    nowIso: string,
  ): Promise<string | null> {
    try {
      const state = await p.target.read();
      const result = await this.writeTarget(a, p, state, first.from, nowIso);
      return result.kind === 'wrote' ? null : result.message;
    } catch (err) {
      return errorText(err);
    }
  }

  /** Whether kvpa writes this pool now: Apply mode, no other writer's hold, no conflict, no refusal. */
  private writes(p: PoolRuntime, mode: 'Apply' | 'DryRun'): boolean {
    return mode === 'Apply' && heldBy(p) === null;
  }

  /** Reads the target, notices another writer, and decides (with the placement stage). Never throws. */
  private async planPool(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    nowSeconds: number,
    attempt: number,
    overriddenBefore: string | null,
  ): Promise<PoolTick> {
    const log = this.options.logger;
    const tick = blankTick();
    tick.overriddenNow = overriddenBefore;
    try {
      tick.state = await p.target.read();
    } catch (err) {
      if (!(err instanceof TargetNotFoundError))
        tick.writeError = `reading the target failed: ${errorText(err)}`;
      return tick;
    }
    const state = tick.state;
    p.refusal = state.refusal ?? null;
    if (attempt === 1) {
      try {
        p.heads = await p.target.heads();
        p.headsListed = true;
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
      tick.overriddenNow = `the group count was changed from ${p.lastWritten} to ${state.specGroups} by another writer; kvpa adopts ${state.specGroups} and holds its own writes for ${this.overrideHold()}s (remove the other writer, or set spec.mode: DryRun)`;
      p.overrideUntilSeconds = nowSeconds + this.overrideHold();
      p.overriddenMessage = tick.overriddenNow;
      p.lastWritten = null;
      p.reverts = [...p.reverts, nowSeconds].filter(
        (t) => nowSeconds - t <= REVERT_WINDOW_HOLDS * this.overrideHold(),
      );
      if (p.reverts.length >= 2 && p.ownerConflict === null) {
        p.ownerConflict = revertConflict(a.key, p, state);
      }
    }
    if (nowSeconds >= p.overrideUntilSeconds) p.overriddenMessage = null;

    // The pool's latency for the SLO guard rides on its samples (absent: guard off, never 0).
    const latency = p.latest.find((s) => s.latency !== undefined)?.latency;
    // During a drain the victims are leaving: the decider sees the count the drain will write.
    const requested = requestedForDecision(p.drain, state.specGroups);
    const placement = p.pool.capacityCheck === 'Off' ? undefined : state.placement;
    tick.decision = p.runner.decide(
      nowSeconds,
      state.readyGroups,
      requested,
      p.latest,
      latency,
      placement?.unschedulableGroups,
    );
    if (placement !== undefined) {
      const placed = await this.placementStage(a, p, tick.decision, requested, placement);
      tick.decision = placed.decision;
      tick.shortfall = placed.shortfall;
    }
    if (state.workloadBounds !== undefined) {
      const owner = `${p.pool.scaleTargetRef.kind} ${p.pool.scaleTargetRef.name}`;
      tick.decision = applyWorkloadBounds(tick.decision, state.workloadBounds, owner);
    }
    return tick;
  }

  /** The count to write for this decision, through the pool's drain where its kind drains; undefined: none. */
  private async desiredOf(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    state: TargetState,
    decision: Decision,
  ): Promise<number | undefined> {
    if (state.drain === undefined) return groupsToWrite(decision, state.specGroups);
    const log = this.options.logger;
    p.drainRun = await runDrain({
      mode: heldBy(p) === null ? mode : 'DryRun',
      nowSeconds,
      state: { ...state, drain: state.drain },
      decision,
      previous: p.drain,
      timeoutSeconds: p.pool.drainTimeoutSeconds,
      target: p.target,
      owner: ownerOf(a, p),
      signals: this.options.signals,
      request: this.requestOf(a, p),
      onError: (what, err) =>
        log.warn({ autoscaler: a.key, pool: p.pool.name, err: errorText(err) }, `${what} failed`),
    });
    p.drain = p.drainRun.outcome.record;
    return p.drainRun.outcome.write;
  }

  /** One write guarded by the read's resourceVersion; the outcome, never a throw. */
  private async writeTarget(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    state: TargetState,
    groups: number,
    nowIso: string,
  ): Promise<{ kind: 'wrote' } | { kind: 'conflict' | 'failed'; message: string }> {
    try {
      const removing = removingWith(p, groups);
      if (removing !== undefined && p.target.writeRemoving !== undefined)
        await p.target.writeRemoving(groups, state.resourceVersion, removing);
      else await p.target.write(groups, state.resourceVersion);
      p.lastWritten = groups;
      p.lastScaleTime = nowIso;
      return { kind: 'wrote' };
    } catch (err) {
      if (err instanceof ConflictError) return { kind: 'conflict', message: errorText(err) };
      this.options.observer?.writeError?.(a.key, p.pool.name);
      return { kind: 'failed', message: errorText(err) };
    }
  }

  /** Ledger, status facts, metrics, Events and annotations from one pool's tick. */
  private finishPool(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    mode: 'Apply' | 'DryRun',
    nowSeconds: number,
    nowIso: string,
    tick: PoolTick,
  ): PoolEvent[] {
    const { state, decision, wrote, writeError, shortfall } = tick;
    const overriddenNow = tick.overriddenNow;
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
      writeError: writeError ?? (p.drainRun?.routingError ? `routing: ${p.drainRun.routingError}` : null),
      overriddenMessage: p.overriddenMessage,
      drain: drainStatus(p.drain, p.drainRun?.outcome ?? null),
      drainUnavailable: p.drainRun?.unavailable ?? null,
      shortfall,
      blocked: blockedOf(p),
      ownerConflict: p.ownerConflict,
    };
    p.facts = facts;
    this.options.observer?.pool?.(a.key, p.pool.name, facts, decision);

    const { events, repeats, memory } = poolEvents(p.memory, {
      pool: p.pool.name,
      mode,
      targetFound: state !== null || writeError !== null,
      specGroups,
      decision,
      wrote,
      writeError,
      overriddenMessage: overriddenNow,
      drain:
        p.drainRun === null
          ? null
          : {
              phase: p.drainRun.outcome.phase,
              reason: p.drainRun.outcome.reason,
              victims: p.drainRun.outcome.outOfRouting,
              unavailable: p.drainRun.unavailable,
            },
      shortfall,
      blocked: blockedOf(p),
    });
    p.memory = memory;
    this.annotate(a, p, mode, nowSeconds, events, decision, wrote?.from ?? specGroups);
    return [...events, ...repeats];
  }

  /**
   * The placement stage (src/decide/placement.ts): a scale-up, or a request the scheduler cannot place, reads
   * the cluster's room and limits the ask to whole groups that fit. A failed read limits nothing and says so.
   */
  private async placementStage(
    a: AutoscalerRuntime,
    p: PoolRuntime,
    decision: Decision,
    requested: number,
    placement: NonNullable<TargetState['placement']>,
  ): Promise<{ decision: Decision; shortfall: CapacityShortfall | null }> {
    const check = p.pool.capacityCheck === 'AskAnyway' ? 'AskAnyway' : 'Enforce';
    if (!needsRoom(decision, requested, placement)) return { decision, shortfall: null };
    const namespace = a.raw.metadata?.namespace ?? 'default';
    try {
      const room = await this.clusterRoom(namespace, placement.group.gpuResource, placement.kueueQueue);
      const seen = observePlacement(placement.group, room.nodes, room.quotas, placement, p.pool.maxReplicas);
      return applyPlacement(decision, requested, seen, check);
    } catch (err) {
      this.options.logger.warn(
        { autoscaler: a.key, pool: p.pool.name, err: errorText(err) },
        'reading the cluster capacity failed; the ask is not limited',
      );
      return applyPlacement(decision, requested, { unknown: errorText(err).slice(0, 300) }, check);
    }
  }

  /**
   * The room is read fresh for every pool that asks for more: a cached read would not show the groups a write
   * a moment ago has just placed, and the same free GPUs would be offered twice.
   */
  private clusterRoom(namespace: string, gpuResource: string, kueueQueue?: string): Promise<ClusterRoom> {
    const read =
      this.options.clusterRoom ??
      ((ns: string, resource: string, queue?: string) => {
        return readClusterRoom(this.clients(), ns, resource, queue);
      });
    return withDeadline(
      read(namespace, gpuResource, kueueQueue),
      ROOM_DEADLINE_MS,
      'reading the cluster capacity',
    );
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
    this.seedSeasonal(a, p, nowSeconds);
  }

  /**
   * The seasonal memory of a new pool, seeded from kvpa's own series a day or a week back (one point a
   * minute). Not awaited: a slow or failed read delays no decision, and until it lands the pool has no
   * seasonal plan (no history is no plan, never a ratio of 1).
   */
  private seedSeasonal(a: AutoscalerRuntime, p: PoolRuntime, nowSeconds: number): void {
    const source = this.options.signals;
    const seasonal = p.runner.seasonalSignals();
    if (source.ownHistory === undefined || a.spec === null || seasonal.length === 0) return;
    const longest = Math.max(...seasonal.flatMap((s) => s.lookbacksSeconds));
    const runner = p.runner;
    source
      .ownHistory(
        {
          poolKey: `${a.key}/${p.pool.name}`,
          namespace: a.raw.metadata?.namespace ?? 'default',
          pool: p.pool,
          heads: p.heads,
          metricsSource: a.spec.metricsSource,
        },
        a.raw.metadata?.name ?? '',
        seasonal.map((s) => s.name),
        nowSeconds - longest - SEASONAL_MEAN_SECONDS,
        nowSeconds - 1,
        SEASONAL_BUCKET_SECONDS,
      )
      .then((history) => {
        const seeded = runner.seedSeasonal(history);
        this.options.logger.info(
          { autoscaler: a.key, pool: p.pool.name, seeded },
          'seasonal memory seeded from kvpa_pool_signal_stable_value',
        );
      })
      .catch((err: unknown) => {
        this.options.logger.warn(
          { autoscaler: a.key, pool: p.pool.name, err: errorText(err) },
          'seasonal history unreadable; the seasonal plan starts from live samples',
        );
      });
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
      e.signals.map((s) => [s.name, s.state, s.stableWant, s.panicWant, s.horizonWant, s.plannedBy]),
    ]);
    if (p.shown?.fingerprint !== fingerprint) p.shown = { fingerprint, time: nowIso, decision: d };
  }

  /** The dry-run ledger accrues this tick; status gets it at most every ledgerPublishSeconds. */
  private updateLedger(
    p: PoolRuntime,
    nowSeconds: number,
    nowIso: string,
    d: Decision,
    state: TargetState,
  ): void {
    const before = p.ledger?.account ?? startLedger(nowIso);
    const account = accrue(before, nowSeconds, d.desiredGroups, state.specGroups, state.gpusPerGroup ?? null);
    const due =
      p.ledger === null ||
      nowSeconds - p.ledger.publishedAtSeconds >= (this.options.ledgerPublishSeconds ?? 60);
    p.ledger = due
      ? { account, published: ledgerStatus(account), publishedAtSeconds: nowSeconds }
      : { ...(p.ledger as Ledger), account };
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

/** A runtime that scales nothing and reports why (Ready=False, InvalidSpec, one Event). */
/** Why kvpa does not write this pool: the target's refusal, else a latched conflict; null when it may. */
function blockedOf(p: PoolRuntime): TargetRefusal | null {
  if (p.refusal !== null) return p.refusal;
  return p.ownerConflict === null ? null : { reason: 'OwnerConflict', message: p.ownerConflict };
}

/**
 * The pods to name with a write of `groups` when the pool's drain chose its victims (a KubeRay worker group), or
 * undefined: only the drain's own lower count names them, and a write that names no pod is a plain one.
 */
function removingWith(p: PoolRuntime, groups: number): readonly string[] | undefined {
  const run = p.drainRun;
  if (run === null || run.removePods === null || run.removePods.length === 0) return undefined;
  return run.outcome.write === groups ? run.removePods : undefined;
}

/** The pool as the pods it takes out of routing name it. */
function ownerOf(a: AutoscalerRuntime, p: PoolRuntime): RoutingOwner {
  const ref = p.pool.scaleTargetRef;
  return { podAutoscaler: a.raw.metadata?.name ?? '', pool: p.pool.name, target: `${ref.kind}/${ref.name}` };
}

/** What holds kvpa's writes to this pool (refusal, conflict, another writer's hold); null when none. */
function heldBy(p: PoolRuntime): string | null {
  return blockedOf(p)?.message ?? p.overriddenMessage;
}

/**
 * The conflict message after repeated reverts: the other field manager that owns the count (from
 * managedFields), and the fixes users reach for (KServe's replicas fields, a Dynamo Planner left on).
 */
/** spec.coupling.ratio as the pair runs it; the schema's rules guarantee min and max without fromFlows. */
function ratioOf(r: Ratio): CoupledRuntimes['ratio'] {
  if (r.fromFlows !== undefined)
    return { fromFlows: { tolerance: r.fromFlows.tolerance ?? DEFAULT_FLOWS_TOLERANCE } };
  return { band: { min: r.min ?? 0, max: r.max ?? Number.POSITIVE_INFINITY } };
}

function revertConflict(key: string, p: PoolRuntime, state: TargetState): string {
  const ref = p.pool.scaleTargetRef;
  const manager = state.countManagers?.[0];
  const who = manager !== undefined ? `field manager "${manager}"` : 'another writer';
  return (
    `${who} reverted kvpa's writes to ${ref.kind} ${ref.name} ${p.reverts.length} times; kvpa stops writing ` +
    `this pool. Stop the other owner (e.g. remove spec.replicas from a KServe LLMInferenceService, turn off a ` +
    `Dynamo Planner or an HPA on the same target), then change PodAutoscaler ${key}'s spec (any field) to resume`
  );
}

function invalidRuntime(
  raw: RawPodAutoscaler,
  generation: number,
  previous: AutoscalerRuntime | undefined,
  message: string,
  spec: PodAutoscalerSpec | null = null,
): AutoscalerRuntime {
  return {
    key: keyOf(raw),
    generation,
    raw,
    spec,
    invalid: message,
    pools: new Map(),
    coupled: null,
    annotations: null,
    lastStatusJson: previous?.lastStatusJson ?? null,
    invalidReported: false,
  };
}

/** What status shows for a pool that failed before it ever decided. */
function blankFacts(name: string): PoolFacts {
  return {
    name,
    specGroups: null,
    readyGroups: null,
    desiredGroups: 0,
    recommendedGroups: 0,
    decision: null,
    lastScaleTime: null,
    decisionTime: null,
    ledger: null,
    writeError: null,
    overriddenMessage: null,
    drain: null,
    drainUnavailable: null,
  };
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { code?: number; body?: unknown };
  if (typeof e?.code === 'number') return `HTTP ${e.code}: ${JSON.stringify(e.body).slice(0, 300)}`;
  return String(err);
}

/** The ledger a previous controller published for this pool, if any. */
function resumedLedger(raw: RawPodAutoscaler, poolName: string): Ledger | null {
  const published = raw.status?.pools?.find((s) => s.name === poolName)?.dryRunLedger;
  const account = resumeLedger(published);
  if (account === null || published === undefined) return null;
  return { account, published, publishedAtSeconds: Number.NEGATIVE_INFINITY };
}
