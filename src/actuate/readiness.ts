/**
 * Pod and group readiness shared by every kind. Each kind's own group rule lives in its module under
 * kinds/, pure beside its adapter, following that kind's controller.
 *
 * Vocabulary: a "group" is one replica of the target (leader + workers). A group is capacity only when
 * it is ready AND not a surge/leftover group (index ≥ spec during a rollout or a scale-down).
 */
import type { V1Pod } from '@kubernetes/client-node';

/** One group as observed: its key, readiness, whether it counts as capacity, and its head pod if any. */
export interface GroupView {
  readonly key: string;
  readonly ready: boolean;
  /** True for groups beyond spec (rolling-update surge, or not yet removed after a scale-down). */
  readonly surge: boolean;
  readonly head?: V1Pod | undefined;
  /** The group's other pods (workers), for kinds that list them; absent where the kind does not. */
  readonly members?: readonly V1Pod[];
}

export interface Condition {
  readonly type?: string;
  readonly status?: string;
}

/**
 * Ready means Running + condition Ready=True + every readiness gate's condition True + not being deleted
 * (a terminating pod serves no new work). The kubelet folds the gates into Ready itself
 * (kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-status); checking them here too
 * keeps a group kvpa has just taken out of routing from counting as capacity before the kubelet's next sync.
 */
export function isPodReady(pod: V1Pod): boolean {
  if (!isPodRunning(pod)) return false;
  const conditions = pod.status?.conditions;
  if (!conditionTrue(conditions, 'Ready')) return false;
  return (pod.spec?.readinessGates ?? []).every((g) => conditionTrue(conditions, g.conditionType));
}

/**
 * The pod's containers run (ContainersReady=True, phase Running, not being deleted), routed or not: a pod out
 * of routing by a readiness gate still holds the requests it accepted before.
 */
export function isPodRunning(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (pod.status?.phase !== 'Running') return false;
  return (
    conditionTrue(pod.status.conditions, 'ContainersReady') || conditionTrue(pod.status.conditions, 'Ready')
  );
}

export function conditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
}

export function podLabel(pod: V1Pod, key: string): string | undefined {
  return pod.metadata?.labels?.[key];
}

export function intLabel(pod: V1Pod, key: string): number | undefined {
  const value = podLabel(pod, key);
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** Ready groups that are capacity. Index-less kinds can't tell surge apart, so the count is capped at spec. */
export function capacityGroups(groups: readonly GroupView[], specGroups: number): number {
  const ready = groups.filter((g) => g.ready && !g.surge).length;
  return Math.min(ready, specGroups);
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
