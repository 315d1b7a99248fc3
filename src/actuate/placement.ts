/**
 * A target's groups as the scheduler sees them: the shape of one group (each pod's GPU request, node selector,
 * required node affinity and tolerations, from the workload's pod templates) and which requested groups are
 * not placed yet. The fit itself is pure (src/decide/placement.ts); the free room is read in
 * src/observe/cluster-room.ts.
 */
import type { V1Container, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { GroupShape, NodeSelectorRequirement, PodShape, Toleration } from '../decide/placement.ts';
import { LWS_LABELS } from './kinds/lws.ts';

export const DEFAULT_GPU_RESOURCE = 'nvidia.com/gpu';
/** The label that puts a workload in a Kueue LocalQueue (https://kueue.sigs.k8s.io/docs/concepts/local_queue/). */
export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
/** Extended resources that are GPUs: nvidia.com/gpu, amd.com/gpu, gpu.intel.com/i915, … */
const GPU_NAME = /(^|[./])(gpu|i915|xe)$/;

/** A Kubernetes quantity of whole devices ("8", "8000m"); extended resources are integers. */
export function deviceCount(q: string | undefined): number {
  if (q === undefined) return 0;
  const m = /^(\d+)(m?)$/.exec(q.trim());
  if (m === null) return 0;
  const n = Number(m[1]);
  return m[2] === 'm' ? Math.floor(n / 1000) : n;
}

function containerGpus(c: V1Container, resource: string): number {
  // An extended resource's request defaults to its limit (requests may not exceed limits for them).
  return deviceCount(c.resources?.requests?.[resource] ?? c.resources?.limits?.[resource]);
}

/** The pod's effective request: max(any init container, Σ containers), as the scheduler computes it. */
export function podGpus(spec: V1PodSpec, resource: string): number {
  const main = (spec.containers ?? []).reduce((s, c) => s + containerGpus(c, resource), 0);
  const init = (spec.initContainers ?? []).reduce((m, c) => Math.max(m, containerGpus(c, resource)), 0);
  return Math.max(main, init);
}

/** The GPU resource the templates request (the first one named like a GPU), else nvidia.com/gpu. */
export function gpuResourceOf(specs: readonly (V1PodSpec | undefined)[]): string {
  for (const spec of specs) {
    for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
      const names = [...Object.keys(c.resources?.requests ?? {}), ...Object.keys(c.resources?.limits ?? {})];
      const gpu = names.find((n) => GPU_NAME.test(n));
      if (gpu !== undefined) return gpu;
    }
  }
  return DEFAULT_GPU_RESOURCE;
}

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']);

export function podShapeOf(spec: V1PodSpec | undefined, resource: string): PodShape {
  if (spec === undefined) return { gpus: 0 };
  const terms =
    spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const requiredTerms = terms.map((t) =>
    (t.matchExpressions ?? [])
      .filter((e) => OPERATORS.has(e.operator))
      .map(
        (e): NodeSelectorRequirement => ({
          key: e.key,
          operator: e.operator as NodeSelectorRequirement['operator'],
          ...(e.values !== undefined ? { values: e.values } : {}),
        }),
      ),
  );
  const tolerations = (spec.tolerations ?? []).map(
    (t): Toleration => ({
      ...(t.key !== undefined ? { key: t.key } : {}),
      ...(t.operator === 'Exists' || t.operator === 'Equal' ? { operator: t.operator } : {}),
      ...(t.value !== undefined ? { value: t.value } : {}),
      ...(t.effect !== undefined ? { effect: t.effect } : {}),
    }),
  );
  return {
    gpus: podGpus(spec, resource),
    ...(spec.nodeSelector !== undefined ? { nodeSelector: spec.nodeSelector } : {}),
    ...(requiredTerms.length > 0 ? { requiredTerms } : {}),
    ...(tolerations.length > 0 ? { tolerations } : {}),
  };
}

