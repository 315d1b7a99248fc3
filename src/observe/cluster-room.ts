/**
 * The cluster's free room for one GPU resource, read from the API server: every node's allocatable GPUs less
 * the requests of the pods bound to it (what the scheduler's NodeResourcesFit compares), the nodes' labels,
 * taints and readiness, and the namespace's ResourceQuotas on the resource. The decision on what fits is
 * pure (src/decide/placement.ts); this module only reads.
 *
 * Bounded: pages of 500 objects, at most MAX_NODES nodes and MAX_PODS bound pods (a larger cluster answers
 * "unknown", which limits nothing), each call under the clients' deadline.
 */
import type { V1Node, V1Pod, V1ResourceQuota } from '@kubernetes/client-node';
import { apiErrorMessage, type KubeClients } from '../actuate/kube.ts';
import { deviceCount, podGpus } from '../actuate/placement.ts';
import type { NodeRoom, QuotaRoom, Taint } from '../decide/placement.ts';

const PAGE = 500;
export const MAX_NODES = 20_000;
export const MAX_PODS = 200_000;

export interface ClusterRoom {
  readonly nodes: readonly NodeRoom[];
  readonly quotas: readonly QuotaRoom[];
}

async function paged<T>(
  what: string,
  max: number,
  call: (page: {
    limit: number;
    _continue?: string;
  }) => Promise<{ items: T[]; metadata?: { _continue?: string } }>,
): Promise<T[]> {
  const out: T[] = [];
  let cont: string | undefined;
  do {
    let page: Awaited<ReturnType<typeof call>>;
    try {
      page = await call({ limit: PAGE, ...(cont !== undefined ? { _continue: cont } : {}) });
    } catch (err) {
      throw new Error(`listing ${what} failed: ${apiErrorMessage(err)}`, { cause: err });
    }
    out.push(...page.items);
    if (out.length > max) throw new Error(`more than ${max} ${what}: too large to check capacity`);
    cont = page.metadata?._continue || undefined;
  } while (cont !== undefined);
  return out;
}

function nodeReady(node: V1Node): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Free room per node for `gpuResource`: allocatable less what bound, unfinished pods request. */
export function nodeRooms(nodes: readonly V1Node[], pods: readonly V1Pod[], gpuResource: string): NodeRoom[] {
  const used = new Map<string, number>();
  for (const pod of pods) {
    const nodeName = pod.spec?.nodeName;
    const phase = pod.status?.phase;
    if (!nodeName || phase === 'Succeeded' || phase === 'Failed' || pod.spec === undefined) continue;
    used.set(nodeName, (used.get(nodeName) ?? 0) + podGpus(pod.spec, gpuResource));
  }
  return nodes.map((n) => {
    const name = n.metadata?.name ?? '';
    const allocatable = deviceCount(n.status?.allocatable?.[gpuResource]);
    const taints: Taint[] = (n.spec?.taints ?? []).map((t) => ({
      key: t.key,
      effect: t.effect,
      ...(t.value !== undefined ? { value: t.value } : {}),
    }));
    return {
      name,
      labels: n.metadata?.labels ?? {},
      taints,
      freeGpus: allocatable - (used.get(name) ?? 0),
      schedulable: n.spec?.unschedulable !== true && nodeReady(n),
    };
  });
}

/** Quotas in the namespace that bound `requests.<gpuResource>` (or `<gpuResource>` for extended resources). */
export function quotaRooms(quotas: readonly V1ResourceQuota[], gpuResource: string): QuotaRoom[] {
  const keys = [`requests.${gpuResource}`, gpuResource];
  const out: QuotaRoom[] = [];
  for (const q of quotas) {
    const hard = q.status?.hard ?? q.spec?.hard ?? {};
    const key = keys.find((k) => hard[k] !== undefined);
    if (key === undefined) continue;
    const usedNow = deviceCount(q.status?.used?.[key]);
    out.push({
      kind: 'ResourceQuota',
      name: q.metadata?.name ?? '',
      freeGpus: deviceCount(hard[key]) - usedNow,
    });
  }
  return out;
}

