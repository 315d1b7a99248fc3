/**
 * Routes each pool to the signal source its PodAutoscaler names (spec.metricsSource): one batched
 * Prometheus source per Prometheus address, and one direct-scrape source for every `pods` pool. The
 * controller calls it once per endpoint (endpointKeyOf), so no pool waits on another's endpoint.
 */
import type { HeadPod } from '../actuate/types.ts';
import { PodsSignalSource } from '../observe/pods-control.ts';
import { PrometheusPoolSignals, registrationOf } from '../observe/prometheus-control.ts';
import { signalKindOf } from '../observe/prometheus-join.ts';
import { promqlMetricOf } from '../observe/prometheus-promql.ts';
import { PrometheusSignalSource } from '../observe/prometheus-source.ts';
import {
  type PoolSample,
  type PoolSignalRequest,
  type SignalHistory,
  type SignalSource,
  signalName,
} from './signals.ts';

export interface RoutingOptions {
  /** The full detail of a failed Prometheus query, for the controller log (tenants see "unreachable"). */
  readonly onFailure?: (address: string, detail: string) => void;
}

export class RoutingSignalSource implements SignalSource {
  private readonly prometheus = new Map<string, PrometheusPoolSignals>();
  constructor(
    private readonly pods: PodsSignalSource = new PodsSignalSource(),
    private readonly routing: RoutingOptions = {},
  ) {}

  private prometheusFor(address: string, queryTimeoutSeconds: number | undefined): PrometheusPoolSignals {
    const key = `${address}|${queryTimeoutSeconds ?? ''}`;
    let source = this.prometheus.get(key);
    if (source === undefined) {
      source = new PrometheusPoolSignals(
        new PrometheusSignalSource({
          address,
          ...(queryTimeoutSeconds !== undefined ? { queryTimeoutSeconds } : {}),
          onFailure: (detail) => this.routing.onFailure?.(address, detail),
        }),
      );
      this.prometheus.set(key, source);
    }
    return source;
  }

  /**
   * Restart recovery for Prometheus pools: one query_range per signal kind, and one per promql metric,
   * at a 1 s step, judged by the same quality gate as live ticks. Direct-scrape pools have no history (an empty map).
   */
  async backfill(request: PoolSignalRequest, fromSeconds: number, toSeconds: number): Promise<SignalHistory> {
    const history = new Map<string, { atSeconds: number; total: number }[]>();
    const { prometheus } = request.metricsSource;
    if (prometheus === undefined) return history;
    const { source } = this.prometheusFor(prometheus.address, prometheus.queryTimeoutSeconds);
    const registration = registrationOf({
      ...request,
      heads: request.heads.map((h) => ({ ...h, surge: h.surge ?? false })),
    });
    const batched = source.backfill(registration, fromSeconds, toSeconds, 1);
    // Each promql metric replays its own query (one query_range each), beside the batched kinds'.
    const promql = new Map(
      await Promise.all(
        request.pool.metrics.flatMap((m) => {
          const p = promqlMetricOf(m);
          if (p === null) return [];
          return [
            source
              .backfillPromql(registration, p, fromSeconds, toSeconds, 1)
              .then((signal) => [signalName(m), signal] as const),
          ];
        }),
      ),
    );
    const result = await batched;
    for (const metric of request.pool.metrics) {
      const kind = signalKindOf(metric);
      const signal = kind === null ? promql.get(signalName(metric)) : result.signals.get(kind);
      if (signal === undefined) continue;
      history.set(
        signalName(metric),
        signal.samples.map((s) => ({ atSeconds: s.atSeconds, total: s.poolTotal })),
      );
    }
    return history;
  }

  /** kvpa's own series for the seasonal memory, from the pool's Prometheus; none for direct-scrape pools. */
  async ownHistory(
    request: PoolSignalRequest,
    autoscalerName: string,
    signals: readonly string[],
    fromSeconds: number,
    toSeconds: number,
    stepSeconds: number,
  ): Promise<SignalHistory> {
    const { prometheus } = request.metricsSource;
    if (prometheus === undefined || signals.length === 0) return new Map();
    const { source } = this.prometheusFor(prometheus.address, prometheus.queryTimeoutSeconds);
    return source.ownHistory(
      { namespace: request.namespace, name: autoscalerName, pool: request.pool.name },
      signals,
      fromSeconds,
      toSeconds,
      stepSeconds,
    );
  }

  /** Requests in flight on a drain's victims, from the pool's own source (Prometheus or a direct scrape). */
  async inFlight(
    request: PoolSignalRequest,
    heads: readonly HeadPod[],
    nowSeconds: number,
  ): Promise<Map<string, { requests: number; atSeconds: number }>> {
    const scrapeHeads = heads.map((h) => ({ ...h, surge: h.surge ?? false }));
    const { prometheus, pods } = request.metricsSource;
    if (prometheus !== undefined) {
      const source = this.prometheusFor(prometheus.address, prometheus.queryTimeoutSeconds);
      return source.inFlight({ ...request, heads: scrapeHeads }, scrapeHeads, nowSeconds);
    }
    if (pods === undefined) return new Map();
    return this.pods.inFlight(
      request.pool.engine,
      request.namespace,
      scrapeHeads,
      {
        port: pods.port,
        ...(pods.path !== undefined ? { path: pods.path } : {}),
        ...(pods.scheme !== undefined ? { scheme: pods.scheme } : {}),
        ...(pods.timeoutSeconds !== undefined ? { timeoutSeconds: pods.timeoutSeconds } : {}),
      },
      request.pool.ranksOn,
    );
  }

  async sample(
    requests: readonly PoolSignalRequest[],
    nowSeconds: number,
  ): Promise<Map<string, PoolSample[]>> {
    const byPrometheus = new Map<PrometheusPoolSignals, PoolSignalRequest[]>();
    const pods: PoolSignalRequest[] = [];
    for (const r of requests) {
      const { prometheus } = r.metricsSource;
      if (prometheus !== undefined) {
        const source = this.prometheusFor(prometheus.address, prometheus.queryTimeoutSeconds);
        byPrometheus.set(source, [...(byPrometheus.get(source) ?? []), r]);
      } else {
        pods.push(r);
      }
    }
    const parts = await Promise.all([
      ...[...byPrometheus].map(([source, rs]) =>
        source.sample(
          rs.map((r) => ({ ...r, heads: r.heads.map((h) => ({ ...h, surge: h.surge ?? false })) })),
          nowSeconds,
        ),
      ),
      this.pods.sample(
        pods.flatMap((r) =>
          r.metricsSource.pods === undefined
            ? []
            : [
                {
                  ...r,
                  heads: r.heads.map((h) => ({ ...h, surge: h.surge ?? false })),
                  endpoint: {
                    port: r.metricsSource.pods.port,
                    ...(r.metricsSource.pods.path !== undefined ? { path: r.metricsSource.pods.path } : {}),
                    ...(r.metricsSource.pods.scheme !== undefined
                      ? { scheme: r.metricsSource.pods.scheme }
                      : {}),
                    ...(r.metricsSource.pods.timeoutSeconds !== undefined
                      ? { timeoutSeconds: r.metricsSource.pods.timeoutSeconds }
                      : {}),
                  },
                },
              ],
        ),
      ),
    ]);
    const out = new Map<string, PoolSample[]>();
    for (const part of parts) for (const [k, v] of part) out.set(k, v);
    return out;
  }
}
