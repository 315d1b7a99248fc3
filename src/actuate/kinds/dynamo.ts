/**
 * NVIDIA Dynamo DynamoGraphDeploymentScalingAdapter (ai-dynamo/dynamo deploy/operator): the /scale of one
 * component (or experimental component group) of a DynamoGraphDeployment. The adapter's status.replicas
 * copies spec, so readiness comes from the DGD's own status, per component: `status.components[c]` in
 * v1beta1 and `status.services[c]` in v1alpha1 (api/v1beta1/common.go ComponentReplicaStatus), which names
 * the resources behind it (`componentKind`, `componentNames[]`: old and new during a rollout) and counts
 * `readyReplicas`. Names are read, never built: the operator shortens long PodCliqueSet names with a hash.
 *
 * The adapter's count reaches the one PCSG or LWS behind the component, which removes its own highest-index
 * groups: the drain and placement views are that resource's (grove.ts, lws.ts). While the status names two
 * (old and new during a rollout) the victims cannot be told apart, and the pool is not drained.
 *
 * On the DisaggregatedSet backend the entry names the role's child LWSs only while the set reports every role
 * ready; otherwise it carries the set's counts and no names (internal/controller/
 * dgd_disaggregatedset_readiness_resolver.go, checkDisaggregatedSetReadiness). The LWSs are then found from
 * the pods the adapter's status.selector matches: Dynamo renders its graph and component labels into the
 * role's pod templates (same package, renderMultinodePodTemplateSpecsForDGDComponent), and the LWS
 * controller labels each pod with its LWS's name.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { getCustomOrUndefined, type KubeClients, listPods } from '../kube.ts';
import { groupGpus, KUEUE_QUEUE_LABEL, lwsGroupShape, lwsPendingGroups } from '../placement.ts';
import { capacityGroups, type GroupView, isPodReady } from '../readiness.ts';
import { type DrainView, lwsDrainView, setServing } from '../routing.ts';
import type { TargetState } from '../types.ts';
import {
  CustomScaleTarget,
  type KindModule,
  managersOf,
  type ObjectMeta,
  requireResourceVersion,
} from './base.ts';
import { type GroveObservation, observeGrove, PCSG_GVR, type PcsgLike } from './grove.ts';
import { type LeaderWorkerSetLike, LWS_GVR, LWS_LABELS, lwsGroups } from './lws.ts';

interface DgdsaLike {
  metadata?: ObjectMeta;
  spec?: {
    replicas?: number;
    dgdRef?: { name?: string; serviceName?: string; componentName?: string; componentGroupName?: string };
  };
  status?: { selector?: string };
}

export interface ComponentStatusLike {
  componentKind?: string;
  componentNames?: string[];
  replicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
}

export interface DgdLike {
  spec?: { experimental?: { componentGroups?: { name?: string; components?: { name?: string }[] }[] } };
  status?: {
    components?: Record<string, ComponentStatusLike>;
    services?: Record<string, ComponentStatusLike>;
  };
}

/**
 * The status entry of the adapter's target: the component's own entry; for a component group, an entry
 * under the group's name, else the first member component's (a group renders as one PCSG, so its
 * members share it). v1beta1's `components` and v1alpha1's `services` are the same map.
 */
export function componentStatusOf(
  dgd: DgdLike,
  component: string | undefined,
  group: string | undefined,
): ComponentStatusLike | undefined {
  const entries = dgd.status?.components ?? dgd.status?.services ?? {};
  if (group !== undefined) {
    if (entries[group] !== undefined) return entries[group];
    const members = dgd.spec?.experimental?.componentGroups?.find((g) => g.name === group)?.components ?? [];
    for (const m of members)
      if (m.name !== undefined && entries[m.name] !== undefined) return entries[m.name];
    return undefined;
  }
  return component === undefined ? undefined : entries[component];
}

export interface Observation {
  readonly groups: GroupView[];
  /** Ready groups that are capacity, before the cap at the adapter's spec. */
  readonly ready: number;
  readonly groupSize: number | null;
  /** The multi-node resource's drain and placement views (see the header); absent for one-pod replicas. */
  readonly drain?: DrainView;
  readonly placement?: NonNullable<TargetState['placement']>;
}

