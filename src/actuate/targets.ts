/**
 * One ScaleTarget adapter per kind, and scaleTargetFor() to pick it. Writes go through each workload's
 * own API: the /scale subresource where the kind has one, else a JSON patch of exactly one list element's
 * replicas. Every write carries the resourceVersion of the read it was decided on (409 → ConflictError).
 * Readiness rules live in readiness.ts; each adapter says which objects it reads and why.
 */
import type {
  KubeConfig,
  V1Deployment,
  V1LabelSelector,
  V1Pod,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { SCALE_TARGET_GROUPS, type ScaleTargetRef } from '../api/podautoscaler.ts';
import {
  FIELD_MANAGER,
  type Gvr,
  httpStatusOf,
  type JsonPatchOp,
  jsonPatchOptions,
  type KubeClients,
  kubeClients,
  listCustom,
  listElementReplicasPatch,
  listPods,
  mergePatchOptions,
  onTarget,
  scalePatch,
  selectorOf,
} from './kube.ts';
import { KUEUE_QUEUE_LABEL, type LwsTemplateLike, lwsGroupShape, lwsPendingGroups } from './placement.ts';
import {
  capacityGroups,
  fleetGroups,
  GROVE_LABELS,
  type GroupView,
  groveGroupSize,
  groveGroups,
  LWS_LABELS,
  lwsGroups,
  type PodCliqueLike,
  podGroups,
  RAY_LABELS,
  type RayClusterLike,
  type RoleStatusLike,
  rayWorkerGroups,
  STORM_LABELS,
  statefulSetGroups,
  stormRoleGroups,
  stormRoleReady,
} from './readiness.ts';
import { lwsDrainView, setServing } from './routing.ts';
import type { HeadPod, ScaleTarget, TargetState } from './types.ts';

type ScaleTargetKind = ScaleTargetRef['kind'];

/** API group (SCALE_TARGET_GROUPS, one definition with the schema's rule) and plural of each kind. */
export const KIND_RESOURCES: Readonly<Record<ScaleTargetKind, { group: string; plural: string }>> = {
  LeaderWorkerSet: { group: SCALE_TARGET_GROUPS.LeaderWorkerSet, plural: 'leaderworkersets' },
  RayClusterFleet: { group: SCALE_TARGET_GROUPS.RayClusterFleet, plural: 'rayclusterfleets' },
  PodCliqueScalingGroup: {
    group: SCALE_TARGET_GROUPS.PodCliqueScalingGroup,
    plural: 'podcliquescalinggroups',
  },
  DynamoGraphDeploymentScalingAdapter: {
    group: SCALE_TARGET_GROUPS.DynamoGraphDeploymentScalingAdapter,
    plural: 'dynamographdeploymentscalingadapters',
  },
  DisaggregatedSetRoleScaler: {
    group: SCALE_TARGET_GROUPS.DisaggregatedSetRoleScaler,
    plural: 'disaggregatedsetrolescalers',
  },
  Deployment: { group: SCALE_TARGET_GROUPS.Deployment, plural: 'deployments' },
  StatefulSet: { group: SCALE_TARGET_GROUPS.StatefulSet, plural: 'statefulsets' },
  RayCluster: { group: SCALE_TARGET_GROUPS.RayCluster, plural: 'rayclusters' },
  StormService: { group: SCALE_TARGET_GROUPS.StormService, plural: 'stormservices' },
};

/** Objects the adapters read besides the target, at the versions the upstream CRDs serve. */
const LWS_GVR: Gvr = { group: 'leaderworkerset.x-k8s.io', version: 'v1', plural: 'leaderworkersets' };
const RAYCLUSTER_GVR: Gvr = { group: 'ray.io', version: 'v1', plural: 'rayclusters' };
const PODCLIQUE_GVR: Gvr = { group: 'grove.io', version: 'v1alpha1', plural: 'podcliques' };
const PCSG_GVR: Gvr = { group: 'grove.io', version: 'v1alpha1', plural: 'podcliquescalinggroups' };

const DS_LABELS = { name: 'disaggregatedset.x-k8s.io/name', role: 'disaggregatedset.x-k8s.io/role' } as const;
const FLEET_NAME_LABEL = 'orchestration.aibrix.ai/raycluster-fleet-name';

/**
 * Picks the adapter for ref.kind. Throws when apiVersion's group does not belong to the kind, which a
 * spec that passed the schema (scaleTargetRules) never does.
 */
export function scaleTargetFor(kubeConfig: KubeConfig, namespace: string, ref: ScaleTargetRef): ScaleTarget {
  const resource = KIND_RESOURCES[ref.kind];
  const slash = ref.apiVersion.indexOf('/');
  const group = slash < 0 ? '' : ref.apiVersion.slice(0, slash);
  const version = ref.apiVersion.slice(slash + 1);
  if (group !== resource.group || version === '') {
    throw new Error(
      `scaleTargetRef of ${ref.kind} ${namespace}/${ref.name} has apiVersion "${ref.apiVersion}": ` +
        `use ${resource.group}/<version> (e.g. ${exampleApiVersion(ref.kind)})`,
    );
  }
  const clients = kubeClients(kubeConfig);
  const gvr: Gvr = { group, version, plural: resource.plural };
  switch (ref.kind) {
    case 'LeaderWorkerSet':
      return new LeaderWorkerSetTarget(clients, namespace, ref, gvr);
    case 'DisaggregatedSetRoleScaler':
      return new DisaggregatedSetRoleScalerTarget(clients, namespace, ref, gvr);
    case 'RayClusterFleet':
      return new RayClusterFleetTarget(clients, namespace, ref, gvr);
    case 'PodCliqueScalingGroup':
      return new PodCliqueScalingGroupTarget(clients, namespace, ref, gvr);
    case 'DynamoGraphDeploymentScalingAdapter':
      return new DynamoScalingAdapterTarget(clients, namespace, ref, gvr);
    case 'Deployment':
      return new AppsTarget(clients, namespace, ref, DEPLOYMENT);
    case 'StatefulSet':
      return new AppsTarget(clients, namespace, ref, STATEFUL_SET);
    case 'RayCluster':
      return new RayClusterWorkerGroupTarget(clients, namespace, ref, gvr);
    case 'StormService':
      return new StormServiceRoleTarget(clients, namespace, ref, gvr);
  }
}

function exampleApiVersion(kind: ScaleTargetKind): string {
  const versions: Record<string, string> = {
    'leaderworkerset.x-k8s.io': 'v1',
    'disaggregatedset.x-k8s.io': 'v1',
    'orchestration.aibrix.ai': 'v1alpha1',
    'grove.io': 'v1alpha1',
    'nvidia.com': 'v1alpha1',
    apps: 'v1',
    'ray.io': 'v1',
  };
  const group = KIND_RESOURCES[kind].group;
  return `${group}/${versions[group] ?? 'v1'}`;
}

// ---- shared pieces ------------------------------------------------------------------------------------

interface ObjectMeta {
  name?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  ownerReferences?: { kind?: string; name?: string }[];
}

function requireGroups(ref: ScaleTargetRef, namespace: string, groups: number): void {
  if (!Number.isInteger(groups) || groups < 0 || groups > 2_147_483_647) {
    throw new RangeError(
      `refusing to scale ${ref.kind} ${namespace}/${ref.name} to ${groups} groups: need a whole number ≥ 0`,
    );
  }
}

function requireResourceVersion(
  ref: ScaleTargetRef,
  namespace: string,
  meta: ObjectMeta | undefined,
): string {
  const rv = meta?.resourceVersion;
  if (!rv) throw new Error(`${ref.kind} ${namespace}/${ref.name} came back without a resourceVersion`);
  return rv;
}

function headsOf(namespace: string, groups: readonly GroupView[]): HeadPod[] {
  const out: HeadPod[] = [];
  for (const g of groups) {
    const name = g.head?.metadata?.name;
    if (!g.head || !name) continue;
    const podIP = g.head.status?.podIP;
    out.push({
      namespace,
      name,
      groupKey: g.key,
      groupReady: g.ready,
      surge: g.surge,
      ...(podIP ? { podIP } : {}),
    });
  }
  return out;
}

/** `matchLabels` + `matchExpressions` as a label-selector string (the API's list filter). */
export function labelSelectorString(selector: V1LabelSelector | undefined): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

/** Base for custom resources scaled through /scale; subclasses read spec, readiness and heads. */
abstract class CustomScaleTarget implements ScaleTarget {
  constructor(
    protected readonly clients: KubeClients,
    readonly namespace: string,
    readonly ref: ScaleTargetRef,
    protected readonly gvr: Gvr,
  ) {}

  protected async getObject<T>(): Promise<T> {
    return (await onTarget(this.ref, this.namespace, 'reading', () =>
      this.clients.custom.getNamespacedCustomObject({
        ...this.gvr,
        namespace: this.namespace,
        name: this.ref.name,
      }),
    )) as T;
  }

  /**
   * The read uses the object itself (spec.replicas is the specReplicasPath of every kind here, and one
   * GET gives spec, status and resourceVersion consistently); the write goes through /scale.
   */
  async write(groups: number, resourceVersion: string): Promise<void> {
    requireGroups(this.ref, this.namespace, groups);
    await onTarget(this.ref, this.namespace, 'scaling', () =>
      this.clients.custom.patchNamespacedCustomObjectScale(
        {
          ...this.gvr,
          namespace: this.namespace,
          name: this.ref.name,
          body: scalePatch(groups, resourceVersion),
          fieldManager: FIELD_MANAGER,
        },
        mergePatchOptions,
      ),
    );
  }

  abstract read(): Promise<TargetState>;
  abstract heads(): Promise<HeadPod[]>;
}

// ---- LeaderWorkerSet ----------------------------------------------------------------------------------

interface LeaderWorkerSetLike {
  metadata?: ObjectMeta;
  spec?: { replicas?: number; leaderWorkerTemplate?: LwsTemplateLike };
}

/** Group readiness from pods (status.readyReplicas counts surge groups): see lwsGroups. */
class LeaderWorkerSetTarget extends CustomScaleTarget {
  private async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const lws = await this.getObject<LeaderWorkerSetLike>();
    const specGroups = lws.spec?.replicas ?? 1;
    const groupSize = lws.spec?.leaderWorkerTemplate?.size ?? 1;
    const pods = await listPods(this.clients, this.namespace, `${LWS_LABELS.name}=${this.ref.name}`);
    const groups = lwsGroups(specGroups, groupSize, pods);
    const queue = lws.metadata?.labels?.[KUEUE_QUEUE_LABEL];
    const state: TargetState = {
      specGroups,
      readyGroups: capacityGroups(groups, specGroups),
      groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, lws.metadata),
      drain: lwsDrainView(this.namespace, pods),
      placement: {
        group: lwsGroupShape(lws.spec?.leaderWorkerTemplate),
        ...(queue !== undefined ? { kueueQueue: queue } : {}),
        ...lwsPendingGroups(specGroups, groupSize, pods),
      },
    };
    return { state, groups };
  }

  async read(): Promise<TargetState> {
    return (await this.observe()).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe()).groups);
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    await setServing(this.clients, this.namespace, podName, serving, message);
  }
}

