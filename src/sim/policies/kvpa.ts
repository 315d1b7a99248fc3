/**
 * kvpa in the lab: the controller's own code end to end, driven by the simulated group heads.
 *
 * - **Configuration:** the bundled preset `deepseek-r1-disaggregated` from `policies/`, resolved for the pool
 *   named `prefill` or `decode` by `src/api/resolve.ts` (`resolvePool`, then `toDeciderSpec`), exactly as a
 *   PodAutoscaler that names the preset would be. Only min/max groups come from the run's settings.
 * - **Signals:** one `SignalWindows` (src/decide) per resolved metric. Each second, the per-group value of every
 *   ready group head is summed into a pool total and recorded, as the controller's observe layer does.
 * - **Decision:** every `tickSeconds`, `decide(spec, state, observation, now)` from src/decide with the ready and
 *   requested group counts; an invalid decision keeps the current request.
 *
 * Nothing of the algorithm is re-implemented here.
 */
import { loadPolicies } from '../../api/documents.ts';
import type { MetricSpec } from '../../api/podautoscaler.ts';
import type { Policy } from '../../api/policy.ts';
import { type ResolvedPool, resolvePool, toDeciderSpec } from '../../api/resolve.ts';
import {
  type DeciderSpec,
  type DeciderState,
  decide,
  initialState,
  SignalWindows,
} from '../../decide/index.ts';
import type { Calibration } from '../calibration.ts';
import { decodeRunningTarget, prefillRunningTarget } from './targets.ts';
import type { GroupMetrics, PolicyContext, Pool, PoolObservation, ScalingPolicy } from './types.ts';

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
 * The preset's resolved behaviour for a pool of the simulated fleet. `metrics`, when given, is set on the pool
 * itself (the last layer of the resolution order), as a PodAutoscaler's pool may do.
 */
export function resolveKvpaPool(
  pool: Pool,
  minGroups: number,
  maxGroups: number,
  preset = KVPA_PRESET,
  metrics?: MetricSpec[],
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
      ...(metrics !== undefined ? { metrics } : {}),
    },
    0,
    presets(),
  );
}

/**
 * A proposed change to the preset's signals, measured in bench/RESULTS.md: prefill adds the running count
 * (batch size at 70 % utilisation) to its queue depth, because the queue stays near 0 until a group is already
 * saturated; decode replaces queue depth (which counts requests waiting for their KV transfer and the next
 * step, ≈ λ·(transfer + step) even when KV is nearly empty) by the running count at 90 % of the TPOT SLO,
 * the compute-bound limit that KV use does not show on H200.
 */
export function runningSignals(pool: Pool, c: Calibration): MetricSpec[] {
  return pool === 'prefill'
    ? [
        { type: 'runningRequests', target: prefillRunningTarget(c) },
        { type: 'queueDepth', target: 12 },
      ]
    : [
        { type: 'kvCacheUtilization', target: 0.7 },
        { type: 'runningRequests', target: decodeRunningTarget(c) },
      ];
}

/** How the simulated head pod answers each metric type of the API. */
function metricReader(metric: MetricSpec): (m: GroupMetrics) => number {
  switch (metric.type) {
    case 'kvCacheUtilization':
      return (m) => m.kvCacheUsagePerc;
    case 'queueDepth':
      return (m) => m.numRequestsWaiting;
    case 'runningRequests':
      return (m) => m.numRequestsRunning;
    case 'promql':
      throw new Error(
        `the simulator cannot evaluate promql metric ${metric.name ?? ''}: use a vLLM gauge type`,
      );
  }
}

export function kvpaPolicy(context: PolicyContext): ScalingPolicy {
  return makeKvpaPolicy('kvpa', context);
}

/** kvpa with the signals of `runningSignals` on each pool; everything else from the preset. */
export function kvpaRunningPolicy(context: PolicyContext): ScalingPolicy {
  return makeKvpaPolicy('kvpa-running', context, runningSignals(context.pool, context.calibration));
}

function makeKvpaPolicy(name: string, context: PolicyContext, metrics?: MetricSpec[]): ScalingPolicy {
  const resolved = resolveKvpaPool(context.pool, context.minGroups, context.maxGroups, KVPA_PRESET, metrics);
  const spec: DeciderSpec = toDeciderSpec(resolved);
  const signals = resolved.metrics.map((metric) => ({
    read: metricReader(metric),
    windows: new SignalWindows({
      name: metric.type === 'promql' ? (metric.name ?? 'promql') : metric.type,
      targetPerGroup: metric.target,
      stableWindowSeconds: resolved.stableWindowSeconds,
      panicWindowPercentage: resolved.panicWindowPercentage,
      aggregation: resolved.aggregation,
    }),
  }));
  let state: DeciderState | undefined;
  return {
    name,
    decide(o: PoolObservation) {
      state ??= initialState(spec, o.readyGroups, o.nowSeconds);
      if (o.metrics.length > 0) {
        for (const signal of signals) {
          let total = 0;
          for (const m of o.metrics) total += signal.read(m);
          signal.windows.record(o.nowSeconds, total);
        }
      }
      if (o.nowSeconds % spec.tickSeconds !== 0) return undefined;
      const result = decide(
        spec,
        state,
        {
          readyGroups: o.readyGroups,
          requestedGroups: o.requestedGroups,
          signals: signals.map((s) => s.windows.read(o.nowSeconds)),
        },
        o.nowSeconds,
      );
      state = result.state;
      return result.decision.valid ? result.decision.desiredGroups : undefined;
    },
  };
}
