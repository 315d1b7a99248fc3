/**
 * Which Kubernetes Events a pool's tick should raise. Pure: it compares what the pool showed last
 * time with what it shows now, so events fire on transitions, not on every tick.
 *
 * A repeating warning is keyed by its reason and a STABLE form of its message: signal names and states
 * for MetricsMissing, the error text with every number masked for FailedRescale. A detail that changes
 * every tick ("newest sample 95s old", "96s old", …, a resourceVersion) never raises a new Event: the
 * tick reports it as a repeat, which counts on the Event already raised (`count`, as client-go's
 * EventCorrelator does in k8s.io/client-go/tools/record/events_cache.go).
 */
import type { DrainPhase } from '../decide/drain.ts';
import type { CapacityShortfall } from '../decide/placement.ts';
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
  | 'InvalidSpec'
  | 'DrainStarted'
  | 'Drained'
  | 'DrainTimedOut'
  | 'DrainCancelled'
  | 'DrainUnavailable'
  | 'InsufficientCapacity'
  | 'OwnerConflict'
  | 'UnsupportedTarget';

export interface PoolEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: EventReason;
  readonly message: string;
  /** The warning last raised, still true this tick: it counts on that Event, never raises a new one. */
  readonly repeat?: true;
  /** What makes two of these the same Event (the pool and the dedup key); the message when unset. */
  readonly key?: string;
}

/** What a pool looked like at its previous tick, for transition detection. */
export interface PoolMemory {
  readonly inPanic: boolean;
  /** Dedup key of the MetricsMissing last raised ('' while every signal is ok). */
  readonly missingSignals: string;
  /** Dedup key of the FailedRescale last raised ('' after a tick without a write error). */
  readonly failedRescale: string;
  readonly targetFound: boolean;
  readonly recommendedGroups: number | null;
  /** Victims of the drain last announced ('' when none is in progress). */
  readonly drainVictims: string;
  /** Dedup key of the DrainUnavailable last raised ('' while the pool can drain). */
  readonly drainUnavailable: string;
  /** Dedup key of the InsufficientCapacity last raised ('' while every ask can land). */
  readonly capacityShortfall?: string;
  /** Dedup key of the OwnerConflict/UnsupportedTarget last raised ('' while kvpa may write). */
  readonly blocked?: string;
}

export const FRESH_MEMORY: PoolMemory = {
  inPanic: false,
  missingSignals: '',
  failedRescale: '',
  targetFound: true,
  recommendedGroups: null,
  drainVictims: '',
  drainUnavailable: '',
};

/** One tick's drain step, as events see it (null: the pool's target does not drain). */
export interface DrainTick {
  readonly phase: DrainPhase;
  readonly reason: string;
  /** Groups out of routing after the step. */
  readonly victims: readonly string[];
  /** Why the pool cannot drain while draining is on, or null. */
  readonly unavailable: string | null;
}

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
  readonly drain?: DrainTick | null;
  /** A scale-up the cluster cannot place in full (src/decide/placement.ts), or null. */
  readonly shortfall?: CapacityShortfall | null;
  /** Why kvpa does not write this pool's target (another owner of the count, an unsupported setup), or null. */
  readonly blocked?: {
    readonly reason: 'OwnerConflict' | 'UnsupportedTarget';
    readonly message: string;
  } | null;
}

/** A message with its numbers masked (ages, counts, versions): the same fault keeps the same key. */
export function stableKey(message: string): string {
  return message.replace(/\d+(\.\d+)?/g, '#');
}

/**
 * The Events a tick raises (transitions) and the warnings it repeats (`repeat: true`: the same key as the
 * last tick's), with the memory for the next tick.
 */
