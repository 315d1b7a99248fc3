/**
 * Pure status computation: from what one reconcile saw to the PodAutoscaler status it should have.
 * Conditions keep their lastTransitionTime while their status is unchanged, so an unchanged world
 * gives an identical status and the controller writes nothing (no churn each tick).
 */
import type { Condition, PodAutoscalerStatus } from '../api/podautoscaler.ts';
import type { CapacityShortfall } from '../decide/placement.ts';
import type { Decision, StageName } from '../decide/types.ts';
import type { CapacityEstimate } from '../decide/work.ts';

type PoolStatus = NonNullable<PodAutoscalerStatus['pools']>[number];

export interface PoolFacts {
  readonly name: string;
  /** null when the scale target was not found. */
  readonly specGroups: number | null;
  readonly readyGroups: number | null;
  /** What kvpa applied (Apply) or the target's spec (DryRun). */
  readonly desiredGroups: number;
  readonly recommendedGroups: number;
  readonly decision: Decision | null;
  /** ISO time kvpa last changed this pool's target. */
  readonly lastScaleTime: string | null;
  readonly decisionTime: string | null;
  readonly ledger: PoolStatus['dryRunLedger'] | null;
  readonly writeError: string | null;
  readonly overriddenMessage: string | null;
  /** A drain in progress, as status shows it (and a restart resumes it). */
  readonly drain: PoolStatus['drain'] | null;
  /** Why a scale-down of this pool cannot drain; null when it can or draining is off. */
  readonly drainUnavailable: string | null;
  /** A scale-up the cluster cannot place in full this tick; null when every ask can land or unchecked. */
  readonly shortfall?: CapacityShortfall | null;
  /** Why kvpa does not write this pool's target, or null when it may (see TargetRefusal). */
  readonly blocked?: {
    readonly reason: 'OwnerConflict' | 'UnsupportedTarget';
    readonly message: string;
  } | null;
  /** The latched revert conflict, kept in status so a restarted controller does not fight again. */
  readonly ownerConflict?: string | null;
}

export interface ReconcileFacts {
  readonly generation: number;
  readonly mode: 'Apply' | 'DryRun';
  /** Set when the spec is invalid (zod, CEL-inexpressible rules, unknown preset…). */
  readonly invalidSpec: string | null;
  readonly pools: readonly PoolFacts[];
}

/** Stage → (condition reason, how a user reads it). */
const LIMIT_REASONS: Partial<Record<StageName, string>> = {
  rateLimit: 'RateLimited',
  scaleDownDelay: 'ScaleDownDelayed',
  startup: 'WaitingForStartingGroups',
  missingData: 'HeldOnMissingData',
  placement: 'InsufficientCapacity',
  coupling: 'CouplingBand',
  workloadBounds: 'WorkloadBounds',
};

const STATE_REASONS: Record<string, string> = {
  noData: 'NoData',
  stale: 'Stale',
  noQuorum: 'NoQuorum',
  outOfRange: 'OutOfRange',
  error: 'Error',
};

function condition(
  type: string,
  status: boolean,
  reason: string,
  message: string,
  previous: readonly Condition[],
  nowIso: string,
  generation: number,
): Condition {
  const s = status ? 'True' : 'False';
  const prev = previous.find((c) => c.type === type);
  return {
    type,
    status: s,
    reason,
    message,
    lastTransitionTime: prev !== undefined && prev.status === s ? prev.lastTransitionTime : nowIso,
    observedGeneration: generation,
  };
}

