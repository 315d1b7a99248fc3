/**
 * LeaderWorkerSet (kubernetes-sigs/lws): the count is spec.replicas through /scale; one group is a leader
 * pod and size-1 workers; on scale-down the highest group index goes (the StatefulSet rule). KServe's
 * LLMInferenceService creates its multi-node LWS (`<name>-kserve-mn`, `-prefill`) and resets the count on
 * every reconcile while its spec.replicas / spec.prefill.replicas is set (kserve/kserve
 * pkg/controller/v1alpha2/llmisvc/workload.go, PreserveLWSReplicas), so such an LWS is refused.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { type Gvr, getCustomOrUndefined, type KubeClients, listPods } from '../kube.ts';
import {
  groupGpus,
  KUEUE_QUEUE_LABEL,
  type LwsTemplateLike,
  lwsGroupShape,
  lwsPendingGroups,
} from '../placement.ts';
import { capacityGroups, type GroupView, intLabel, isPodReady, podLabel } from '../readiness.ts';
import { lwsDrainView, setServing } from '../routing.ts';
import type { TargetRefusal, TargetState } from '../types.ts';
import {
  CustomScaleTarget,
  type KindModule,
  managersOf,
  type ObjectMeta,
  requireResourceVersion,
} from './base.ts';

/** The LWS API at the version the upstream CRD serves (other kinds read child LWSs through it). */
export const LWS_GVR: Gvr = { group: 'leaderworkerset.x-k8s.io', version: 'v1', plural: 'leaderworkersets' };

export const LWS_LABELS = {
  name: 'leaderworkerset.sigs.k8s.io/name',
  groupIndex: 'leaderworkerset.sigs.k8s.io/group-index',
  workerIndex: 'leaderworkerset.sigs.k8s.io/worker-index',
  groupKey: 'leaderworkerset.sigs.k8s.io/group-key',
} as const;

/**
 * LWS groups from its pods. status.readyReplicas includes burst (maxSurge) groups and carries no index,
 * so we compute per group from pods: group i is ready iff its leader (worker-index 0) is Ready and all
 * size-1 workers (worker-index 1..size-1, same group-key as the leader) are Ready. Equivalent to the LWS
 * controller's "leader Ready and worker StatefulSet fully available" without reading each worker STS.
 * Groups with group-index ≥ spec.replicas are surge.
 */
export function lwsGroups(specReplicas: number, groupSize: number, pods: readonly V1Pod[]): GroupView[] {
  const byIndex = new Map<number, { leader?: V1Pod; workers: V1Pod[] }>();
  for (const pod of pods) {
    const groupIndex = intLabel(pod, LWS_LABELS.groupIndex);
    const workerIndex = intLabel(pod, LWS_LABELS.workerIndex);
    if (groupIndex === undefined || workerIndex === undefined) continue;
    const entry = byIndex.get(groupIndex) ?? { workers: [] };
    if (workerIndex === 0) entry.leader = pod;
    else entry.workers.push(pod);
    byIndex.set(groupIndex, entry);
  }
  const out: GroupView[] = [];
  for (const [groupIndex, { leader, workers }] of [...byIndex].sort((a, b) => a[0] - b[0])) {
    const leaderKey = leader !== undefined ? podLabel(leader, LWS_LABELS.groupKey) : undefined;
    // A worker of another group-key is a leftover of the group's previous incarnation, not a member.
    const members = workers
      .filter((w) => leaderKey === undefined || podLabel(w, LWS_LABELS.groupKey) === leaderKey)
      .sort(
        (a, b) => (intLabel(a, LWS_LABELS.workerIndex) ?? 0) - (intLabel(b, LWS_LABELS.workerIndex) ?? 0),
      );
    let ready = leader !== undefined && isPodReady(leader);
    if (ready && leader) {
      const readyWorkerIndexes = new Set<number>();
      for (const w of workers) {
        if (leaderKey !== undefined && podLabel(w, LWS_LABELS.groupKey) !== leaderKey) continue;
        const wi = intLabel(w, LWS_LABELS.workerIndex);
        if (wi !== undefined && wi < groupSize && isPodReady(w)) readyWorkerIndexes.add(wi);
      }
      ready = readyWorkerIndexes.size === groupSize - 1;
    }
    out.push({ key: String(groupIndex), ready, surge: groupIndex >= specReplicas, head: leader, members });
  }
  return out;
}

export interface LeaderWorkerSetLike {
  metadata?: ObjectMeta;
  spec?: { replicas?: number; leaderWorkerTemplate?: LwsTemplateLike };
}

