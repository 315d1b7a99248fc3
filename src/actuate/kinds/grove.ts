/**
 * Grove PodCliqueScalingGroup (ai-dynamo/grove): one group is one PCSG replica, the member PodCliques of
 * that replica index; scaled through /scale. Readiness follows the member cliques, not Grove's
 * minAvailable-based availableReplicas (operator/internal/controller/podcliquescalinggroup/reconcilestatus.go).
 *
 * On scale-down Grove deletes the replica indices [spec.replicas, existing): the highest first
 * (operator/internal/controller/podcliquescalinggroup/components/podclique/sync.go, computePCSGReplicasToDelete),
 * so a drain takes those out of routing. A pod is built from its PodClique's spec.podSpec and carries the
 * PodClique's labels, the PCSG name and replica index among them
 * (operator/internal/controller/podclique/components/pod/pod.go, buildResource and getLabels).
 */
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import type { GroupShape } from '../../decide/placement.ts';
import { type Gvr, type KubeClients, listCustom, listPods } from '../kube.ts';
import { gpuResourceOf, groupGpus, indexedPendingGroups, podShapeOf } from '../placement.ts';
import { capacityGroups, escapeRegExp, type GroupView, intLabel, podLabel } from '../readiness.ts';
import { type DrainView, highestIndexFirst, type IndexedGroup, setServing } from '../routing.ts';
import type { TargetState } from '../types.ts';
import {
  CustomScaleTarget,
  type KindModule,
  managersOf,
  type ObjectMeta,
  requireResourceVersion,
} from './base.ts';

export const PODCLIQUE_GVR: Gvr = { group: 'grove.io', version: 'v1alpha1', plural: 'podcliques' };
export const PCSG_GVR: Gvr = { group: 'grove.io', version: 'v1alpha1', plural: 'podcliquescalinggroups' };

export const GROVE_LABELS = {
  pcsg: 'grove.io/podcliquescalinggroup',
  pcsgReplicaIndex: 'grove.io/podcliquescalinggroup-replica-index',
  podClique: 'grove.io/podclique',
  podIndex: 'grove.io/podclique-pod-index',
} as const;

export interface PodCliqueLike {
  metadata?: { name?: string; labels?: Record<string, string>; deletionTimestamp?: string | Date };
  spec?: { replicas?: number; podSpec?: V1PodSpec };
  status?: { readyReplicas?: number };
}

/** Where a Grove pod's readiness gate goes: the clique's pod spec, which Grove copies into every pod. */
export const GROVE_GATE_TEMPLATE =
  "the PodCliqueSet's spec.template.cliques[].spec.podSpec of the clique, copied into each PodClique's spec.podSpec";

/** PCLQ name of clique `clique` in replica j of a PCSG (Grove namegen: `<pcsgFQN>-<j>-<clique>`). */
export function pcsgCliqueName(pcsgName: string, replicaIndex: number, clique: string): string {
  return `${pcsgName}-${replicaIndex}-${clique}`;
}

/**
 * The clique that holds the group's leader. Grove has no leader concept: Dynamo names it `<c>-ldr`, and
 * otherwise we take a clique named like "leader", else the first listed (document it in the example).
 */
export function leaderClique(cliqueNames: readonly string[]): string | undefined {
  return (
    cliqueNames.find((c) => c.endsWith('-ldr') || c === 'ldr') ??
    cliqueNames.find((c) => /leader|head/.test(c)) ??
    cliqueNames[0]
  );
}

/**
 * PCSG groups from its member PodCliques. Grove's availableReplicas is minAvailable-based, not "all pods
 * Ready", so replica j is ready iff every clique in spec.cliqueNames has a PCLQ with
 * status.readyReplicas == spec.replicas. Replicas with j ≥ spec.replicas are surge (scale-down leftovers).
 */