export function computeStatus(
  facts: ReconcileFacts,
  previous: PodAutoscalerStatus | undefined,
  nowIso: string,
): PodAutoscalerStatus {
  const prevConditions = previous?.conditions ?? [];
  const c = (type: string, ok: boolean, reason: string, message: string) =>
    condition(type, ok, reason, message, prevConditions, nowIso, facts.generation);

  if (facts.invalidSpec !== null) {
    return {
      observedGeneration: facts.generation,
      mode: facts.mode === 'DryRun' ? 'DryRun' : 'Stable',
      groups: previous?.groups ?? '',
      conditions: [
        c('Ready', false, 'InvalidSpec', facts.invalidSpec),
        c('ScalingActive', false, 'InvalidSpec', 'not scaling until the spec is fixed; nothing was changed'),
        c(
          'DryRun',
          facts.mode === 'DryRun',
          facts.mode === 'DryRun' ? 'DryRunMode' : 'ApplyMode',
          modeMessage(facts.mode),
        ),
      ],
      pools: previous?.pools ?? [],
    };
  }

  // A pool that failed before its target was read is a failure (FailedRescale), not a missing target.
  const missingTargets = facts.pools
    .filter((p) => p.specGroups === null && p.writeError === null)
    .map((p) => p.name);
  const undecidable = facts.pools.filter((p) => p.decision === null && p.writeError !== null);
  const writeErrors = facts.pools.filter((p) => p.writeError !== null);
  const missingSignals = facts.pools.flatMap((p) =>
    (p.decision?.explanation.signals ?? [])
      .filter((s) => s.state !== 'ok')
      .map((s) => ({ pool: p.name, signal: s.name, state: s.state, detail: s.detail })),
  );
  const noUsable = facts.pools.filter((p) => p.decision !== null && !p.decision.valid).map((p) => p.name);
  const limited = facts.pools.flatMap((p) =>
    (p.decision?.explanation.stages ?? [])
      .filter((st) => st.applied && (st.stage in LIMIT_REASONS || st.stage === 'bounds'))
      .map((st) => ({
        pool: p.name,
        stage: st.stage,
        reason: st.reason,
        before: st.before,
        after: st.after,
      })),
  );
  const overridden = facts.pools.filter((p) => p.overriddenMessage !== null);

  const ready =
    missingTargets.length > 0
      ? c(
          'Ready',
          false,
          'TargetNotFound',
          `scale target of pool(s) ${missingTargets.join(', ')} not found: create it or fix spec.pools[].scaleTargetRef`,
        )
      : writeErrors.length > 0
        ? c('Ready', false, 'FailedRescale', writeErrors.map((p) => `${p.name}: ${p.writeError}`).join('; '))
        : c('Ready', true, 'Ready', 'every pool is observed and decided');

  const firstMissing = missingSignals[0];
  const metrics =
    firstMissing === undefined
      ? c('MetricsAvailable', true, 'AllSignalsPresent', 'every signal of every pool passed the quality gate')
      : c(
          'MetricsAvailable',
          false,
          STATE_REASONS[firstMissing.state] ?? 'NoData',
          `${missingSignals.map((m) => `${m.pool}/${m.signal}: ${m.state}${m.detail ? ` (${m.detail})` : ''}`).join('; ')}; pools hold (no scale-down) until signals return`,
        );

  const blocked = facts.pools.flatMap((p) => (p.blocked ? [{ pool: p.name, b: p.blocked }] : []));
  const blockedText = (list: typeof blocked) => list.map(({ pool, b }) => `${pool}: ${b.message}`).join('; ');
  const firstBlocked = blocked[0];
  const conflicts = blocked.filter(({ b }) => b.reason === 'OwnerConflict');
  const ownerConflict =
    conflicts.length > 0
      ? c('OwnerConflict', true, 'OwnerConflict', `kvpa does not write: ${blockedText(conflicts)}`)
      : c('OwnerConflict', false, 'NoOtherOwner', 'no other owner resets the group count');

  const active =
    firstBlocked !== undefined
      ? c('ScalingActive', false, firstBlocked.b.reason, `not writing ${blockedText(blocked)}`)
      : missingTargets.length > 0
        ? c(
            'ScalingActive',
            false,
            'TargetNotFound',
            `cannot scale ${missingTargets.join(', ')}: target not found`,
          )
        : undecidable.length > 0
          ? c(
              'ScalingActive',
              false,
              'FailedRescale',
              `cannot decide ${undecidable.map((p) => `${p.name} (${p.writeError})`).join('; ')}`,
            )
          : noUsable.length > 0
            ? c(
                'ScalingActive',
                false,
                'NoUsableSignal',
                `no usable signal for ${noUsable.join(', ')}: holding the previous decision`,
              )
            : c('ScalingActive', true, 'ValidDecisions', 'every pool decided from its signals');

  const short = facts.pools.flatMap((p) => (p.shortfall ? [{ pool: p.name, s: p.shortfall }] : []));
  const firstLimit = limited[0];
  const limitReason = (l: (typeof limited)[number]) =>
    l.stage === 'bounds'
      ? l.after < l.before
        ? 'TooManyReplicas'
        : 'TooFewReplicas'
      : (LIMIT_REASONS[l.stage] ?? 'Limited');
  // A shortage of room comes first: it is the one limit a user fixes outside kvpa (nodes, quota).
  const scalingLimited =
    short.length > 0
      ? c(
          'ScalingLimited',
          true,
          'InsufficientCapacity',
          short
            .map(
              ({ pool, s }) =>
                `${pool}: want ${s.wantGroups}, ${s.landGroups} can land, asked ${s.askedGroups} (${s.detail})`,
            )
            .join('; '),
        )
      : firstLimit === undefined
        ? c('ScalingLimited', false, 'DesiredWithinRange', 'no limit changed the desired groups')
        : c(
            'ScalingLimited',
            true,
            limitReason(firstLimit),
            limited.map((l) => `${l.pool}: ${l.stage} ${l.before} → ${l.after} (${l.reason})`).join('; '),
          );

  const dryRun = c(
    'DryRun',
    facts.mode === 'DryRun',
    facts.mode === 'DryRun' ? 'DryRunMode' : 'ApplyMode',
    modeMessage(facts.mode),
  );
  const override =
    overridden.length > 0
      ? c(
          'Overridden',
          true,
          'Overridden',
          overridden.map((p) => `${p.name}: ${p.overriddenMessage}`).join('; '),
        )
      : c('Overridden', false, 'NotOverridden', 'no other writer changed a target');

  const pools: PoolStatus[] = facts.pools.map((p) => poolStatus(p));
  const anyPanic = facts.pools.some((p) => p.decision?.inPanic === true);
  return {
    observedGeneration: facts.generation,
    mode: facts.mode === 'DryRun' ? 'DryRun' : anyPanic ? 'Panic' : 'Stable',
    groups: facts.pools
      .map(
        (p) =>
          `${p.name} ${p.readyGroups ?? '?'}/${facts.mode === 'DryRun' ? p.recommendedGroups : p.desiredGroups}`,
      )
      .join(' '),
    conditions: [ready, metrics, active, scalingLimited, dryRun, override, ownerConflict],
    pools,
  };
}

