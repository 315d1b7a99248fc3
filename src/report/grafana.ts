/**
 * Grafana annotations for kvpa decisions: a point annotation per scaling event or dry-run recommendation, and a
 * region per panic period (POST at panic start, PATCH `timeEnd` when it ends).
 *
 * Sending is fire-and-forget for the reconcile loop: `enqueue()` only appends to a bounded in-memory queue; a
 * single background worker drains it in batches, one request at a time (Grafana has no batch endpoint, and
 * sequential sends keep a region's POST ahead of its PATCH), retrying transient failures with exponential
 * backoff and jitter. When the queue is full the oldest entry is dropped, counted and logged.
 *
 * Tags use one `key:value` form (Grafana itself splits such tags into key and value):
 *   kvpa, namespace:<ns>, name:<pa name>, pool:<prefill|decode>, mode:<Stable|Panic>, dryRun:<true|false>,
 *   event:<scale|recommendation|panic>, then the spec's extra tags.
 * A dashboard annotation query on tags `kvpa` + `namespace:foo` therefore shows one PodAutoscaler's history.
 *
 * The service-account token comes from an injected provider on every request (so rotation works) and is never
 * logged: the logger redacts token/authorization fields and every logged string is scrubbed of the token.
 *
 * API reference: grafana/grafana docs/sources/developers/http_api/annotations.md (POST /api/annotations;
 * service-account bearer tokens per grafana.com/docs/grafana/latest/developers/http_api/authentication).
 */
import { setTimeout as sleepWithSignal } from 'node:timers/promises';
import { type Logger, pino } from 'pino';
import type { PodAutoscalerSpec } from '../api/podautoscaler.ts';
import { BoundedFetchError, boundedFetch, checkOutboundUrl, HostAllowlist } from '../observe/http.ts';

/** Returns the Grafana service-account token; called before each request. */
export type TokenProvider = () => string | Promise<string>;

/** Mirrors `spec.grafana.tokenSecretRef` of the PodAutoscaler. */
export interface SecretKeyRef {
  name: string;
  key: string;
}

/** Reads one key of a Secret and returns its decoded value (undefined if the Secret or key is missing). */
export type SecretValueReader = (ref: SecretKeyRef) => string | undefined | Promise<string | undefined>;

/** The PodAutoscaler's `spec.grafana` field, as this module needs it. */
/** `spec.grafana` of a PodAutoscaler; the API owns the definition (src/api/podautoscaler.ts). */
export type GrafanaSpec = NonNullable<PodAutoscalerSpec['grafana']>;

export interface GrafanaAnnotatorConfig {
  /** Grafana base URL, e.g. https://grafana.example/ or https://host/grafana (sub-path allowed). */
  url: string;
  token: TokenProvider;
  /** Without it the annotations are organization annotations, shown by tag-filtered queries. */
  dashboardUID?: string;
  panelId?: number;
  /** Extra tags appended to every annotation. */
  tags?: readonly string[];
}

export interface GrafanaAnnotatorOptions {
  logger?: Logger;
  /**
   * Where the token may go (the operator's `--allowed-hosts`). Default: nowhere, so an annotator built
   * without one sends nothing; a refused host is logged and its entries fail without a request.
   */
  allowedHosts?: HostAllowlist;
  /** Per-request deadline, covering connect, headers and the whole body. */
  timeoutMs?: number;
  /** Entries waiting to be sent; the oldest is dropped when full. */
  maxQueueLength?: number;
  /** Entries taken from the queue per batch. */
  maxBatchSize?: number;
  /** How long the worker collects entries before sending a batch; flush()/close() skip the wait. */
  batchIntervalMs?: number;
  /** Attempts per entry, including the first. */
  maxAttempts?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Uniform in [0, 1); injected for deterministic jitter in tests. */
  random?: () => number;
  /** Backoff sleep; must reject or resolve early when `signal` aborts. */
  sleep?: (delayMs: number, signal: AbortSignal) => Promise<void>;
  /** Clock for request durations in logs. */
  nowMs?: () => number;
}

export interface PoolRef {
  namespace: string;
  /** The PodAutoscaler's name. */
  name: string;
  /** The pool (role) the decision is for, e.g. `prefill` or `decode`. */
  pool: string;
}

