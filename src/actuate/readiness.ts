/**
 * Pure group-readiness rules, one per kind, from the objects the adapters read (no I/O here, so unit
 * tests feed realistic JSON). Each rule follows the kind's own controller: kubernetes-sigs/lws
 * pkg/controllers/leaderworkerset_controller.go, vllm-project/aibrix pkg/controller/{rayclusterfleet,stormservice}/,
 * ai-dynamo/grove operator/internal/controller/podcliquescalinggroup/reconcilestatus.go, ai-dynamo/dynamo
 * deploy/operator/internal/controller/dgd_grove_scaler.go, ray-project/kuberay ray-operator/apis/ray/v1/raycluster_types.go.
 *
 * Vocabulary: a "group" is one replica of the target (leader + workers). A group is capacity only when
 * it is ready AND not a surge/leftover group (index ≥ spec during a rollout or a scale-down).
 */
import type { V1Pod } from '@kubernetes/client-node';

/** One group as observed: its key, readiness, whether it counts as capacity, and its head pod if any. */
export interface GroupView {
  readonly key: string;
  readonly ready: boolean;
  /** True for groups beyond spec (rolling-update surge, or not yet removed after a scale-down). */
  readonly surge: boolean;
  readonly head?: V1Pod | undefined;
}

export interface Condition {
  readonly type?: string;
  readonly status?: string;
}

/**
 * Ready means Running + condition Ready=True + every readiness gate's condition True + not being deleted
 * (a terminating pod serves no new work). The kubelet folds the gates into Ready itself
 * (kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-readiness-status); checking them here too
 * keeps a group kvpa has just taken out of routing from counting as capacity before the kubelet's next sync.
 */
export function isPodReady(pod: V1Pod): boolean {
  if (!isPodRunning(pod)) return false;
  const conditions = pod.status?.conditions;
  if (!conditionTrue(conditions, 'Ready')) return false;
  return (pod.spec?.readinessGates ?? []).every((g) => conditionTrue(conditions, g.conditionType));
}

/**
 * The pod's containers run (ContainersReady=True, phase Running, not being deleted), routed or not: a pod out
 * of routing by a readiness gate still holds the requests it accepted before.
 */
export function isPodRunning(pod: V1Pod): boolean {
  if (pod.metadata?.deletionTimestamp) return false;
  if (pod.status?.phase !== 'Running') return false;
  return (
    conditionTrue(pod.status.conditions, 'ContainersReady') || conditionTrue(pod.status.conditions, 'Ready')
  );
}

export function conditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
}

function label(pod: V1Pod, key: string): string | undefined {
  return pod.metadata?.labels?.[key];
}

function intLabel(pod: V1Pod, key: string): number | undefined {
  const value = label(pod, key);
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** Ready groups that are capacity. Index-less kinds can't tell surge apart, so the count is capped at spec. */
export function capacityGroups(groups: readonly GroupView[], specGroups: number): number {
  const ready = groups.filter((g) => g.ready && !g.surge).length;
  return Math.min(ready, specGroups);
}

// ---- LeaderWorkerSet --------------------------------------------------------------------------------

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
    let ready = leader !== undefined && isPodReady(leader);
    if (ready && leader) {
      const leaderKey = label(leader, LWS_LABELS.groupKey);
      const readyWorkerIndexes = new Set<number>();
      for (const w of workers) {
        if (leaderKey !== undefined && label(w, LWS_LABELS.groupKey) !== leaderKey) continue;
        const wi = intLabel(w, LWS_LABELS.workerIndex);
        if (wi !== undefined && wi < groupSize && isPodReady(w)) readyWorkerIndexes.add(wi);
      }
      ready = readyWorkerIndexes.size === groupSize - 1;
    }
    out.push({ key: String(groupIndex), ready, surge: groupIndex >= specReplicas, head: leader });
  }
  return out;
}