/**
 * The drain view of several resources named at once (a rollout): every pod, under its resource-prefixed group
 * key, so kvpa still routes every gated pod; no removal order, and the reason it cannot drain.
 */
export function rolloutDrainView(
  componentKind: string,
  names: readonly string[],
  views: readonly DrainView[],
): DrainView {
  return {
    order: [],
    pods: views.flatMap((v, i) => v.pods.map((p) => ({ ...p, groupKey: `${names[i]}/${p.groupKey}` }))),
    unavailable:
      `the DynamoGraphDeployment status names ${names.length} ${componentKind}s (${names.join(', ')}), a ` +
      'rollout in progress: which groups a scale-down removes is unknown',
  };
}

/** The LWSs some pods belong to (their leaderworkerset.sigs.k8s.io/name label), each once, sorted. */
export function lwsNamesOf(pods: readonly V1Pod[]): string[] {
  const names = pods.flatMap((p) => p.metadata?.labels?.[LWS_LABELS.name] ?? []);
  return [...new Set(names)].sort();
}

export class DynamoScalingAdapterTarget extends CustomScaleTarget {
  protected async observe(withHeads: boolean): Promise<{ state: TargetState; groups: GroupView[] }> {
    const adapter = await this.getObject<DgdsaLike>();
    const specGroups = adapter.spec?.replicas ?? 0;
    const ref = adapter.spec?.dgdRef;
    const component = ref?.componentName ?? ref?.serviceName;
    const group = ref?.componentGroupName;
    if (!ref?.name || (component === undefined && group === undefined)) {
      throw new Error(
        `DynamoGraphDeploymentScalingAdapter ${this.namespace}/${this.ref.name} has no spec.dgdRef.name and ` +
          'componentName/serviceName/componentGroupName: point scaleTargetRef at an adapter the Dynamo operator created',
      );
    }
    const dgd = await this.readDgd(ref.name);
    const entry = dgd === undefined ? undefined : componentStatusOf(dgd, component, group);
    // No DGD or no status yet: 0 ready, an honest "unknown" that blocks scale-down on readiness.
    const seen: Observation =
      entry === undefined
        ? { groups: [], ready: 0, groupSize: null }
        : await this.observeEntry(entry, adapter.status?.selector, withHeads);
    const state: TargetState = {
      specGroups,
      readyGroups: Math.min(seen.ready, specGroups),
      groupSize: seen.groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, adapter.metadata),
      ...(seen.drain !== undefined ? { drain: seen.drain } : {}),
      ...(seen.placement !== undefined
        ? { placement: seen.placement, gpusPerGroup: groupGpus(seen.placement.group) }
        : {}),
      countManagers: managersOf(adapter.metadata, ['f:spec', 'f:replicas']),
    };
    return { state, groups: seen.groups };
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    await setServing(this.clients, this.namespace, podName, serving, message);
  }

  /** The DGD at the adapter's own API version (v1beta1 adapters point at v1beta1 DGDs); undefined: gone. */
  private async readDgd(name: string): Promise<DgdLike | undefined> {
    const gvr = { group: this.gvr.group, version: this.gvr.version, plural: 'dynamographdeployments' };
    return getCustomOrUndefined<DgdLike>(this.clients, gvr, this.namespace, name);
  }

  /**
   * Groups behind one status entry. PCSG and LWS are multi-node: every named resource (old and new during
   * a rollout) is judged by its own kind's group rule. PodClique and Deployment are one pod per replica:
   * the entry's readyReplicas is the count, and the adapter's status.selector finds the pods.
   */
  private async observeEntry(
    entry: ComponentStatusLike,
    selector: string | undefined,
    withHeads: boolean,
  ): Promise<Observation> {
    const kind = entry.componentKind;
    let names = entry.componentNames ?? [];
    if (kind === 'LeaderWorkerSet' && names.length === 0 && selector) {
      // A DisaggregatedSet not all ready: no names in the entry (see the header).
      names = lwsNamesOf(await listPods(this.clients, this.namespace, selector));
    }
    if (kind === 'PodCliqueScalingGroup' || kind === 'LeaderWorkerSet') {
      const parts = await Promise.all(
        names.map((n) => (kind === 'LeaderWorkerSet' ? this.observeLws(n) : this.observePcsg(n))),
      );
      const groups = parts.flatMap((p, i) =>
        p.groups.map((g) => (names.length > 1 ? { ...g, key: `${names[i]}/${g.key}` } : g)),
      );
      const [only] = parts;
      const drain =
        parts.length === 1
          ? only?.drain
          : parts.length > 1
            ? rolloutDrainView(
                kind,
                names,
                parts.map((p) => p.drain ?? { order: [], pods: [] }),
              )
            : undefined;
      const placement = parts.length === 1 ? only?.placement : undefined;
      return {
        groups,
        ready: parts.reduce((sum, p) => sum + p.ready, 0),
        groupSize: parts.find((p) => p.groupSize !== null)?.groupSize ?? null,
        ...(drain !== undefined ? { drain } : {}),
        ...(placement !== undefined ? { placement } : {}),
      };
    }
    const ready = entry.readyReplicas ?? entry.availableReplicas ?? 0;
    const pods: V1Pod[] = withHeads && selector ? await listPods(this.clients, this.namespace, selector) : [];
    const groups = pods.map((pod) => ({
      key: pod.metadata?.name ?? '',
      ready: isPodReady(pod),
      surge: false,
      head: pod,
      members: [],
    }));
    return { groups, ready, groupSize: 1 };
  }

  private async observePcsg(name: string): Promise<Observation> {
    const pcsg = await getCustomOrUndefined<PcsgLike>(this.clients, PCSG_GVR, this.namespace, name);
    if (pcsg === undefined) return { groups: [], ready: 0, groupSize: null };
    const grove: GroveObservation = await observeGrove(this.clients, this.namespace, pcsg);
    return {
      groups: grove.groups,
      ready: capacityGroups(grove.groups, grove.specReplicas),
      groupSize: grove.groupSize,
      drain: grove.drain,
      ...(grove.placement !== undefined ? { placement: grove.placement } : {}),
    };
  }

  private async observeLws(name: string): Promise<Observation> {
    const lws = await getCustomOrUndefined<LeaderWorkerSetLike>(this.clients, LWS_GVR, this.namespace, name);
    if (lws === undefined) return { groups: [], ready: 0, groupSize: null };
    const pods = await listPods(this.clients, this.namespace, `${LWS_LABELS.name}=${name}`);
    return lwsObservation(this.namespace, lws, pods);
  }
}