// ---- DisaggregatedSetRoleScaler -----------------------------------------------------------------------

interface RoleScalerLike {
  metadata?: ObjectMeta;
  spec?: { replicas?: number };
}

interface ChildLws {
  metadata?: { name?: string; deletionTimestamp?: string };
  spec?: { replicas?: number; leaderWorkerTemplate?: { size?: number } };
}

/**
 * Groups of one DisaggregatedSet role. DSRS status.replicas sums all revisions and says nothing of
 * readiness, so we apply the LWS rule to every child LWS of the role (labels disaggregatedset.x-k8s.io/
 * name + role; several exist mid-rollout) and cap the sum at spec (old + new revisions overlap).
 */
class DisaggregatedSetRoleScalerTarget extends CustomScaleTarget {
  private async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const scaler = await this.getObject<RoleScalerLike>();
    const specGroups = scaler.spec?.replicas ?? 0;
    const labels = scaler.metadata?.labels ?? {};
    const setName =
      labels[DS_LABELS.name] ??
      scaler.metadata?.ownerReferences?.find((o) => o.kind === 'DisaggregatedSet')?.name;
    const role = labels[DS_LABELS.role];
    if (!setName || !role) {
      throw new Error(
        `DisaggregatedSetRoleScaler ${this.namespace}/${this.ref.name} has no ${DS_LABELS.name}/${DS_LABELS.role} ` +
          'labels: point scaleTargetRef at the scaler the DisaggregatedSet controller created (<set>-<role>)',
      );
    }
    const children = await listCustom<ChildLws>(
      this.clients,
      LWS_GVR,
      this.namespace,
      selectorOf({ [DS_LABELS.name]: setName, [DS_LABELS.role]: role }),
    );
    const groups: GroupView[] = [];
    let groupSize: number | null = null;
    for (const lws of children) {
      const lwsName = lws.metadata?.name;
      if (!lwsName || lws.metadata?.deletionTimestamp) continue;
      const size = lws.spec?.leaderWorkerTemplate?.size ?? 1;
      groupSize ??= size;
      const pods = await listPods(this.clients, this.namespace, `${LWS_LABELS.name}=${lwsName}`);
      for (const g of lwsGroups(lws.spec?.replicas ?? 1, size, pods)) {
        groups.push({ ...g, key: `${lwsName}/${g.key}` });
      }
    }
    const state: TargetState = {
      specGroups,
      readyGroups: capacityGroups(groups, specGroups),
      groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, scaler.metadata),
    };
    return { state, groups };
  }

  async read(): Promise<TargetState> {
    return (await this.observe()).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe()).groups);
  }
}

