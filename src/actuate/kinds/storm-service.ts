/**
 * AIBrix StormService role in pool mode (vllm-project/aibrix): the count is spec.template.spec.roles[name]
 * .replicas; there is no per-role /scale, so one list element is patched.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { type Gvr, type KubeClients, listPods, selectorOf } from '../kube.ts';
import { type GroupView, intLabel, isPodReady, podLabel } from '../readiness.ts';
import type { HeadPod, TargetState } from '../types.ts';
import { headsOf, type KindModule, ListElementTarget, managersOf, type ObjectMeta } from './base.ts';

export const STORM_LABELS = {
  service: 'storm-service-name',
  role: 'role-name',
  podGroupIndex: 'stormservice.orchestration.aibrix.ai/pod-group-index',
  podSet: 'stormservice.orchestration.aibrix.ai/podset-name',
} as const;

export interface RoleStatusLike {
  name?: string;
  replicas?: number;
  readyReplicas?: number;
}

/**
 * Ready groups of one role from status.roleStatuses[role].readyReplicas. AIBrix counts a PodSet ready
 * only when all podGroupSize pods are Ready (pods when podGroupSize ≤ 1), i.e. the whole-group rule.
 * It sums over RoleSets, so during a RollingUpdate old and new RoleSets both count: cap at spec.
 */
export function stormRoleReady(
  roleStatuses: readonly RoleStatusLike[] | undefined,
  role: string,
  specGroups: number,
): number {
  const status = roleStatuses?.find((r) => r.name === role);
  return Math.min(status?.readyReplicas ?? 0, specGroups);
}

/** Per-PodSet views for heads(): group key = podset-name, head = pod-group-index 0. */
export function stormRoleGroups(podGroupSize: number, pods: readonly V1Pod[]): GroupView[] {
  if (podGroupSize <= 1) {
    return pods.map((pod) => ({
      key: pod.metadata?.name ?? '',
      ready: isPodReady(pod),
      surge: false,
      head: pod,
      members: [],
    }));
  }
  const byPodSet = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const podSet = podLabel(pod, STORM_LABELS.podSet);
    if (podSet === undefined) continue;
    byPodSet.set(podSet, [...(byPodSet.get(podSet) ?? []), pod]);
  }
  return [...byPodSet].map(([podSet, pods]) => {
    const head = pods.find((p) => intLabel(p, STORM_LABELS.podGroupIndex) === 0);
    return {
      key: podSet,
      ready: pods.filter(isPodReady).length === podGroupSize,
      surge: false,
      head,
      members: pods.filter((p) => p !== head),
    };
  });
}

interface StormServiceObj {
  metadata?: ObjectMeta;
  spec?: {
    template?: {
      spec?: {
        roles?: ({ name?: string; replicas?: number; podGroupSize?: number } & Record<string, unknown>)[];
      };
    };
  };
  status?: { roleStatuses?: RoleStatusLike[] };
}

/**
 * One StormService role in pool mode: spec.template.spec.roles[name].replicas counts PodSets (groups of
 * podGroupSize pods) or pods. status.roleStatuses[role].readyReplicas is AIBrix's all-pods-Ready count per
 * PodSet, so read() uses it (capped at spec); heads() groups pods by podset-name.
 */
export class StormServiceRoleTarget extends ListElementTarget<StormServiceObj> {
  constructor(clients: KubeClients, namespace: string, ref: ScaleTargetRef, gvr: Gvr) {
    if (!ref.roleName) {
      throw new Error(`scaleTargetRef of StormService ${namespace}/${ref.name} needs roleName`);
    }
    super(clients, namespace, ref, gvr, '/spec/template/spec/roles', 'name', ref.roleName);
  }

  protected elements(obj: StormServiceObj) {
    return obj.spec?.template?.spec?.roles;
  }

  async read(): Promise<TargetState> {
    const { obj, index, resourceVersion } = await this.getWithIndex();
    const role = obj.spec?.template?.spec?.roles?.[index];
    const specGroups = role?.replicas ?? 0;
    return {
      specGroups,
      readyGroups: stormRoleReady(obj.status?.roleStatuses, this.elementName, specGroups),
      groupSize: Math.max(role?.podGroupSize ?? 1, 1),
      resourceVersion,
      countManagers: managersOf(obj.metadata, ['f:spec', 'f:template']),
    };
  }

  async heads(): Promise<HeadPod[]> {
    const { obj, index } = await this.getWithIndex();
    const podGroupSize = obj.spec?.template?.spec?.roles?.[index]?.podGroupSize ?? 1;
    const pods = await listPods(
      this.clients,
      this.namespace,
      selectorOf({ [STORM_LABELS.service]: this.ref.name, [STORM_LABELS.role]: this.elementName }),
    );
    return headsOf(this.namespace, stormRoleGroups(podGroupSize, pods));
  }
}

export const stormServiceRole: KindModule = {
  kind: 'StormService',
  plural: 'stormservices',
  exampleVersion: 'v1alpha1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new StormServiceRoleTarget(clients, namespace, ref, gvr),
};
