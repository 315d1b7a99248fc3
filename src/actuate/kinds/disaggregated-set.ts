/**
 * DisaggregatedSetRoleScaler (kubernetes-sigs/lws, DisaggregatedSet API): the /scale of one role of a
 * DisaggregatedSet; the role's groups live in child LeaderWorkerSets, one per revision and slice.
 */
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { listCustom, listPods, selectorOf } from '../kube.ts';
import { capacityGroups, type GroupView } from '../readiness.ts';
import type { TargetRefusal, TargetState } from '../types.ts';
import {
  CustomScaleTarget,
  type KindModule,
  managersOf,
  type ObjectMeta,
  requireResourceVersion,
} from './base.ts';
import { LWS_GVR, LWS_LABELS, lwsGroups } from './lws.ts';

const DS_LABELS = {
  name: 'disaggregatedset.x-k8s.io/name',
  role: 'disaggregatedset.x-k8s.io/role',
  slice: 'disaggregatedset.x-k8s.io/slice',
} as const;

/**
 * With DisaggregatedSet spec.slices > 1 a role's replicas count per slice, so one step of the scaler adds
 * a group in every slice, and per-group signals no longer match the count kvpa writes. kvpa refuses that
 * setup rather than scale by the wrong unit. Slices show on the child LWS's `disaggregatedset.x-k8s.io/
 * slice` label (LWS KEP-846, keps/846-disaggregatedset-slices).
 */
export function slicesRefusal(
  children: readonly { metadata?: { labels?: Record<string, string> } }[],
  setName: string,
): TargetRefusal | undefined {
  const slices = new Set(children.map((c) => c.metadata?.labels?.[DS_LABELS.slice] ?? '0'));
  if (slices.size <= 1) return undefined;
  return {
    reason: 'UnsupportedTarget',
    message:
      `DisaggregatedSet ${setName} runs ${slices.size} slices: its role replicas count per slice, which kvpa ` +
      'does not scale; set spec.slices: 1, or scale the slices yourself and point kvpa at a one-slice set',
  };
}

interface RoleScalerLike {
  metadata?: ObjectMeta;
  spec?: { replicas?: number };
}

interface ChildLws {
  metadata?: { name?: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec?: { replicas?: number; leaderWorkerTemplate?: { size?: number } };
}

/**
 * Groups of one DisaggregatedSet role. DSRS status.replicas sums all revisions and says nothing of
 * readiness, so we apply the LWS rule to every child LWS of the role (labels disaggregatedset.x-k8s.io/
 * name + role; several exist mid-rollout) and cap the sum at spec (old + new revisions overlap).
 */
export class DisaggregatedSetRoleScalerTarget extends CustomScaleTarget {
  protected async observe(): Promise<{ state: TargetState; groups: GroupView[] }> {
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
    const refusal = slicesRefusal(children, setName);
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
      countManagers: managersOf(scaler.metadata, ['f:spec', 'f:replicas']),
      ...(refusal !== undefined ? { refusal } : {}),
    };
    return { state, groups };
  }
}

export const disaggregatedSetRoleScaler: KindModule = {
  kind: 'DisaggregatedSetRoleScaler',
  plural: 'disaggregatedsetrolescalers',
  exampleVersion: 'v1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new DisaggregatedSetRoleScalerTarget(clients, namespace, ref, gvr),
};
