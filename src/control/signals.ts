/**
 * What the controller needs from the observe layer: per-second pool totals per signal, already
 * through the quality gate. The Prometheus and direct-scrape sources implement this; tests feed
 * values through ManualSignalSource.
 */

import type { HeadPod } from '../actuate/types.ts';
import type { ResolvedPool } from '../api/resolve.ts';
import type { SignalState } from '../decide/types.ts';

export interface PoolSignalRequest {
  /** namespace/name/pool */
  readonly poolKey: string;
  readonly namespace: string;
  readonly pool: ResolvedPool;
  readonly heads: readonly HeadPod[];
}

/** One signal of one pool at one instant. `total` is Σ over ready groups, present iff state is ok. */
export interface PoolSample {
  readonly name: string;
  readonly state: SignalState;
  readonly total?: number;
  readonly detail?: string;
}

export interface SignalSource {
  /** One call per tick for every pool (so a source can batch one query per signal kind). */
  sample(requests: readonly PoolSignalRequest[], nowSeconds: number): Promise<Map<string, PoolSample[]>>;
}

/** The signal name a metric spec produces: its type, or the promql metric's own name. */
export function signalName(metric: ResolvedPool['metrics'][number]): string {
  return metric.type === 'promql' ? (metric.name ?? 'promql') : metric.type;
}

/** A source whose values tests (and the dry-run demo) set by hand. Unset signals are noData. */
export class ManualSignalSource implements SignalSource {
  private readonly values = new Map<string, Map<string, PoolSample>>();
  readonly calls: number[] = [];

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
