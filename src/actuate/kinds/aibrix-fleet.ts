/**
 * AIBrix RayClusterFleet (vllm-project/aibrix): a Deployment-like set of RayClusters, one group each,
 * scaled through /scale. A group is one whole RayCluster, built from the fleet's spec.template.spec (a KubeRay
 * RayClusterSpec: api/orchestration/v1alpha1/raycluster_type.go): its head and every worker group's pods, which
 * the capacity check places as one gang. Kueue queues a RayCluster by its kueue.x-k8s.io/queue-name label
 * (https://kueue.sigs.k8s.io/docs/tasks/run/rayclusters/), and each RayCluster carries the fleet's
 * spec.template.metadata.labels (pkg/controller/rayclusterreplicaset/rayclusterreplicaset_utils.go,
 * constructRayCluster), so the queue is read there.
 *
 * No drain: which RayCluster a scale-down deletes can be neither predicted nor chosen. In AIBrix v0.7.0 the
 * RayClusterReplicaSet deletes the first clusters of the list its cache returns
 * (pkg/controller/rayclusterreplicaset/rayclusterreplicaset_controller.go, scaleDown), and that list comes from
 * an informer index in Go map order (kubernetes/client-go tools/cache/thread_safe_store.go, ByIndex); during a
 * rollout the fleet also splits the scale-down across its replica sets as a Deployment does
 * (pkg/controller/rayclusterfleet/sync.go, scale). AIBrix's main branch, in no release yet, sorts the
 * candidates first (not ready, then a lower controller.kubernetes.io/pod-deletion-cost annotation on the
 * RayCluster, then the older: rayclusterreplicaset_utils.go, sortRayClustersForScaleDown); once released, that
 * annotation would let kvpa choose the victim.
 */
import type { V1LabelSelector, V1Pod } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { type Gvr, listCustom, listPods, selectorOf } from '../kube.ts';
import { groupGpus, KUEUE_QUEUE_LABEL, type PendingGroups, unindexedPendingGroups } from '../placement.ts';
import { type Condition, capacityGroups, conditionTrue, type GroupView, podLabel } from '../readiness.ts';
import type { TargetState } from '../types.ts';
import {
  CustomScaleTarget,
  type KindModule,
  labelSelectorString,
  managersOf,
  type ObjectMeta,
  requireResourceVersion,
} from './base.ts';
import { desiredWorkerPods, RAY_LABELS, type RayClusterSpecLike, rayClusterShape } from './kuberay.ts';

const RAYCLUSTER_GVR: Gvr = { group: 'ray.io', version: 'v1', plural: 'rayclusters' };
const FLEET_NAME_LABEL = 'orchestration.aibrix.ai/raycluster-fleet-name';

export interface RayClusterLike {
  metadata?: { name?: string; deletionTimestamp?: string | Date };
  spec?: RayClusterSpecLike;
  status?: {
    conditions?: Condition[];
    readyWorkerReplicas?: number;
    desiredWorkerReplicas?: number;
  };
}

/**
 * AIBrix's own rule (pkg/utils/raycluster.go): RayClusterProvisioned and HeadPodReady are True and
 * every desired worker pod is ready. A cluster being deleted is never capacity.
 */
export function rayClusterReady(rc: RayClusterLike): boolean {
  if (rc.metadata?.deletionTimestamp) return false;
  const s = rc.status;
  if (!s) return false;
  return (
    conditionTrue(s.conditions, 'RayClusterProvisioned') &&
    conditionTrue(s.conditions, 'HeadPodReady') &&
    (s.readyWorkerReplicas ?? 0) === (s.desiredWorkerReplicas ?? 0)
  );
}

/**
 * Fleet groups = its RayClusters. Fleet status.readyReplicas uses the same rule but also counts old and
 * new clusters during a rolling update and names none, so we evaluate each cluster and cap at spec
 * (clusters have no index to tell surge apart). Head = the cluster's `ray.io/node-type=head` pod.
 */
export function fleetGroups(rayClusters: readonly RayClusterLike[], headPods: readonly V1Pod[]): GroupView[] {
  const headByCluster = new Map<string, V1Pod>();
  for (const pod of headPods) {
    const cluster = podLabel(pod, RAY_LABELS.cluster);
    if (cluster !== undefined) headByCluster.set(cluster, pod);
  }
  return rayClusters.map((rc) => {
    const name = rc.metadata?.name ?? '';
    return { key: name, ready: rayClusterReady(rc), surge: false, head: headByCluster.get(name) };
  });
}

