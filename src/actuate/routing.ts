/**
 * Routing for a drain: kvpa's readiness gate. A pod template that lists
 *
 *   readinessGates: [{conditionType: kvpa.io/serving}]
 *
 * is Ready only while its pod's `kvpa.io/serving` condition is True (kubernetes.io/docs/concepts/workloads/pods/
 * pod-lifecycle/#pod-readiness-gate), so kvpa takes a group out of the Service and InferencePool endpoints by
 * setting the condition False on its pods, and keeps every other gated pod True. Pure parts decide which pods
 * to patch; `setServing` patches one pod's status (the `pods/status` subresource, strategic merge by type, so
 * the kubelet's own conditions are untouched).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { LWS_LABELS } from './kinds/lws.ts';
import { apiErrorMessage, FIELD_MANAGER, httpStatusOf, type KubeClients } from './kube.ts';
import { conditionTrue, isPodRunning } from './readiness.ts';
import type { HeadPod } from './types.ts';

export const SERVING_CONDITION = 'kvpa.io/serving';

/** One pod of the target, as routing sees it. */
export interface RoutingPod {
  readonly name: string;
  readonly groupKey: string;
  /** The pod lists kvpa's readiness gate. */
  readonly gated: boolean;
  /** Its `kvpa.io/serving` condition: true, false, or undefined when absent. */
  readonly serving: boolean | undefined;
}

/** One group in the workload's removal order. */
export interface DrainTargetGroup {
  readonly key: string;
  /** Its head's engine runs (containers ready), routed or not: it may hold requests. */
  readonly serving: boolean;
  readonly head: HeadPod | undefined;
}

/** What a drain needs of a target: its groups, first removed first, and every pod with its gate. */
export interface DrainView {
  readonly order: readonly DrainTargetGroup[];
  readonly pods: readonly RoutingPod[];
  /** Where the readiness gate goes in this kind's objects, named in the message when a head lacks it. */
  readonly gateTemplate?: string;
  /** Why this target cannot drain now whatever its gates (its victims cannot be told apart, …). */
  readonly unavailable?: string;
  /**
   * The workload removes the pods kvpa chooses: those it names with the lower count (a KubeRay worker group's
   * `scaleStrategy.workersToDelete`), or those out of routing, which are not Ready (a Deployment's ReplicaSet
   * removes those first). So `order` is no removal order: kvpa ranks the groups itself (`chooseVictims`,
   * src/decide/drain.ts). Absent: the workload picks.
   */
  readonly chosenVictims?: true;
  /**
   * The workload removes at most this many drained groups per lower count without blocking (an OrderedReady
   * StatefulSet: see kinds/apps.ts), so a longer scale-down drains in steps of this many. Absent: no limit.
   */
  readonly maxVictims?: number;
}

function routingPod(pod: V1Pod, groupKey: string): RoutingPod | undefined {
  const name = pod.metadata?.name;
  if (name === undefined) return undefined;
  const gated = (pod.spec?.readinessGates ?? []).some((g) => g.conditionType === SERVING_CONDITION);
  const condition = pod.status?.conditions?.find((c) => c.type === SERVING_CONDITION);
  return {
    name,
    groupKey,
    gated,
    serving: condition === undefined ? undefined : conditionTrue([condition], SERVING_CONDITION),
  };
}