/** One LWS behind a component, judged by the LWS rule (lws.ts), with its drain and placement views. */
export function lwsObservation(
  namespace: string,
  lws: LeaderWorkerSetLike,
  pods: readonly V1Pod[],
): Observation {
  const spec = lws.spec?.replicas ?? 1;
  const size = lws.spec?.leaderWorkerTemplate?.size ?? 1;
  const groups = lwsGroups(spec, size, pods);
  const queue = lws.metadata?.labels?.[KUEUE_QUEUE_LABEL];
  return {
    groups,
    ready: capacityGroups(groups, spec),
    groupSize: size,
    drain: lwsDrainView(namespace, pods),
    placement: {
      group: lwsGroupShape(lws.spec?.leaderWorkerTemplate),
      ...(queue !== undefined ? { kueueQueue: queue } : {}),
      ...lwsPendingGroups(spec, size, pods),
    },
  };
}

export const dynamoScalingAdapter: KindModule = {
  kind: 'DynamoGraphDeploymentScalingAdapter',
  plural: 'dynamographdeploymentscalingadapters',
  exampleVersion: 'v1alpha1',
  create: (clients: KubeClients, namespace, ref: ScaleTargetRef, gvr) =>
    new DynamoScalingAdapterTarget(clients, namespace, ref, gvr),
};