const KUEUE = { group: 'kueue.x-k8s.io', version: 'v1beta2' } as const;

interface ClusterQueueLike {
  metadata?: { name?: string };
  spec?: {
    resourceGroups?: {
      flavors?: { name?: string; resources?: { name?: string; nominalQuota?: string | number }[] }[];
    }[];
  };
  status?: { flavorsUsage?: { name?: string; resources?: { name?: string; total?: string | number }[] }[] };
}

/**
 * What a ClusterQueue leaves of `gpuResource`: Σ over its flavors of nominalQuota less Σ of what admitted
 * workloads use (status.flavorsUsage). Borrowing from a cohort is not counted: it is not guaranteed.
 */
export function clusterQueueRoom(cq: ClusterQueueLike, gpuResource: string): QuotaRoom | null {
  const count = (q: string | number | undefined) => (typeof q === 'number' ? Math.floor(q) : deviceCount(q));
  let nominal = 0;
  let governs = false;
  for (const g of cq.spec?.resourceGroups ?? []) {
    for (const f of g.flavors ?? []) {
      for (const r of f.resources ?? []) {
        if (r.name !== gpuResource) continue;
        governs = true;
        nominal += count(r.nominalQuota);
      }
    }
  }
  if (!governs) return null;
  let used = 0;
  for (const f of cq.status?.flavorsUsage ?? []) {
    for (const r of f.resources ?? []) if (r.name === gpuResource) used += count(r.total);
  }
  return { kind: 'ClusterQueue', name: cq.metadata?.name ?? '', freeGpus: nominal - used };
}

/** The ClusterQueue behind LocalQueue `queue` of `namespace`, as room for `gpuResource` (null: it does not limit it). */
export async function readKueueRoom(
  clients: KubeClients,
  namespace: string,
  queue: string,
  gpuResource: string,
): Promise<QuotaRoom | null> {
  const read = async <T>(what: string, call: () => Promise<unknown>): Promise<T> => {
    try {
      return (await call()) as T;
    } catch (err) {
      throw new Error(`reading the Kueue ${what} failed: ${apiErrorMessage(err)}`, { cause: err });
    }
  };
  const local = await read<{ spec?: { clusterQueue?: string } }>(`LocalQueue ${namespace}/${queue}`, () =>
    clients.custom.getNamespacedCustomObject({ ...KUEUE, plural: 'localqueues', namespace, name: queue }),
  );
  const name = local.spec?.clusterQueue;
  if (!name) throw new Error(`the Kueue LocalQueue ${namespace}/${queue} names no clusterQueue`);
  const cq = await read<ClusterQueueLike>(`ClusterQueue ${name}`, () =>
    clients.custom.getClusterCustomObject({ ...KUEUE, plural: 'clusterqueues', name }),
  );
  return clusterQueueRoom(cq, gpuResource);
}

/**
 * Reads nodes, bound pods (cluster-wide), the namespace's quotas and, for a workload in a Kueue LocalQueue, its
 * ClusterQueue. Throws with what failed.
 */
export async function readClusterRoom(
  clients: KubeClients,
  namespace: string,
  gpuResource: string,
  kueueQueue?: string,
): Promise<ClusterRoom> {
  const [nodes, pods, quotas, kueue] = await Promise.all([
    paged('nodes', MAX_NODES, (page) => clients.core.listNode(page)),
    paged('bound pods', MAX_PODS, (page) =>
      clients.core.listPodForAllNamespaces({
        ...page,
        fieldSelector: 'spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed',
      }),
    ),
    paged(`resourcequotas in ${namespace}`, 1000, (page) =>
      clients.core.listNamespacedResourceQuota({ ...page, namespace }),
    ),
    kueueQueue !== undefined ? readKueueRoom(clients, namespace, kueueQueue, gpuResource) : null,
  ]);
  const rooms = quotaRooms(quotas, gpuResource);
  return { nodes: nodeRooms(nodes, pods, gpuResource), quotas: kueue === null ? rooms : [...rooms, kueue] };
}
