/**
 * The controller's drain shell: reads what `drainStep` (src/decide/drain.ts) needs, runs it, and applies its
 * routing through kvpa's readiness gate (src/actuate/routing.ts). Also the two-way mapping between a drain
 * record and the pool status that carries it across restarts.
 *
 * Every gated pod is set True unless its group is a victim, on every decision, in both modes: a new pod of a
 * gated template is not Ready until kvpa says so, and a pod left False by a crashed drain is restored.
 */
import type { KubeClients } from '../actuate/kube.ts';
import {
  type DrainView,
  drainingMessage,
  gateProblem,
  listOutOfRouting,
  orphanedPods,
  type RoutingOwner,
  routingPatches,
  setServing,
} from '../actuate/routing.ts';
import type { ScaleTarget, TargetState } from '../actuate/types.ts';
import type { PodAutoscalerStatus } from '../api/podautoscaler.ts';
import {
  chooseVictims,
  type DrainGroup,
  type DrainOutcome,
  type DrainRecord,
  drainStep,
  drainWant,
} from '../decide/drain.ts';
import type { Decision } from '../decide/types.ts';
import type { PoolSignalRequest, SignalSource } from './signals.ts';

type PoolStatus = NonNullable<PodAutoscalerStatus['pools']>[number];
export type DrainStatus = NonNullable<PoolStatus['drain']>;

/** Pod condition writes per pool and decision: a huge pool converges over a few decisions, never stalls one. */
export const MAX_ROUTING_PATCHES = 64;