export function groveGroups(
  pcsgName: string,
  specReplicas: number,
  cliqueNames: readonly string[],
  cliques: readonly PodCliqueLike[],
  pods: readonly V1Pod[],
): GroupView[] {
  const cliqueByName = new Map<string, PodCliqueLike>();
  let maxIndex = specReplicas - 1;
  const indexPattern = new RegExp(`^${escapeRegExp(pcsgName)}-(\\d+)-`);
  for (const c of cliques) {
    const name = c.metadata?.name;
    if (!name) continue;
    cliqueByName.set(name, c);
    const m = indexPattern.exec(name);
    if (m?.[1] !== undefined) maxIndex = Math.max(maxIndex, Number(m[1]));
  }
  const leader = leaderClique(cliqueNames);
  const out: GroupView[] = [];
  for (let j = 0; j <= maxIndex; j++) {
    const members = cliqueNames.map((c) => cliqueByName.get(pcsgCliqueName(pcsgName, j, c)));
    if (members.every((m) => m === undefined)) continue; // replica not created yet
    const ready =
      cliqueNames.length > 0 &&
      members.every(
        (m) =>
          m !== undefined &&
          !m.metadata?.deletionTimestamp &&
          (m.status?.readyReplicas ?? 0) === (m.spec?.replicas ?? 0),
      );
    const leaderPclq = leader === undefined ? undefined : pcsgCliqueName(pcsgName, j, leader);
    const byIndex = (a: V1Pod, b: V1Pod) =>
      (intLabel(a, GROVE_LABELS.podIndex) ?? Number.MAX_SAFE_INTEGER) -
      (intLabel(b, GROVE_LABELS.podIndex) ?? Number.MAX_SAFE_INTEGER);
    const head = pods
      .filter((p) => leaderPclq !== undefined && podLabel(p, GROVE_LABELS.podClique) === leaderPclq)
      .sort(byIndex)[0];
    const replicaCliques = new Set(cliqueNames.map((c) => pcsgCliqueName(pcsgName, j, c)));
    const memberPods = pods
      .filter((p) => p !== head && replicaCliques.has(podLabel(p, GROVE_LABELS.podClique) ?? ''))
      .sort(byIndex);
    out.push({ key: String(j), ready, surge: j >= specReplicas, head, members: memberPods });
  }
  return out;
}

/** The member PodCliques (in cliqueNames order) of the lowest replica that has all of them, if any. */
function lowestCompleteReplica(
  pcsgName: string,
  cliqueNames: readonly string[],
  cliques: readonly PodCliqueLike[],
): PodCliqueLike[] | undefined {
  if (cliqueNames.length === 0) return undefined;
  const byName = new Map(cliques.map((c) => [c.metadata?.name ?? '', c]));
  const indexes = new Set<number>();
  const indexPattern = new RegExp(`^${escapeRegExp(pcsgName)}-(\\d+)-`);
  for (const name of byName.keys()) {
    const m = indexPattern.exec(name);
    if (m?.[1] !== undefined) indexes.add(Number(m[1]));
  }
  for (const j of [...indexes].sort((a, b) => a - b)) {
    const members = cliqueNames.map((c) => byName.get(pcsgCliqueName(pcsgName, j, c)));
    if (members.every((m) => m !== undefined)) return members as PodCliqueLike[];
  }
  return undefined;
}

/** Pods per PCSG replica: the sum of member clique replicas in the lowest replica present. */
export function groveGroupSize(
  pcsgName: string,
  cliqueNames: readonly string[],
  cliques: readonly PodCliqueLike[],
): number | null {
  const members = lowestCompleteReplica(pcsgName, cliqueNames, cliques);
  return members === undefined ? null : members.reduce((sum, m) => sum + (m.spec?.replicas ?? 0), 0);
}

/**
 * One PCSG replica as the scheduler sees it: every member clique's spec.replicas pods of its spec.podSpec, read
 * from the lowest replica whose PodCliques all exist (Grove renders every replica from the same templates);
 * undefined while no replica exists.
 */
export function groveGroupShape(
  pcsgName: string,
  cliqueNames: readonly string[],
  cliques: readonly PodCliqueLike[],
): GroupShape | undefined {
  const members = lowestCompleteReplica(pcsgName, cliqueNames, cliques);
  if (members === undefined) return undefined;
  const gpuResource = gpuResourceOf(members.map((m) => m.spec?.podSpec));
  const pods = members.flatMap((m) =>
    Array.from({ length: Math.max(0, m.spec?.replicas ?? 0) }, () =>
      podShapeOf(m.spec?.podSpec, gpuResource),
    ),
  );
  return { gpuResource, pods };
}

/**
 * A PCSG's drain view: its pods by `grove.io/podcliquescalinggroup-replica-index`, highest first (Grove's
 * scale-down victims). A replica's head is the lowest-index pod of its leader clique (see leaderClique); its
 * other member-clique pods follow in cliqueNames order, then by pod index.
 */