function digits(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** One group of an indexed workload: the pod whose engine is read (absent: none yet) and its other pods. */
export interface IndexedGroup {
  readonly head: V1Pod | undefined;
  /** The group's other pods in order (their engines hold requests of the group with ranksOn: all). */
  readonly members: readonly V1Pod[];
  /** Every pod of the group, head and members and pods of neither, in the order listed. */
  readonly pods: readonly V1Pod[];
}

/** One group as the drain sees it: it serves while its head's engine runs; its head carries its members. */
function drainTargetGroup(
  namespace: string,
  key: string,
  head: V1Pod | undefined,
  members: readonly V1Pod[],
): DrainTargetGroup {
  const name = head?.metadata?.name;
  const podIP = head?.status?.podIP;
  const memberRefs = members.flatMap((m) => {
    const memberName = m.metadata?.name;
    const ip = m.status?.podIP;
    return memberName ? [{ name: memberName, ...(ip ? { podIP: ip } : {}) }] : [];
  });
  return {
    key,
    serving: head !== undefined && isPodRunning(head),
    head:
      head === undefined || name === undefined
        ? undefined
        : {
            namespace,
            name,
            groupKey: key,
            groupReady: false,
            surge: false,
            ...(podIP ? { podIP } : {}),
            members: memberRefs,
          },
  };
}

/**
 * The drain view of a workload that removes its highest-index groups first (LeaderWorkerSet, Grove): groups by
 * index, highest first; a group serves while its head's engine runs.
 */
export function highestIndexFirst(
  namespace: string,
  groups: ReadonlyMap<number, IndexedGroup>,
  gateTemplate?: string,
): DrainView {
  const routing: RoutingPod[] = [];
  for (const [index, g] of [...groups].sort((a, b) => a[0] - b[0])) {
    for (const pod of g.pods) {
      const r = routingPod(pod, String(index));
      if (r !== undefined) routing.push(r);
    }
  }
  const order = [...groups]
    .sort((a, b) => b[0] - a[0])
    .map(([index, { head, members }]) => drainTargetGroup(namespace, String(index), head, members));
  return { order, pods: routing, ...(gateTemplate !== undefined ? { gateTemplate } : {}) };
}

/** Key of a group the spec counts but the workload has not created: no pod can hold it. */
export const notCreatedKey = (n: number) => `(not created ${n})`;

/**
 * The drain view of a workload that removes the pods kvpa names (KubeRay worker groups): every group with all its
 * pods, by key, after one entry per group the spec counts but no pod stands for yet (`missing`), which a
 * lower count drops without naming a pod. kvpa ranks them (`chooseVictims`).
 */
export function chosenVictimsView(
  namespace: string,
  groups: readonly {
    readonly key: string;
    readonly head: V1Pod | undefined;
    readonly members: readonly V1Pod[];
  }[],
  missing: number,
  gateTemplate?: string,
): DrainView {
  const sorted = [...groups].sort((a, b) => a.key.localeCompare(b.key));
  const routing: RoutingPod[] = [];
  for (const g of sorted) {
    for (const pod of [...(g.head ? [g.head] : []), ...g.members]) {
      const r = routingPod(pod, g.key);
      if (r !== undefined) routing.push(r);
    }
  }
  const order: DrainTargetGroup[] = [];
  for (let n = 1; n <= missing; n++) order.push({ key: notCreatedKey(n), serving: false, head: undefined });
  for (const g of sorted) order.push(drainTargetGroup(namespace, g.key, g.head, g.members));
  return {
    order,
    pods: routing,
    chosenVictims: true,
    ...(gateTemplate !== undefined ? { gateTemplate } : {}),
  };
}

/**
 * A LeaderWorkerSet's drain view: groups by `group-index`, highest first, since LWS renders its groups as the
 * ordinals of a leader StatefulSet and a StatefulSet removes the highest ordinal first
 * (kubernetes.io/docs/concepts/workloads/controllers/statefulset/#deployment-and-scaling-guarantees).
 */
export function lwsDrainView(namespace: string, pods: readonly V1Pod[]): DrainView {
  const groups = new Map<number, { head: V1Pod | undefined; members: V1Pod[]; pods: V1Pod[] }>();
  for (const pod of pods) {
    // Digits only, as lwsGroups reads them: '' or '0x3' must not become a group the readiness view lacks.
    const index = digits(pod.metadata?.labels?.[LWS_LABELS.groupIndex]);
    const worker = digits(pod.metadata?.labels?.[LWS_LABELS.workerIndex]);
    if (index === undefined) continue;
    const entry = groups.get(index) ?? { head: undefined, members: [], pods: [] };
    if (worker === 0) entry.head = pod;
    else if (worker !== undefined) entry.members.push(pod);
    entry.pods.push(pod);
    groups.set(index, entry);
  }
  // Workers too: with ranksOn: all their engines hold requests of the group.
  const byWorker = (a: V1Pod, b: V1Pod) =>
    (digits(a.metadata?.labels?.[LWS_LABELS.workerIndex]) ?? 0) -
    (digits(b.metadata?.labels?.[LWS_LABELS.workerIndex]) ?? 0);
  for (const g of groups.values()) g.members.sort(byWorker);
  return highestIndexFirst(namespace, groups);
}

/**
 * Why the pool cannot drain, or undefined: the view's own reason if it has one; else every group head must carry
 * the readiness gate, or taking it "out of routing" would change nothing and the drain would only delay the
 * scale-down.
 */
export function gateProblem(view: DrainView): string | undefined {
  if (view.unavailable !== undefined) return view.unavailable;
  const heads = new Set(view.order.flatMap((g) => (g.head ? [g.head.name] : [])));
  const ungated = view.pods.filter((p) => heads.has(p.name) && !p.gated).map((p) => p.name);
  if (ungated.length === 0) return undefined;
  const shown = ungated.slice(0, 3).join(', ') + (ungated.length > 3 ? `, … (${ungated.length})` : '');
  return `pod(s) ${shown} have no readiness gate ${SERVING_CONDITION}: add readinessGates: [{conditionType: ${SERVING_CONDITION}}] to the pod template${view.gateTemplate !== undefined ? ` (${view.gateTemplate})` : ''} to drain`;
}

/**
 * The pods whose condition must change: gated pods of groups out of routing go False, every other gated pod
 * True (a new pod has no condition and is not Ready until kvpa sets it). Ungated pods are never touched.
 */
export function routingPatches(
  pods: readonly RoutingPod[],
  outOfRouting: ReadonlySet<string>,
): { name: string; serving: boolean }[] {
  const out: { name: string; serving: boolean }[] = [];
  for (const p of pods) {
    if (!p.gated) continue;
    const serving = !outOfRouting.has(p.groupKey);
    if (p.serving !== serving) out.push({ name: p.name, serving });
  }
  return out;
}

/** The pool that takes a pod out of routing: its PodAutoscaler (in the pod's namespace), pool and target. */
export interface RoutingOwner {
  readonly podAutoscaler: string;
  readonly pool: string;
  /** `<kind>/<name>` of the pool's scaleTargetRef. */
  readonly target: string;
}

/** The message of a False condition: it names its owner, so a pod whose pool is gone can be found and routed. */
export function drainingMessage(owner: RoutingOwner, reason: string): string {
  return `kvpa drains this group (PodAutoscaler ${owner.podAutoscaler}, pool ${owner.pool}, ${owner.target}): ${reason}`;
}

const DRAINING_MESSAGE = /^kvpa drains this group \(PodAutoscaler (\S+), pool (\S+), (\S+)\): /;

/** The owner a False condition's message names (`drainingMessage`); undefined for any other message. */
export function drainingOwner(message: string | undefined): RoutingOwner | undefined {
  const m = DRAINING_MESSAGE.exec(message ?? '');
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) return undefined;
  return { podAutoscaler: m[1], pool: m[2], target: m[3] };
}

