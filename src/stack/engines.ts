/**
 * Emulated engines for the live stack: the lab's `Fleet` run in wall-clock time, one vLLM-style `/metrics`
 * endpoint per replica group.
 *
 * **Time.** Virtual time is `(wall − start) × accelerationFactor`. Every `advanceIntervalMs` (and before
 * answering a scrape, so an answer is never older than the wall clock) the fleet is advanced to the virtual
 * now. Load generators register as feeders and are pulled at the start of each advance, so every arrival
 * enters the fleet at its exact virtual time however late the timer fires.
 *
 * **Groups.** A group exists while its leader pod runs: `syncGroups(pool, refs)` adds the missing ones
 * (capacity at once, `Fleet.addReadyGroup`), takes the unroutable ones out of routing (they serve what they
 * hold and get nothing new) and removes the rest at once: a deleted multi-node group's engine dies, so what it
 * held is aborted (`abortedByScaleDown`). Each group gets an HTTP server on 127.0.0.1 on an ephemeral port.
 *
 * **Metrics.** The text carries vLLM v1's names, HELP strings and `{engine, model_name}` label set
 * (test/fixtures/metrics/vllm-v1-engine-label.txt), one data-parallel rank (`engine="0"`) per
 * group head, plus the engine's counters and TTFT/ITL histograms with vLLM's bucket bounds
 * (vllm-project/vllm `vllm/v1/metrics/loggers.py`). `setOverride` forces a value on one pod, so a benchmark can time a step on /metrics to a scale
 * write; overrides change what is served, never the model's state or the snapshot.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HistogramSnapshot } from '../decide/histogram.ts';
import { type RenderableFamily, renderExposition } from '../observe/exposition.ts';
import type { Calibration } from '../sim/calibration.ts';
import type { EngineSeries } from '../sim/engine-series.ts';
import { Fleet } from '../sim/fleet.ts';
import { type Quantiles, quantilesOf } from '../sim/kpi.ts';
import type { GroupMetrics, Pool } from '../sim/policies/types.ts';

export const POOLS: readonly Pool[] = ['prefill', 'decode'];

/** A replica group, named by its leader pod. */
export interface EngineRef {
  readonly namespace: string;
  readonly pod: string;
  /** Sent new requests (the pod is Ready with its readiness gates True); default true. */
  readonly routable?: boolean;
}

/** Values forced onto one pod's /metrics; a field left out keeps the model's value. */
export interface MetricOverride {
  /** `vllm:kv_cache_usage_perc`, a fraction (not validated: tests may script bad values). */
  readonly kvCacheUsage?: number;
  /** `vllm:num_requests_waiting`. */
  readonly waiting?: number;
}

export interface WallClock {
  nowMs(): number;
}

export const systemClock: WallClock = { nowMs: () => performance.timeOrigin + performance.now() };

/** Pulled at each advance: delivers its arrivals with virtual time ≤ `untilVirtualSeconds`, in time order. */
export interface ArrivalFeeder {
  feedUntil(
    untilVirtualSeconds: number,
    arrive: (virtualSeconds: number, inputTokens: number, outputTokens: number) => void,
  ): void;
}

export interface LiveEnginesOptions {
  readonly calibration: Calibration;
  /** Virtual seconds per wall second (1 = real time). */
  readonly accelerationFactor: number;
  /** Wall period of the advance timer; 0 = no timer (tests call `advance()`). Default 100. */
  readonly advanceIntervalMs?: number;
  /** `model_name` label value. Default `deepseek-ai/DeepSeek-R1`. */
  readonly modelName?: string;
  /** Virtual seconds a request may wait for a prefill batch before the client gives up. Default 600. */
  readonly requestTimeoutSeconds?: number;
  /** Defaults from the calibration. */
  readonly ttftSloSeconds?: number;
  readonly tpotSloSeconds?: number;
  /** Groups per pool beyond which `syncGroups` ignores pods. Default 256. */
  readonly maxGroupsPerPool?: number;
  /** Serve /metrics over HTTP (default true); false leaves `metricsPort` undefined (pure unit tests). */
  readonly serveHttp?: boolean;
  /** Virtual seconds between timeline rows. Default 10. */
  readonly timelineIntervalSeconds?: number;
  /** The timeline keeps at most this many rows (the oldest are dropped). Default 20,000. */
  readonly maxTimelineRows?: number;
  readonly clock?: WallClock;
}

