/**
 * AIBrix RayClusterFleet (vllm-project/aibrix): a Deployment-like set of RayClusters, one group each,
 * scaled through /scale.
 */
import type { V1LabelSelector, V1Pod } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { type Gvr, listCustom, listPods, selectorOf } from '../kube.ts';
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
import { RAY_LABELS } from './kuberay.ts';

const RAYCLUSTER_GVR: Gvr = { group: 'ray.io', version: 'v1', plural: 'rayclusters' };
const FLEET_NAME_LABEL = 'orchestration.aibrix.ai/raycluster-fleet-name';

export interface RayClusterLike {
  metadata?: { name?: string; deletionTimestamp?: string | Date };
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

interface WorkerGroupSpecLike {
  replicas?: number;
  numOfHosts?: number;
}

interface RayClusterFleetLike {
  metadata?: ObjectMeta;
  spec?: {
    replicas?: number;
    selector?: V1LabelSelector;
    template?: { spec?: { workerGroupSpecs?: WorkerGroupSpecLike[] } };
  };
}

/**
 * One group = one RayCluster. The fleet is Deployment-like, so its spec.selector selects its RayClusters;
 * each is judged by AIBrix's own rule (rayClusterReady) and the count is capped at spec (rollout overlap).
 */
export class RayClusterFleetTarget extends CustomScaleTarget {
  protected async observe(withHeads: boolean): Promise<{ state: TargetState; groups: GroupView[] }> {
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
    const headPods = withHeads
      ? await listPods(
          this.clients,
          this.namespace,
          selectorOf({ [FLEET_NAME_LABEL]: this.ref.name, [RAY_LABELS.nodeType]: 'head' }),
        )
      : [];
    const groups = fleetGroups(clusters, headPods);
    const workers = fleet.spec?.template?.spec?.workerGroupSpecs ?? [];
    const groupSize = 1 + workers.reduce((sum, w) => sum + (w.replicas ?? 0) * (w.numOfHosts ?? 1), 0);
    const state: TargetState = {
      specGroups,
      readyGroups: capacityGroups(groups, specGroups),
      groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, fleet.metadata),
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
