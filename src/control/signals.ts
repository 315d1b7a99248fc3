/**
 * What the controller needs from the observe layer: per-second pool totals per signal, already
 * through the quality gate. The Prometheus and direct-scrape sources implement this; tests feed
 * values through ManualSignalSource.
 */

import type { HeadPod } from '../actuate/types.ts';
import { type MetricsSource, signalName } from '../api/podautoscaler.ts';
import type { ResolvedPool } from '../api/resolve.ts';
import type { InFlightReading } from '../decide/drain.ts';
import type { SignalState } from '../decide/types.ts';

export { signalName };

export interface PoolSignalRequest {
  /** namespace/name/pool */
  readonly poolKey: string;
  readonly namespace: string;
  readonly pool: ResolvedPool;
  readonly heads: readonly HeadPod[];
  /** The PodAutoscaler's spec.metricsSource: which source serves this pool. */
  readonly metricsSource: MetricsSource;
}

/** One signal of one pool at one instant (defined with the runner that records it). */
import type { PoolSample } from '../decide/pool-runner.ts';

export type { PoolSample };

/** Per-second pool totals of one signal, oldest first; only points that passed the quality gate. */
export type SignalHistory = ReadonlyMap<
  string,
  readonly { readonly atSeconds: number; readonly total: number }[]
>;

export interface SignalSource {
  /**
   * One call per tick for every pool of one endpoint (endpointKeyOf), so a Prometheus source can
   * batch one query per signal kind; pools of different endpoints are separate calls.
   */
  sample(requests: readonly PoolSignalRequest[], nowSeconds: number): Promise<Map<string, PoolSample[]>>;
  /**
   * History of one pool, for refilling its windows when the controller (re)starts or a pool is new,
   * so a restart keeps its stable and panic history. Sources without history omit it.
   */
  backfill?(request: PoolSignalRequest, fromSeconds: number, toSeconds: number): Promise<SignalHistory>;
  /**
   * kvpa's own exported history of a pool's signals (`kvpa_pool_signal_stable_value`), by signal name, for
   * the seasonal memory: it outlives pods and restarts. Sources without it omit it.
   */
  ownHistory?(
    request: PoolSignalRequest,
    autoscalerName: string,
    signals: readonly string[],
    fromSeconds: number,
    toSeconds: number,
    stepSeconds: number,
  ): Promise<SignalHistory>;
  /**
   * Requests running plus waiting on each given head's group, keyed by group key, with when they were read:
   * what a drain waits on. A group it cannot read is absent (unknown, never 0). Sources that cannot omit it.
   */
  inFlight?(
    request: PoolSignalRequest,
    heads: readonly HeadPod[],
    nowSeconds: number,
  ): Promise<Map<string, InFlightReading>>;
}

/** A source whose values tests (and the dry-run demo) set by hand. Unset signals are noData. */
export class ManualSignalSource implements SignalSource {
  private readonly values = new Map<string, Map<string, PoolSample>>();
  private readonly history = new Map<string, Map<string, { atSeconds: number; total: number }[]>>();
  readonly calls: number[] = [];

  /** History that backfill() returns for a pool (tests of restart recovery). */
  setHistory(poolKey: string, name: string, points: { atSeconds: number; total: number }[]): void {
    const m = this.history.get(poolKey) ?? new Map<string, { atSeconds: number; total: number }[]>();
    m.set(name, points);
    this.history.set(poolKey, m);
  }

  async backfill(request: PoolSignalRequest, fromSeconds: number, toSeconds: number): Promise<SignalHistory> {
    const out = new Map<string, { atSeconds: number; total: number }[]>();
    for (const [name, points] of this.history.get(request.poolKey) ?? []) {
      out.set(
        name,
        points.filter((p) => p.atSeconds >= fromSeconds && p.atSeconds <= toSeconds),
      );
    }
    return out;
  }

  /** The same history stands for kvpa's own series (tests of the seasonal seed). */
  async ownHistory(
    request: PoolSignalRequest,
    _autoscalerName: string,
    signals: readonly string[],
    fromSeconds: number,
    toSeconds: number,
  ): Promise<SignalHistory> {
    const all = await this.backfill(request, fromSeconds, toSeconds);
    return new Map([...all].filter(([name]) => signals.includes(name)));
  }

  private readonly requestsInFlight = new Map<string, Map<string, InFlightReading>>();

