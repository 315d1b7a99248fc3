/**
 * Which Kubernetes Events a pool's tick should raise. Pure: it compares what the pool showed last
 * time with what it shows now, so events fire on transitions, not on every tick.
 */
import type { Decision } from '../decide/types.ts';

export type EventReason =
  | 'SuccessfulRescale'
  | 'FailedRescale'
  | 'WouldScale'
  | 'PanicStarted'
  | 'PanicEnded'
  | 'MetricsMissing'
  | 'TargetNotFound'
  | 'Overridden'
  | 'InvalidSpec';

export interface PoolEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: EventReason;
  readonly message: string;
}

/** What a pool looked like at its previous tick, for transition detection. */
export interface PoolMemory {
  readonly inPanic: boolean;
  readonly missingSignals: string;
  readonly targetFound: boolean;
  readonly recommendedGroups: number | null;
}

export const FRESH_MEMORY: PoolMemory = {
  inPanic: false,
  missingSignals: '',
  targetFound: true,
  recommendedGroups: null,
};

export interface TickOutcome {
  readonly pool: string;
  readonly mode: 'Apply' | 'DryRun';
  readonly targetFound: boolean;
  readonly specGroups: number | null;
  readonly decision: Decision | null;
  /** Apply: the write that happened (from → to), if any. */
  readonly wrote: { readonly from: number; readonly to: number } | null;
  readonly writeError: string | null;
  readonly overriddenMessage: string | null;
}

export function poolEvents(memory: PoolMemory, t: TickOutcome): { events: PoolEvent[]; memory: PoolMemory } {
  const events: PoolEvent[] = [];
  const summary = t.decision?.explanation.summary ?? '';
  if (!t.targetFound) {
    if (memory.targetFound) {
      events.push({
        type: 'Warning',
        reason: 'TargetNotFound',
        message: `${t.pool}: scale target not found; holding`,
      });
    }
    return { events, memory: { ...memory, targetFound: false } };
  }
  const d = t.decision;
  const missing = (d?.explanation.signals ?? [])
    .filter((s) => s.state !== 'ok')
    .map((s) => `${s.name}: ${s.state}${s.detail ? ` (${s.detail})` : ''}`)
    .join('; ');
  if (missing !== '' && missing !== memory.missingSignals) {
    events.push({
      type: 'Warning',
      reason: 'MetricsMissing',
      message: `${t.pool}: ${missing}; holding (no scale-down)`,
    });
  }
  if (d?.inPanic && !memory.inPanic) {
    events.push({ type: 'Warning', reason: 'PanicStarted', message: `${t.pool}: ${summary}` });
  }
  if (d !== null && !d.inPanic && memory.inPanic) {
    events.push({ type: 'Normal', reason: 'PanicEnded', message: `${t.pool}: ${summary}` });
  }
  if (t.overriddenMessage !== null) {
    events.push({ type: 'Warning', reason: 'Overridden', message: `${t.pool}: ${t.overriddenMessage}` });
  }
  if (t.writeError !== null) {
    events.push({ type: 'Warning', reason: 'FailedRescale', message: `${t.pool}: ${t.writeError}` });
  }
  if (t.wrote !== null) {
    events.push({
      type: 'Normal',
      reason: 'SuccessfulRescale',
      message: `${t.pool}: ${t.wrote.from} → ${t.wrote.to} groups: ${summary}`,
    });
  }
  const recommended = d?.desiredGroups ?? memory.recommendedGroups;
  if (
    t.mode === 'DryRun' &&
    d !== null &&
    d.desiredGroups !== t.specGroups &&
    d.desiredGroups !== memory.recommendedGroups
  ) {
    events.push({
      type: 'Normal',
      reason: 'WouldScale',
      message: `${t.pool}: would scale ${t.specGroups ?? '?'} → ${d.desiredGroups} groups (dry-run): ${summary}`,
    });
  }
  return {
    events,
    memory: {
      inPanic: d?.inPanic ?? memory.inPanic,
      missingSignals: missing,
      targetFound: true,
      recommendedGroups: recommended,
    },
  };
}
