/**
 * KubeRay RayCluster worker group (ray-project/kuberay): the count is spec.workerGroupSpecs[groupName]
 * .replicas, each replica numOfHosts pods; there is no /scale, so one list element is patched.
 *
 * Lowered alone, the count loses arbitrary pods (with in-tree autoscaling off KubeRay deletes the first excess
 * pods it lists, or any complete multi-host replica). But KubeRay always deletes the pods named in the group's
 * scaleStrategy.workersToDelete, and a named pod of a multi-host replica takes its whole replica, before it
 * compares the count with the pods left (ray-project/kuberay ray-operator/controllers/ray/raycluster_controller.go,
 * reconcilePods and reconcileMultiHostWorkerGroup). So kvpa drains a worker group by choosing the victims itself
 * and writing the lower replicas with workersToDelete naming every pod of theirs, in one patch. KubeRay empties
 * the list only in memory, never in the object (the Ray autoscaler rewrites it itself); a name left there is of a
 * pod already gone (worker pods get generated names), and kvpa's next such write replaces the list.
 *
 * A replica is numOfHosts pods built from the group's template (raycluster_controller.go, buildWorkerPod), so
 * the capacity check places numOfHosts such pods as one gang; the RayCluster's kueue.x-k8s.io/queue-name label
 * names its Kueue LocalQueue (https://kueue.sigs.k8s.io/docs/tasks/run/rayclusters/).
 */
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import type { GroupShape } from '../../decide/placement.ts';
import { type Gvr, type JsonPatchOp, type KubeClients, listPods, selectorOf } from '../kube.ts';
import {
  gpuResourceOf,
  groupGpus,
  KUEUE_QUEUE_LABEL,
  podShapeOf,
  unindexedPendingGroups,
} from '../placement.ts';
import { capacityGroups, type GroupView, intLabel, isPodReady, podLabel } from '../readiness.ts';
import { chosenVictimsView, type DrainView, setServing } from '../routing.ts';
import type { HeadPod, TargetRefusal, TargetState } from '../types.ts';
import { headsOf, type KindModule, ListElementTarget, managersOf, type ObjectMeta } from './base.ts';

export const RAY_LABELS = {
  cluster: 'ray.io/cluster',
  nodeType: 'ray.io/node-type',
  group: 'ray.io/group',
  replicaName: 'ray.io/worker-group-replica-name',
  hostIndex: 'ray.io/replica-host-index',
} as const;

/**
 * Worker-group replicas from pods. RayCluster status only has cluster-wide pod counts, so we count
 * pods labelled ray.io/group=<g>: with numOfHosts 1 each pod is a group; with numOfHosts > 1 pods are
 * grouped by ray.io/worker-group-replica-name and a replica is ready iff all numOfHosts hosts are Ready.
 * Head of a multi-host replica = host index 0 (the lowest-named pod if the index label is missing).
 */
export function rayWorkerGroups(numOfHosts: number, pods: readonly V1Pod[]): GroupView[] {
  if (numOfHosts <= 1) {
    return pods.map((pod) => ({
      key: pod.metadata?.name ?? '',
      ready: isPodReady(pod),
      surge: false,
      head: pod,
      members: [],
    }));
  }
  const byReplica = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const replica = podLabel(pod, RAY_LABELS.replicaName);
    if (replica === undefined) continue; // not a multi-host pod: can't be placed in a group
    byReplica.set(replica, [...(byReplica.get(replica) ?? []), pod]);
  }
  return [...byReplica].map(([replica, members]) => {
    const sorted = [...members].sort(
      (a, b) =>
        (intLabel(a, RAY_LABELS.hostIndex) ?? Number.MAX_SAFE_INTEGER) -
          (intLabel(b, RAY_LABELS.hostIndex) ?? Number.MAX_SAFE_INTEGER) ||
        (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
    );
    const readyHosts = members.filter(isPodReady).length;
    return {
      key: replica,
      ready: readyHosts === numOfHosts,
      surge: false,
      head: sorted[0],
      members: sorted.slice(1),
    };
  });
}

/**
 * A worker group's drain view: kvpa names the victims (workersToDelete), so every group comes with all its pods,
 * and the groups `replicas` counts that no pod stands for yet are dropped first, naming nothing.
 */
export function rayDrainView(
  namespace: string,
  groupName: string,
  specGroups: number,
  groups: readonly GroupView[],
): DrainView {
  return chosenVictimsView(
    namespace,
    groups.map((g) => ({ key: g.key, head: g.head, members: g.members ?? [] })),
    Math.max(0, specGroups - groups.length),
    `spec.workerGroupSpecs[groupName=${groupName}].template.spec of the RayCluster`,
  );
}

/**
 * The JSON patch ops that name `pods` in a worker group's scaleStrategy.workersToDelete (raycluster_types.go,
 * ScaleStrategy), replacing any list there; `element` is the group as read, `elementPath` its JSON pointer.
 */
