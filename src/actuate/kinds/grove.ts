/**
 * Grove PodCliqueScalingGroup (ai-dynamo/grove): one group is one PCSG replica, the member PodCliques of
 * that replica index; scaled through /scale. Readiness follows the member cliques, not Grove's
 * minAvailable-based availableReplicas (operator/internal/controller/podcliquescalinggroup/reconcilestatus.go).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { type Gvr, type KubeClients, listCustom, listPods } from '../kube.ts';
import { capacityGroups, escapeRegExp, type GroupView, intLabel, podLabel } from '../readiness.ts';
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
  metadata?: { name?: string; deletionTimestamp?: string | Date };
  spec?: { replicas?: number };
  status?: { readyReplicas?: number };
}

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

/** Pods per PCSG replica: the sum of member clique replicas in the lowest replica present. */
export function groveGroupSize(
  pcsgName: string,
  cliqueNames: readonly string[],
  cliques: readonly PodCliqueLike[],
): number | null {
  const byName = new Map(cliques.map((c) => [c.metadata?.name ?? '', c]));
  for (let j = 0; j < 1000; j++) {
    const members = cliqueNames.map((c) => byName.get(pcsgCliqueName(pcsgName, j, c)));
    if (members.length > 0 && members.every((m) => m !== undefined)) {
      return members.reduce((sum, m) => sum + (m?.spec?.replicas ?? 0), 0);
    }
    if (byName.size === 0) break;
  }
  return null;
}

export interface PcsgLike {
  metadata?: ObjectMeta;
  spec?: { replicas?: number; cliqueNames?: string[] };
}

export interface GroveObservation {
  specReplicas: number;
  groups: GroupView[];
  groupSize: number | null;
}

/** Member PodCliques (and, for heads, pods) of a PCSG, judged by groveGroups. */
export async function observeGrove(
  clients: KubeClients,
  namespace: string,
  pcsg: PcsgLike,
  withHeads: boolean,
): Promise<GroveObservation> {
  const name = pcsg.metadata?.name ?? '';
  const specReplicas = pcsg.spec?.replicas ?? 0;
  const cliqueNames = pcsg.spec?.cliqueNames ?? [];
  const selector = `${GROVE_LABELS.pcsg}=${name}`;
  const cliques = await listCustom<PodCliqueLike>(clients, PODCLIQUE_GVR, namespace, selector);
  const pods: V1Pod[] = withHeads ? await listPods(clients, namespace, selector) : [];
  return {
    specReplicas,
    groups: groveGroups(name, specReplicas, cliqueNames, cliques, pods),
    groupSize: groveGroupSize(name, cliqueNames, cliques),
  };
}

/**
 * Grove's status.replicas copies spec and availableReplicas is minAvailable-based, so readiness comes
 * from the member PodCliques' readyReplicas == spec.replicas (see groveGroups).
 */
export class PodCliqueScalingGroupTarget extends CustomScaleTarget {
  protected async observe(withHeads: boolean): Promise<{ state: TargetState; groups: GroupView[] }> {
    const pcsg = await this.getObject<PcsgLike>();
    const grove = await observeGrove(this.clients, this.namespace, pcsg, withHeads);
    const state: TargetState = {
      specGroups: grove.specReplicas,
      readyGroups: capacityGroups(grove.groups, grove.specReplicas),
      groupSize: grove.groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, pcsg.metadata),
      countManagers: managersOf(pcsg.metadata, ['f:spec', 'f:replicas']),
    };
    return { state, groups: grove.groups };
  }
}

export const podCliqueScalingGroup: KindModule = {
  kind: 'PodCliqueScalingGroup',
  plural: 'podcliquescalinggroups',
  exampleVersion: 'v1alpha1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new PodCliqueScalingGroupTarget(clients, namespace, ref, gvr),
};