// ---- AIBrix RayClusterFleet ---------------------------------------------------------------------------

interface WorkerGroupSpecLike {
  groupName?: string;
  replicas?: number;
  numOfHosts?: number;
}

interface RayClusterFleetLike {
  metadata?: ObjectMeta;
  spec?: {
    replicas?: number;
    selector?: V1LabelSelector;
    template?: { spec?: { workerGroupSpecs?: WorkerGroupSpecLike[] } };
  };
}

/**
 * One group = one RayCluster. The fleet is Deployment-like, so its spec.selector selects its RayClusters;
 * each is judged by AIBrix's own rule (rayClusterReady) and the count is capped at spec (rollout overlap).
 */
class RayClusterFleetTarget extends CustomScaleTarget {
  private async observe(withHeads: boolean): Promise<{ state: TargetState; groups: GroupView[] }> {
    const fleet = await this.getObject<RayClusterFleetLike>();
    const specGroups = fleet.spec?.replicas ?? 1;
    const selector = labelSelectorString(fleet.spec?.selector);
    if (selector === '') {
      throw new Error(
        `RayClusterFleet ${this.namespace}/${this.ref.name} has an empty spec.selector: kvpa finds its ` +
          'RayClusters by that selector, so set matchLabels matching spec.template.metadata.labels',
      );
    }
    const clusters = await listCustom<RayClusterLike>(this.clients, RAYCLUSTER_GVR, this.namespace, selector);
    const headPods = withHeads
      ? await listPods(
          this.clients,
          this.namespace,
          selectorOf({ [FLEET_NAME_LABEL]: this.ref.name, [RAY_LABELS.nodeType]: 'head' }),
        )
      : [];
    const groups = fleetGroups(clusters, headPods);
    const workers = fleet.spec?.template?.spec?.workerGroupSpecs ?? [];
    const groupSize = 1 + workers.reduce((sum, w) => sum + (w.replicas ?? 0) * (w.numOfHosts ?? 1), 0);
    const state: TargetState = {
      specGroups,
      readyGroups: capacityGroups(groups, specGroups),
      groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, fleet.metadata),
    };
    return { state, groups };
  }

  async read(): Promise<TargetState> {
    return (await this.observe(false)).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe(true)).groups);
  }
}

