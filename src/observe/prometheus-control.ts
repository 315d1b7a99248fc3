/**
 * Adapts the Prometheus source to the controller's per-tick signal interface (`SignalSource.sample`
 * in src/control/signals.ts on main): one call per tick for every pool, one PoolSample per metric.
 *
 * The request types are declared structurally here so this module does not depend on the control
 * layer; they match `PoolSignalRequest` / `PoolSample` field for field.
 */
import type { MetricSpec } from '../api/podautoscaler.ts';
import { signalName } from '../api/podautoscaler.ts';
import type { SignalState } from '../decide/types.ts';
import { type PoolRegistration, type SignalKind, signalKindOf } from './prometheus-join.ts';
import type { PrometheusSignalSource, TickResult } from './prometheus-source.ts';

export interface ControlHeadPod {
  readonly name: string;
  readonly groupKey: string;
  /** The whole group (leader and every worker) is Ready. */
  readonly groupReady: boolean;
  /** A group beyond spec (rollout surge, scale-down leftover): its metrics must not count. */
  readonly surge: boolean;
}

export interface ControlPoolRequest {
  readonly poolKey: string;
  readonly namespace: string;
  readonly pool: {
    readonly engine: 'auto' | 'vllm' | 'sglang';
    readonly metrics: readonly MetricSpec[];
    readonly missingData: { readonly staleAfterSeconds: number; readonly minQuorumPercentage: number };
  };
  readonly heads: readonly ControlHeadPod[];
}

export interface ControlPoolSample {
  readonly name: string;
  readonly state: SignalState;
  /** Σ over ready groups; present iff state is ok. */
  readonly total?: number;
  /** Ready groups without a usable value, counted at the reporting mean in `total`. */
  readonly silentGroups?: number;
  readonly detail?: string;
}

/** The registration the batched source needs; surge heads are left out (readyGroups excludes them). */
export function registrationOf(request: ControlPoolRequest): PoolRegistration {
  const signals = request.pool.metrics.map(signalKindOf).filter((k): k is SignalKind => k !== null);
  return {
    poolKey: request.poolKey,
    namespace: request.namespace,
    heads: request.heads
      .filter((h) => !h.surge)
      .map((h) => ({ pod: h.name, groupKey: h.groupKey, ready: h.groupReady })),
    engine: request.pool.engine,
    signals: [...new Set(signals)],
    staleAfterSeconds: request.pool.missingData.staleAfterSeconds,
    minQuorumPercentage: request.pool.missingData.minQuorumPercentage,
  };
}

/** One PoolSample per metric of the pool, in the pool's metric order. */
export function poolSamples(request: ControlPoolRequest, tick: TickResult): ControlPoolSample[] {
  const signals = tick.pools.get(request.poolKey)?.signals;
  return request.pool.metrics.map((m): ControlPoolSample => {
    const kind = signalKindOf(m);
    if (kind === null) {
      return {
        name: signalName(m),
        state: 'error',
        detail:
          m.type === 'promql'
            ? 'promql metrics are not served by the batched Prometheus source (one query per pool would defeat batching)'
            : `${m.type} is not read by the Prometheus source yet: use metricsSource.pods`,
      };
    }
    const gate = signals?.get(kind);
    if (!gate) return { name: kind, state: 'error', detail: `${kind}: no result from the Prometheus source` };
    if (gate.state !== 'ok' || gate.poolTotal === undefined) {
      return { name: kind, state: gate.state, detail: gate.detail };
    }
    const silentGroups = gate.estimatedGroups ?? 0;
    return {
      name: kind,
      state: 'ok',
      total: gate.poolTotal,
      ...(silentGroups > 0 ? { silentGroups } : {}),
      detail: gate.detail,
    };
  });
}

export class PrometheusPoolSignals {
  constructor(readonly source: PrometheusSignalSource) {}

  /** Never throws: the source turns failures into per-signal states. */
  async sample(
    requests: readonly ControlPoolRequest[],
    nowSeconds: number,
  ): Promise<Map<string, ControlPoolSample[]>> {
    const tick = await this.source.tick(requests.map(registrationOf), nowSeconds);
    const out = new Map<string, ControlPoolSample[]>();
    for (const r of requests) out.set(r.poolKey, poolSamples(r, tick));
    return out;
  }
}
