/**
 * The controller's Kubernetes I/O: watching PodAutoscalers, writing their status, raising Events.
 * Everything here is a thin call; the decisions about what to write live in status.ts and events.ts.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { boundedApiClient, httpStatusOf } from '../actuate/kube.ts';
import { API_GROUP, API_VERSION, KIND, PLURAL, type PodAutoscalerStatus } from '../api/podautoscaler.ts';
import { type PoolEvent, stableKey } from './events.ts';

export const FIELD_MANAGER = 'kvpa-controller';
export const COMPONENT = 'kvpa-controller';

/** A PodAutoscaler as it comes off the wire: not yet validated. */
export interface RawPodAutoscaler extends KubernetesObject {
  spec?: unknown;
  status?: PodAutoscalerStatus;
}

export function keyOf(o: { metadata?: { namespace?: string; name?: string } }): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export interface PodAutoscalerWatch {
  start(): Promise<void>;
  stop(): Promise<void>;
  list(): readonly RawPodAutoscaler[];
  /** True once a list has completed: until then `list()` may lack PodAutoscalers that exist. */
  synced(): boolean;
}

/** A full list of every PodAutoscaler may be large; anything else is one object. */
const LIST_DEADLINE_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

/** Delay before restart attempt `attempt` (0-based): doubling from the base, capped at 30 s. */
export function restartDelayMs(attempt: number, baseMs: number): number {
  return Math.min(MAX_RESTART_DELAY_MS, baseMs * 2 ** Math.min(attempt, 20));
}

/**
 * List-watch of PodAutoscalers (client-node's informer: it relists on 410 Gone). On a watch error it
 * restarts with exponential backoff, and keeps restarting until a restart succeeds (a list and a
 * connected watch), so a flapping API server never stops the controller for good. `start` never
 * rejects: a first failure is retried the same way.
 */
export function watchPodAutoscalers(
  kc: KubeConfig,
  namespace: string | undefined,
  onChange: () => void,
  onError: (err: unknown) => void,
  baseRestartDelayMs = 1000,
): PodAutoscalerWatch {
  const api = boundedApiClient(kc, CustomObjectsApi, LIST_DEADLINE_MS);
  const path =
    namespace === undefined
      ? `/apis/${API_GROUP}/${API_VERSION}/${PLURAL}`
      : `/apis/${API_GROUP}/${API_VERSION}/namespaces/${namespace}/${PLURAL}`;
  const list = async () =>
    (namespace === undefined
      ? await api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: PLURAL })
      : await api.listNamespacedCustomObject({
          group: API_GROUP,
          version: API_VERSION,
          namespace,
          plural: PLURAL,
        })) as {
      items: RawPodAutoscaler[];
      metadata: { resourceVersion?: string };
    };
  const informer = makeInformer<RawPodAutoscaler>(kc, path, list);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let attempt = 0;
  let failedThisRound = false;
  let synced = false;
  const failed = (err: unknown) => {
    // stop() aborts the watch request; that is not a failure worth a warning.
    if (stopped) return;
    failedThisRound = true;
    onError(err);
    if (timer !== undefined) return; // a restart is already scheduled
    timer = setTimeout(
      () => {
        timer = undefined;
        void run();
      },
      restartDelayMs(attempt++, baseRestartDelayMs),
    );
  };
  /** One start; a list failure arrives as an 'error' event, a watch failure as a rejection. */
  const run = async () => {
    failedThisRound = false;
    try {
      await informer.start();
      if (!failedThisRound) {
        attempt = 0;
        synced = true;
      }
    } catch (err) {
      failed(err);
    }
  };
  informer.on('add', onChange);
  informer.on('update', onChange);
  informer.on('delete', onChange);
  informer.on('error', failed);
  return {
    start: run,
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await informer.stop();
    },
    list: () => informer.list(),
    synced: () => synced,
  };
}

/**
 * A repeating warning's count is written at most this often (client-go's correlator patches every
 * occurrence; kvpa ticks every second, so it batches them). A transition is written at once.
 */
const REPEAT_WRITE_EVERY_MS = 60_000;
/** The API server's default --event-ttl: a series not seen for longer has expired there too. */
const SERIES_TTL_MS = 3_600_000;

