/**
 * Can a scale-up land? A group is a gang: its leader and every worker must all be placed, or it holds GPUs
 * and serves nothing. Before asking for more groups kvpa counts how many whole groups the cluster's free GPUs
 * can take, and asks for no more than that.
 *
 * The model is the part of the scheduler's filter that decides whether a multi-node group fits (kube-scheduler
 * filter plugins, https://kubernetes.io/docs/reference/scheduling/config/#scheduling-plugins):
 *   - NodeResourcesFit for the GPU resource: free = allocatable − requests of the pods bound to the node;
 *   - NodeUnschedulable (cordoned) and node Ready;
 *   - NodeAffinity: the pod's nodeSelector and its required node-affinity terms;
 *   - TaintToleration: every NoSchedule / NoExecute taint must be tolerated.
 * Groups are placed one after another, each pod on the feasible node with the least room that still fits it
 * (best fit), the largest pods first. CPU and memory are not checked: on GPU nodes the GPUs run out first.
 * A ResourceQuota on the GPU resource caps the count the same way (https://kubernetes.io/docs/concepts/policy/resource-quotas/#resource-quota-for-extended-resources).
 *
 * Pure: the group's shape, the nodes' room and the quotas in; whole groups that fit and why out.
 */
import { withStage } from './kpa.ts';
import type { Decision } from './types.ts';

export interface NodeSelectorRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  readonly values?: readonly string[];
}

export interface Toleration {
  readonly key?: string;
  readonly operator?: 'Exists' | 'Equal';
  readonly value?: string;
  readonly effect?: string;
}

export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
}

/** One pod of a group as the scheduler filters it. */
export interface PodShape {
  /** GPUs the pod requests (its containers' requests, or limits where requests are unset). */
  readonly gpus: number;
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** requiredDuringSchedulingIgnoredDuringExecution: any term matches when all its expressions do. */
  readonly requiredTerms?: readonly (readonly NodeSelectorRequirement[])[];
  readonly tolerations?: readonly Toleration[];
}

/** A group: its leader and every worker, all of which must be placed. */
export interface GroupShape {
  readonly pods: readonly PodShape[];
  /** The extended resource the pods request, e.g. nvidia.com/gpu. */
  readonly gpuResource: string;
}

export interface NodeRoom {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly taints: readonly Taint[];
  /** Allocatable GPUs less the requests of the pods bound to it. */
  readonly freeGpus: number;
  /** Ready and not cordoned. */
  readonly schedulable: boolean;
}

export interface QuotaRoom {
  /** A namespace's ResourceQuota, or the Kueue ClusterQueue behind the workload's LocalQueue. */
  readonly kind: 'ResourceQuota' | 'ClusterQueue';
  readonly name: string;
  /** hard − used of requests.<gpuResource>. */
  readonly freeGpus: number;
}

/** What the cluster can take right now, beside what the pool already asked for. */
export interface PlacementObservation {
  /** Further whole groups the free room fits (nodes and quota), beyond every group already placed. */
  readonly fitGroups: number;
  /** Requested groups with a pod not yet bound to a node: they will claim free room first. */
  readonly unplacedGroups: number;
  /** Of those, groups with a pod the scheduler marked Unschedulable: not capacity on its way. */
  readonly unschedulableGroups: number;
  /** What limited the fit: `nodes` (GPUs or node filters), `quota` (a ResourceQuota), or none. */
  readonly limitedBy: 'nodes' | 'quota' | null;
  /** e.g. "3 of 8 GPU nodes feasible, 16 GPUs free; quota gpu-quota leaves 32". */
  readonly detail: string;
}

/** Off: no check. Enforce: ask for what fits. AskAnyway: ask for the want (a cluster autoscaler adds nodes), and say so. */
export type CapacityCheck = 'Off' | 'Enforce' | 'AskAnyway';

