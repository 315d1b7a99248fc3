/**
 * AIBrix StormService role in pool mode (vllm-project/aibrix): the count is spec.template.spec.roles[name]
 * .replicas; there is no per-role /scale, so one list element is patched.
 *
 * A role's groups live in each RoleSet: PodSets of podGroupSize pods when podGroupSize > 1, else single pods.
 * On a lower count the RoleSet deletes every PodSet (or, for a stateful role, every pod) whose
 * `stormservice.orchestration.aibrix.ai/role-replica-index` is at or above it: the highest indexes go
 * (pkg/controller/roleset/podset_rollsyncer.go, PodSetRoleSyncer.Scale and podSetSlotForRole;
 * rolesyncer.go, StatefulRoleSyncer.podSlotForRole). So a drain takes those out of routing. It cannot when the
 * victims are not known in advance: a stateless one-pod role drops outdated, then not-Ready, then the newest
 * pods (rolesyncer.go, StatelessRoleSyncer.Scale; utils.go, sortPodsByTemplateHash), and a pod kvpa takes out
 * of routing turns not Ready too, so it could not be told from one starting or failing; under the default
 * RollingUpdate strategy the new count is a new StormService revision, whose RoleSets replace the old ones
 * whole (pkg/controller/stormservice/revision.go, getPatch hashes all of spec.template; sync.go,
 * rollingUpdate); and with several RoleSets each one drops its own highest index.
 */
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import type { GroupShape } from '../../decide/placement.ts';
import { type Gvr, type KubeClients, listPods, selectorOf } from '../kube.ts';
import {
  gpuResourceOf,
  groupGpus,
  indexedPendingGroups,
  type PendingGroups,
  podShapeOf,
} from '../placement.ts';
import { type GroupView, intLabel, isPodReady, podLabel } from '../readiness.ts';
import { type DrainView, highestIndexFirst, type IndexedGroup, setServing } from '../routing.ts';
import type { HeadPod, TargetState } from '../types.ts';
import { headsOf, type KindModule, ListElementTarget, managersOf, type ObjectMeta } from './base.ts';