export type ScalingMode = 'Stable' | 'Panic';

/** A scaling event (dryRun false) or a dry-run recommendation (dryRun true): one point annotation. */
export interface DecisionEvent extends PoolRef {
  kind: 'decision';
  timeMs: number;
  mode: ScalingMode;
  dryRun: boolean;
  fromGroups: number;
  toGroups: number;
  /** Human-readable reason, e.g. "kvCacheUtilization stable 0.82 panic 0.95 target 0.7; clamp: none". */
  explanation: string;
}

/** Opens the panic region of one pool. */
export interface PanicStartEvent extends PoolRef {
  kind: 'panicStart';
  timeMs: number;
  dryRun: boolean;
  explanation: string;
}

/** Closes the panic region of one pool opened by a PanicStartEvent. */
export interface PanicEndEvent extends PoolRef {
  kind: 'panicEnd';
  timeMs: number;
}

export type AnnotationEvent = DecisionEvent | PanicStartEvent | PanicEndEvent;

export interface GrafanaAnnotatorStats {
  /** Requests Grafana accepted (POST and PATCH). */
  sent: number;
  /** Entries given up on: rejected (4xx) or out of attempts. */
  failed: number;
  /** Entries never sent: queue overflow, invalid input, enqueue after close, or abandoned at close. */
  dropped: number;
  /** Retry attempts (not counting first attempts). */
  retried: number;
  /** 401/403 answers: the token is wrong or lacks `annotations:create`; worth a status condition. */
  authRejected: number;
  /** Entries waiting in the queue. */
  queued: number;
  /** Panic regions opened and not yet ended. */
  openRegions: number;
}

/** Body of POST /api/annotations. */
export interface CreateAnnotationBody {
  text: string;
  time: number;
  timeEnd?: number;
  tags: string[];
  dashboardUID?: string;
  panelId?: number;
}

export class GrafanaTokenError extends Error {
  override name = 'GrafanaTokenError';
}

const defaultOptions = {
  timeoutMs: 5_000,
  maxQueueLength: 1_000,
  maxBatchSize: 20,
  batchIntervalMs: 1_000,
  maxAttempts: 5,
  baseBackoffMs: 500,
  maxBackoffMs: 30_000,
} as const;

/** Longest response body excerpt kept in a log line. */
const maxLoggedBodyChars = 300;
/** Grafana answers annotation calls with a few hundred bytes; anything near this is not Grafana. */
const maxResponseBytes = 64 * 1024;

/**
 * The label by which a Secret's owner grants kvpa its use as a Grafana token. RBAC (a RoleBinding the
 * namespace owner creates) lets kvpa read Secrets there at all; this label says which of them a
 * PodAutoscaler may name, so a PodAutoscaler author cannot point tokenSecretRef at any other Secret.
 */
export const TOKEN_GRANT_LABEL = 'kvpa.io/grafana-token';

