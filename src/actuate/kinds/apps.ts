/**
 * Deployment and StatefulSet (apps/v1): groups of one pod, scaled through /scale.
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

/** What differs between a Deployment and a StatefulSet target: the two API calls and how pods group. */
interface AppsKind {
  read(clients: KubeClients, name: string, namespace: string): Promise<V1Deployment | V1StatefulSet>;
  patchScale(
    clients: KubeClients,
    params: { name: string; namespace: string; body: object; fieldManager: string },
  ): Promise<unknown>;
  groups(ref: ScaleTargetRef, specGroups: number, pods: V1Pod[]): GroupView[];
}

const DEPLOYMENT: AppsKind = {
  read: (c, name, namespace) => c.apps.readNamespacedDeployment({ name, namespace }),
  patchScale: (c, params) => c.apps.patchNamespacedDeploymentScale(params, mergePatchOptions),
  groups: (_ref, _spec, pods) => podGroups(pods),
};

const STATEFUL_SET: AppsKind = {
  read: (c, name, namespace) => c.apps.readNamespacedStatefulSet({ name, namespace }),
  patchScale: (c, params) => c.apps.patchNamespacedStatefulSetScale(params, mergePatchOptions),
  // ordinals ≥ spec are a scale-down's leftovers: surge heads
  groups: (ref, spec, pods) => statefulSetGroups(ref.name, spec, pods),
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
    return {
      specGroups,
      readyGroups: Math.min(o.status?.readyReplicas ?? 0, specGroups),
      groupSize: 1,
      ...(o.spec?.template?.spec !== undefined
        ? { gpusPerGroup: podGpus(o.spec.template.spec, gpuResourceOf([o.spec.template.spec])) }
        : {}),
      resourceVersion: requireResourceVersion(this.ref, this.namespace, o.metadata),
      countManagers: managersOf(o.metadata as ObjectMeta, ['f:spec', 'f:replicas']),
    };
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