function matchesRequirement(labels: Readonly<Record<string, string>>, r: NodeSelectorRequirement): boolean {
  const v = labels[r.key];
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return v !== undefined && values.includes(v);
    case 'NotIn':
      return v === undefined || !values.includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
    case 'Gt':
    case 'Lt': {
      const n = Number(v);
      const bound = Number(values[0]);
      if (v === undefined || !Number.isInteger(n) || !Number.isInteger(bound)) return false;
      return r.operator === 'Gt' ? n > bound : n < bound;
    }
  }
}

function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== '' && t.effect !== taint.effect) return false;
  if (t.operator === 'Exists') return t.key === undefined || t.key === '' || t.key === taint.key;
  return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
}

/** Whether the scheduler's filters let `pod` onto `node`, GPUs aside. */
export function feasible(pod: PodShape, node: NodeRoom): boolean {
  if (!node.schedulable) return false;
  for (const [k, v] of Object.entries(pod.nodeSelector ?? {})) if (node.labels[k] !== v) return false;
  const terms = pod.requiredTerms ?? [];
  if (terms.length > 0 && !terms.some((term) => term.every((r) => matchesRequirement(node.labels, r))))
    return false;
  const blocking = node.taints.filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  return blocking.every((taint) => (pod.tolerations ?? []).some((t) => tolerates(t, taint)));
}

/**
 * Whole groups the nodes fit, at most `limit`: groups are placed one at a time, each pod (largest first) on the
 * feasible node with the least free GPUs that still fits it. A group with any pod left over is not counted.
 */
export function groupsThatFit(group: GroupShape, nodes: readonly NodeRoom[], limit: number): number {
  if (group.pods.length === 0) return 0;
  const free = new Map(nodes.map((n) => [n.name, n.freeGpus]));
  const pods = [...group.pods].sort((a, b) => b.gpus - a.gpus);
  const eligible = pods.map((pod) => nodes.filter((n) => feasible(pod, n)));
  let placed = 0;
  while (placed < limit) {
    const taken: [string, number][] = [];
    for (const [i, pod] of pods.entries()) {
      let best: string | null = null;
      for (const n of eligible[i] ?? []) {
        const room = free.get(n.name) ?? 0;
        if (room >= pod.gpus && (best === null || room < (free.get(best) ?? 0))) best = n.name;
      }
      if (best === null) {
        for (const [name, gpus] of taken) free.set(name, (free.get(name) ?? 0) + gpus);
        return placed;
      }
      free.set(best, (free.get(best) ?? 0) - pod.gpus);
      taken.push([best, pod.gpus]);
    }
    placed++;
  }
  return placed;
}

/** GPUs one group requests. */
export function groupGpus(group: GroupShape): number {
  return group.pods.reduce((sum, p) => sum + p.gpus, 0);
}

/**
 * What the cluster can take: the groups the nodes fit, capped by every quota on the GPU resource. The groups
 * still unplaced claim that room first, so the count beyond them is `fitGroups − unplacedGroups` (see
 * `placementCeiling`). `limit` bounds the search (the pool's maxReplicas).
 */
export function observePlacement(
  group: GroupShape,
  nodes: readonly NodeRoom[],
  quotas: readonly QuotaRoom[],
  pending: { readonly unplacedGroups: number; readonly unschedulableGroups: number },
  limit: number,
): PlacementObservation {
  const byNodes = groupsThatFit(group, nodes, limit);
  const perGroup = groupGpus(group);
  let fit = byNodes;
  let limitedBy: PlacementObservation['limitedBy'] = 'nodes';
  const quotaParts: string[] = [];
  for (const q of quotas) {
    const byQuota = perGroup > 0 ? Math.max(0, Math.floor(q.freeGpus / perGroup)) : limit;
    quotaParts.push(`${q.kind} ${q.name} leaves ${q.freeGpus} ${group.gpuResource}`);
    if (byQuota < fit) {
      fit = byQuota;
      limitedBy = 'quota';
    }
  }
  const usable = nodes.filter((n) => group.pods.some((p) => feasible(p, n)));
  const freeGpus = usable.reduce((s, n) => s + Math.max(0, n.freeGpus), 0);
  const detail = [
    `a group is ${group.pods.length} pod(s) and ${perGroup} ${group.gpuResource}`,
    `${usable.length} of ${nodes.length} node(s) pass its filters with ${freeGpus} free`,
    ...quotaParts,
  ].join('; ');
  return {
    fitGroups: fit,
    unplacedGroups: pending.unplacedGroups,
    unschedulableGroups: pending.unschedulableGroups,
    limitedBy: fit >= limit ? null : limitedBy,
    detail,
  };
}

