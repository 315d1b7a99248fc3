/**
 * The direct-scrape signal source (metricsSource.pods): every second, scrape each ready group's head
 * pod with bounded concurrency and a per-pod timeout, extract the engine signals, and turn per-group
 * values into pool totals through a quorum gate. Prometheus scrape intervals of 15–30 s make a 6 s
 * panic window meaningless; this is how kvpa reacts within a second, as Knative's scraper does.
 */
import { type MetricSpec, signalName } from '../api/podautoscaler.ts';
import type { EngineSignals, SignalValue } from './engine-metrics.ts';
import { metricsUrl, podSignals, scrapePods, tenantReason } from './pod-scraper.ts';
import type { ControlPoolRequest, ControlPoolSample } from './prometheus-control.ts';

export interface PodsEndpoint {
  readonly port: number;
  readonly path?: string;
  readonly scheme?: 'http' | 'https';
  readonly timeoutSeconds?: number;
}

export interface PodsSourceOptions {
  readonly maxConcurrency?: number;
  readonly clock?: () => number;
  readonly fetch?: typeof fetch;
}

/** The head pod fields the scrape needs, beyond the Prometheus adapter's. */
export interface ScrapeHead {
  readonly name: string;
  readonly groupKey: string;
  readonly groupReady: boolean;
  readonly surge: boolean;
  readonly podIP?: string;
}

export interface PodsPoolRequest extends Omit<ControlPoolRequest, 'heads'> {
  readonly heads: readonly ScrapeHead[];
  readonly endpoint: PodsEndpoint;
}

function signalValueOf(signals: EngineSignals, metric: MetricSpec): SignalValue | null {
  switch (metric.type) {
    case 'kvCacheUtilization':
      return signals.kvCacheUsageFraction;
    case 'queueDepth':
      return signals.requestsWaiting;
    case 'runningRequests':
      return signals.requestsRunning;
    default:
      return null;
  }
}

/**
 * Pool total for one metric from the per-group values. Rules (the same as the Prometheus gate):
 * no reporting group → noData; any out-of-range value → outOfRange (never clipped, never zero);
 * fewer than minQuorumPercentage of ready groups reporting → noQuorum; otherwise Σ over reporting
 * groups, with non-reporting ready groups counted at the mean of the reporting ones and named in
 * `silentGroups`: the pool may grow on that total but never shrinks while a group is silent.
 */
export function poolTotal(
  metric: MetricSpec,
  perGroup: ReadonlyMap<string, { value: SignalValue | null; error?: string }>,
  minQuorumPercentage: number,
): ControlPoolSample {
  const name = signalName(metric);
  if (metric.type === 'promql') {
    return {
      name,
      state: 'error',
      detail: 'promql metrics need metricsSource.prometheus; the pods source cannot run PromQL',
    };
  }
  const ready = perGroup.size;
  if (ready === 0) return { name, state: 'noData', detail: 'no ready group to scrape' };
  let sum = 0;
  let reporting = 0;
  const silent: string[] = [];
  for (const [group, r] of perGroup) {
    const v = r.value;
    if (v === null || v.state === 'missing') {
      silent.push(`${group}: ${r.error ?? (v !== null && v.state === 'missing' ? v.reason : 'no value')}`);
      continue;
    }
    if (v.state === 'outOfRange') return { name, state: 'outOfRange', detail: `${group}: ${v.reason}` };
    sum += v.value;
    reporting++;
  }
  if (reporting === 0)
    return { name, state: 'noData', detail: `no ready group reported (${silent.slice(0, 3).join('; ')})` };
  if ((reporting / ready) * 100 < minQuorumPercentage) {
    return {
      name,
      state: 'noQuorum',
      detail: `${reporting} of ${ready} ready groups reported, below ${minQuorumPercentage}%`,
    };
  }
  const estimated = ready - reporting;
  const total = sum + (estimated * sum) / reporting;
  return {
    name,
    state: 'ok',
    total,
    ...(estimated > 0
      ? {
          silentGroups: estimated,
          detail: `${estimated} silent group(s) counted at the mean, no scale-down: ${silent.slice(0, 3).join('; ')}`,
        }
      : {}),
  };
}

export class PodsSignalSource {
  constructor(private readonly options: PodsSourceOptions = {}) {}

  /**
   * Never throws: unreachable pods become per-group errors, which the gate turns into states. Each
   * pool is scraped on its own with its own timeout, so one pool's slow pods never delay another's.
   */
  async sample(requests: readonly PodsPoolRequest[]): Promise<Map<string, ControlPoolSample[]>> {
    const parts = await Promise.all(requests.map((r) => this.samplePool(r)));
    return new Map(parts);
  }

  private async samplePool(r: PodsPoolRequest): Promise<[string, ControlPoolSample[]]> {
    const targets: { pod: string; url: string }[] = [];
    for (const h of r.heads) {
      if (!h.groupReady || h.surge || h.podIP === undefined) continue;
      targets.push({
        pod: `${r.namespace}/${h.name}`,
        url: metricsUrl(h.podIP, r.endpoint.port, r.endpoint.path, r.endpoint.scheme),
      });
    }
    const results = await scrapePods(targets, {
      maxConcurrency: this.options.maxConcurrency ?? 16,
      timeoutMs: (r.endpoint.timeoutSeconds ?? 1) * 1000,
      clock: this.options.clock ?? Date.now,
      ...(this.options.fetch !== undefined ? { fetch: this.options.fetch } : {}),
    });
    const byPod = new Map(results.map((result, i) => [targets[i]?.pod ?? '', result]));
    const groups = r.heads.filter((h) => h.groupReady && !h.surge);
    const samples = r.pool.metrics.map((metric) => {
      const perGroup = new Map<string, { value: SignalValue | null; error?: string }>();
      for (const h of groups) {
        const result = byPod.get(`${r.namespace}/${h.name}`);
        if (result === undefined) {
          perGroup.set(h.groupKey, { value: null, error: 'head pod has no IP yet' });
          continue;
        }
        const signals = podSignals(result, { dialect: r.pool.engine });
        perGroup.set(h.groupKey, {
          value: signalValueOf(signals, metric),
          ...(result.ok ? {} : { error: tenantReason(result.error) }),
        });
      }
      return poolTotal(metric, perGroup, r.pool.missingData.minQuorumPercentage);
    });
    return [r.poolKey, samples];
  }
}
