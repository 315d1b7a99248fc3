/**
 * What every kind module shares: the module shape the registry (../targets.ts) lists, the custom-resource
 * /scale read/write written once, the list-element write for kinds without /scale, and small guards.
 */
import type { V1LabelSelector } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import {
  FIELD_MANAGER,
  type Gvr,
  type JsonPatchOp,
  jsonPatchOptions,
  type KubeClients,
  listElementReplicasPatch,
  mergePatchOptions,
  onTarget,
  scalePatch,
} from '../kube.ts';
import type { GroupView } from '../readiness.ts';
import type { HeadPod, JointWrite, ScaleTarget, TargetState } from '../types.ts';

export type ScaleTargetKind = ScaleTargetRef['kind'];

/** One workload kind: its resource, an apiVersion to suggest, and its adapter. */
export interface KindModule {
  readonly kind: ScaleTargetKind;
  readonly plural: string;
  /** The version suggested when a scaleTargetRef's apiVersion does not belong to the kind. */
  readonly exampleVersion: string;
  create(clients: KubeClients, namespace: string, ref: ScaleTargetRef, gvr: Gvr): ScaleTarget;
}

export interface ObjectMeta {
  name?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  ownerReferences?: { kind?: string; name?: string; apiVersion?: string }[];
  managedFields?: ManagedFieldsEntry[];
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  time?: string | Date;
  fieldsV1?: unknown;
}

/**
 * Field managers other than kvpa that own the field at `path` (fieldsV1 keys, e.g. f:spec, f:replicas),
 * latest first: who else writes the count.
 * (kubernetes.io/docs/reference/using-api/server-side-apply/#field-management)
 */
export function managersOf(meta: ObjectMeta | undefined, path: readonly string[]): string[] {
  const owners: { manager: string; at: number }[] = [];
  for (const entry of meta?.managedFields ?? []) {
    if (!entry.manager || entry.manager === FIELD_MANAGER) continue;
    let node: unknown = entry.fieldsV1;
    let owns = true;
    for (const key of path) {
      if (node === null || typeof node !== 'object') break;
      const next = (node as Record<string, unknown>)[key];
      if (next === undefined) {
        owns = false;
        break;
      }
      node = next;
    }
    if (!owns) continue;
    const at = entry.time === undefined ? 0 : new Date(entry.time).getTime();
    owners.push({ manager: entry.manager, at: Number.isFinite(at) ? at : 0 });
  }
  owners.sort((a, b) => b.at - a.at);
  return [...new Set(owners.map((o) => o.manager))];
}

export function requireGroups(ref: ScaleTargetRef, namespace: string, groups: number): void {
  if (!Number.isInteger(groups) || groups < 0 || groups > 2_147_483_647) {
    throw new RangeError(
      `refusing to scale ${ref.kind} ${namespace}/${ref.name} to ${groups} groups: need a whole number ≥ 0`,
    );
  }
}

export function requireResourceVersion(
  ref: ScaleTargetRef,
  namespace: string,
  meta: ObjectMeta | undefined,
): string {
  const rv = meta?.resourceVersion;
  if (!rv) throw new Error(`${ref.kind} ${namespace}/${ref.name} came back without a resourceVersion`);
  return rv;
}

export function headsOf(namespace: string, groups: readonly GroupView[]): HeadPod[] {
  const out: HeadPod[] = [];
  for (const g of groups) {
    const name = g.head?.metadata?.name;
    if (!g.head || !name) continue;
    const podIP = g.head.status?.podIP;
    const members = g.members?.flatMap((m) => {
      const memberName = m.metadata?.name;
      if (!memberName) return [];
      const ip = m.status?.podIP;
      return [{ name: memberName, ...(ip ? { podIP: ip } : {}) }];
    });
    out.push({
      namespace,
      name,
      groupKey: g.key,
      groupReady: g.ready,
      surge: g.surge,
      ...(podIP ? { podIP } : {}),
      ...(members !== undefined ? { members } : {}),
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
export abstract class CustomScaleTarget implements ScaleTarget {
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

  /** One read of the object and its groups; `withHeads` false when only the counts are needed. */
  protected abstract observe(
    withHeads: boolean,
  ): Promise<{ state: TargetState; groups: readonly GroupView[] }>;

  async read(): Promise<TargetState> {
    return (await this.observe(false)).state;
  }

  async heads(): Promise<HeadPod[]> {
    return headsOf(this.namespace, (await this.observe(true)).groups);
  }
}

/**
 * Base for a count that lives in one named element of a list (RayCluster worker group, StormService
 * role). The element's index is remembered with the resourceVersion it was read at, so a write needs no
 * extra GET; the JSON patch tests the element's name and carries the resourceVersion precondition.
 */
export abstract class ListElementTarget<T extends { metadata?: ObjectMeta }> implements ScaleTarget {
  private lastIndex:
    | { resourceVersion: string; index: number; element: Readonly<Record<string, unknown>> }
    | undefined;

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

  protected async getWithIndex(): Promise<{
    obj: T;
    index: number;
    element: Readonly<Record<string, unknown>>;
    resourceVersion: string;
  }> {
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
    const element = list[index] as Readonly<Record<string, unknown>>;
    const resourceVersion = requireResourceVersion(this.ref, this.namespace, obj.metadata);
    this.lastIndex = { resourceVersion, index, element };
    return { obj, index, element, resourceVersion };
  }

  get jointKey(): string {
    return `${this.gvr.group}/${this.gvr.plural}/${this.namespace}/${this.ref.name}`;
  }

  /**
   * This element's ops: its name tested, its replicas set, and the pods to remove named (the index and element
   * as read at `resourceVersion`).
   */
  private async elementOps(
    groups: number,
    resourceVersion: string,
    removing: readonly string[] | undefined,
  ): Promise<JsonPatchOp[]> {
    requireGroups(this.ref, this.namespace, groups);
    const { index, element } =
      this.lastIndex?.resourceVersion === resourceVersion ? this.lastIndex : await this.getWithIndex();
    return [
      ...listElementReplicasPatch(
        this.listPath,
        index,
        this.nameField,
        this.elementName,
        groups,
        resourceVersion,
      ).filter((op) => op.path !== '/metadata/resourceVersion'),
      ...(removing !== undefined ? this.removalOps(`${this.listPath}/${index}`, element, removing) : []),
    ];
  }

  /** Ops that name the pods the workload removes with the count; kinds that cannot name them refuse. */
  protected removalOps(
    _elementPath: string,
    _element: Readonly<Record<string, unknown>>,
    _pods: readonly string[],
  ): JsonPatchOp[] {
    throw new Error(`${this.ref.kind} ${this.namespace}/${this.ref.name} cannot name the pods it removes`);
  }

  async write(groups: number, resourceVersion: string): Promise<void> {
    await this.writeJoint([{ target: this, groups }], resourceVersion);
  }

  /**
   * One JSON patch for several elements of this object (a coupled pair of roles): every element's name is
   * tested and the resourceVersion is the precondition, so the pair changes together or not at all. A write
   * with `removing` names those pods in its element too (`removalOps`).
   */
  async writeJoint(writes: readonly JointWrite[], resourceVersion: string): Promise<void> {
    const ops: JsonPatchOp[] = [{ op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion }];
    for (const w of writes) {
      if (!(w.target instanceof ListElementTarget) || w.target.jointKey !== this.jointKey) {
        throw new Error(`${w.target.ref.kind} ${w.target.ref.name} is not an element of ${this.jointKey}`);
      }
      ops.push(...(await w.target.elementOps(w.groups, resourceVersion, w.removing)));
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