// ---- Grove PodCliqueScalingGroup ----------------------------------------------------------------------

interface PcsgLike {
  metadata?: ObjectMeta;
  spec?: { replicas?: number; cliqueNames?: string[] };
}

interface GroveObservation {
  specReplicas: number;
  groups: GroupView[];
  groupSize: number | null;
}

/** Member PodCliques (and, for heads, pods) of a PCSG, judged by groveGroups. */
async function observeGrove(
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
class PodCliqueScalingGroupTarget extends CustomScaleTarget {
  private async observe(withHeads: boolean): Promise<{ state: TargetState; groups: GroupView[] }> {
    const pcsg = await this.getObject<PcsgLike>();
    const grove = await observeGrove(this.clients, this.namespace, pcsg, withHeads);
    const state: TargetState = {
      specGroups: grove.specReplicas,
      readyGroups: capacityGroups(grove.groups, grove.specReplicas),
      groupSize: grove.groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, pcsg.metadata),
    };
    return { state, groups: grove.groups };
  }

  async read(): Promise<TargetState> {
    return (await this.observe(false)).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe(true)).groups);
  }
}

// ---- Dynamo DynamoGraphDeploymentScalingAdapter -------------------------------------------------------

interface DgdsaLike {
  metadata?: ObjectMeta;
  spec?: {
    replicas?: number;
    dgdRef?: { name?: string; serviceName?: string; componentName?: string };
  };
}

