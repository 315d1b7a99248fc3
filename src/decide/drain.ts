/**
 * Drain before scale-down: the step between a decision that lowers a pool and the write that lowers it.
 *
 * kvpa writes a count and the workload then removes its own victims: LeaderWorkerSet, Grove and Dynamo the
 * highest-index groups, busy or not. Deleting a multi-node group kills its engine, so whatever it had in flight
 * is aborted. The drain therefore
 *   1. names the groups the workload will remove (its removal order, given by the caller per kind; for a KubeRay
 *      worker group, which removes the pods named with the count, kvpa picks them: `chooseVictims`),
 *   2. takes them out of routing (the controller: a readiness-gate condition set False on their pods),
 *   3. writes the lower count once their in-flight requests read 0, or at `timeoutSeconds`,
 *   4. keeps them out of routing until they are gone (or `REMOVAL_GRACE_SECONDS`), never for good.
 * A decision that changes back, a write by someone else or missing data cancels it and restores routing.
 *
 * Pure: `drainStep` takes the time, the counts, the removal order with the victims' in-flight readings and the
 * previous record, and returns the next record, the groups to keep out of routing and the count to write.
 * The controller keeps the record in status (so a restart resumes it); the lab keeps it in memory.
 */
import { groupsToWrite } from './pool-runner.ts';
import type { Decision } from './types.ts';

/** Readings older than this after the victims left routing may predate requests routed just before it. */
export const DRAIN_SETTLE_SECONDS = 5;
/** After the lower count is written, victims stay out of routing at most this long while the workload removes them. */
export const REMOVAL_GRACE_SECONDS = 600;

/** Requests running or waiting on one group's engine, and when they were read (scrape time, seconds). */
export interface InFlightReading {
  readonly requests: number;
  readonly atSeconds: number;
}

/** One group of the pool, as the drain sees it. */
export interface DrainGroup {
  /** The group's stable key within the target (LWS group index, …). */
  readonly key: string;
  /** Whether the group may hold requests (its engine runs: ready, or out of routing but running). */
  readonly serving: boolean;
  /** Requests running or waiting on it, read at `atSeconds`; absent when unknown. */
  readonly inFlight?: InFlightReading;
}

/** A drain in progress (kept in status as `drain`). */
export interface DrainRecord {
  /** The group count when the drain began. */
  readonly fromGroups: number;
  /** The count written once the victims are drained. */
  readonly toGroups: number;
  /** Keys of the groups out of routing, first removed first. */
  readonly victims: readonly string[];
  readonly startedAtSeconds: number;
  readonly deadlineSeconds: number;
  /** When the lower count was written (the victims are being removed); null while draining. */
  readonly writtenAtSeconds: number | null;
}

export interface DrainInput {
  readonly nowSeconds: number;
  /** The target's spec count now. */
  readonly specGroups: number;
  /** The count the pool should have now (`drainWant`). */
  readonly wantGroups: number;
  /**
   * The pool's groups in the order the workload removes them, first removed first; null when the kind's
   * victims cannot be predicted.
   */
  readonly removalOrder: readonly DrainGroup[] | null;
  /** Why the pool cannot be drained (no readiness gate on its pods, …); undefined when it can. */
  readonly unavailable?: string;
  /** 0 turns draining off. */
  readonly timeoutSeconds: number;
}

export type DrainPhase =
  /** Nothing to drain: the count (if any) is written as decided. */
  | 'none'
  /** A scale-down written at once, without draining (the reason says why). */
  | 'direct'
  /** Victims out of routing, waiting for their requests. */
  | 'draining'
  /** Victims drained: the lower count is written now. */
  | 'drained'
  /** The timeout passed with requests left: the lower count is written now. */
  | 'timedOut'
  /** The drain ended without a write; routing is restored. */
  | 'cancelled'
  /** The lower count is written; the victims stay out of routing until the workload removes them. */
  | 'removing';

export interface DrainOutcome {
  readonly record: DrainRecord | null;
  /** The count to write now; undefined writes nothing. */
  readonly write: number | undefined;
  /** Keys of the groups to keep out of routing; every other group is routed. */
  readonly outOfRouting: readonly string[];
  readonly phase: DrainPhase;
  readonly reason: string;
  /** Requests still in flight on the victims (known readings), and victims without a fresh reading. */
  readonly inFlightLeft?: number;
  readonly unreadVictims?: number;
}