export function workersToDeleteOps(
  elementPath: string,
  element: Readonly<Record<string, unknown>>,
  pods: readonly string[],
): JsonPatchOp[] {
  const strategy = element.scaleStrategy;
  return strategy !== null && typeof strategy === 'object'
    ? [{ op: 'add', path: `${elementPath}/scaleStrategy/workersToDelete`, value: [...pods] }]
    : [{ op: 'add', path: `${elementPath}/scaleStrategy`, value: { workersToDelete: [...pods] } }];
}

export interface WorkerGroupSpecLike {
  groupName?: string;
  replicas?: number;
  minReplicas?: number;
  maxReplicas?: number;
  numOfHosts?: number;
  suspend?: boolean;
  template?: { spec?: V1PodSpec };
}

/** A KubeRay RayClusterSpec as far as its pods go (raycluster_types.go). */
export interface RayClusterSpecLike {
  headGroupSpec?: { template?: { spec?: V1PodSpec } };
  workerGroupSpecs?: WorkerGroupSpecLike[];
}

/**
 * Pods in one group beyond which the shape is not built: replicas or numOfHosts near the int32 limit are a
 * spec error, not a group any cluster places.
 */
export const MAX_GROUP_PODS = 10_000;

function requireModelled(pods: number, where: string): void {
  if (pods > MAX_GROUP_PODS) {
    throw new Error(
      `${where} makes ${pods} pods in one group, more than the ${MAX_GROUP_PODS} kvpa checks capacity for; lower it`,
    );
  }
}

/**
 * One worker-group replica as the scheduler sees it: numOfHosts pods of the group's template; undefined without
 * a template. `where` names the group in an error.
 */
export function rayWorkerGroupShape(group: WorkerGroupSpecLike, where: string): GroupShape | undefined {
  const spec = group.template?.spec;
  if (spec === undefined) return undefined;
  const hosts = Math.max(1, group.numOfHosts ?? 1);
  requireModelled(hosts, `${where}.numOfHosts`);
  const gpuResource = gpuResourceOf([spec]);
  return { gpuResource, pods: Array.from({ length: hosts }, () => podShapeOf(spec, gpuResource)) };
}

/**
 * Worker pods KubeRay keeps for a group: replicas clamped to [minReplicas, maxReplicas], times numOfHosts, and
 * none while the group is suspended (GetWorkerGroupDesiredReplicas, ray-operator/controllers/ray/utils/util.go).
 */
export function desiredWorkerPods(group: WorkerGroupSpecLike): number {
  if (group.suspend === true) return 0;
  const min = group.minReplicas ?? 0;
  const max = group.maxReplicas ?? 2_147_483_647;
  const replicas = group.replicas === undefined || group.replicas < min ? min : Math.min(group.replicas, max);
  return Math.max(0, replicas) * Math.max(1, group.numOfHosts ?? 1);
}

/**
 * A whole RayCluster as one group (an AIBrix fleet's unit): its head pod and every worker group's desired pods,
 * each from its own template. `where` names the spec in an error.
 */
export function rayClusterShape(spec: RayClusterSpecLike | undefined, where: string): GroupShape {
  const head = spec?.headGroupSpec?.template?.spec;
  const workers = spec?.workerGroupSpecs ?? [];
  const counts = workers.map(desiredWorkerPods);
  requireModelled(
    1 + counts.reduce((sum, n) => sum + n, 0),
    `${where}.workerGroupSpecs (replicas × numOfHosts, plus the head)`,
  );
  const gpuResource = gpuResourceOf([head, ...workers.map((w) => w.template?.spec)]);
  const pods = [podShapeOf(head, gpuResource)];
  for (const [i, w] of workers.entries()) {
    const shape = podShapeOf(w.template?.spec, gpuResource);
    for (let n = 0; n < (counts[i] ?? 0); n++) pods.push(shape);
  }
  return { gpuResource, pods };
}

interface RayClusterObj {
  metadata?: ObjectMeta;
  spec?: {
    enableInTreeAutoscaling?: boolean;
    workerGroupSpecs?: (WorkerGroupSpecLike & Record<string, unknown>)[];
  };
}

/** A worker group's pending replicas, from its groups' pods (see unindexedPendingGroups). */
export function rayPendingGroups(specGroups: number, numOfHosts: number, groups: readonly GroupView[]) {
  return unindexedPendingGroups(
    specGroups,
    groups.map((g) => ({
      size: numOfHosts,
      pods: [...(g.head !== undefined ? [g.head] : []), ...(g.members ?? [])],
    })),
  );
}

/**
 * What KubeRay's setup forbids: with enableInTreeAutoscaling the Ray autoscaler owns every worker
 * group's count; a multi-host group (numOfHosts > 1) whose pods lack the replica label cannot be judged
 * per replica (the labels come with the RayMultiHostIndexing gate: alpha and off in KubeRay 1.5, beta
 * and on from 1.6; ray-project/kuberay ray-operator/pkg/features/features.go).
 */
