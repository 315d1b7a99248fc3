/**
 * kvpa in the lab: the controller's own code end to end, driven by the simulated group heads.
 *
 * - **Configuration:** the bundled preset `deepseek-r1-disaggregated` from `policies/`, resolved for the pool
 *   named `prefill` or `decode` by `src/api/resolve.ts` (`resolvePool`, then `poolRunnerFor`), exactly as a
 *   PodAutoscaler that names the preset would be. Only min/max groups come from the run's settings.
 * - **Signals:** each second, the per-group value of every ready group head is summed into a pool total, as the
 *   controller's observe layer does (src/observe/quality.ts: no ready group is `noData`, never zero).
 * - **Decision:** the controller's `PoolRunner` (src/decide/pool-runner.ts): `record` every second, `decide`
 *   every `tickSeconds` with the ready and requested counts and the latest samples, and `groupsToWrite` for
 *   what reaches the target (an invalid decision may only raise a pool).
 * - **Drain:** where the fleet offers routing (the pods carry the readiness gate) and the pool's
 *   `drainTimeoutSeconds` is positive, the controller's `drainStep` (src/decide/drain.ts) stands between the
 *   decision and the write: victims leave routing first, the count drops once they are empty.
 *
 * Nothing of the algorithm is re-implemented here.
 */
import { addPolicy, formatError, loadPolicies, readDocuments } from '../../api/documents.ts';
import { type MetricSpec, signalName } from '../../api/podautoscaler.ts';
import type { Policy } from '../../api/policy.ts';
import { poolRunnerFor, type ResolvedPool, resolvePool } from '../../api/resolve.ts';
import { type DrainRecord, drainStep, drainWant, requestedForDecision } from '../../decide/drain.ts';
import { histogramQuantile } from '../../decide/histogram.ts';
import { groupsToWrite, type PoolSample } from '../../decide/pool-runner.ts';
import type { LatencyObservation } from '../../decide/types.ts';
import { type GroupWorkSample, WorkReader } from '../../decide/work.ts';
import { EngineWindow } from './engine-window.ts';
import type {
  EngineSeries,
  GroupMetrics,
  PolicyContext,
  PolicyFactory,
  Pool,
  PoolObservation,
  ScalingPolicy,
} from './types.ts';

export const KVPA_PRESET = 'deepseek-r1-disaggregated';

let bundledPolicies: Map<string, Policy> | undefined;

function presets(): Map<string, Policy> {
  if (bundledPolicies === undefined) {
    const { policies, errors } = loadPolicies();
    if (errors.length > 0) {
      throw new Error(`policies/: ${errors.map((e) => `${e.file}: ${e.message}`).join('; ')}`);
    }
    bundledPolicies = policies;
  }
  return bundledPolicies;
}

/**
 * The preset's resolved behaviour for a pool of the simulated fleet. `horizonSeconds`, when given, is set on the
 * pool itself (the last layer of the resolution order), as a PodAutoscaler's pool may do: the lab's runs set it
 * to their cold start, as the preset asks an operator to (the preset's 600 s is the typical start).
 */
export function resolveKvpaPool(
  pool: Pool,
  minGroups: number,
  maxGroups: number,
  preset = KVPA_PRESET,
  policies: ReadonlyMap<string, Policy> = presets(),
  horizonSeconds?: number,
): ResolvedPool {
  return resolvePool(
    { policyRef: { name: preset } },
    {
      name: pool,
      scaleTargetRef: {
        apiVersion: 'leaderworkerset.x-k8s.io/v1',
        kind: 'LeaderWorkerSet',
        name: `sim-${pool}`,
      },
      minReplicas: minGroups,
      maxReplicas: maxGroups,
      ...(horizonSeconds !== undefined ? { horizonSeconds } : {}),
    },
    0,
    policies,
  );
}

/**
 * Loads a ScalingPolicy file (`kvpa simulate --policy my-preset.yaml`) next to the bundled presets, so that
 * it may start from them (`pools.<name>.policy`). Returns the name of the file's first preset and the set.
 * Errors name the file, line and field, as `kvpa validate` does.
 */