/**
 * The count a decision asks the pool to have, made safe for a scale-down: an invalid decision (no usable
 * signal) may raise the pool but never lower it, so it holds at least the spec.
 */
export function drainWant(decision: Decision, specGroups: number): number {
  return groupsToWrite(decision, specGroups) ?? specGroups;
}

/**
 * The requested count the decider should see: during a drain the victims are already leaving, so it decides
 * from the count the drain will write (else it would read the victims as starting groups and hold).
 */
export function requestedForDecision(record: DrainRecord | null, specGroups: number): number {
  return record !== null && record.writtenAtSeconds === null && record.fromGroups === specGroups
    ? record.toGroups
    : specGroups;
}

/** One drain step: see the header for the rules, which apply in the order written below. */
export function drainStep(input: DrainInput, previous: DrainRecord | null): DrainOutcome {
  if (previous !== null && previous.writtenAtSeconds !== null) return removing(input, previous);
  if (previous !== null) return draining(input, previous);
  return begin(input);
}

/** No drain yet: a scale-down either starts one or, when draining is impossible or needless, is written at once. */
function begin(input: DrainInput): DrainOutcome {
  const { specGroups: spec, wantGroups: want } = input;
  if (want >= spec) {
    return {
      record: null,
      write: want > spec ? want : undefined,
      outOfRouting: [],
      phase: 'none',
      reason: want > spec ? `scale-up to ${want}: nothing to drain` : 'no scale-down',
    };
  }
  const direct = (reason: string): DrainOutcome => ({
    record: null,
    write: want,
    outOfRouting: [],
    phase: 'direct',
    reason: `scale-down ${spec} → ${want} without drain: ${reason}`,
  });
  if (input.timeoutSeconds <= 0) return direct('draining is off (drainTimeoutSeconds 0)');
  if (input.unavailable !== undefined) return direct(input.unavailable);
  if (input.removalOrder === null) return direct('the workload does not say which groups it removes');
  const victims = input.removalOrder.slice(0, spec - want);
  if (!victims.some((g) => g.serving)) {
    return direct(`the ${victims.length} group(s) it removes are not serving yet: nothing to drain`);
  }
  const record: DrainRecord = {
    fromGroups: spec,
    toGroups: want,
    victims: victims.map((g) => g.key),
    startedAtSeconds: input.nowSeconds,
    deadlineSeconds: input.nowSeconds + input.timeoutSeconds,
    writtenAtSeconds: null,
  };
  return {
    record,
    write: undefined,
    outOfRouting: record.victims,
    phase: 'draining',
    reason: `draining ${record.victims.join(', ')} before ${spec} → ${want}: out of routing until their requests finish or ${input.timeoutSeconds}s pass`,
  };
}