function modeMessage(mode: 'Apply' | 'DryRun'): string {
  return mode === 'DryRun'
    ? 'recommendations only: status, events and annotations; set spec.mode: Apply to scale'
    : 'kvpa writes the group count of every pool';
}

function poolStatus(p: PoolFacts): PoolStatus {
  const d = p.decision;
  const explanation = d?.explanation;
  return {
    name: p.name,
    replicas: p.specGroups ?? 0,
    readyReplicas: p.readyGroups ?? 0,
    desiredReplicas: p.desiredGroups,
    recommendedReplicas: p.recommendedGroups,
    mode: d?.inPanic ? 'Panic' : 'Stable',
    ...(p.lastScaleTime !== null ? { lastScaleTime: p.lastScaleTime } : {}),
    ...(p.drain !== null ? { drain: p.drain } : {}),
    ...(p.drainUnavailable !== null ? { drainUnavailable: p.drainUnavailable } : {}),
    ...(explanation !== undefined && p.decisionTime !== null
      ? {
          lastDecision: {
            time: p.decisionTime,
            summary: explanation.summary,
            signals: explanation.signals.map((s) => ({
              name: s.name,
              state: s.state,
              targetPerGroup: s.targetPerGroup,
              ...(s.stableTotal !== undefined ? { stableTotal: s.stableTotal } : {}),
              ...(s.panicTotal !== undefined ? { panicTotal: s.panicTotal } : {}),
              ...(s.stableWant !== undefined ? { stableWant: s.stableWant } : {}),
              ...(s.panicWant !== undefined ? { panicWant: s.panicWant } : {}),
              ...(s.detail !== undefined ? { detail: s.detail } : {}),
              ...(s.backlogTotal !== undefined ? { backlogTotal: s.backlogTotal } : {}),
              ...(s.clearancePerSecond !== undefined ? { clearancePerSecond: s.clearancePerSecond } : {}),
              ...(s.projectedTotal !== undefined ? { projectedTotal: s.projectedTotal } : {}),
              ...(s.horizonWant !== undefined ? { horizonWant: s.horizonWant } : {}),
              ...(s.exhaustionSeconds !== undefined ? { exhaustionSeconds: s.exhaustionSeconds } : {}),
              ...(s.seasonalRatio !== undefined ? { seasonalRatio: s.seasonalRatio } : {}),
              ...(s.plannedBy !== undefined ? { plannedBy: s.plannedBy } : {}),
              ...(s.capacity !== undefined ? { capacity: capacityStatus(s.capacity) } : {}),
            })),
            ...(explanation.stableWinner !== null ? { stableWinner: explanation.stableWinner } : {}),
            ...(explanation.panicWinner !== null ? { panicWinner: explanation.panicWinner } : {}),
            limitedBy: explanation.stages
              .filter((s) => s.applied && s.stage !== 'compute')
              .map((s) => s.stage),
            ...(explanation.holdReason !== null ? { holdReason: explanation.holdReason } : {}),
            ...(explanation.latency !== undefined ? { latency: explanation.latency } : {}),
            ...(explanation.sloTrim !== undefined ? { sloTrim: explanation.sloTrim } : {}),
          },
        }
      : {}),
    ...(p.ledger !== null ? { dryRunLedger: p.ledger } : {}),
    ...(p.ownerConflict ? { ownerConflict: p.ownerConflict } : {}),
  };
}

/** A capacity estimate as status shows it (the measured figure only once there is one). */
function capacityStatus(c: CapacityEstimate) {
  return {
    configuredPerSecond: c.configuredPerSecond,
    ...(c.measuredPerSecond !== undefined ? { measuredPerSecond: c.measuredPerSecond } : {}),
    samples: c.samples,
    usedPerSecond: c.usedPerSecond,
    source: c.source,
  };
}