export const STORM_LABELS = {
  service: 'storm-service-name',
  role: 'role-name',
  roleSet: 'roleset-name',
  roleReplicaIndex: 'stormservice.orchestration.aibrix.ai/role-replica-index',
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

export interface StormRoleLike {
  name?: string;
  replicas?: number;
  podGroupSize?: number;
  stateful?: boolean;
  template?: { spec?: V1PodSpec };
}

/** Pods per group: podGroupSize pods make a PodSet; 1 or unset, a single pod (roleset_types.go, RoleSpec). */
export function stormGroupSize(role: StormRoleLike | undefined): number {
  return Math.max(role?.podGroupSize ?? 1, 1);
}

/**
 * One group of a role as the scheduler sees it: podGroupSize pods of the role's pod template, which AIBrix
 * copies into every PodSet and pod (podset_rollsyncer.go, createPodSetForRole); undefined without a template.
 */
export function stormGroupShape(role: StormRoleLike | undefined): GroupShape | undefined {
  const spec = role?.template?.spec;
  if (spec === undefined) return undefined;
  const gpuResource = gpuResourceOf([spec]);
  const pod = podShapeOf(spec, gpuResource);
  return { gpuResource, pods: Array.from({ length: stormGroupSize(role) }, () => pod) };
}

/** Where a StormService pod's readiness gate goes: the role's pod template, copied into every pod. */
export const stormGateTemplate = (role: string) =>
  `spec.template.spec.roles[name=${role}].template.spec of the StormService`;

/** What of the StormService decides whether a role's victims are known: see the header. */
export interface StormSetup {
  readonly service: string;
  readonly role: string;
  /** spec.replicas: RoleSets asked for (pool mode: 1). */
  readonly roleSets: number;
  /** spec.updateStrategy.type; unset is RollingUpdate (stormservice sync.go, rollout). */
  readonly updateStrategy: string | undefined;
  readonly podGroupSize: number;
  readonly stateful: boolean;
}

/** Why a role's scale-down victims cannot be told in advance (see the header), or undefined when they can. */
export function stormDrainProblem(setup: StormSetup, podRoleSets: readonly string[]): string | undefined {
  const strategy = setup.updateStrategy ?? '';
  if (strategy !== 'InPlaceUpdate') {
    return (
      `StormService ${setup.service} has updateStrategy.type ${strategy || 'unset (RollingUpdate)'}: a new role ` +
      'count is a new revision whose RoleSets replace the old ones whole, so a scale-down removes every group; ' +
      'set spec.updateStrategy.type: InPlaceUpdate to drain'
    );
  }
  if (setup.roleSets !== 1 || podRoleSets.length > 1) {
    const seen = podRoleSets.length > 1 ? ` (pods of ${podRoleSets.length}: ${podRoleSets.join(', ')})` : '';
    return (
      `StormService ${setup.service} runs ${setup.roleSets} RoleSet(s)${seen}: each removes its own ` +
      'highest-index group, so which groups a scale-down removes is unknown; keep spec.replicas: 1 (pool mode)'
    );
  }
  if (setup.podGroupSize <= 1 && !setup.stateful) {
    return (
      `role ${setup.role} is stateless with one pod per group: AIBrix removes not-Ready pods first, and a pod ` +
      'kvpa takes out of routing turns not Ready like one starting or failing, so the victim is unknown; set ' +
      'stateful: true on the role (pods then go highest index first)'
    );
  }
  return undefined;
}

/**
 * A role's drain view: its groups by `role-replica-index`, highest first (PodSet pods inherit the label from
 * their PodSet, a stateful role's pods carry it themselves). A group's head is its pod-group-index 0 (a
 * single pod: itself), its other pods follow by pod-group-index. When the victims cannot be told
 * (`stormDrainProblem`), every pod still comes under its group, with no removal order and the reason.
 */
export function stormDrainView(namespace: string, setup: StormSetup, pods: readonly V1Pod[]): DrainView {
  const gate = stormGateTemplate(setup.role);
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const roleSets = [...new Set(live.flatMap((p) => podLabel(p, STORM_LABELS.roleSet) ?? []))].sort();
  const problem = stormDrainProblem(setup, roleSets);
  if (problem !== undefined) {
    // No removal order, but every pod listed (a stateless one carries no index), so each gated pod stays routed.
    const each = new Map(pods.map((p, i) => [i, { head: p, members: [], pods: [p] }] as const));
    return { ...highestIndexFirst(namespace, each, gate), order: [], unavailable: problem };
  }
  const byIndex = new Map<number, V1Pod[]>();
  for (const pod of pods) {
    const index = intLabel(pod, STORM_LABELS.roleReplicaIndex);
    if (index === undefined) continue;
    byIndex.set(index, [...(byIndex.get(index) ?? []), pod]);
  }
  const podIndex = (p: V1Pod) => intLabel(p, STORM_LABELS.podGroupIndex) ?? 0;
  const groups = new Map<number, IndexedGroup>();
  for (const [index, groupPods] of byIndex) {
    const [head, ...members] = [...groupPods].sort(
      (a, b) => podIndex(a) - podIndex(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
    );
    groups.set(index, { head, members, pods: groupPods });
  }
  return highestIndexFirst(namespace, groups, gate);
}

/**
 * Requested groups 0 … spec − 1 of a role not placed yet. Indexed roles (PodSets, stateful pods) by their
 * role-replica-index; a stateless role's pods carry none, so its groups are counted: spec less the pods bound
 * to a node, of which those the scheduler marked Unschedulable.
 */
export function stormPendingGroups(
  specGroups: number,
  groupSize: number,
  indexed: boolean,
  pods: readonly V1Pod[],
): PendingGroups {
  if (indexed) return indexedPendingGroups(specGroups, groupSize, pods, STORM_LABELS.roleReplicaIndex);
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const bound = live.filter((p) => p.spec?.nodeName).length;
  const unplaced = Math.max(0, specGroups - bound);
  const stuck = live.filter((p) =>
    (p.status?.conditions ?? []).some(
      (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
    ),
  ).length;
  return { unplacedGroups: unplaced, unschedulableGroups: Math.min(stuck, unplaced) };
}

interface StormServiceObj {
  metadata?: ObjectMeta;
  spec?: {
    replicas?: number;
    updateStrategy?: { type?: string };
    template?: { spec?: { roles?: (StormRoleLike & Record<string, unknown>)[] } };
  };
  status?: { roleStatuses?: RoleStatusLike[] };
}

/**
 * One StormService role in pool mode: spec.template.spec.roles[name].replicas counts PodSets (groups of
 * podGroupSize pods) or pods. status.roleStatuses[role].readyReplicas is AIBrix's all-pods-Ready count per
 * PodSet, so read() uses it (capped at spec); heads() groups pods by podset-name. The drain and placement
 * views come from the role's pods and pod template (see the header).
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

  private async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const { obj, index, resourceVersion } = await this.getWithIndex();
    const role = obj.spec?.template?.spec?.roles?.[index];
    const specGroups = role?.replicas ?? 0;
    const groupSize = stormGroupSize(role);
    const pods = await listPods(
      this.clients,
      this.namespace,
      selectorOf({ [STORM_LABELS.service]: this.ref.name, [STORM_LABELS.role]: this.elementName }),
    );
    const setup: StormSetup = {
      service: this.ref.name,
      role: this.elementName,
      roleSets: obj.spec?.replicas ?? 1,
      updateStrategy: obj.spec?.updateStrategy?.type,
      podGroupSize: groupSize,
      stateful: role?.stateful === true,
    };
    const shape = stormGroupShape(role);
    // A count over several RoleSets is not one pool's groups (README: keep spec.replicas 1): no capacity check.
    const placement =
      shape !== undefined && setup.roleSets === 1
        ? {
            group: shape,
            ...stormPendingGroups(specGroups, groupSize, groupSize > 1 || setup.stateful, pods),
          }
        : undefined;
    return {
      state: {
        specGroups,
        readyGroups: stormRoleReady(obj.status?.roleStatuses, this.elementName, specGroups),
        groupSize,
        resourceVersion,
        drain: stormDrainView(this.namespace, setup, pods),
        ...(shape !== undefined ? { gpusPerGroup: groupGpus(shape) } : {}),
        ...(placement !== undefined ? { placement } : {}),
        countManagers: managersOf(obj.metadata, ['f:spec', 'f:template']),
      },
      groups: stormRoleGroups(groupSize, pods),
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
}

export const stormServiceRole: KindModule = {
  kind: 'StormService',
  plural: 'stormservices',
  exampleVersion: 'v1alpha1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new StormServiceRoleTarget(clients, namespace, ref, gvr),
};