/** A drain in progress: cancel, resize, wait, or write when the victims are empty or the deadline passed. */
function draining(input: DrainInput, rec: DrainRecord): DrainOutcome {
  const { nowSeconds: now, specGroups: spec, wantGroups: want } = input;
  const cancel = (reason: string, write?: number): DrainOutcome => ({
    record: null,
    write,
    outOfRouting: [],
    phase: 'cancelled',
    reason: `drain of ${rec.victims.join(', ')} cancelled: ${reason}; routing restored`,
  });
  if (spec !== rec.fromGroups) {
    return cancel(`the group count changed from ${rec.fromGroups} to ${spec} by another writer`);
  }
  if (want >= spec) {
    return cancel(`the decision wants ${want} again`, want > spec ? want : undefined);
  }
  if (input.timeoutSeconds <= 0) return cancel('draining is off (drainTimeoutSeconds 0)', want);
  if (input.unavailable !== undefined) return cancel(input.unavailable);
  if (input.removalOrder === null) return cancel('the workload no longer says which groups it removes');
  const order = input.removalOrder;
  const victims = order.slice(0, spec - want);
  const keys = victims.map((g) => g.key);
  const added = keys.filter((k) => !rec.victims.includes(k));
  const record: DrainRecord = {
    ...rec,
    toGroups: want,
    victims: keys,
    // A group newly out of routing gets the whole timeout; a shrunk drain keeps its deadline.
    deadlineSeconds:
      added.length > 0 ? Math.max(rec.deadlineSeconds, now + input.timeoutSeconds) : rec.deadlineSeconds,
  };
  // Readings count once they postdate the cut-over plus a settle time (for the newly added, their own).
  const freshAfter = (added.length > 0 ? now : rec.startedAtSeconds) + DRAIN_SETTLE_SECONDS;
  let left = 0;
  let unread = 0;
  for (const g of victims) {
    if (!g.serving) continue;
    const reading = g.inFlight;
    if (reading === undefined || reading.atSeconds < freshAfter) unread++;
    else left += reading.requests;
  }
  const counts = { inFlightLeft: left, unreadVictims: unread };
  if (left === 0 && unread === 0) {
    return {
      record: { ...record, writtenAtSeconds: now },
      write: want,
      outOfRouting: keys,
      phase: 'drained',
      reason: `${keys.join(', ')} drained after ${Math.round(now - rec.startedAtSeconds)}s: writing ${spec} → ${want}`,
      ...counts,
    };
  }
  if (now >= record.deadlineSeconds) {
    return {
      record: { ...record, writtenAtSeconds: now },
      write: want,
      outOfRouting: keys,
      phase: 'timedOut',
      reason: `drain timeout after ${Math.round(now - rec.startedAtSeconds)}s with ${left} request(s) in flight${unread > 0 ? ` and ${unread} group(s) unread` : ''}: writing ${spec} → ${want}`,
      ...counts,
    };
  }
  return {
    record,
    write: undefined,
    outOfRouting: keys,
    phase: 'draining',
    reason: `draining ${keys.join(', ')} for ${spec} → ${want}: ${left} request(s) in flight${unread > 0 ? `, ${unread} group(s) not read since the cut-over` : ''}, deadline in ${Math.max(0, Math.round(record.deadlineSeconds - now))}s`,
    ...counts,
  };
}

/** The count is written: keep the victims out of routing until the workload has removed them. */
function removing(input: DrainInput, rec: DrainRecord): DrainOutcome {
  const { nowSeconds: now, specGroups: spec, wantGroups: want } = input;
  const done = (reason: string): DrainOutcome => ({
    record: null,
    write: want > spec ? want : undefined,
    outOfRouting: [],
    phase: 'none',
    reason,
  });
  if (want > spec)
    return done(`scale-up to ${want}: the drain record of ${rec.victims.join(', ')} is closed`);
  if (spec !== rec.toGroups) return done(`the group count is ${spec}, not the drain's ${rec.toGroups}`);
  const present = new Set((input.removalOrder ?? []).map((g) => g.key));
  if (input.removalOrder !== null && !rec.victims.some((k) => present.has(k))) {
    return done(`${rec.victims.join(', ')} removed`);
  }
  if (now >= (rec.writtenAtSeconds as number) + REMOVAL_GRACE_SECONDS) {
    return done(
      `${rec.victims.join(', ')} still present ${REMOVAL_GRACE_SECONDS}s after the write: routing restored`,
    );
  }
  return {
    record: rec,
    write: undefined,
    outOfRouting: rec.victims,
    phase: 'removing',
    reason: `waiting for the workload to remove ${rec.victims.join(', ')}`,
  };
}

/**
 * The removal order of a workload that removes the groups kvpa names (KubeRay's `workersToDelete`): the victims of
 * the drain in progress first, as recorded (a drain never swaps its victims for others), then groups that hold no
 * request (not serving: starting, or not created), then serving groups by their in-flight requests, fewest first,
 * and serving groups without a reading last. Ties keep the given order.
 */
export function chooseVictims(groups: readonly DrainGroup[], keep: readonly string[]): DrainGroup[] {
  const byKey = new Map(groups.map((g) => [g.key, g]));
  const kept = keep.flatMap((k) => {
    const g = byKey.get(k);
    return g === undefined ? [] : [g];
  });
  const keptKeys = new Set(kept.map((g) => g.key));
  const rank = (g: DrainGroup) => (!g.serving ? -1 : (g.inFlight?.requests ?? Number.POSITIVE_INFINITY));
  const rest = groups
    .filter((g) => !keptKeys.has(g.key))
    .map((g, i) => ({ g, i }))
    .sort((a, b) => rank(a.g) - rank(b.g) || a.i - b.i)
    .map(({ g }) => g);
  return [...kept, ...rest];
}
