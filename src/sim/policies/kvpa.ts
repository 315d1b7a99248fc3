/**
 * kvpa in the lab: the controller's own decision core (`src/decide`: `SignalWindows` and `decide`) driven by
 * the simulated group heads. Nothing of the algorithm is re-implemented here; this adapter only does what the
 * controller's observe layer does: sum each signal over the ready groups once per second into the signal's
 * windows, and every `tickSeconds` read the windows and step `decide` with the ready and requested counts.
 *
 * The preset (until `policies/` ships one, this is the lab's `deepseek-r1-disaggregated`): Knative's defaults
 * (`KNATIVE_DEFAULTS`) with kvpa's extensions (`KVPA_EXTENSIONS`: startup gate, hold on missing data,
 * ratio epsilon) and these signals, the largest want winning:
 *
 * | pool    | signal               | target per group                                                        |
 * |---------|----------------------|-------------------------------------------------------------------------|
 * | decode  | `kvCacheUtilization` | 0.7                                                                     |
 * | decode  | `runningRequests`    | sequences per group at 90 % of the TPOT SLO, 3K context (calibration.md §9) |
 * | prefill | `runningRequests`    | batch size at 70 % utilisation for 2K prompts: 0.08 s·λ/(1 − 0.7)        |
 * | prefill | `queueDepth`         | prompts/s per group at 2K × TTFT / 4                                     |
 */
import {
  type DeciderSpec,
  type DeciderState,
  decide,
  initialState,
  KNATIVE_DEFAULTS,
  KVPA_EXTENSIONS,
  SignalWindows,
} from '../../decide/index.ts';
import type { Calibration } from '../calibration.ts';
import { decodeRunningTarget, prefillQueueTarget, prefillRunningTarget } from './targets.ts';
import type { GroupMetrics, PolicyContext, Pool, PoolObservation, ScalingPolicy } from './types.ts';

export interface KvpaSignal {
  readonly name: 'kvCacheUtilization' | 'runningRequests' | 'queueDepth';
  readonly targetPerGroup: number;
}

const READ: Readonly<Record<KvpaSignal['name'], (m: GroupMetrics) => number>> = {
  kvCacheUtilization: (m) => m.kvCacheUsagePerc,
  runningRequests: (m) => m.numRequestsRunning,
  queueDepth: (m) => m.numRequestsWaiting,
};

/** The lab's kvpa signals for a pool (see the table above and targets.ts). */
export function kvpaSignals(pool: Pool, c: Calibration): KvpaSignal[] {
  if (pool === 'decode') {
    return [
      { name: 'kvCacheUtilization', targetPerGroup: 0.7 },
      { name: 'runningRequests', targetPerGroup: decodeRunningTarget(c) },
    ];
  }
  return [
    { name: 'runningRequests', targetPerGroup: prefillRunningTarget(c) },
    { name: 'queueDepth', targetPerGroup: prefillQueueTarget(c) },
  ];
}

export function kvpaSpec(context: PolicyContext): DeciderSpec {
  return {
    ...KNATIVE_DEFAULTS,
    minReplicas: context.minGroups,
    maxReplicas: context.maxGroups,
    extensions: KVPA_EXTENSIONS,
  };
}

export function kvpaPolicy(context: PolicyContext): ScalingPolicy {
  const spec = kvpaSpec(context);
  const signals = kvpaSignals(context.pool, context.calibration);
  const windows = signals.map(
    (s) =>
      new SignalWindows({
        name: s.name,
        targetPerGroup: s.targetPerGroup,
        stableWindowSeconds: spec.stableWindowSeconds,
        panicWindowPercentage: 10,
        aggregation: 'linear',
      }),
  );
  let state: DeciderState | undefined;
  return {
    name: 'kvpa',
    decide(o: PoolObservation) {
      state ??= initialState(spec, o.readyGroups, o.nowSeconds);
      if (o.metrics.length > 0) {
        signals.forEach((s, i) => {
          let total = 0;
          for (const m of o.metrics) total += READ[s.name](m);
          windows[i]?.record(o.nowSeconds, total);
        });
      }
      if (o.nowSeconds % spec.tickSeconds !== 0) return undefined;
      const result = decide(
        spec,
        state,
        {
          readyGroups: o.readyGroups,
          requestedGroups: o.requestedGroups,
          signals: windows.map((w) => w.read(o.nowSeconds)),
        },
        o.nowSeconds,
      );
      state = result.state;
      return result.decision.valid ? result.decision.desiredGroups : undefined;
    },
  };
}