export function groveDrainView(
  namespace: string,
  pcsgName: string,
  cliqueNames: readonly string[],
  pods: readonly V1Pod[],
): DrainView {
  const byReplica = new Map<number, V1Pod[]>();
  for (const pod of pods) {
    const j = intLabel(pod, GROVE_LABELS.pcsgReplicaIndex);
    if (j === undefined) continue;
    byReplica.set(j, [...(byReplica.get(j) ?? []), pod]);
  }
  const leader = leaderClique(cliqueNames);
  const groups = new Map<number, IndexedGroup>();
  for (const [j, replicaPods] of byReplica) {
    const rank = (p: V1Pod) =>
      cliqueNames.findIndex((c) => pcsgCliqueName(pcsgName, j, c) === podLabel(p, GROVE_LABELS.podClique));
    const podIndex = (p: V1Pod) => intLabel(p, GROVE_LABELS.podIndex) ?? Number.MAX_SAFE_INTEGER;
    const ranked = replicaPods
      .filter((p) => rank(p) >= 0)
      .sort((a, b) => rank(a) - rank(b) || podIndex(a) - podIndex(b));
    const leaderPclq = leader === undefined ? undefined : pcsgCliqueName(pcsgName, j, leader);
    const head = ranked.find((p) => podLabel(p, GROVE_LABELS.podClique) === leaderPclq);
    groups.set(j, { head, members: ranked.filter((p) => p !== head), pods: replicaPods });
  }
  return highestIndexFirst(namespace, groups, GROVE_GATE_TEMPLATE);
}

export interface PcsgLike {
  metadata?: ObjectMeta;
  spec?: { replicas?: number; cliqueNames?: string[] };
}

export interface GroveObservation {
  specReplicas: number;
  groups: GroupView[];
  groupSize: number | null;
  drain: DrainView;
  /** Absent while no replica exists to read the shape from. */
  placement?: NonNullable<TargetState['placement']>;
}

/** Member PodCliques and pods of a PCSG, judged by groveGroups, with its drain and placement views. */
export async function observeGrove(
  clients: KubeClients,
  namespace: string,
  pcsg: PcsgLike,
): Promise<GroveObservation> {
  const name = pcsg.metadata?.name ?? '';
  const specReplicas = pcsg.spec?.replicas ?? 0;
  const cliqueNames = pcsg.spec?.cliqueNames ?? [];
  const selector = `${GROVE_LABELS.pcsg}=${name}`;
  const cliques = await listCustom<PodCliqueLike>(clients, PODCLIQUE_GVR, namespace, selector);
  const pods = await listPods(clients, namespace, selector);
  const groupSize = groveGroupSize(name, cliqueNames, cliques);
  const shape = groveGroupShape(name, cliqueNames, cliques);
  return {
    specReplicas,
    groups: groveGroups(name, specReplicas, cliqueNames, cliques, pods),
    groupSize,
    drain: groveDrainView(namespace, name, cliqueNames, pods),
    ...(shape !== undefined
      ? {
          placement: {
            group: shape,
            ...indexedPendingGroups(specReplicas, shape.pods.length, pods, GROVE_LABELS.pcsgReplicaIndex),
          },
        }
      : {}),
  };
}

/**
 * Grove's status.replicas copies spec and availableReplicas is minAvailable-based, so readiness comes
 * from the member PodCliques' readyReplicas == spec.replicas (see groveGroups).
 */
export class PodCliqueScalingGroupTarget extends CustomScaleTarget {
  protected async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const pcsg = await this.getObject<PcsgLike>();
    const grove = await observeGrove(this.clients, this.namespace, pcsg);
    const state: TargetState = {
      specGroups: grove.specReplicas,
      readyGroups: capacityGroups(grove.groups, grove.specReplicas),
      groupSize: grove.groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, pcsg.metadata),
      drain: grove.drain,
      ...(grove.placement !== undefined
        ? { placement: grove.placement, gpusPerGroup: groupGpus(grove.placement.group) }
        : {}),
      countManagers: managersOf(pcsg.metadata, ['f:spec', 'f:replicas']),
    };
    return { state, groups: grove.groups };
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    await setServing(this.clients, this.namespace, podName, serving, message);
  }
}

export const podCliqueScalingGroup: KindModule = {
  kind: 'PodCliqueScalingGroup',
  plural: 'podcliquescalinggroups',
  exampleVersion: 'v1alpha1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new PodCliqueScalingGroupTarget(clients, namespace, ref, gvr),
};