export interface PoolSnapshot {
  /** Groups serving (leader pod Ready and not removed). */
  readonly readyGroups: number;
  /** Mean over ready groups of the model's KV usage (0–1); NaN with no group. Overrides are not applied. */
  readonly kvCacheUsageMean: number;
  readonly requestsWaiting: number;
  readonly requestsRunning: number;
}

export interface EnginesSnapshot {
  readonly wallSeconds: number;
  readonly virtualSeconds: number;
  readonly pools: Readonly<Record<Pool, PoolSnapshot>>;
  readonly requests: {
    readonly arrived: number;
    readonly completed: number;
    readonly dropped: number;
    /** The part of `dropped` aborted on a removed group (a scale-down that did not drain it). */
    readonly abortedByScaleDown: number;
    readonly inFlight: number;
  };
  readonly ttftSeconds: Quantiles;
  readonly tpotSeconds: Quantiles;
  /** Requests that met both SLOs over requests finished (completed + dropped); NaN before any finished. */
  readonly sloAttainment: number;
}

/** One row of the live timeline (virtual time), for a report. */
export interface LiveTimelineRow {
  readonly virtualSeconds: number;
  readonly wallSeconds: number;
  readonly pools: Readonly<Record<Pool, PoolSnapshot>>;
  readonly arrived: number;
  readonly completed: number;
  readonly dropped: number;
  readonly sloMet: number;
}

// ------------------------------------------------------------------ pure parts

/** Virtual seconds at a wall time, for a run started at `startMs`. */
export function virtualSecondsAt(wallMs: number, startMs: number, accelerationFactor: number): number {
  return (Math.max(0, wallMs - startMs) / 1000) * accelerationFactor;
}

export function refKey(ref: EngineRef): string {
  return `${ref.namespace}/${ref.pod}`;
}

/** HELP strings as vLLM v1 registers them (vllm/v1/metrics/loggers.py; fixture vllm-v1-engine-label.txt). */
const HELP = {
  running: 'Number of requests in model execution batches.',
  waiting: 'Number of requests waiting to be processed.',
  kv: 'KV-cache usage. 1 means 100 percent usage.',
  promptTokens: 'Number of prefill tokens processed.',
  generationTokens: 'Number of generation tokens processed.',
  preemptions: 'Cumulative number of preemption from the engine.',
  requestSuccess: 'Count of successfully processed requests.',
  ttft: 'Histogram of time to first token in seconds.',
  requestPromptTokens: 'Number of prefill tokens processed.',
  requestGenerationTokens: 'Number of generation tokens processed.',
  itl: 'Histogram of inter-token latency in seconds.',
} as const;

type Labels = Readonly<Record<string, string>>;

/** A Prometheus histogram family: `_bucket` per bound and +Inf, then `_sum` and `_count`. */
function histogramFamily(name: string, help: string, labels: Labels, h: HistogramSnapshot): RenderableFamily {
  const buckets = h.cumulative.map((value, i) => ({
    name: `${name}_bucket`,
    labels: { ...labels, le: i < h.upperBounds.length ? String(h.upperBounds[i]) : '+Inf' },
    value,
  }));
  const count = h.cumulative[h.cumulative.length - 1] ?? 0;
  return {
    name,
    type: 'histogram',
    help,
    samples: [
      ...buckets,
      { name: `${name}_sum`, labels, value: h.sum },
      { name: `${name}_count`, labels, value: count },
    ],
  };
}

/** A token-count histogram with only its +Inf bucket: sum and count, as a ratio of them is what is read. */
function tokensPerRequest(
  name: string,
  help: string,
  labels: Labels,
  sum: number,
  count: number,
): RenderableFamily {
  return histogramFamily(name, help, labels, { upperBounds: [], cumulative: [count], sum });
}

