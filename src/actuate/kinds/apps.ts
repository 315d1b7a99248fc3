/**
 * Deployment and StatefulSet (apps/v1): groups of one pod, scaled through /scale.
 *
 * Drain: a StatefulSet removes its highest ordinals first (kubernetes.io/docs/concepts/workloads/controllers/
 * statefulset/#deployment-and-scaling-guarantees), so kvpa knows the victims. A Deployment's ReplicaSet removes the
 * pods its ranking puts first (kubernetes pkg/controller/controller_utils.go, ActivePodsWithRanks.Less): unscheduled,
 * then Pending, then not Ready, and only then by `controller.kubernetes.io/pod-deletion-cost`. A pod kvpa takes out
 * of routing is not Ready (its readiness gate is False), so kvpa chooses the victims itself (starting pods, then the
 * fewest requests in flight) and the ReplicaSet removes them: readiness ranks ahead of any deletion cost, so kvpa
 * sets none (that would need `patch` on whole pods, which can rewrite their images). Best-effort, as pod-deletion-
 * cost is upstream: a pod that turns not Ready between kvpa's read and the ReplicaSet's sync may go instead (it
 * was out of routing too), and the victim is routed again after the removal grace.
 */
import type { V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import {
  FIELD_MANAGER,
  type KubeClients,
  listPods,
  mergePatchOptions,
  onTarget,
  scalePatch,
} from '../kube.ts';
import { gpuResourceOf, podGpus } from '../placement.ts';
import { escapeRegExp, type GroupView, isPodReady } from '../readiness.ts';
import {
  chosenVictimsView,
  type DrainView,
  highestIndexFirst,
  type IndexedGroup,
  setServing,
} from '../routing.ts';
import type { HeadPod, ScaleTarget, TargetState } from '../types.ts';
import {
  headsOf,
  type KindModule,
  labelSelectorString,
  managersOf,
  type ObjectMeta,
  requireGroups,
  requireResourceVersion,
} from './base.ts';

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
    out.push({
      key: String(ordinal),
      ready: isPodReady(pod),
      surge: ordinal >= specReplicas,
      head: pod,
      members: [],
    });
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
    members: [],
  }));
}

/**
 * A StatefulSet's drain view: ordinals `start` … `start + replicas - 1` highest first, one not created yet
 * standing as a group without a pod (it is removed first, and holds no request), then the ordinals outside that
 * range, which are already leaving: listed so a drain sees its victims until they are gone, never chosen.
 * With `podManagementPolicy: OrderedReady` (the default) the controller deletes a condemned pod only while every
 * other one is Ready, or it is the first not Ready one (kubernetes pkg/controller/statefulset/
 * stateful_set_control.go, processCondemned): two drained ordinals would block each other, so it drains one
 * ordinal per write (`maxVictims`).
 */
export function statefulSetDrainView(
  namespace: string,
  set: Pick<V1StatefulSet, 'metadata' | 'spec'>,
  pods: readonly V1Pod[],
): DrainView {
  const name = set.metadata?.name ?? '';
  const start = set.spec?.ordinals?.start ?? 0;
  const end = start + (set.spec?.replicas ?? 1);
  const pattern = new RegExp(`^${escapeRegExp(name)}-(\\d+)$`);
  const live = new Map<number, IndexedGroup>();
  const leaving = new Map<number, IndexedGroup>();
  for (let ordinal = start; ordinal < end; ordinal++)
    live.set(ordinal, { head: undefined, members: [], pods: [] });
  for (const pod of pods) {
    const m = pattern.exec(pod.metadata?.name ?? '');
    if (m?.[1] === undefined) continue;
    const ordinal = Number(m[1]);
    (ordinal >= start && ordinal < end ? live : leaving).set(ordinal, {
      head: pod,
      members: [],
      pods: [pod],
    });
  }
  const view = highestIndexFirst(namespace, live, 'spec.template.spec of the StatefulSet');
  const gone = highestIndexFirst(namespace, leaving);
  return {
    ...view,
    order: [...view.order, ...gone.order],
    pods: [...view.pods, ...gone.pods],
    ...(set.spec?.podManagementPolicy === 'Parallel' ? {} : { maxVictims: 1 }),
  };
}

/** The label the Deployment controller puts on a ReplicaSet's pods (kubernetes.io/docs/concepts/workloads/controllers/deployment/#pod-template-hash-label). */
const POD_TEMPLATE_HASH = 'pod-template-hash';

/**
 * A Deployment's drain view: kvpa chooses the victims (see the header) among the pods its ReplicaSets count
 * (not being deleted, not finished), after one entry per pod the spec counts but none stands for yet. While pods of
 * two ReplicaSets run (a rollout) the Deployment splits a scale-down between them in proportion (kubernetes
 * pkg/controller/deployment/sync.go, scale), so which pods go cannot be chosen: the view says so.
 */