  /** What inFlight() returns for one group of a pool (tests of the drain); `null` forgets it. */
  setInFlight(poolKey: string, groupKey: string, reading: InFlightReading | null): void {
    const m = this.requestsInFlight.get(poolKey) ?? new Map<string, InFlightReading>();
    if (reading === null) m.delete(groupKey);
    else m.set(groupKey, reading);
    this.requestsInFlight.set(poolKey, m);
  }

  async inFlight(
    request: PoolSignalRequest,
    heads: readonly HeadPod[],
  ): Promise<Map<string, InFlightReading>> {
    const set = this.requestsInFlight.get(request.poolKey);
    const out = new Map<string, InFlightReading>();
    for (const h of heads) {
      const r = set?.get(h.groupKey);
      if (r !== undefined) out.set(h.groupKey, r);
    }
    return out;
  }

  set(poolKey: string, name: string, total: number): void {
    this.entry(poolKey).set(name, { name, state: 'ok', total });
  }

  setState(poolKey: string, name: string, state: Exclude<SignalState, 'ok'>, detail: string): void {
    this.entry(poolKey).set(name, { name, state, detail });
  }

  private entry(poolKey: string): Map<string, PoolSample> {
    let m = this.values.get(poolKey);
    if (m === undefined) {
      m = new Map();
      this.values.set(poolKey, m);
    }
    return m;
  }

  async sample(
    requests: readonly PoolSignalRequest[],
    nowSeconds: number,
  ): Promise<Map<string, PoolSample[]>> {
    this.calls.push(nowSeconds);
    const out = new Map<string, PoolSample[]>();
    for (const r of requests) {
      const set = this.values.get(r.poolKey);
      out.set(
        r.poolKey,
        r.pool.metrics.map((m) => {
          const name = signalName(m);
          return set?.get(name) ?? { name, state: 'noData', detail: 'no value set' };
        }),
      );
    }
    return out;
  }
}

/** The default per-query timeout of the Prometheus source and per-pod timeout of the pods source. */
const PROMETHEUS_TIMEOUT_SECONDS = 10;
const POD_TIMEOUT_SECONDS = 1;
/** Head pods scraped at once (the pods source's default concurrency). */
const SCRAPE_SLOTS = 16;

/**
 * Which requests may share one call to the source: pools of the same Prometheus (address and timeout)
 * are batched, one query per signal kind for all of them; each direct-scrape pool is its own call, and
 * so is each Prometheus pool with a promql metric: its query is the tenant's own and may be slow, and a
 * call still running makes the controller skip its pools' next samples, so a slow query of one pool
 * must not hold a call other pools ride in. Pools that share no call never wait on each other.
 */
export function endpointKeyOf(request: PoolSignalRequest): string {
  const { prometheus } = request.metricsSource;
  if (prometheus !== undefined) {
    const shared = `prometheus ${prometheus.address} ${prometheus.queryTimeoutSeconds ?? ''}`;
    return request.pool.metrics.some((m) => m.type === 'promql')
      ? `${shared} promql ${request.poolKey}`
      : shared;
  }
  return `pods ${request.poolKey}`;
}

/**
 * How long one sample of this pool may take before its signals count as `error`: the source's own
 * timeout (queries run in parallel; pods in rounds of SCRAPE_SLOTS) plus two seconds of slack. The
 * sources bound their own calls one second past the timeout, so this backstop fires only when a
 * source fails to, and their own (tenant-safe) error text wins otherwise.
 */
export function sampleDeadlineMs(request: PoolSignalRequest): number {
  const { prometheus, pods } = request.metricsSource;
  if (prometheus !== undefined)
    return ((prometheus.queryTimeoutSeconds ?? PROMETHEUS_TIMEOUT_SECONDS) + 2) * 1000;
  // With ranksOn: all every pod of a group is scraped, not only its head.
  const scraped = request.heads.reduce(
    (n, h) => n + 1 + (request.pool.ranksOn === 'all' ? (h.members?.length ?? 0) : 0),
    0,
  );
  const rounds = Math.max(1, Math.ceil(scraped / SCRAPE_SLOTS));
  return ((pods?.timeoutSeconds ?? POD_TIMEOUT_SECONDS) * rounds + 2) * 1000;
}

/** Every metric of the pool in state `error` with one reason: what a failed or late source gives. */
export function failedSamples(request: PoolSignalRequest, detail: string): PoolSample[] {
  return request.pool.metrics.map((m) => ({ name: signalName(m), state: 'error' as const, detail }));
}
