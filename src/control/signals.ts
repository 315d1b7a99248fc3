/**
 * What the controller needs from the observe layer: per-second pool totals per signal, already
 * through the quality gate. The Prometheus and direct-scrape sources implement this; tests feed
 * values through ManualSignalSource.
 */

import type { HeadPod } from '../actuate/types.ts';
import { type MetricsSource, signalName } from '../api/podautoscaler.ts';
import type { ResolvedPool } from '../api/resolve.ts';
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
  /** One call per tick for every pool (so a source can batch one query per signal kind). */
  sample(requests: readonly PoolSignalRequest[], nowSeconds: number): Promise<Map<string, PoolSample[]>>;
  /**
   * History of one pool, for refilling its windows when the controller (re)starts or a pool is new,
   * so a restart keeps its stable and panic history. Sources without history omit it.
   */
  backfill?(request: PoolSignalRequest, fromSeconds: number, toSeconds: number): Promise<SignalHistory>;
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