/** One Event kvpa raised and its occurrences since. */
interface EventSeries {
  readonly name: string;
  readonly namespace: string;
  count: number;
  writtenAtMs: number;
  seenAtMs: number;
}

export class KubeWriter {
  private readonly objects: CustomObjectsApi;
  private readonly core: CoreV1Api;
  /** By PodAutoscaler, type, reason and key: what a repeat counts on instead of raising anew. */
  private readonly series = new Map<string, EventSeries>();
  private sweptAtMs = 0;

  constructor(
    kc: KubeConfig,
    readonly hostname: string,
  ) {
    this.objects = boundedApiClient(kc, CustomObjectsApi);
    this.core = boundedApiClient(kc, CoreV1Api);
  }

  /** Merge-patches the status subresource. */
  async patchStatus(namespace: string, name: string, status: PodAutoscalerStatus): Promise<void> {
    await this.objects.patchNamespacedCustomObjectStatus(
      {
        group: API_GROUP,
        version: API_VERSION,
        namespace,
        plural: PLURAL,
        name,
        body: { status },
        fieldManager: FIELD_MANAGER,
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /**
   * Raises `e`, or counts it on the Event already raised for the same PodAutoscaler, type, reason and
   * key (a repeat, or the same warning raised again): one Event whose `count` and `lastTimestamp` grow,
   * as `kubectl describe` shows them ("x12 over 2m"), instead of one new Event per tick.
   */
  async event(pa: RawPodAutoscaler, e: PoolEvent, nowIso: string): Promise<void> {
    const nowMs = Date.parse(nowIso);
    if (nowMs - this.sweptAtMs > REPEAT_WRITE_EVERY_MS) {
      for (const [k, s] of this.series) if (nowMs - s.seenAtMs > SERIES_TTL_MS) this.series.delete(k);
      this.sweptAtMs = nowMs;
    }
    const seriesKey = [pa.metadata?.uid ?? keyOf(pa), e.type, e.reason, e.key ?? stableKey(e.message)].join(
      '|',
    );
    const series = this.series.get(seriesKey);
    if (series === undefined) {
      const name = await this.createEvent(pa, e, nowIso);
      this.series.set(seriesKey, {
        name,
        namespace: pa.metadata?.namespace ?? 'default',
        count: 1,
        writtenAtMs: nowMs,
        seenAtMs: nowMs,
      });
      return;
    }
    series.count++;
    series.seenAtMs = nowMs;
    if (e.repeat === true && nowMs - series.writtenAtMs < REPEAT_WRITE_EVERY_MS) return;
    try {
      await this.core.patchNamespacedEvent(
        {
          name: series.name,
          namespace: series.namespace,
          body: { count: series.count, lastTimestamp: nowIso, message: e.message.slice(0, 1024) },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      series.writtenAtMs = nowMs;
    } catch (err) {
      if (httpStatusOf(err) !== 404) throw err;
      // Expired (--event-ttl) or deleted: raise it again.
      this.series.delete(seriesKey);
      const { repeat: _repeat, ...raised } = e;
      await this.event(pa, raised, nowIso);
    }
  }

  /** Creates the Event; returns its name. */
  private async createEvent(pa: RawPodAutoscaler, e: PoolEvent, nowIso: string): Promise<string> {
    const namespace = pa.metadata?.namespace ?? 'default';
    const created = await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { generateName: `${pa.metadata?.name ?? 'kvpa'}.`, namespace },
        involvedObject: {
          apiVersion: `${API_GROUP}/${API_VERSION}`,
          kind: KIND,
          name: pa.metadata?.name ?? '',
          namespace,
          ...(pa.metadata?.uid !== undefined ? { uid: pa.metadata.uid } : {}),
          ...(pa.metadata?.resourceVersion !== undefined
            ? { resourceVersion: pa.metadata.resourceVersion }
            : {}),
        },
        type: e.type,
        reason: e.reason,
        message: e.message.slice(0, 1024),
        source: { component: COMPONENT, host: this.hostname },
        firstTimestamp: new Date(nowIso),
        lastTimestamp: new Date(nowIso),
        count: 1,
        reportingComponent: COMPONENT,
        reportingInstance: this.hostname,
      },
    });
    return created.metadata?.name ?? '';
  }
}