export function loadPresetFile(file: string): { name: string; policies: Map<string, Policy> } {
  const { documents, errors } = readDocuments(file);
  const policies = new Map(presets());
  const fileErrors = [...errors];
  let name: string | undefined;
  for (const d of documents) {
    if (d.kind !== 'ScalingPolicy') continue;
    policies.delete(d.value.metadata.name); // the file's preset replaces a bundled one of the same name
    addPolicy(policies, d, fileErrors);
    name ??= d.value.metadata.name;
  }
  if (fileErrors.length > 0) throw new Error(fileErrors.map(formatError).join('\n'));
  if (name === undefined)
    throw new Error(`${file}: no ScalingPolicy document (kind: ScalingPolicy) in the file`);
  return { name, policies };
}

/** Parsed preset files by path: a run builds one policy per pool, and the file does not change meanwhile. */
const presetFiles = new Map<string, ReturnType<typeof loadPresetFile>>();

/** kvpa driven by the first preset of a ScalingPolicy file, resolved per pool like the bundled ones. */
export function kvpaPresetFilePolicy(file: string): PolicyFactory {
  let loaded = presetFiles.get(file);
  if (loaded === undefined) {
    loaded = loadPresetFile(file);
    presetFiles.set(file, loaded);
  }
  const { name, policies } = loaded;
  return (context) => makeKvpaPolicy(`kvpa:${name}`, context, name, policies);
}

/** How the simulated head pod answers a gauge metric type of the API; null for the work types. */
function metricReader(metric: MetricSpec): ((m: GroupMetrics) => number) | null {
  switch (metric.type) {
    case 'kvCacheUtilization':
      return (m) => m.kvCacheUsagePerc;
    case 'queueDepth':
      return (m) => m.numRequestsWaiting;
    case 'runningRequests':
      return (m) => m.numRequestsRunning;
    case 'promptTokens':
    case 'generationTokens':
      return null;
    case 'promql':
      throw new Error(
        `the simulator cannot evaluate promql metric ${metric.name ?? ''}: use a vLLM gauge type`,
      );
  }
}

/** Rates of the engines' counters over this span, as a direct scrape computes them from successive scrapes. */
const RATE_SPAN_SECONDS = 10;

/**
 * A work metric read from the ready heads: the engines' token counter (prompt or generation) and request
 * counter with the waiting gauge, through the same WorkReader the direct scrape uses.
 */
export function workSampler(
  metric: MetricSpec,
  tpotSloSeconds: number | undefined,
): (o: PoolObservation, series: readonly EngineSeries[]) => PoolSample {
  const name = signalName(metric);
  const prompt = metric.type === 'promptTokens';
  const reader = new WorkReader(RATE_SPAN_SECONDS, prompt ? undefined : tpotSloSeconds);
  return (o, series) => {
    if (o.metrics.length === 0) return { name, state: 'noData', detail: 'no ready group to scrape' };
    if (series.length !== o.metrics.length)
      return { name, state: 'noData', detail: 'engine series and gauges disagree on the ready groups' };
    const groups: GroupWorkSample[] = series.map((e, i) => {
      const itl = e.interTokenLatencySeconds;
      return {
        id: String(e.groupId),
        tokensTotal: prompt ? e.promptTokensTotal : e.generationTokensTotal,
        requestsTotal: e.requestSuccessTotal,
        waitingRequests: (o.metrics[i] as GroupMetrics).numRequestsWaiting,
        latencySumSeconds: itl.sum,
        latencyCount: itl.cumulative[itl.upperBounds.length] ?? 0,
      };
    });
    const work = reader.read(o.nowSeconds, groups);
    if (work.flowPerSecond === undefined)
      return { name, state: 'noData', detail: 'no group has two scrapes of its counters yet' };
    return {
      name,
      state: 'ok',
      total: work.flowPerSecond,
      ...(work.backlogTokens !== undefined ? { backlog: work.backlogTokens } : {}),
      capacitySamples: work.capacitySamples,
    };
  };
}

/**
 * The pool's latency quantile for the SLO guard, as PromQL's histogram_quantile over the panic window:
 * TTFT p90 of the prefill engines, ITL p90 of the decode engines. Unknown (no observations) is absent.
 */