/**
 * The adapter's status.replicas copies spec, so readiness comes from what it drives: for a multi-node
 * component on Grove, the PCSG `<dgd>-0-<component>` (leader clique `<component>-ldr`), judged by the
 * Grove rule and capped at the adapter's spec (the PCSG may lag it). No PCSG (not yet created, or an
 * LWS-backed DGD) → 0 ready groups: an honest "unknown" that blocks scale-down on readiness.
 */
class DynamoScalingAdapterTarget extends CustomScaleTarget {
  private async observe(withHeads: boolean): Promise<{ state: TargetState; groups: GroupView[] }> {
    const adapter = await this.getObject<DgdsaLike>();
    const specGroups = adapter.spec?.replicas ?? 0;
    const dgd = adapter.spec?.dgdRef?.name;
    const component = adapter.spec?.dgdRef?.serviceName ?? adapter.spec?.dgdRef?.componentName;
    if (!dgd || !component) {
      throw new Error(
        `DynamoGraphDeploymentScalingAdapter ${this.namespace}/${this.ref.name} has no spec.dgdRef.name/` +
          'serviceName: point scaleTargetRef at an adapter the Dynamo operator created',
      );
    }
    const pcsgName = `${dgd}-0-${component.toLowerCase()}`;
    let grove: GroveObservation = { specReplicas: 0, groups: [], groupSize: null };
    try {
      const pcsg = (await this.clients.custom.getNamespacedCustomObject({
        ...PCSG_GVR,
        namespace: this.namespace,
        name: pcsgName,
      })) as PcsgLike;
      grove = await observeGrove(this.clients, this.namespace, pcsg, withHeads);
    } catch (err) {
      if (httpStatusOf(err) !== 404) throw err;
    }
    const state: TargetState = {
      specGroups,
      readyGroups: Math.min(capacityGroups(grove.groups, grove.specReplicas), specGroups),
      groupSize: grove.groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, adapter.metadata),
    };
    return { state, groups: grove.groups };
  }

  async read(): Promise<TargetState> {
    return (await this.observe(false)).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe(true)).groups);
  }
}

// ---- Deployment / StatefulSet -------------------------------------------------------------------------

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
class AppsTarget implements ScaleTarget {
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
      resourceVersion: requireResourceVersion(this.ref, this.namespace, o.metadata),
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

// ---- Kinds without /scale: a named list element -------------------------------------------------------

/**
 * Base for a count that lives in one named element of a list (RayCluster worker group, StormService
 * role). The element's index is remembered with the resourceVersion it was read at, so a write needs no
 * extra GET; the JSON patch tests the element's name and carries the resourceVersion precondition.
 */
abstract class ListElementTarget<T extends { metadata?: ObjectMeta }> implements ScaleTarget {
  private lastIndex: { resourceVersion: string; index: number } | undefined;