/** The counter and histogram families of one engine's series. Pure. */
function seriesFamilies(series: EngineSeries, labels: Labels): RenderableFamily[] {
  // prometheus_client names a counter's family with its `_total` sample name in the text format (vLLM's own output).
  const counter = (name: string, help: string, value: number): RenderableFamily => ({
    name,
    type: 'counter',
    help,
    samples: [{ name, labels, value }],
  });
  return [
    counter('vllm:num_preemptions_total', HELP.preemptions, series.preemptionsTotal),
    counter('vllm:prompt_tokens_total', HELP.promptTokens, series.promptTokensTotal),
    counter('vllm:generation_tokens_total', HELP.generationTokens, series.generationTokensTotal),
    {
      name: 'vllm:request_success_total',
      type: 'counter',
      help: HELP.requestSuccess,
      // The lab's requests end at their output length: vLLM's finished_reason "length".
      samples: [
        {
          name: 'vllm:request_success_total',
          labels: { ...labels, finished_reason: 'length' },
          value: series.requestSuccessTotal,
        },
      ],
    },
    // vLLM observes each finished request's token counts (vllm/v1/metrics/loggers.py
    // `histogram_num_prompt_tokens_request`); the lab keeps no per-request sizes, so only the +Inf bucket,
    // with the token counters as the sum and the finished requests as the count: the same mean per request.
    tokensPerRequest(
      'vllm:request_prompt_tokens',
      HELP.requestPromptTokens,
      labels,
      series.promptTokensTotal,
      series.requestSuccessTotal,
    ),
    tokensPerRequest(
      'vllm:request_generation_tokens',
      HELP.requestGenerationTokens,
      labels,
      series.generationTokensTotal,
      series.requestSuccessTotal,
    ),
    histogramFamily('vllm:time_to_first_token_seconds', HELP.ttft, labels, series.timeToFirstTokenSeconds),
    histogramFamily('vllm:inter_token_latency_seconds', HELP.itl, labels, series.interTokenLatencySeconds),
  ];
}

/** A group head's /metrics text in vLLM v1 format, with the override applied. Pure. */
export function renderVllmMetrics(
  metrics: GroupMetrics,
  modelName: string,
  override?: MetricOverride,
  series?: EngineSeries,
): string {
  // prometheus_client prints labels sorted by name (engine before model_name); parsers read by name anyway.
  const labels = { engine: '0', model_name: modelName };
  const gauge = (name: string, help: string, value: number): RenderableFamily => ({
    name,
    type: 'gauge',
    help,
    samples: [{ name, labels, value }],
  });
  return renderExposition([
    gauge('vllm:num_requests_running', HELP.running, metrics.numRequestsRunning),
    gauge('vllm:num_requests_waiting', HELP.waiting, override?.waiting ?? metrics.numRequestsWaiting),
    gauge('vllm:kv_cache_usage_perc', HELP.kv, override?.kvCacheUsage ?? metrics.kvCacheUsagePerc),
    ...(series === undefined ? [] : seriesFamilies(series, labels)),
  ]);
}

/** Per-pool aggregate of group metrics. Pure. */
export function poolSnapshotOf(metrics: readonly GroupMetrics[]): PoolSnapshot {
  let kv = 0;
  let waiting = 0;
  let running = 0;
  for (const m of metrics) {
    kv += m.kvCacheUsagePerc;
    waiting += m.numRequestsWaiting;
    running += m.numRequestsRunning;
  }
  return {
    readyGroups: metrics.length,
    kvCacheUsageMean: metrics.length > 0 ? kv / metrics.length : Number.NaN,
    requestsWaiting: waiting,
    requestsRunning: running,
  };
}

// ------------------------------------------------------------------ the live engines

interface Engine {
  readonly ref: EngineRef;
  readonly pool: Pool;
  server: Server | undefined;
  port: number | undefined;
}