/**
 * AIBrix's isClusterActive (pkg/controller/rayclusterreplicaset/rayclusterreplicaset_utils.go): a cluster being
 * deleted, or provisioned once and no longer ready, is not one of the fleet's replicas (AIBrix creates another).
 */
export function rayClusterActive(rc: RayClusterLike): boolean {
  if (rc.metadata?.deletionTimestamp) return false;
  if (!conditionTrue(rc.status?.conditions, 'RayClusterProvisioned')) return true;
  return rayClusterReady(rc);
}

/**
 * The fleet's requested RayClusters not placed yet: each active cluster is a group of its own spec's pods (old
 * and new templates differ during a rollout), found by their ray.io/cluster label.
 */
export function fleetPendingGroups(
  specGroups: number,
  clusters: readonly RayClusterLike[],
  pods: readonly V1Pod[],
): PendingGroups {
  const byCluster = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const cluster = podLabel(pod, RAY_LABELS.cluster);
    if (cluster !== undefined) byCluster.set(cluster, [...(byCluster.get(cluster) ?? []), pod]);
  }
  return unindexedPendingGroups(
    specGroups,
    clusters.filter(rayClusterActive).map((rc) => ({
      size: 1 + (rc.spec?.workerGroupSpecs ?? []).reduce((sum, w) => sum + desiredWorkerPods(w), 0),
      pods: byCluster.get(rc.metadata?.name ?? '') ?? [],
    })),
  );
}

interface RayClusterFleetLike {
  metadata?: ObjectMeta;
  spec?: {
    replicas?: number;
    selector?: V1LabelSelector;
    template?: { metadata?: { labels?: Record<string, string> }; spec?: RayClusterSpecLike };
  };
}

/**
 * One group = one RayCluster. The fleet is Deployment-like, so its spec.selector selects its RayClusters;
 * each is judged by AIBrix's own rule (rayClusterReady) and the count is capped at spec (rollout overlap).
 * Its pods carry the fleet's name (AIBrix adds the label to the head and worker templates: sync.go).
 */
export class RayClusterFleetTarget extends CustomScaleTarget {
  protected async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const fleet = await this.getObject<RayClusterFleetLike>();
    const specGroups = fleet.spec?.replicas ?? 1;
    const selector = labelSelectorString(fleet.spec?.selector);
    if (selector === '') {
      throw new Error(
        `RayClusterFleet ${this.namespace}/${this.ref.name} has an empty spec.selector: kvpa finds its ` +
          'RayClusters by that selector, so set matchLabels matching spec.template.metadata.labels',
      );
    }
    const clusters = await listCustom<RayClusterLike>(this.clients, RAYCLUSTER_GVR, this.namespace, selector);
    const pods = await listPods(
      this.clients,
      this.namespace,
      selectorOf({ [FLEET_NAME_LABEL]: this.ref.name }),
    );
    const heads = pods.filter((p) => podLabel(p, RAY_LABELS.nodeType) === 'head');
    const groups = fleetGroups(clusters, heads);
    const template = fleet.spec?.template;
    const shape = rayClusterShape(
      template?.spec,
      `RayClusterFleet ${this.namespace}/${this.ref.name} spec.template.spec`,
    );
    const queue = template?.metadata?.labels?.[KUEUE_QUEUE_LABEL];
    const state: TargetState = {
      specGroups,
      readyGroups: capacityGroups(groups, specGroups),
      groupSize: shape.pods.length,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, fleet.metadata),
      gpusPerGroup: groupGpus(shape),
      placement: {
        group: shape,
        ...(queue !== undefined ? { kueueQueue: queue } : {}),
        ...fleetPendingGroups(specGroups, clusters, pods),
      },
      countManagers: managersOf(fleet.metadata, ['f:spec', 'f:replicas']),
    };
    return { state, groups };
  }
}

export const rayClusterFleet: KindModule = {
  kind: 'RayClusterFleet',
  plural: 'rayclusterfleets',
  exampleVersion: 'v1alpha1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new RayClusterFleetTarget(clients, namespace, ref, gvr),
};