/** The most groups the pool can have placed: those already placed, plus what the free room fits beyond the unplaced. */
export function placementCeiling(requested: number, p: PlacementObservation): number {
  return requested - p.unplacedGroups + p.fitGroups;
}

/**
 * Whether a decision needs the cluster's room read: a scale-up, or requested groups the scheduler cannot place.
 * GPUs are what the check counts, so a group that requests none (a CPU-only workload) is never checked.
 */
export function needsRoom(
  decision: Decision,
  requested: number,
  placement: { readonly group: GroupShape; readonly unschedulableGroups: number },
): boolean {
  if (groupGpus(placement.group) === 0) return false;
  return decision.desiredGroups > requested || placement.unschedulableGroups > 0;
}

/** A scale-up the cluster cannot take in full: what was wanted, what can land, and what was asked. */
export interface CapacityShortfall {
  readonly wantGroups: number;
  readonly landGroups: number;
  readonly askedGroups: number;
  readonly check: Exclude<CapacityCheck, 'Off'>;
  readonly detail: string;
}

/**
 * The placement stage: a scale-up is limited to the groups that can land (never below the current request:
 * shrinking is the decider's call, not the cluster's). With `AskAnyway` the want stands and the shortfall is
 * said. An unknown placement (the check failed) limits nothing and says so. Requested groups the scheduler
 * marked Unschedulable keep the shortfall reported until they land or are given back.
 */
export function applyPlacement(
  decision: Decision,
  requested: number,
  placement: PlacementObservation | { readonly unknown: string },
  check: Exclude<CapacityCheck, 'Off'>,
): { readonly decision: Decision; readonly shortfall: CapacityShortfall | null } {
  const want = decision.desiredGroups;
  if ('unknown' in placement) {
    if (want <= requested) return { decision, shortfall: null };
    const reason = `capacity unknown (${placement.unknown}); asking for ${want}`;
    return { decision: withStage(decision, 'placement', want, reason), shortfall: null };
  }
  const ceiling = placementCeiling(requested, placement);
  const pending =
    placement.unplacedGroups > 0
      ? `, ${placement.unplacedGroups} requested group(s) not placed yet${placement.unschedulableGroups > 0 ? ` (${placement.unschedulableGroups} unschedulable)` : ''}`
      : '';
  const room = `${placement.fitGroups} more whole group(s) fit${pending} (${placement.detail})`;
  const land = Math.min(want, Math.max(0, ceiling));
  if (want <= requested) {
    // No scale-up asked; a request the cluster is not placing is still a shortage to report.
    if (placement.unschedulableGroups === 0) return { decision, shortfall: null };
    const reason = `${placement.unschedulableGroups} requested group(s) cannot be scheduled: ${room}`;
    return {
      decision: withStage(decision, 'placement', want, reason),
      shortfall: { wantGroups: want, landGroups: land, askedGroups: want, check, detail: reason },
    };
  }
  if (want <= ceiling && placement.unschedulableGroups === 0) {
    return { decision: withStage(decision, 'placement', want, `${room}: ${want} can land`), shortfall: null };
  }
  const asked = check === 'AskAnyway' ? want : Math.max(requested, Math.min(want, ceiling));
  const reason =
    check === 'AskAnyway'
      ? `insufficient capacity: want ${want}, ${land} can land now (${room}); asking for ${want} anyway (capacityCheck AskAnyway: a cluster autoscaler adds nodes)`
      : `insufficient capacity: want ${want}, ${land} can land (${room}); asking for ${asked}`;
  return {
    decision: withStage(decision, 'placement', asked, reason),
    shortfall: { wantGroups: want, landGroups: land, askedGroups: asked, check, detail: reason },
  };
}