interface LlmInferenceServiceLike {
  spec?: { replicas?: number; prefill?: { replicas?: number } };
}

/**
 * The refusal for an LWS whose LLMInferenceService owner sets the count itself: its spec.replicas for the
 * decode (main) workload, spec.prefill.replicas for the `-prefill` one. Pure, so the rule is unit-tested
 * (lws.test.ts).
 */
export function kserveRefusal(
  lwsName: string,
  ownerName: string,
  owner: LlmInferenceServiceLike,
): TargetRefusal | undefined {
  const prefill = lwsName.endsWith('-prefill');
  const replicas = prefill ? owner.spec?.prefill?.replicas : owner.spec?.replicas;
  if (replicas === undefined || replicas === null) return undefined;
  const field = prefill ? 'spec.prefill.replicas' : 'spec.replicas';
  return {
    reason: 'OwnerConflict',
    message:
      `LLMInferenceService ${ownerName} sets ${field}: ${replicas}, and KServe resets LeaderWorkerSet ` +
      `${lwsName} to it on every reconcile; remove ${field} (and any spec.scaling block) from the ` +
      'LLMInferenceService so kvpa owns the count',
  };
}

const KSERVE_GROUP = 'serving.kserve.io';

/** The LWS's LLMInferenceService owner (name and API version), or undefined when KServe does not own it. */
export function kserveOwnerOf(lws: LeaderWorkerSetLike): { name: string; version: string } | undefined {
  const owner = lws.metadata?.ownerReferences?.find(
    (o) => o.kind === 'LLMInferenceService' && o.apiVersion?.startsWith(`${KSERVE_GROUP}/`),
  );
  if (!owner?.name || !owner.apiVersion) return undefined;
  return { name: owner.name, version: owner.apiVersion.slice(`${KSERVE_GROUP}/`.length) };
}

/**
 * Reads the LWS's LLMInferenceService owner, if any, for kserveRefusal. Without RBAC to read it (403) or
 * with no such CRD (404) there is no verdict here: the controller's revert detection still catches KServe.
 */
async function kserveOwnerRefusal(
  clients: KubeClients,
  namespace: string,
  lws: LeaderWorkerSetLike,
): Promise<TargetRefusal | undefined> {
  const owner = kserveOwnerOf(lws);
  if (owner === undefined) return undefined;
  const isvc = await getCustomOrUndefined<LlmInferenceServiceLike>(
    clients,
    { group: KSERVE_GROUP, version: owner.version, plural: 'llminferenceservices' },
    namespace,
    owner.name,
    [403, 404],
  );
  return isvc === undefined ? undefined : kserveRefusal(lws.metadata?.name ?? '', owner.name, isvc);
}

/** Group readiness from pods (status.readyReplicas counts surge groups): see lwsGroups. */
export class LeaderWorkerSetTarget extends CustomScaleTarget {
  protected async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const lws = await this.getObject<LeaderWorkerSetLike>();
    const specGroups = lws.spec?.replicas ?? 1;
    const groupSize = lws.spec?.leaderWorkerTemplate?.size ?? 1;
    const pods = await listPods(this.clients, this.namespace, `${LWS_LABELS.name}=${this.ref.name}`);
    const groups = lwsGroups(specGroups, groupSize, pods);
    const queue = lws.metadata?.labels?.[KUEUE_QUEUE_LABEL];
    const refusal = await kserveOwnerRefusal(this.clients, this.namespace, lws);
    const shape = lwsGroupShape(lws.spec?.leaderWorkerTemplate);
    const state: TargetState = {
      specGroups,
      readyGroups: capacityGroups(groups, specGroups),
      groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, lws.metadata),
      drain: lwsDrainView(this.namespace, pods),
      gpusPerGroup: groupGpus(shape),
      placement: {
        group: shape,
        ...(queue !== undefined ? { kueueQueue: queue } : {}),
        ...lwsPendingGroups(specGroups, groupSize, pods),
      },
      countManagers: managersOf(lws.metadata, ['f:spec', 'f:replicas']),
      ...(refusal !== undefined ? { refusal } : {}),
    };
    return { state, groups };
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    await setServing(this.clients, this.namespace, podName, serving, message);
  }
}

export const leaderWorkerSet: KindModule = {
  kind: 'LeaderWorkerSet',
  plural: 'leaderworkersets',
  exampleVersion: 'v1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new LeaderWorkerSetTarget(clients, namespace, ref, gvr),
};