export class LiveEngines {
  /** The model; read-only use for reports (scale events, per-minute timeline, histograms). */
  readonly fleet: Fleet;
  readonly accelerationFactor: number;
  readonly modelName: string;
  private readonly clock: WallClock;
  private readonly startMs: number;
  private readonly serveHttp: boolean;
  private readonly timelineIntervalSeconds: number;
  private readonly maxTimelineRows: number;
  private readonly engines = new Map<string, Engine>();
  private readonly overrides = new Map<string, MetricOverride>();
  private readonly feeders = new Set<ArrivalFeeder>();
  private readonly rows: LiveTimelineRow[] = [];
  private nextRowAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private syncChain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(options: LiveEnginesOptions) {
    if (!(options.accelerationFactor > 0)) throw new Error('accelerationFactor must be > 0');
    const c = options.calibration;
    const maxGroups = options.maxGroupsPerPool ?? 256;
    this.fleet = new Fleet({
      calibration: c,
      startupSeconds: 0, // groups come from pods, never from setDesired
      metricsDelivery: { kind: 'direct' },
      requestTimeoutSeconds: options.requestTimeoutSeconds ?? 600,
      initialGroups: { prefill: 0, decode: 0 },
      maxGroups: { prefill: maxGroups, decode: maxGroups },
      ttftSloSeconds: options.ttftSloSeconds ?? c.slo.ttftSeconds,
      tpotSloSeconds: options.tpotSloSeconds ?? c.slo.tpotSeconds,
    });
    this.accelerationFactor = options.accelerationFactor;
    this.modelName = options.modelName ?? 'deepseek-ai/DeepSeek-R1';
    this.clock = options.clock ?? systemClock;
    this.startMs = this.clock.nowMs();
    this.serveHttp = options.serveHttp ?? true;
    this.timelineIntervalSeconds = options.timelineIntervalSeconds ?? 10;
    this.maxTimelineRows = options.maxTimelineRows ?? 20_000;
    const intervalMs = options.advanceIntervalMs ?? 100;
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.advance(), intervalMs);
      this.timer.unref(); // the servers and the rest of the stack keep the process alive, not this timer
    }
  }

  /** Virtual seconds now by the wall clock. */
  virtualNowSeconds(): number {
    return virtualSecondsAt(this.clock.nowMs(), this.startMs, this.accelerationFactor);
  }

  /** Brings the model to the wall clock's now: feeders first, then events and ticks. Returns virtual now. */
  advance(): number {
    const target = Math.max(this.fleet.nowSeconds, this.virtualNowSeconds());
    for (const feeder of [...this.feeders]) feeder.feedUntil(target, this.arriveAt);
    this.fleet.advanceTo(target, this.onTick);
    return target;
  }

  /** Registers a load source; returns its removal. */
  addFeeder(feeder: ArrivalFeeder): () => void {
    this.feeders.add(feeder);
    return () => {
      this.feeders.delete(feeder);
    };
  }

  /** One request now (or at a virtual time not before the model's now). */
  arrive(inputTokens: number, outputTokens: number, atVirtualSeconds?: number): void {
    if (atVirtualSeconds === undefined) this.advance();
    this.arriveAt(atVirtualSeconds ?? this.fleet.nowSeconds, inputTokens, outputTokens);
  }

  private readonly arriveAt = (virtualSeconds: number, inputTokens: number, outputTokens: number): void => {
    // The model's time only moves forward: a late arrival (two feeders, a caller's stale time) lands now.
    const t = Math.max(virtualSeconds, this.fleet.nowSeconds);
    this.fleet.advanceTo(t, this.onTick);
    this.fleet.arrive(t, inputTokens, outputTokens);
  };

  private readonly onTick = (second: number): void => {
    if (second < this.nextRowAt) return;
    this.nextRowAt = second + this.timelineIntervalSeconds;
    const f = this.fleet;
    this.rows.push({
      virtualSeconds: second,
      wallSeconds: second / this.accelerationFactor,
      pools: {
        prefill: poolSnapshotOf(f.sampleMetrics('prefill')),
        decode: poolSnapshotOf(f.sampleMetrics('decode')),
      },
      arrived: f.arrived,
      completed: f.completed,
      dropped: f.dropped,
      sloMet: f.sloMet,
    });
    if (this.rows.length > this.maxTimelineRows) this.rows.splice(0, this.rows.length - this.maxTimelineRows);
  };

  /**
   * Makes the pool's groups exactly `refs` (within `namespace` when given, so one watch per namespace can
   * share the engines). Calls are serialised; resolves when every added group's server listens.
   */
  syncGroups(pool: Pool, refs: readonly EngineRef[], namespace?: string): Promise<void> {
    const run = () => this.applySync(pool, refs, namespace);
    const next = this.syncChain.then(run, run);
    this.syncChain = next.catch(() => {});
    return next;
  }

  private async applySync(pool: Pool, refs: readonly EngineRef[], namespace?: string): Promise<void> {
    if (this.stopped) return;
    this.advance();
    const wanted = new Map(refs.map((r) => [refKey(r), r]));
    const closing: Promise<void>[] = [];
    for (const [key, engine] of this.engines) {
      const inScope = namespace === undefined || engine.ref.namespace === namespace;
      // A pod that changed role leaves its old pool before it joins the new one.
      const elsewhere = engine.pool !== pool && wanted.has(key);
      if ((engine.pool === pool && inScope && !wanted.has(key)) || elsewhere) {
        this.fleet.removeGroup(engine.pool, key, 'abort');
        this.engines.delete(key);
        closing.push(closeServer(engine.server));
      }
    }
    const opening: Promise<void>[] = [];
    for (const [key, ref] of wanted) {
      const routable = ref.routable ?? true;
      if (this.engines.has(key)) {
        this.fleet.setExternalRouting(pool, key, routable);
        continue;
      }
      if (!this.fleet.addReadyGroup(pool, key, { routable })) continue; // at maxGroupsPerPool
      const engine: Engine = { ref, pool, server: undefined, port: undefined };
      this.engines.set(key, engine);
      if (this.serveHttp) opening.push(this.listen(engine));
    }
    await Promise.all([...closing, ...opening]);
  }

  private async listen(engine: Engine): Promise<void> {
    const key = refKey(engine.ref);
    const server = createServer((req, res) => this.handle(engine, req, res));
    // Scrapes keep connections alive; a removed group must not keep answering through one.
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    if (this.engines.get(key) !== engine || this.stopped) {
      await closeServer(server); // removed while it was starting
      return;
    }
    engine.server = server;
    engine.port = (server.address() as AddressInfo).port;
  }

  private handle(engine: Engine, req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const path = url.split('?')[0];
    if (path === '/health') {
      res.writeHead(200).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    this.advance();
    const key = refKey(engine.ref);
    const metrics = this.engines.get(key) === engine ? this.fleet.groupMetrics(engine.pool, key) : undefined;
    if (metrics === undefined) {
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('engine stopped\n');
      return;
    }
    res
      .writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' })
      .end(
        renderVllmMetrics(
          metrics,
          this.modelName,
          this.overrides.get(key),
          this.fleet.groupSeries(engine.pool, key),
        ),
      );
  }

  /** The group's /metrics port on 127.0.0.1; undefined when the pod has no group (or before it listens). */
  metricsPort(namespace: string, pod: string): number | undefined {
    return this.engines.get(refKey({ namespace, pod }))?.port;
  }

  /** The groups served now, with their pool. */
  groups(): { readonly ref: EngineRef; readonly pool: Pool; readonly port: number | undefined }[] {
    return [...this.engines.values()].map((e) => ({ ref: e.ref, pool: e.pool, port: e.port }));
  }

  /** What the pod's /metrics would serve now (with its override); undefined without a group. */
  metricsText(namespace: string, pod: string): string | undefined {
    const key = refKey({ namespace, pod });
    const engine = this.engines.get(key);
    if (engine === undefined) return undefined;
    this.advance();
    const metrics = this.fleet.groupMetrics(engine.pool, key);
    return metrics === undefined
      ? undefined
      : renderVllmMetrics(
          metrics,
          this.modelName,
          this.overrides.get(key),
          this.fleet.groupSeries(engine.pool, key),
        );
  }

  /** Forces values onto the pod's /metrics until cleared (an empty override clears). */
  setOverride(namespace: string, pod: string, override: MetricOverride): void {
    const key = refKey({ namespace, pod });
    if (override.kvCacheUsage === undefined && override.waiting === undefined) this.overrides.delete(key);
    else this.overrides.set(key, { ...override });
  }

  clearOverride(namespace: string, pod: string): void {
    this.overrides.delete(refKey({ namespace, pod }));
  }

  snapshot(): EnginesSnapshot {
    const virtualSeconds = this.advance();
    const f = this.fleet;
    const finished = f.completed + f.dropped;
    return {
      wallSeconds: (this.clock.nowMs() - this.startMs) / 1000,
      virtualSeconds,
      pools: {
        prefill: poolSnapshotOf(f.sampleMetrics('prefill')),
        decode: poolSnapshotOf(f.sampleMetrics('decode')),
      },
      requests: {
        arrived: f.arrived,
        completed: f.completed,
        dropped: f.dropped,
        abortedByScaleDown: f.abortedByScaleDown,
        inFlight: f.requestsInFlight,
      },
      ttftSeconds: quantilesOf(f.ttft),
      tpotSeconds: quantilesOf(f.tpot),
      sloAttainment: finished > 0 ? f.sloMet / finished : Number.NaN,
    };
  }

  /** Rows every `timelineIntervalSeconds` of virtual time since the start. */
  timeline(): readonly LiveTimelineRow[] {
    return this.rows;
  }

  /** Stops the timer and every server. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.advance();
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.feeders.clear();
    await this.syncChain;
    const servers = [...this.engines.values()].map((e) => closeServer(e.server));
    this.engines.clear();
    await Promise.all(servers);
  }
}

async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