/** A Secret as far as the grant check reads it. */
export interface SecretObject {
  metadata?: { name?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

/** The decoded key when the Secret carries `kvpa.io/grafana-token: "true"`; else a GrafanaTokenError. */
export function grantedSecretValue(secret: SecretObject, ref: SecretKeyRef): string | undefined {
  if (secret.metadata?.labels?.[TOKEN_GRANT_LABEL] !== 'true') {
    throw new GrafanaTokenError(
      `Secret ${ref.name} is not granted to kvpa: its owner must label it ${TOKEN_GRANT_LABEL}=true`,
    );
  }
  const b64 = secret.data?.[ref.key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}

const redactPaths = ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization'];

/**
 * A TokenProvider backed by a Kubernetes Secret key. `readSecretValue` does the I/O (the controller passes a
 * function that reads the Secret through its informer cache); the value is cached for `cacheTtlMs` so a
 * rotated token is picked up without reading the Secret on every request.
 */
export function tokenFromSecret(
  ref: SecretKeyRef,
  readSecretValue: SecretValueReader,
  options: { cacheTtlMs?: number; nowMs?: () => number } = {},
): TokenProvider {
  const cacheTtlMs = options.cacheTtlMs ?? 60_000;
  const nowMs = options.nowMs ?? Date.now;
  let cached: { token: string; readAtMs: number } | undefined;
  return async () => {
    if (cached !== undefined && nowMs() - cached.readAtMs < cacheTtlMs) return cached.token;
    const value = await readSecretValue(ref);
    // Secrets made from files usually end with a newline, which would corrupt the header.
    const token = value?.trim() ?? '';
    if (token === '') {
      throw new GrafanaTokenError(`Secret ${ref.name} has no non-empty key ${JSON.stringify(ref.key)}`);
    }
    cached = { token, readAtMs: nowMs() };
    return token;
  };
}

/** Translates `spec.grafana` into client config; the Secret is read lazily through `readSecretValue`. */
export function configFromSpec(
  spec: GrafanaSpec,
  readSecretValue: SecretValueReader,
): GrafanaAnnotatorConfig {
  return {
    url: spec.url,
    token: tokenFromSecret(spec.tokenSecretRef, readSecretValue),
    ...(spec.dashboardUID !== undefined && { dashboardUID: spec.dashboardUID }),
    ...(spec.panelId !== undefined && { panelId: spec.panelId }),
    ...(spec.tags !== undefined && { tags: spec.tags }),
  };
}

/** Equal jitter: half the exponential ceiling is guaranteed, the other half is random. */
export function backoffDelayMs(
  retryIndex: number,
  baseBackoffMs: number,
  maxBackoffMs: number,
  random: () => number,
): number {
  const ceilingMs = Math.min(maxBackoffMs, baseBackoffMs * 2 ** retryIndex);
  return Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
}

/** "decode 3→5 groups (panic, dry-run): <explanation>" */
export function formatDecisionText(event: Omit<DecisionEvent, 'kind'>): string {
  const qualifiers = [event.mode.toLowerCase(), ...(event.dryRun ? ['dry-run'] : [])].join(', ');
  const head = `${event.pool} ${event.fromGroups}→${event.toGroups} groups (${qualifiers})`;
  return event.explanation === '' ? head : `${head}: ${event.explanation}`;
}

/** "decode panic (dry-run): <explanation>" */
export function formatPanicText(event: Omit<PanicStartEvent, 'kind'>): string {
  const head = `${event.pool} panic${event.dryRun ? ' (dry-run)' : ''}`;
  return event.explanation === '' ? head : `${head}: ${event.explanation}`;
}

/** The tag list described in the module comment, deduplicated, extra tags last. */
export function annotationTags(
  ref: PoolRef,
  labels: { mode: ScalingMode; dryRun: boolean; event: 'scale' | 'recommendation' | 'panic' },
  extraTags: readonly string[] = [],
): string[] {
  const tags = [
    'kvpa',
    `namespace:${ref.namespace}`,
    `name:${ref.name}`,
    `pool:${ref.pool}`,
    `mode:${labels.mode}`,
    `dryRun:${labels.dryRun}`,
    `event:${labels.event}`,
    ...extraTags,
  ];
  return [...new Set(tags)];
}

function regionKeyOf(ref: PoolRef): string {
  return `${ref.namespace}/${ref.name}/${ref.pool}`;
}

interface LogLabels {
  namespace: string;
  name: string;
  pool: string;
  event: string;
}

interface CreateItem {
  op: 'create';
  body: CreateAnnotationBody;
  /** Set while this POST opens a region whose end is not folded into the body. */
  region?: Region;
  labels: LogLabels;
}

interface PatchEndItem {
  op: 'patchEnd';
  id: number;
  timeEndMs: number;
  labels: LogLabels;
}

type QueueItem = CreateItem | PatchEndItem;

/**
 * Region life cycle; what a panic end does in each state:
 *   queued   - POST waiting in the queue: the end is merged into it (one POST with time and timeEnd).
 *   inFlight - POST taken by the worker: the end waits in pendingEndMs until the POST returns an id.
 *   open     - POST answered with an id: the end becomes PATCH /api/annotations/:id.
 *   lost     - POST dropped or failed: the end re-POSTs the whole region with time and timeEnd.
 * An end removes the region from the per-pool map at once, so a new panic can start while the old
 * region's PATCH still waits for its id.
 */
interface Region {
  key: string;
  state: 'queued' | 'inFlight' | 'open' | 'lost';
  startBody: CreateAnnotationBody;
  item: CreateItem;
  id?: number;
  pendingEndMs?: number;
}

type SendResult =
  | { ok: true; id: number | undefined }
  | { ok: false; retryable: boolean; status?: number; aborted?: boolean };

function defaultSleep(delayMs: number, signal: AbortSignal): Promise<void> {
  return sleepWithSignal(delayMs, undefined, { signal });
}

export class GrafanaAnnotator {
  private readonly annotationsUrl: URL;
  private readonly config: GrafanaAnnotatorConfig;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly maxQueueLength: number;
  private readonly maxBatchSize: number;
  private readonly batchIntervalMs: number;
  private readonly maxAttempts: number;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly random: () => number;
  private readonly sleep: (delayMs: number, signal: AbortSignal) => Promise<void>;
  private readonly nowMs: () => number;
  /** Why the token may not go to grafana.url (checked once: the URL is fixed), or null. */
  private readonly tokenRefusal: string | null;
  private tokenRefusalLogged = false;

  private readonly queue: QueueItem[] = [];
  private readonly regions = new Map<string, Region>();
  private readonly shutdown = new AbortController();
  private running: Promise<void> | undefined;
  private wakeWorker: (() => void) | undefined;
  private flushWaiters = 0;
  private closed = false;
  /** The last token used, so logged strings can be scrubbed of it. */
  private lastToken = '';
  private readonly counters = { sent: 0, failed: 0, dropped: 0, retried: 0, authRejected: 0 };

  constructor(config: GrafanaAnnotatorConfig, options: GrafanaAnnotatorOptions = {}) {
    // http(s) only and no user:pass@ (use tokenSecretRef); said here rather than on every request.
    const base = checkOutboundUrl(config.url, 'grafana.url');
    if (config.panelId !== undefined && !Number.isSafeInteger(config.panelId)) {
      throw new Error(`grafana.panelId must be an integer, got ${config.panelId}`);
    }
    if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
    this.annotationsUrl = new URL('api/annotations', base);
    this.config = config;
    this.logger = (options.logger ?? pino({ name: 'kvpa' })).child(
      { component: 'grafana' },
      { redact: { paths: redactPaths, censor: '[REDACTED]' } },
    );
    this.tokenRefusal = (options.allowedHosts ?? new HostAllowlist([])).refusal(this.annotationsUrl);
    this.timeoutMs = options.timeoutMs ?? defaultOptions.timeoutMs;
    this.maxQueueLength = Math.max(1, options.maxQueueLength ?? defaultOptions.maxQueueLength);
    this.maxBatchSize = Math.max(1, options.maxBatchSize ?? defaultOptions.maxBatchSize);
    this.batchIntervalMs = options.batchIntervalMs ?? defaultOptions.batchIntervalMs;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? defaultOptions.maxAttempts);
    this.baseBackoffMs = options.baseBackoffMs ?? defaultOptions.baseBackoffMs;
    this.maxBackoffMs = options.maxBackoffMs ?? defaultOptions.maxBackoffMs;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? defaultSleep;
    this.nowMs = options.nowMs ?? Date.now;
  }

  /**
   * Queues an annotation and returns at once; never throws and never waits for the network.
   * Returns false if the event was ignored (invalid, duplicate panic start, end without start, or closed).
   */
  enqueue(event: AnnotationEvent): boolean {
    try {
      return this.enqueueUnguarded(event);
    } catch (err) {
      // Annotations are best effort: a bug here must not break the reconcile loop that called us.
      this.counters.dropped += 1;
      this.logger.error({ error: this.describeError(err) }, 'grafana annotation dropped: internal error');
      return false;
    }
  }

  private enqueueUnguarded(event: AnnotationEvent): boolean {
    const labels = { namespace: event.namespace, name: event.name, pool: event.pool, event: event.kind };
    if (this.closed) {
      this.counters.dropped += 1;
      this.logger.warn(
        { ...labels, droppedTotal: this.counters.dropped },
        'grafana annotation dropped: closed',
      );
      return false;
    }
    if (!Number.isFinite(event.timeMs)) {
      this.counters.dropped += 1;
      this.logger.warn({ ...labels, timeMs: event.timeMs }, 'grafana annotation dropped: invalid time');
      return false;
    }
    const timeMs = Math.round(event.timeMs);
    switch (event.kind) {
      case 'decision':
        return this.enqueueDecision(event, timeMs, labels);
      case 'panicStart':
        return this.enqueuePanicStart(event, timeMs, labels);
      case 'panicEnd':
        return this.enqueuePanicEnd(event, timeMs, labels);
    }
  }

  /** Resolves when everything queued so far (and region ends it unlocks) was sent or given up on. */
  async flush(): Promise<void> {
    this.flushWaiters += 1;
    this.wakeWorker?.();
    try {
      while (this.queue.length > 0 || this.running !== undefined) {
        // After an abort nothing more is sent; close() drops what is left.
        if (this.running === undefined && this.shutdown.signal.aborted) break;
        this.schedule();
        await this.running;
      }
    } finally {
      this.flushWaiters -= 1;
    }
  }

  /**
   * Stops accepting events, flushes for at most `timeoutMs`, then aborts in-flight requests and drops what is
   * left. Open panic regions stay open in Grafana (their timeEnd equals their time).
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closed = true;
    const flushed = this.flush();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      flushed.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), options.timeoutMs ?? 5_000);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.shutdown.abort();
      await flushed;
    }
    if (this.queue.length > 0) {
      this.counters.dropped += this.queue.length;
      this.logger.warn({ droppedCount: this.queue.length }, 'grafana annotations dropped: close timed out');
      this.queue.length = 0;
    }
  }

  stats(): GrafanaAnnotatorStats {
    return {
      ...this.counters,
      queued: this.queue.length,
      openRegions: this.regions.size,
    };
  }

  private baseBody(text: string, timeMs: number, tags: string[]): CreateAnnotationBody {
    return {
      text,
      time: timeMs,
      tags,
      ...(this.config.dashboardUID !== undefined && { dashboardUID: this.config.dashboardUID }),
      ...(this.config.panelId !== undefined && { panelId: this.config.panelId }),
    };
  }

  private enqueueDecision(event: DecisionEvent, timeMs: number, labels: LogLabels): boolean {
    const tags = annotationTags(
      event,
      { mode: event.mode, dryRun: event.dryRun, event: event.dryRun ? 'recommendation' : 'scale' },
      this.config.tags,
    );
    this.push({ op: 'create', body: this.baseBody(formatDecisionText(event), timeMs, tags), labels });
    return true;
  }

  private enqueuePanicStart(event: PanicStartEvent, timeMs: number, labels: LogLabels): boolean {
    const regionKey = regionKeyOf(event);
    if (this.regions.has(regionKey)) {
      // Level-triggered callers may repeat the start; the first one owns the region.
      this.logger.debug(labels, 'grafana panic region already open');
      return false;
    }
    const tags = annotationTags(
      event,
      { mode: 'Panic', dryRun: event.dryRun, event: 'panic' },
      this.config.tags,
    );
    const body = this.baseBody(formatPanicText(event), timeMs, tags);
    const item: CreateItem = { op: 'create', body, labels };
    const region: Region = { key: regionKey, state: 'queued', startBody: { ...body }, item };
    item.region = region;
    this.regions.set(regionKey, region);
    this.push(item);
    return true;
  }

  private enqueuePanicEnd(event: PanicEndEvent, timeMs: number, labels: LogLabels): boolean {
    const regionKey = regionKeyOf(event);
    const region = this.regions.get(regionKey);
    if (region === undefined) {
      this.logger.debug(labels, 'grafana panic end without open region');
      return false;
    }
    this.regions.delete(regionKey);
    // Grafana rejects timeEnd < time; a clock step back must not lose the region.
    const timeEndMs = Math.max(timeMs, region.startBody.time);
    switch (region.state) {
      case 'queued':
        region.item.body.timeEnd = timeEndMs;
        delete region.item.region;
        return true;
      case 'inFlight':
        region.pendingEndMs = timeEndMs;
        return true;
      case 'open':
        this.push({ op: 'patchEnd', id: region.id ?? 0, timeEndMs, labels });
        return true;
      case 'lost':
        this.push({ op: 'create', body: { ...region.startBody, timeEnd: timeEndMs }, labels });
        return true;
    }
  }

  private push(item: QueueItem): void {
    if (this.queue.length >= this.maxQueueLength) {
      const oldest = this.queue.shift();
      this.counters.dropped += 1;
      if (oldest !== undefined) this.forgetDropped(oldest);
      this.logger.warn(
        { ...oldest?.labels, maxQueueLength: this.maxQueueLength, droppedTotal: this.counters.dropped },
        'grafana annotation dropped: queue full',
      );
    }
    this.queue.push(item);
    this.schedule();
  }

  /** A dropped region POST makes the region `lost`, so its end can still post the whole region. */
  private forgetDropped(item: QueueItem): void {
    if (item.op === 'create' && item.region !== undefined) item.region.state = 'lost';
  }

  private schedule(): void {
    if (this.running !== undefined) {
      if (this.queue.length >= this.maxBatchSize) this.wakeWorker?.();
      return;
    }
    if (this.queue.length === 0 || this.shutdown.signal.aborted) return;
    this.running = this.drain()
      .catch((err: unknown) => {
        this.logger.error({ error: this.describeError(err) }, 'grafana worker failed');
      })
      .finally(() => {
        this.running = undefined;
        // Entries pushed while the worker was finishing would otherwise wait for the next enqueue.
        this.schedule();
      });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.shutdown.signal.aborted) {
      await this.waitForBatch();
      const batch = this.queue.splice(0, this.maxBatchSize);
      for (const item of batch) {
        if (item.op === 'create' && item.region !== undefined) item.region.state = 'inFlight';
      }
      for (const [index, item] of batch.entries()) {
        if (this.shutdown.signal.aborted) {
          this.counters.dropped += batch.length - index;
          return;
        }
        await this.deliver(item);
      }
    }
  }

  /** Lets entries accumulate into one batch unless someone is waiting for a flush. */
  private async waitForBatch(): Promise<void> {
    if (this.batchIntervalMs <= 0 || this.flushWaiters > 0 || this.queue.length >= this.maxBatchSize) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.batchIntervalMs);
      // The batch wait alone must not keep a process alive; close() flushes explicitly.
      timer.unref();
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.wakeWorker = undefined;
        resolve();
      }
      this.wakeWorker = done;
    });
  }

  private async deliver(item: QueueItem): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      const result = await this.sendOnce(item, attempt);
      if (result.ok) {
        this.counters.sent += 1;
        this.onDelivered(item, result.id);
        return;
      }
      if (result.aborted === true) {
        this.counters.dropped += 1;
        this.onGaveUp(item);
        return;
      }
      if (!result.retryable || attempt >= this.maxAttempts) {
        this.counters.failed += 1;
        this.logger.error(
          { ...item.labels, op: item.op, status: result.status, attempt, failedTotal: this.counters.failed },
          result.retryable
            ? 'grafana annotation failed: attempts exhausted'
            : 'grafana annotation failed: rejected',
        );
        this.onGaveUp(item);
        return;
      }
      this.counters.retried += 1;
      const delayMs = backoffDelayMs(attempt - 1, this.baseBackoffMs, this.maxBackoffMs, this.random);
      this.logger.warn(
        { ...item.labels, op: item.op, status: result.status, attempt, delayMs },
        'grafana request failed; retrying',
      );
      try {
        await this.sleep(delayMs, this.shutdown.signal);
      } catch {
        // Aborted by close(); the next sendOnce sees the aborted signal.
      }
    }
  }

  private onDelivered(item: QueueItem, id: number | undefined): void {
    const region = item.op === 'create' ? item.region : undefined;
    if (region === undefined) return;
    if (id === undefined) {
      // Without an id the region cannot be patched; forget it rather than post a duplicate at its end.
      if (this.regions.get(region.key) === region) this.regions.delete(region.key);
      this.logger.warn(item.labels, 'grafana region created without id; its end will not be recorded');
      return;
    }
    if (region.pendingEndMs !== undefined) {
      this.push({ op: 'patchEnd', id, timeEndMs: region.pendingEndMs, labels: item.labels });
      return;
    }
    region.state = 'open';
    region.id = id;
  }

  private onGaveUp(item: QueueItem): void {
    const region = item.op === 'create' ? item.region : undefined;
    if (region === undefined) return;
    if (region.pendingEndMs !== undefined && !this.shutdown.signal.aborted) {
      // The panic already ended: one more try as a complete region.
      this.push({
        op: 'create',
        body: { ...region.startBody, timeEnd: region.pendingEndMs },
        labels: item.labels,
      });
      return;
    }
    region.state = 'lost';
  }

  private async sendOnce(item: QueueItem, attempt: number): Promise<SendResult> {
    if (this.shutdown.signal.aborted) return { ok: false, retryable: false, aborted: true };
    if (this.tokenRefusal !== null) {
      // Not even the Secret is read: the token has nowhere it may go.
      if (!this.tokenRefusalLogged) {
        this.logger.warn({ ...item.labels, reason: this.tokenRefusal }, 'grafana annotations refused');
        this.tokenRefusalLogged = true;
      }
      return { ok: false, retryable: false };
    }
    let token: string;
    try {
      token = await this.config.token();
    } catch (err) {
      this.logger.warn(
        { ...item.labels, attempt, error: this.describeError(err) },
        'grafana token unavailable',
      );
      return { ok: false, retryable: true };
    }
    this.lastToken = token;
    const url =
      item.op === 'create' ? this.annotationsUrl : new URL(`annotations/${item.id}`, this.annotationsUrl);
    const body = item.op === 'create' ? item.body : { timeEnd: item.timeEndMs };
    const startedMs = this.nowMs();
    try {
      // Same-origin redirects only (boundedFetch), so the Authorization header never leaves the host.
      const response = await boundedFetch(url, {
        method: item.op === 'create' ? 'POST' : 'PATCH',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(body),
        deadlineMs: this.timeoutMs,
        maxBodyBytes: maxResponseBytes,
        signal: this.shutdown.signal,
      });
      const responseText = response.text;
      const durationMs = this.nowMs() - startedMs;
      if (response.status < 200 || response.status >= 300) {
        const retryable = response.status === 429 || response.status >= 500;
        if (response.status === 401 || response.status === 403) this.counters.authRejected += 1;
        this.logger.warn(
          {
            ...item.labels,
            op: item.op,
            status: response.status,
            attempt,
            durationMs,
            responseBody: this.scrub(responseText.slice(0, maxLoggedBodyChars)),
          },
          'grafana request rejected',
        );
        return { ok: false, retryable, status: response.status };
      }
      const id = item.op === 'create' ? parseAnnotationId(responseText) : undefined;
      this.logger.debug({ ...item.labels, op: item.op, id, attempt, durationMs }, 'grafana annotation sent');
      return { ok: true, id };
    } catch (err) {
      if (this.shutdown.signal.aborted) return { ok: false, retryable: false, aborted: true };
      const retryable = !(err instanceof BoundedFetchError && err.failure === 'RedirectRefused');
      this.logger.warn(
        { ...item.labels, op: item.op, attempt, timeoutMs: this.timeoutMs, error: this.describeError(err) },
        'grafana request error',
      );
      return { ok: false, retryable };
    }
  }

  /** Name, message and cause code only: enough to act on, and scrubbed of the token. */
  private describeError(err: unknown): { name: string; message: string; code?: string } {
    if (!(err instanceof Error)) return { name: 'Error', message: this.scrub(String(err)) };
    const cause: unknown = err.cause;
    const code =
      typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string'
        ? cause.code
        : undefined;
    return {
      name: err.name,
      message: this.scrub(err.message),
      ...(code !== undefined && { code }),
    };
  }

  private scrub(text: string): string {
    return this.lastToken === '' ? text : text.split(this.lastToken).join('[REDACTED]');
  }
}

function parseAnnotationId(responseText: string): number | undefined {
  try {
    const parsed: unknown = JSON.parse(responseText);
    if (typeof parsed === 'object' && parsed !== null && 'id' in parsed && Number.isSafeInteger(parsed.id)) {
      return parsed.id as number;
    }
  } catch {
    // Not JSON: treated as "no id".
  }
  return undefined;
}