export interface DrainRun {
  readonly outcome: DrainOutcome;
  /** Why this pool cannot drain (shown in status while draining is on), or null. */
  readonly unavailable: string | null;
  /** Routing writes that failed (the message of the first), or null. */
  readonly routingError: string | null;
  /**
   * For a target whose drain chooses its victims: the pods to name with the lower count `outcome.write`
   * (`ScaleTarget.writeRemoving`), every pod of every victim group. Null when the workload picks, or nothing
   * is lowered.
   */
  readonly removePods: readonly string[] | null;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/** The record as pool status shows it; null when there is none. */
export function drainStatus(record: DrainRecord | null, outcome: DrainOutcome | null): DrainStatus | null {
  if (record === null) return null;
  return {
    phase: record.writtenAtSeconds === null ? 'Draining' : 'Removing',
    victims: [...record.victims],
    fromReplicas: record.fromGroups,
    toReplicas: record.toGroups,
    startedAt: iso(record.startedAtSeconds),
    deadline: iso(record.deadlineSeconds),
    ...(record.writtenAtSeconds !== null ? { writtenAt: iso(record.writtenAtSeconds) } : {}),
    ...(outcome?.inFlightLeft !== undefined ? { inFlightRequests: outcome.inFlightLeft } : {}),
    ...(outcome?.unreadVictims !== undefined ? { unreadGroups: outcome.unreadVictims } : {}),
  };
}

/** The record a restarted controller resumes from its last status; null when absent or unreadable. */
export function drainRecordOf(status: DrainStatus | undefined): DrainRecord | null {
  if (status === undefined) return null;
  const seconds = (t: string | undefined) => (t === undefined ? Number.NaN : Date.parse(t) / 1000);
  const started = seconds(status.startedAt);
  const deadline = seconds(status.deadline);
  const written = status.writtenAt === undefined ? null : seconds(status.writtenAt);
  if (
    !Number.isFinite(started) ||
    !Number.isFinite(deadline) ||
    (written !== null && !Number.isFinite(written))
  )
    return null;
  return {
    fromGroups: status.fromReplicas,
    toGroups: status.toReplicas,
    victims: status.victims,
    startedAtSeconds: started,
    deadlineSeconds: deadline,
    writtenAtSeconds: written,
  };
}

export interface DrainContext {
  readonly mode: 'Apply' | 'DryRun';
  readonly nowSeconds: number;
  readonly state: TargetState & { readonly drain: DrainView };
  readonly decision: Decision;
  readonly previous: DrainRecord | null;
  readonly timeoutSeconds: number;
  readonly target: ScaleTarget;
  /** Named in the message of every condition set False, so a sweep can tell a pod whose pool is gone. */
  readonly owner: RoutingOwner;
  readonly signals: SignalSource;
  readonly request: PoolSignalRequest;
  readonly onError: (what: string, err: unknown) => void;
}

/** One drain step for a pool whose target knows its victims; returns the outcome (the count to write). */
export async function runDrain(c: DrainContext): Promise<DrainRun> {
  const view = c.state.drain;
  const spec = c.state.specGroups;
  // DryRun never takes a group out of routing: it only recommends.
  const timeout = c.mode === 'Apply' ? c.timeoutSeconds : 0;
  const unavailable =
    gateProblem(view) ??
    (c.target.setServing === undefined ? `${c.target.ref.kind} cannot set pod conditions` : undefined);
  const decided = drainWant(c.decision, spec);
  // A workload that removes only `maxVictims` drained groups at a time is drained in steps of that many.
  const want =
    view.maxVictims !== undefined && timeout > 0 && unavailable === undefined
      ? Math.max(decided, spec - view.maxVictims)
      : decided;
  let order: DrainGroup[] = view.order.map((g) => ({ key: g.key, serving: g.serving }));
  const waiting = c.previous !== null && c.previous.writtenAtSeconds === null;
  const chosen = view.chosenVictims === true;
  // The victims' readings while a drain waits; when kvpa chooses the victims, every group's, to rank them.
  const read = chosen
    ? c.mode === 'Apply' && want < spec
    : waiting && timeout > 0 && unavailable === undefined && want < spec;
  if (read) {
    const groups = chosen ? view.order : view.order.slice(0, spec - want);
    const heads = groups.flatMap((g) => (g.head ? [g.head] : []));
    let readings = new Map<string, { requests: number; atSeconds: number }>();
    try {
      readings = (await c.signals.inFlight?.(c.request, heads, c.nowSeconds)) ?? readings;
    } catch (err) {
      c.onError(`reading in-flight requests of the drain ${chosen ? 'candidates' : 'victims'}`, err);
    }
    order = order.map((g) => {
      const r = readings.get(g.key);
      return r === undefined ? g : { ...g, inFlight: r };
    });
  }
  if (chosen) order = chooseVictims(order, c.previous?.victims ?? []);
  const outcome =
    // Off or DryRun cancels a drain still waiting; one already written finishes its removal in drainStep.
    timeout <= 0 && waiting && c.previous !== null
      ? cancelled(c.previous, c.mode === 'DryRun' ? 'the pool is in DryRun' : 'draining is off')
      : drainStep(
          {
            nowSeconds: c.nowSeconds,
            specGroups: spec,
            wantGroups: want,
            removalOrder: order,
            timeoutSeconds: timeout,
            ...(unavailable !== undefined ? { unavailable } : {}),
          },
          c.previous,
        );
  const routingError = await applyRouting(c, view, outcome);
  return {
    outcome,
    unavailable: timeout > 0 && unavailable !== undefined ? unavailable : null,
    routingError,
    removePods: chosen ? podsToRemove(view, order, outcome, spec) : null,
  };
}

/**
 * The pods a lower count must name when kvpa chooses the victims: the drained groups', or for a write without a
 * drain (draining off or unavailable, victims not serving) the first of kvpa's ranking.
 */
function podsToRemove(
  view: DrainView,
  order: readonly DrainGroup[],
  outcome: DrainOutcome,
  spec: number,
): readonly string[] | null {
  const write = outcome.write;
  if (write === undefined || write >= spec) return null;
  const victims =
    outcome.phase === 'drained' || outcome.phase === 'timedOut'
      ? outcome.outOfRouting
      : order.slice(0, spec - write).map((g) => g.key);
  const keys = new Set(victims);
  return view.pods.filter((p) => keys.has(p.groupKey)).map((p) => p.name);
}

function cancelled(record: DrainRecord, reason: string): DrainOutcome {
  return {
    record: null,
    write: undefined,
    outOfRouting: [],
    phase: 'cancelled',
    reason: `drain of ${record.victims.join(', ')} cancelled: ${reason}; routing restored`,
  };
}

/** Makes the gated pods' conditions match the outcome; returns the first failure, if any. */
async function applyRouting(c: DrainContext, view: DrainView, outcome: DrainOutcome): Promise<string | null> {
  const setServing = c.target.setServing?.bind(c.target);
  if (setServing === undefined) return null;
  const patches = routingPatches(view.pods, new Set(outcome.outOfRouting));
  let failure: string | null = null;
  for (const patch of patches.slice(0, MAX_ROUTING_PATCHES)) {
    try {
      await setServing(
        patch.name,
        patch.serving,
        patch.serving ? 'kvpa routes this group' : drainingMessage(c.owner, outcome.reason),
      );
    } catch (err) {
      failure ??= err instanceof Error ? err.message : String(err);
      c.onError(`setting routing on pod ${patch.name}`, err);
    }
  }
  return failure;
}

/**
 * Routes again every pod a gone pool left out of routing: its PodAutoscaler deleted, invalid now, or the pool
 * removed from the spec or pointed at another target mid-drain. `live` holds the `routingOwnerKey` of every pool
 * of every valid PodAutoscaler; their pods are theirs to route. Returns the pods routed again and the first failure.
 *
 * A sweep rather than a finalizer on the PodAutoscaler: a finalizer would have kvpa write users' objects and
 * would hold a PodAutoscaler (and its namespace) in deletion whenever kvpa is not running, and it covers only
 * deletion. The sweep also covers a pool that left the spec, a PodAutoscaler that turned invalid and one deleted
 * while no controller ran, with the access kvpa already has (list pods, patch pods/status): each pod it sets
 * False names its pool (`drainingMessage`).
 */
export async function sweepRouting(
  clients: KubeClients,
  namespace: string | undefined,
  live: ReadonlySet<string>,
): Promise<{ restored: string[]; error: string | null }> {
  const orphans = orphanedPods(await listOutOfRouting(clients, namespace), live);
  const restored: string[] = [];
  let error: string | null = null;
  for (const pod of orphans) {
    const why =
      pod.owner === undefined
        ? 'no pool'
        : `pool ${pod.owner.pool} of PodAutoscaler ${pod.owner.podAutoscaler}`;
    try {
      await setServing(
        clients,
        pod.namespace,
        pod.name,
        true,
        `kvpa routes this group: ${why} no longer drains it`,
      );
      restored.push(`${pod.namespace}/${pod.name}`);
    } catch (err) {
      error ??= err instanceof Error ? err.message : String(err);
    }
  }
  return { restored, error };
}
