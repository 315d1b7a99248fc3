/**
 * The one interface every scale target implements. kvpa scales whole replica groups (a leader plus
 * its workers) through the workload's own API and never touches individual pods.
 * Each kind's paths and readiness rules are in its module under kinds/, with their upstream sources.
 */
import type { ScaleTargetRef } from '../api/podautoscaler.ts';
import type { GroupShape } from '../decide/placement.ts';
import type { PendingGroups } from './placement.ts';
import type { DrainView } from './routing.ts';

/** The head (leader) pod of one group: where engine metrics are read. */
export interface HeadPod {
  readonly namespace: string;
  readonly name: string;
  /** Stable identity of the group within the target (e.g. LWS group index, RayCluster name). */
  readonly groupKey: string;
  /** True when the whole group (leader and every worker) is Ready. */
  readonly groupReady: boolean;
  /**
   * True for a group beyond spec (rolling-update surge, or a scale-down leftover). Added so callers can
   * drop such heads from per-group averages: readyGroups excludes them, so their metrics must not count.
   */
  readonly surge: boolean;
  readonly podIP?: string;
  /**
   * The group's other pods, for kinds that list them (LWS workers, Grove clique pods, multi-host Ray and
   * StormService pods): read too when the pool's engine serves from every pod (ranksOn: all).
   */
  readonly members?: readonly GroupMember[];
}

export interface GroupMember {
  readonly name: string;
  readonly podIP?: string;
}

export interface TargetState {
  /** Groups the target's spec asks for. */
  readonly specGroups: number;
  /**
   * Groups whose leader and every worker are Ready, counting only groups that are capacity:
   * surge groups created by a rolling update (index ≥ spec) are excluded.
   */
  readonly readyGroups: number;
  /** Pods per group (1 for Deployment/StatefulSet), or null when the target does not say. */
  readonly groupSize: number | null;
  /** The resourceVersion read with specGroups: the precondition for the next write. */
  readonly resourceVersion: string;
  /**
   * Present for kinds whose victim on scale-down is known (LWS, StatefulSet: the highest index) or chosen by kvpa
   * (KubeRay: workersToDelete; Deployment: not Ready first): the groups in removal order (or for kvpa to rank) and
   * every pod's readiness gate, so kvpa can drain before it lowers the count.
   */
  readonly drain?: DrainView;
  /**
   * Present for kinds whose group shape is known (LWS: its pod templates): one group's pods as the scheduler
   * filters them, and the requested groups not placed yet, so kvpa can check that a scale-up can land.
   */
  readonly placement?: {
    readonly group: GroupShape;
    /** The Kueue LocalQueue the workload is queued in (its kueue.x-k8s.io/queue-name label), if any. */
    readonly kueueQueue?: string;
  } & PendingGroups;
  /** Why kvpa must not write this target now; absent when it may. */
  readonly refusal?: TargetRefusal;
  /**
   * The workload's own bounds on the count, which it clamps any write to without saying so (KubeRay's
   * worker-group minReplicas/maxReplicas): kvpa keeps its decisions inside them.
   */
  readonly workloadBounds?: { readonly minGroups: number; readonly maxGroups: number };
  /**
   * GPUs one group requests, from the pod templates (every pod's GPU request summed); absent for kinds
   * whose templates kvpa does not read. The dry-run ledger counts GPU-hours with it.
   */
  readonly gpusPerGroup?: number;
  /** Field managers other than kvpa that own the count, latest first (from the object's managedFields). */
  readonly countManagers?: readonly string[];
}

/**
 * A target kvpa reads but must not write: another owner resets the count (OwnerConflict), or the
 * workload is set up in a way kvpa cannot scale correctly (UnsupportedTarget). The message names the fix.
 */
export interface TargetRefusal {
  readonly reason: 'OwnerConflict' | 'UnsupportedTarget';
  readonly message: string;
}

export interface ScaleTarget {
  readonly namespace: string;
  readonly ref: ScaleTargetRef;
  /** Reads spec and ready group counts. Throws TargetNotFoundError when the object does not exist. */
  read(): Promise<TargetState>;
  /**
   * Sets the group count in one write, guarded by `resourceVersion`. Throws ConflictError on a 409
   * (someone else wrote since the read: re-read and decide again) and TargetNotFoundError on a 404.
   */
  write(groups: number, resourceVersion: string): Promise<void>;
  /** The head pod of each existing group, with group readiness. */
  heads(): Promise<HeadPod[]>;
  /** Sets kvpa's routing condition on one of the target's pods (kinds that drain). */
  setServing?(podName: string, serving: boolean, message: string): Promise<void>;
  /**
   * Like `write`, and names the pods the workload removes with the lower count, in the same write (kinds whose
   * drain view has `chosenVictims`: a KubeRay worker group's scaleStrategy.workersToDelete).
   */
  writeRemoving?(groups: number, resourceVersion: string, pods: readonly string[]): Promise<void>;
  /**
   * Kinds whose pools are elements of one object (StormService roles, RayCluster worker groups): the object's
   * identity, and one patch that sets this pool's count and others' together, guarded by one resourceVersion.
   */
  readonly jointKey?: string;
  writeJoint?(writes: readonly JointWrite[], resourceVersion: string): Promise<void>;
}

/** One pool's part of a joint write: its count, and the pods to remove with it (as `writeRemoving`). */
export interface JointWrite {
  readonly target: ScaleTarget;
  readonly groups: number;
  readonly removing?: readonly string[];
}

export class TargetNotFoundError extends Error {
  constructor(
    readonly ref: ScaleTargetRef,
    readonly namespace: string,
  ) {
    super(`${ref.kind} ${namespace}/${ref.name} not found`);
  }
}

export class ConflictError extends Error {
  constructor(
    readonly ref: ScaleTargetRef,
    readonly namespace: string,
    detail: string,
  ) {
    super(`${ref.kind} ${namespace}/${ref.name} changed since it was read: ${detail}`);
  }
}