export function deploymentDrainView(
  namespace: string,
  deployment: Pick<V1Deployment, 'metadata' | 'spec'>,
  pods: readonly V1Pod[],
): DrainView {
  const name = deployment.metadata?.name ?? '';
  const active = pods.filter(
    (p) =>
      p.metadata?.deletionTimestamp == null &&
      p.status?.phase !== 'Succeeded' &&
      p.status?.phase !== 'Failed' &&
      // Its ReplicaSets' pods only: `<deployment>-<pod-template-hash>` controls them.
      (p.metadata?.ownerReferences ?? []).some(
        (o) =>
          o.controller === true &&
          o.kind === 'ReplicaSet' &&
          o.name === `${name}-${p.metadata?.labels?.[POD_TEMPLATE_HASH] ?? ''}`,
      ),
  );
  const replicaSets = new Set(active.map((p) => p.metadata?.labels?.[POD_TEMPLATE_HASH]));
  const view = chosenVictimsView(
    namespace,
    active.map((p) => ({ key: p.metadata?.name ?? '', head: p, members: [] })),
    Math.max(0, (deployment.spec?.replicas ?? 1) - active.length),
    'spec.template.spec of the Deployment',
  );
  if (replicaSets.size <= 1) return view;
  return {
    ...view,
    unavailable: `the Deployment is rolling out (pods of ${replicaSets.size} ReplicaSets): it splits a scale-down between them, so the pods it removes cannot be chosen`,
  };
}

/** What differs between a Deployment and a StatefulSet target: the API calls, how pods group, the drain view. */
interface AppsKind {
  read(clients: KubeClients, name: string, namespace: string): Promise<V1Deployment | V1StatefulSet>;
  patchScale(
    clients: KubeClients,
    params: { name: string; namespace: string; body: object; fieldManager: string },
  ): Promise<unknown>;
  groups(ref: ScaleTargetRef, specGroups: number, pods: V1Pod[]): GroupView[];
  drainView(namespace: string, object: V1Deployment | V1StatefulSet, pods: readonly V1Pod[]): DrainView;
}

const DEPLOYMENT: AppsKind = {
  read: (c, name, namespace) => c.apps.readNamespacedDeployment({ name, namespace }),
  patchScale: (c, params) => c.apps.patchNamespacedDeploymentScale(params, mergePatchOptions),
  groups: (_ref, _spec, pods) => podGroups(pods),
  drainView: (namespace, o, pods) => deploymentDrainView(namespace, o as V1Deployment, pods),
};

const STATEFUL_SET: AppsKind = {
  read: (c, name, namespace) => c.apps.readNamespacedStatefulSet({ name, namespace }),
  patchScale: (c, params) => c.apps.patchNamespacedStatefulSetScale(params, mergePatchOptions),
  // ordinals ≥ spec are a scale-down's leftovers: surge heads
  groups: (ref, spec, pods) => statefulSetGroups(ref.name, spec, pods),
  drainView: (namespace, o, pods) => statefulSetDrainView(namespace, o as V1StatefulSet, pods),
};

/**
 * Deployment and StatefulSet: groups of size 1, so status.readyReplicas (pods Ready) is the ready-group
 * count; capped at spec because a Deployment rollout's surge pods and a StatefulSet scale-down's
 * leftovers both count there.
 */
export class AppsTarget implements ScaleTarget {
  constructor(
    private readonly clients: KubeClients,
    readonly namespace: string,
    readonly ref: ScaleTargetRef,
    private readonly kind: AppsKind,
  ) {}

  private get() {
    return onTarget(this.ref, this.namespace, 'reading', () =>
      this.kind.read(this.clients, this.ref.name, this.namespace),
    );
  }

  async read(): Promise<TargetState> {
    const o = await this.get();
    const specGroups = o.spec?.replicas ?? 1;
    const pods = await listPods(this.clients, this.namespace, labelSelectorString(o.spec?.selector));
    return {
      specGroups,
      readyGroups: Math.min(o.status?.readyReplicas ?? 0, specGroups),
      groupSize: 1,
      ...(o.spec?.template?.spec !== undefined
        ? { gpusPerGroup: podGpus(o.spec.template.spec, gpuResourceOf([o.spec.template.spec])) }
        : {}),
      resourceVersion: requireResourceVersion(this.ref, this.namespace, o.metadata),
      countManagers: managersOf(o.metadata as ObjectMeta, ['f:spec', 'f:replicas']),
      drain: this.kind.drainView(this.namespace, o, pods),
    };
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    await setServing(this.clients, this.namespace, podName, serving, message);
  }

  async write(groups: number, resourceVersion: string): Promise<void> {
    requireGroups(this.ref, this.namespace, groups);
    await onTarget(this.ref, this.namespace, 'scaling', () =>
      this.kind.patchScale(this.clients, {
        name: this.ref.name,
        namespace: this.namespace,
        body: scalePatch(groups, resourceVersion),
        fieldManager: FIELD_MANAGER,
      }),
    );
  }

  async heads(): Promise<HeadPod[]> {
    const o = await this.get();
    const pods = await listPods(this.clients, this.namespace, labelSelectorString(o.spec?.selector));
    return headsOf(this.namespace, this.kind.groups(this.ref, o.spec?.replicas ?? 1, pods));
  }
}

export const deployment: KindModule = {
  kind: 'Deployment',
  plural: 'deployments',
  exampleVersion: 'v1',
  create: (clients, namespace, ref: ScaleTargetRef) => new AppsTarget(clients, namespace, ref, DEPLOYMENT),
};

export const statefulSet: KindModule = {
  kind: 'StatefulSet',
  plural: 'statefulsets',
  exampleVersion: 'v1',
  create: (clients, namespace, ref: ScaleTargetRef) => new AppsTarget(clients, namespace, ref, STATEFUL_SET),
};