export function rayClusterRefusal(
  cluster: string,
  inTreeAutoscaling: boolean,
  numOfHosts: number,
  pods: readonly V1Pod[],
): TargetRefusal | undefined {
  if (inTreeAutoscaling) {
    return {
      reason: 'OwnerConflict',
      message:
        `RayCluster ${cluster} sets spec.enableInTreeAutoscaling: true, so the Ray autoscaler owns the worker ` +
        'count; set it to false (or remove it) for kvpa to scale this group',
    };
  }
  if (numOfHosts > 1 && pods.some((p) => podLabel(p, RAY_LABELS.replicaName) === undefined)) {
    return {
      reason: 'UnsupportedTarget',
      message:
        `RayCluster ${cluster}: the worker group has numOfHosts ${numOfHosts} but its pods carry no ` +
        `${RAY_LABELS.replicaName} label, so no replica can be judged ready; use KubeRay ≥ 1.6 or enable ` +
        'its RayMultiHostIndexing feature gate',
    };
  }
  return undefined;
}

/**
 * KubeRay clamps a worker group's count to [minReplicas, maxReplicas] without a word
 * (GetWorkerGroupDesiredReplicas, ray-operator/controllers/ray/utils/util.go): kvpa keeps inside them.
 * minReplicas defaults to 0 and maxReplicas to 2147483647 (raycluster_types.go).
 */
export function workerGroupBounds(group: WorkerGroupSpecLike | undefined): {
  minGroups: number;
  maxGroups: number;
} {
  const minGroups = group?.minReplicas ?? 0;
  const maxGroups = group?.maxReplicas ?? 2_147_483_647;
  return { minGroups, maxGroups: Math.max(minGroups, maxGroups) };
}

/**
 * A KubeRay worker group: spec.workerGroupSpecs[groupName].replicas counts replicas of numOfHosts pods.
 * RayCluster status has only cluster-wide pod counts, so readiness is counted from pods (rayWorkerGroups).
 */
export class RayClusterWorkerGroupTarget extends ListElementTarget<RayClusterObj> {
  constructor(clients: KubeClients, namespace: string, ref: ScaleTargetRef, gvr: Gvr) {
    if (!ref.workerGroupName) {
      throw new Error(`scaleTargetRef of RayCluster ${namespace}/${ref.name} needs workerGroupName`);
    }
    super(clients, namespace, ref, gvr, '/spec/workerGroupSpecs', 'groupName', ref.workerGroupName);
  }

  protected elements(obj: RayClusterObj) {
    return obj.spec?.workerGroupSpecs;
  }

  private async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const { obj, index, resourceVersion } = await this.getWithIndex();
    const group = obj.spec?.workerGroupSpecs?.[index];
    const specGroups = group?.replicas ?? 0;
    const numOfHosts = group?.numOfHosts ?? 1;
    const pods = await listPods(
      this.clients,
      this.namespace,
      selectorOf({
        [RAY_LABELS.cluster]: this.ref.name,
        [RAY_LABELS.nodeType]: 'worker',
        [RAY_LABELS.group]: this.elementName,
      }),
    );
    const groups = rayWorkerGroups(numOfHosts, pods);
    const refusal = rayClusterRefusal(
      this.ref.name,
      obj.spec?.enableInTreeAutoscaling === true,
      numOfHosts,
      pods,
    );
    const where = `RayCluster ${this.namespace}/${this.ref.name} spec.workerGroupSpecs[groupName=${this.elementName}]`;
    const shape = group === undefined ? undefined : rayWorkerGroupShape(group, where);
    const queue = obj.metadata?.labels?.[KUEUE_QUEUE_LABEL];
    return {
      state: {
        specGroups,
        readyGroups: capacityGroups(groups, specGroups),
        groupSize: numOfHosts,
        ...(shape !== undefined
          ? {
              gpusPerGroup: groupGpus(shape),
              placement: {
                group: shape,
                ...(queue !== undefined ? { kueueQueue: queue } : {}),
                ...rayPendingGroups(specGroups, numOfHosts, groups),
              },
            }
          : {}),
        resourceVersion,
        workloadBounds: workerGroupBounds(group),
        countManagers: managersOf(obj.metadata, ['f:spec', 'f:workerGroupSpecs']),
        drain: rayDrainView(this.namespace, this.elementName, specGroups, groups),
        ...(refusal !== undefined ? { refusal } : {}),
      },
      groups,
    };
  }

  async read(): Promise<TargetState> {
    return (await this.observe()).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe()).groups);
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    await setServing(this.clients, this.namespace, podName, serving, message);
  }

  /** The lower replicas and workersToDelete naming `pods`, in one JSON patch guarded as every write here. */
  async writeRemoving(groups: number, resourceVersion: string, pods: readonly string[]): Promise<void> {
    await this.writeJoint([{ target: this, groups, removing: pods }], resourceVersion);
  }

  protected override removalOps(
    elementPath: string,
    element: Readonly<Record<string, unknown>>,
    pods: readonly string[],
  ): JsonPatchOp[] {
    return workersToDeleteOps(elementPath, element, pods);
  }
}

export const rayClusterWorkerGroup: KindModule = {
  kind: 'RayCluster',
  plural: 'rayclusters',
  exampleVersion: 'v1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new RayClusterWorkerGroupTarget(clients, namespace, ref, gvr),
};