  constructor(
    protected readonly clients: KubeClients,
    readonly namespace: string,
    readonly ref: ScaleTargetRef,
    protected readonly gvr: Gvr,
    /** JSON pointer of the list, e.g. /spec/workerGroupSpecs. */
    private readonly listPath: string,
    /** The element's name field and the name wanted (workerGroupName / roleName). */
    private readonly nameField: string,
    protected readonly elementName: string,
  ) {}

  protected abstract elements(obj: T): readonly Record<string, unknown>[] | undefined;

  protected async getWithIndex(): Promise<{ obj: T; index: number; resourceVersion: string }> {
    const obj = (await onTarget(this.ref, this.namespace, 'reading', () =>
      this.clients.custom.getNamespacedCustomObject({
        ...this.gvr,
        namespace: this.namespace,
        name: this.ref.name,
      }),
    )) as T;
    const list = this.elements(obj) ?? [];
    const index = list.findIndex((e) => e[this.nameField] === this.elementName);
    if (index < 0) {
      const present = list.map((e) => String(e[this.nameField])).join(', ') || 'none';
      throw new Error(
        `${this.ref.kind} ${this.namespace}/${this.ref.name} has no ${this.listPath.slice(1)} entry with ` +
          `${this.nameField} "${this.elementName}" (present: ${present}): fix scaleTargetRef`,
      );
    }
    const resourceVersion = requireResourceVersion(this.ref, this.namespace, obj.metadata);
    this.lastIndex = { resourceVersion, index };
    return { obj, index, resourceVersion };
  }

  get jointKey(): string {
    return `${this.gvr.group}/${this.gvr.plural}/${this.namespace}/${this.ref.name}`;
  }

  /** This element's ops: its name tested, its replicas set (the index as read at `resourceVersion`). */
  private async elementOps(groups: number, resourceVersion: string): Promise<JsonPatchOp[]> {
    requireGroups(this.ref, this.namespace, groups);
    const index =
      this.lastIndex?.resourceVersion === resourceVersion
        ? this.lastIndex.index
        : (await this.getWithIndex()).index;
    return listElementReplicasPatch(
      this.listPath,
      index,
      this.nameField,
      this.elementName,
      groups,
      resourceVersion,
    ).filter((op) => op.path !== '/metadata/resourceVersion');
  }

  async write(groups: number, resourceVersion: string): Promise<void> {
    await this.writeJoint([{ target: this, groups }], resourceVersion);
  }

  /**
   * One JSON patch for several elements of this object (a coupled pair of roles): every element's name is
   * tested and the resourceVersion is the precondition, so the pair changes together or not at all.
   */
  async writeJoint(
    writes: readonly { readonly target: ScaleTarget; readonly groups: number }[],
    resourceVersion: string,
  ): Promise<void> {
    const ops: JsonPatchOp[] = [{ op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion }];
    for (const w of writes) {
      if (!(w.target instanceof ListElementTarget) || w.target.jointKey !== this.jointKey) {
        throw new Error(`${w.target.ref.kind} ${w.target.ref.name} is not an element of ${this.jointKey}`);
      }
      ops.push(...(await w.target.elementOps(w.groups, resourceVersion)));
    }
    const body = ops;
    await onTarget(this.ref, this.namespace, 'scaling', () =>
      this.clients.custom.patchNamespacedCustomObject(
        {
          ...this.gvr,
          namespace: this.namespace,
          name: this.ref.name,
          body,
          fieldManager: FIELD_MANAGER,
        },
        jsonPatchOptions,
      ),
    );
  }