// ---- KubeRay RayCluster as one group (AIBrix RayClusterFleet) ---------------------------------------

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

export const RAY_LABELS = {
  cluster: 'ray.io/cluster',
  nodeType: 'ray.io/node-type',
  group: 'ray.io/group',
  replicaName: 'ray.io/worker-group-replica-name',
  hostIndex: 'ray.io/replica-host-index',
} as const;

/**
 * Fleet groups = its RayClusters. Fleet status.readyReplicas uses the same rule but also counts old and
 * new clusters during a rolling update and names none, so we evaluate each cluster and cap at spec
 * (clusters have no index to tell surge apart). Head = the cluster's `ray.io/node-type=head` pod.
 */
export function fleetGroups(rayClusters: readonly RayClusterLike[], headPods: readonly V1Pod[]): GroupView[] {
  const headByCluster = new Map<string, V1Pod>();
  for (const pod of headPods) {
    const cluster = label(pod, RAY_LABELS.cluster);
    if (cluster !== undefined) headByCluster.set(cluster, pod);
  }
  return rayClusters.map((rc) => {
    const name = rc.metadata?.name ?? '';
    return { key: name, ready: rayClusterReady(rc), surge: false, head: headByCluster.get(name) };
  });
}

// ---- KubeRay worker group ---------------------------------------------------------------------------

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
    }));
  }
  const byReplica = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const replica = label(pod, RAY_LABELS.replicaName);
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
    return { key: replica, ready: readyHosts === numOfHosts, surge: false, head: sorted[0] };
  });
}

// ---- Grove PodCliqueScalingGroup --------------------------------------------------------------------

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
    const head = pods
      .filter((p) => leaderPclq !== undefined && label(p, GROVE_LABELS.podClique) === leaderPclq)
      .sort(
        (a, b) =>
          (intLabel(a, GROVE_LABELS.podIndex) ?? Number.MAX_SAFE_INTEGER) -
          (intLabel(b, GROVE_LABELS.podIndex) ?? Number.MAX_SAFE_INTEGER),
      )[0];
    out.push({ key: String(j), ready, surge: j >= specReplicas, head });
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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---- AIBrix StormService role -----------------------------------------------------------------------

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
    }));
  }
  const byPodSet = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const podSet = label(pod, STORM_LABELS.podSet);
    if (podSet === undefined) continue;
    byPodSet.set(podSet, [...(byPodSet.get(podSet) ?? []), pod]);
  }
  return [...byPodSet].map(([podSet, members]) => ({
    key: podSet,
    ready: members.filter(isPodReady).length === podGroupSize,
    surge: false,
    head: members.find((p) => intLabel(p, STORM_LABELS.podGroupIndex) === 0),
  }));
}

// ---- Deployment / StatefulSet (group of size 1) -----------------------------------------------------

/** StatefulSet pods by ordinal (name suffix): ordinals ≥ spec are leftovers of a scale-down. */
export function statefulSetGroups(
  setName: string,
  specReplicas: number,
  pods: readonly V1Pod[],
): GroupView[] {
  const pattern = new RegExp(`^${escapeRegExp(setName)}-(\\d+)$`);
  const out: GroupView[] = [];
  for (const pod of pods) {
    const m = pattern.exec(pod.metadata?.name ?? '');
    if (m?.[1] === undefined) continue;
    const ordinal = Number(m[1]);
    out.push({ key: String(ordinal), ready: isPodReady(pod), surge: ordinal >= specReplicas, head: pod });
  }
  return out.sort((a, b) => Number(a.key) - Number(b.key));
}

/** Deployment pods: each pod is a group; old and new ReplicaSets mix during a rollout (no index). */
export function podGroups(pods: readonly V1Pod[]): GroupView[] {
  return pods.map((pod) => ({
    key: pod.metadata?.name ?? '',
    ready: isPodReady(pod),
    surge: false,
    head: pod,
  }));
}