/** The key of a pool's routing in `namespace`, as `orphanedPods` matches owners. */
export const routingOwnerKey = (namespace: string, o: RoutingOwner) =>
  `${namespace}/${o.podAutoscaler}/${o.pool}/${o.target}`;

/** A pod with kvpa's condition False, as the sweep lists it. */
export interface OutOfRoutingPod {
  readonly namespace: string;
  readonly name: string;
  readonly owner: RoutingOwner | undefined;
}

/**
 * The pods out of routing that no live pool holds: their owner (a pool of a valid PodAutoscaler, by
 * `routingOwnerKey`) is gone, or their message names none (written by another version of kvpa). A live pool's own
 * decisions route its pods, so those are never touched here.
 */
export function orphanedPods(pods: readonly OutOfRoutingPod[], live: ReadonlySet<string>): OutOfRoutingPod[] {
  return pods.filter((p) => p.owner === undefined || !live.has(routingOwnerKey(p.namespace, p.owner)));
}

const SWEEP_PAGE = 500;

/**
 * Every pod whose `kvpa.io/serving` condition is False, in `namespace` or (undefined) all namespaces, a page at a
 * time: pod conditions cannot be selected on, so the list reads every pod.
 */
export async function listOutOfRouting(
  clients: KubeClients,
  namespace: string | undefined,
): Promise<OutOfRoutingPod[]> {
  const out: OutOfRoutingPod[] = [];
  let cont: string | undefined;
  do {
    const page = { limit: SWEEP_PAGE, ...(cont !== undefined ? { _continue: cont } : {}) };
    const list =
      namespace === undefined
        ? await clients.core.listPodForAllNamespaces(page)
        : await clients.core.listNamespacedPod({ namespace, ...page });
    for (const pod of list.items) {
      const condition = pod.status?.conditions?.find((c) => c.type === SERVING_CONDITION);
      const name = pod.metadata?.name;
      if (condition?.status !== 'False' || name === undefined) continue;
      out.push({
        namespace: pod.metadata?.namespace ?? namespace ?? 'default',
        name,
        owner: drainingOwner(condition.message),
      });
    }
    cont = list.metadata?._continue || undefined;
  } while (cont !== undefined);
  return out;
}

const strategicMerge = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/** Sets `kvpa.io/serving` on one pod (pods/status, merged by condition type). A pod already gone is no error. */
export async function setServing(
  clients: KubeClients,
  namespace: string,
  name: string,
  serving: boolean,
  message: string,
  now: Date = new Date(),
): Promise<void> {
  try {
    await patchStatus();
  } catch (err) {
    const status = httpStatusOf(err);
    if (status === 404) return;
    throw new Error(
      `setting ${SERVING_CONDITION}=${serving ? 'True' : 'False'} on pod ${namespace}/${name} failed (HTTP ${status ?? '?'}): ${apiErrorMessage(err)}`,
      { cause: err },
    );
  }

  function patchStatus() {
    return clients.core.patchNamespacedPodStatus(
      {
        name,
        namespace,
        fieldManager: FIELD_MANAGER,
        body: {
          status: {
            conditions: [
              {
                type: SERVING_CONDITION,
                status: serving ? 'True' : 'False',
                reason: serving ? 'Serving' : 'Draining',
                message,
                lastTransitionTime: now,
              },
            ],
          },
        },
      },
      strategicMerge,
    );
  }
}