  abstract read(): Promise<TargetState>;
  abstract heads(): Promise<HeadPod[]>;
}

interface RayClusterObj {
  metadata?: ObjectMeta;
  spec?: { workerGroupSpecs?: (WorkerGroupSpecLike & Record<string, unknown>)[] };
}

/**
 * A KubeRay worker group: spec.workerGroupSpecs[groupName].replicas counts replicas of numOfHosts pods.
 * RayCluster status has only cluster-wide pod counts, so readiness is counted from pods (rayWorkerGroups).
 */
class RayClusterWorkerGroupTarget extends ListElementTarget<RayClusterObj> {
  constructor(clients: KubeClients, namespace: string, ref: ScaleTargetRef, gvr: Gvr) {
    if (!ref.workerGroupName) {
      throw new Error(`scaleTargetRef of RayCluster ${namespace}/${ref.name} needs workerGroupName`);
    }
    super(clients, namespace, ref, gvr, '/spec/workerGroupSpecs', 'groupName', ref.workerGroupName);
  }

  protected elements(obj: RayClusterObj) {
    return obj.spec?.workerGroupSpecs;
  }

  private async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
    const { obj, index, resourceVersion } = await this.getWithIndex();
    const group = obj.spec?.workerGroupSpecs?.[index];
    const specGroups = group?.replicas ?? 0;
    const numOfHosts = group?.numOfHosts ?? 1;
    const pods = await listPods(
      this.clients,
      this.namespace,
      selectorOf({
        [RAY_LABELS.cluster]: this.ref.name,
        [RAY_LABELS.nodeType]: 'worker',
        [RAY_LABELS.group]: this.elementName,
      }),
    );
    const groups = rayWorkerGroups(numOfHosts, pods);
    return {
      state: {
        specGroups,
        readyGroups: capacityGroups(groups, specGroups),
        groupSize: numOfHosts,
        resourceVersion,
      },
      groups,
    };
  }

  async read(): Promise<TargetState> {
    return (await this.observe()).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe()).groups);
  }
}

interface StormServiceObj {
  metadata?: ObjectMeta;
  spec?: {
    template?: {
      spec?: {
        roles?: ({ name?: string; replicas?: number; podGroupSize?: number } & Record<string, unknown>)[];
      };
    };
  };
  status?: { roleStatuses?: RoleStatusLike[] };
}

/**
 * One StormService role in pool mode: spec.template.spec.roles[name].replicas counts PodSets (groups of
 * podGroupSize pods) or pods. status.roleStatuses[role].readyReplicas is AIBrix's all-pods-Ready count per
 * PodSet, so read() uses it (capped at spec); heads() groups pods by podset-name.
 */
class StormServiceRoleTarget extends ListElementTarget<StormServiceObj> {
  constructor(clients: KubeClients, namespace: string, ref: ScaleTargetRef, gvr: Gvr) {
    if (!ref.roleName) {
      throw new Error(`scaleTargetRef of StormService ${namespace}/${ref.name} needs roleName`);
    }
    super(clients, namespace, ref, gvr, '/spec/template/spec/roles', 'name', ref.roleName);
  }

  protected elements(obj: StormServiceObj) {
    return obj.spec?.template?.spec?.roles;
  }

  async read(): Promise<TargetState> {
    const { obj, index, resourceVersion } = await this.getWithIndex();
    const role = obj.spec?.template?.spec?.roles?.[index];
    const specGroups = role?.replicas ?? 0;
    return {
      specGroups,
      readyGroups: stormRoleReady(obj.status?.roleStatuses, this.elementName, specGroups),
      groupSize: Math.max(role?.podGroupSize ?? 1, 1),
      resourceVersion,
    };
  }

  async heads(): Promise<HeadPod[]> {
    const { obj, index } = await this.getWithIndex();
    const podGroupSize = obj.spec?.template?.spec?.roles?.[index]?.podGroupSize ?? 1;
    const pods = await listPods(
      this.clients,
      this.namespace,
      selectorOf({ [STORM_LABELS.service]: this.ref.name, [STORM_LABELS.role]: this.elementName }),
    );
    return headsOf(this.namespace, stormRoleGroups(podGroupSize, pods));
  }
}