function latencyReader(
  pool: Pool,
  windowSeconds: number,
): (o: PoolObservation, series: readonly EngineSeries[]) => LatencyObservation {
  const window = new EngineWindow(windowSeconds);
  return (o, series) => {
    window.record(o.nowSeconds, series);
    const r = window.rates();
    if (r === undefined) return {};
    if (pool === 'prefill') {
      const q = histogramQuantile(0.9, r.ttftUpperBounds, r.ttftBuckets);
      return Number.isFinite(q) ? { ttftSeconds: q } : {};
    }
    const q = histogramQuantile(0.9, r.itlUpperBounds, r.itlBuckets);
    return Number.isFinite(q) ? { tpotSeconds: q } : {};
  };
}

export function kvpaPolicy(context: PolicyContext): ScalingPolicy {
  return makeKvpaPolicy('kvpa', context);
}

function makeKvpaPolicy(
  name: string,
  context: PolicyContext,
  preset = KVPA_PRESET,
  policies: ReadonlyMap<string, Policy> = presets(),
): ScalingPolicy {
  // The operator's one figure about its fleet: a cold start, request to serving (the run's --startup-minutes).
  const resolved = resolveKvpaPool(
    context.pool,
    context.minGroups,
    context.maxGroups,
    preset,
    policies,
    Math.round(context.startupSeconds),
  );
  const runner = poolRunnerFor(resolved);
  const samplers = resolved.metrics.map((metric) => {
    const read = metricReader(metric);
    if (read === null) return workSampler(metric, resolved.slo.tpotSeconds);
    const gauge = [{ name: signalName(metric), read }];
    return (o: PoolObservation, _series: readonly EngineSeries[]) =>
      poolSamples(gauge, o.metrics)[0] as PoolSample;
  });
  const guarded = resolved.slo.ttftSeconds !== undefined || resolved.slo.tpotSeconds !== undefined;
  const panicSeconds = (resolved.stableWindowSeconds * resolved.panicWindowPercentage) / 100;
  const latency = guarded ? latencyReader(context.pool, panicSeconds) : undefined;
  const reads = guarded || resolved.metrics.some((m) => metricReader(m) === null);
  let nextDecisionAt = Number.NEGATIVE_INFINITY;
  const drainTimeout = resolved.drainTimeoutSeconds;
  let drain: DrainRecord | null = null;
  let explained: string | undefined;
  return {
    name,
    explanation: () => explained,
    decide(o: PoolObservation) {
      explained = undefined;
      // One snapshot of the engines' series per second, shared by the work signals and the latency guard.
      const series = reads ? (o.engineSeries?.() ?? []) : [];
      const latest = samplers.map((sample) => sample(o, series));
      runner.record(latest, o.nowSeconds);
      const latencyNow = latency?.(o, series);
      // The controller's cadence: decide at the first tick, then every tickSeconds.
      if (o.nowSeconds < nextDecisionAt) return undefined;
      nextDecisionAt = o.nowSeconds + resolved.tickSeconds;
      const routing = drainTimeout > 0 ? o.routing : undefined;
      const requested = requestedForDecision(drain, o.requestedGroups);
      const decision = runner.decide(o.nowSeconds, o.readyGroups, requested, latest, latencyNow);
      explained = decision.explanation.summary;
      if (routing === undefined) return groupsToWrite(decision, o.requestedGroups);
      const order = routing.removalOrder();
      const outcome = drainStep(
        {
          nowSeconds: o.nowSeconds,
          specGroups: o.requestedGroups,
          wantGroups: drainWant(decision, o.requestedGroups),
          removalOrder:
            order?.map((g) => ({
              key: String(g.id),
              serving: g.serving,
              inFlight: { requests: g.inFlight, atSeconds: o.nowSeconds },
            })) ?? null,
          timeoutSeconds: drainTimeout,
        },
        drain,
      );
      drain = outcome.record;
      const out = new Set(outcome.outOfRouting);
      for (const g of order ?? []) routing.setRouting(g.id, !out.has(String(g.id)));
      return outcome.write;
    },
  };
}

/** Pool totals of the ready heads' values, as the observe layer's gate gives them: no head is noData. */
export function poolSamples(
  readers: readonly { name: string; read: (m: GroupMetrics) => number }[],
  metrics: readonly GroupMetrics[],
): PoolSample[] {
  return readers.map(({ name, read }) => {
    if (metrics.length === 0) return { name, state: 'noData', detail: 'no ready group to scrape' };
    let total = 0;
    for (const m of metrics) total += read(m);
    return { name, state: 'ok', total };
  });
}