export function poolEvents(
  memory: PoolMemory,
  t: TickOutcome,
): { events: PoolEvent[]; repeats: PoolEvent[]; memory: PoolMemory } {
  const events: PoolEvent[] = [];
  const repeats: PoolEvent[] = [];
  /** A keyed warning: raised when its key is new, repeated while it stays. */
  const warn = (reason: EventReason, message: string, key: string, lastKey: string) => {
    const event = { type: 'Warning', reason, message, key: `${t.pool}|${key}` } as const;
    if (key === lastKey) repeats.push({ ...event, repeat: true });
    else events.push(event);
  };
  const summary = t.decision?.explanation.summary ?? '';
  if (!t.targetFound) {
    warn(
      'TargetNotFound',
      `${t.pool}: scale target not found; holding`,
      'lost',
      memory.targetFound ? '' : 'lost',
    );
    return { events, repeats, memory: { ...memory, targetFound: false } };
  }
  const d = t.decision;
  const unusable = (d?.explanation.signals ?? []).filter((s) => s.state !== 'ok');
  const missingKey = unusable.map((s) => `${s.name}: ${s.state}`).join('; ');
  const missing = unusable.map((s) => `${s.name}: ${s.state}${s.detail ? ` (${s.detail})` : ''}`).join('; ');
  // No decision this tick (the target unreadable) says nothing about the signals: keep the key.
  const missingNow = d === null ? memory.missingSignals : missingKey;
  if (missingKey !== '') {
    warn(
      'MetricsMissing',
      `${t.pool}: ${missing}; holding (no scale-down)`,
      missingKey,
      memory.missingSignals,
    );
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
  const failedKey = t.writeError === null ? '' : stableKey(t.writeError);
  if (t.writeError !== null) {
    warn('FailedRescale', `${t.pool}: ${t.writeError}`, failedKey, memory.failedRescale);
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
  const drain = drainEvents(memory, t.pool, t.drain ?? null);
  events.push(...drain.events);
  repeats.push(...drain.repeats);
  // Keyed by what can land and the check, not by the want: a want that wobbles does not repeat the Event.
  const shortfall = t.shortfall ?? null;
  const shortfallKey = shortfall === null ? '' : `${shortfall.landGroups}|${shortfall.check}`;
  if (shortfall !== null) {
    warn(
      'InsufficientCapacity',
      `${t.pool}: ${shortfall.detail}`,
      shortfallKey,
      memory.capacityShortfall ?? '',
    );
  }
  // Raised once per cause, with its numbers masked, while kvpa keeps away from the target.
  const blocked = t.blocked ?? null;
  const blockedKey = blocked === null ? '' : `${blocked.reason}|${stableKey(blocked.message)}`;
  if (blocked !== null) {
    warn(blocked.reason, `${t.pool}: ${blocked.message}`, blockedKey, memory.blocked ?? '');
  }
  return {
    events,
    repeats,
    memory: {
      blocked: blockedKey,
      inPanic: d?.inPanic ?? memory.inPanic,
      missingSignals: missingNow,
      failedRescale: failedKey,
      targetFound: true,
      recommendedGroups: recommended,
      drainVictims: drain.victims,
      drainUnavailable: drain.unavailable,
      // No decision this tick says nothing about capacity: keep the key.
      capacityShortfall: d === null ? (memory.capacityShortfall ?? '') : shortfallKey,
    },
  };
}

/**
 * A drain's transitions: started (or its victims changed), drained, timed out, cancelled; and once per cause,
 * why a pool that should drain cannot. Waiting and removing ticks raise nothing.
 */
export function drainEvents(
  memory: Pick<PoolMemory, 'drainVictims' | 'drainUnavailable'>,
  pool: string,
  drain: DrainTick | null,
): { events: PoolEvent[]; repeats: PoolEvent[]; victims: string; unavailable: string } {
  const events: PoolEvent[] = [];
  const repeats: PoolEvent[] = [];
  if (drain === null) return { events, repeats, victims: '', unavailable: '' };
  const victims = drain.victims.join(',');
  const say = (type: PoolEvent['type'], reason: EventReason) =>
    events.push({ type, reason, message: `${pool}: ${drain.reason}` });
  switch (drain.phase) {
    case 'draining':
      if (victims !== memory.drainVictims) say('Normal', 'DrainStarted');
      break;
    case 'drained':
      say('Normal', 'Drained');
      break;
    case 'timedOut':
      say('Warning', 'DrainTimedOut');
      break;
    case 'cancelled':
      say('Normal', 'DrainCancelled');
      break;
    default:
      break;
  }
  const unavailableKey = drain.unavailable === null ? '' : stableKey(drain.unavailable);
  if (unavailableKey !== '') {
    const event = {
      type: 'Warning',
      reason: 'DrainUnavailable',
      message: `${pool}: cannot drain before scale-down: ${drain.unavailable}`,
      key: `${pool}|${unavailableKey}`,
    } as const;
    // The same cause again counts on the Event already raised, like every repeating warning.
    if (unavailableKey === memory.drainUnavailable) repeats.push({ ...event, repeat: true });
    else events.push(event);
  }
  return {
    events,
    repeats,
    victims: drain.phase === 'draining' ? victims : '',
    unavailable: unavailableKey,
  };
}