export interface LwsTemplateLike {
  readonly size?: number;
  readonly leaderTemplate?: { readonly spec?: V1PodSpec };
  readonly workerTemplate?: { readonly spec?: V1PodSpec };
}

/**
 * One LeaderWorkerSet group: the leader (leaderTemplate, else workerTemplate) and size − 1 workers
 * (lws api/leaderworkerset/v1/leaderworkerset_types.go: LeaderWorkerTemplate).
 */
export function lwsGroupShape(t: LwsTemplateLike | undefined): GroupShape {
  const size = Math.max(1, t?.size ?? 1);
  const leader = t?.leaderTemplate?.spec ?? t?.workerTemplate?.spec;
  const worker = t?.workerTemplate?.spec;
  const gpuResource = gpuResourceOf([leader, worker]);
  const pods = [podShapeOf(leader, gpuResource)];
  for (let i = 1; i < size; i++) pods.push(podShapeOf(worker, gpuResource));
  return { gpuResource, pods };
}

/** GPUs of one whole group: every pod's request. */
export function groupGpus(shape: GroupShape): number {
  return shape.pods.reduce((sum, p) => sum + p.gpus, 0);
}

export interface PendingGroups {
  /** Requested groups missing a pod, or with a pod not bound to a node yet. */
  readonly unplacedGroups: number;
  /** Of those, groups with a pod the scheduler marked Unschedulable (PodScheduled=False, reason Unschedulable). */
  readonly unschedulableGroups: number;
}

function unschedulable(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some(
    (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
  );
}

/** LWS groups 0 … spec − 1 that are not placed yet, from their pods' group-index labels. */
export function lwsPendingGroups(
  specGroups: number,
  groupSize: number,
  pods: readonly V1Pod[],
): PendingGroups {
  return indexedPendingGroups(specGroups, groupSize, pods, LWS_LABELS.groupIndex);
}

/**
 * Groups 0 … spec − 1 of a workload that labels each pod with its group's index (`indexLabel`) that are not
 * placed yet: fewer than `groupSize` pods not being deleted, or one not bound to a node.
 */
export function indexedPendingGroups(
  specGroups: number,
  groupSize: number,
  pods: readonly V1Pod[],
  indexLabel: string,
): PendingGroups {
  const byIndex = new Map<number, V1Pod[]>();
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const raw = pod.metadata?.labels?.[indexLabel];
    if (raw === undefined || !/^\d+$/.test(raw)) continue;
    const index = Number(raw);
    byIndex.set(index, [...(byIndex.get(index) ?? []), pod]);
  }
  let unplaced = 0;
  let stuck = 0;
  for (let index = 0; index < specGroups; index++) {
    const group = byIndex.get(index) ?? [];
    const unbound = group.length < groupSize || group.some((p) => !p.spec?.nodeName);
    if (unbound) unplaced++;
    if (group.some(unschedulable)) stuck++;
  }
  return { unplacedGroups: unplaced, unschedulableGroups: stuck };
}

/**
 * Pending groups of a workload whose groups carry no index (KubeRay worker replicas, AIBrix RayClusters), from
 * each existing group's pods and its size: a group is placed when it has `size` pods not being deleted, all
 * bound to nodes. The spec's groups beyond those placed are unplaced; of them, the groups with a pod marked
 * Unschedulable are stuck (a group not created yet has no pod to say so).
 */
export function unindexedPendingGroups(
  specGroups: number,
  groups: readonly { readonly size: number; readonly pods: readonly V1Pod[] }[],
): PendingGroups {
  let placed = 0;
  let stuck = 0;
  for (const group of groups) {
    const live = group.pods.filter((p) => !p.metadata?.deletionTimestamp);
    if (live.length >= Math.max(1, group.size) && live.every((p) => p.spec?.nodeName)) placed++;
    else if (live.some(unschedulable)) stuck++;
  }
  const unplaced = Math.max(0, specGroups - placed);
  return { unplacedGroups: unplaced, unschedulableGroups: Math.min(stuck, unplaced) };
}
