/**
 * DisaggregatedSetRoleScaler (kubernetes-sigs/lws, DisaggregatedSet API): the /scale of one role of a
 * DisaggregatedSet; the role's groups live in child LeaderWorkerSets, one per revision and slice.
 *
 * The DisaggregatedSet controller sets the scaler's count on the role's child LWS of the current revision
 * (pkg/controllers/disaggregatedset/lws_manager.go, Scale), whose template is the role's; the revision hashes
 * the role templates, not the counts (pkg/utils/disaggregatedset/utils.go, ComputeRevision), so a new count
 * makes no new child. That LWS removes its own highest-index groups: the drain and placement views are the
 * LWS's (lws.ts). During a rollout the role has two children, old and new, scaled step by step by the set's
 * controller: the victims cannot be told apart, and the pool is not drained (as dynamo.ts does).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { listCustom, listPods, selectorOf } from '../kube.ts';
import {
  groupGpus,
  KUEUE_QUEUE_LABEL,
  type LwsTemplateLike,
  lwsGroupShape,
  lwsPendingGroups,
} from '../placement.ts';
import { capacityGroups, type GroupView } from '../readiness.ts';
import { type DrainView, lwsDrainView, setServing } from '../routing.ts';
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
  spec?: { replicas?: number; leaderWorkerTemplate?: LwsTemplateLike };
}

/**
 * The drain view of a role with several child LWSs (a rollout): every pod, under its LWS-prefixed group key, so
 * kvpa still routes every gated pod; no removal order, and the reason it cannot drain.
 */
export function roleRolloutDrainView(
  setName: string,
  role: string,
  names: readonly string[],
  views: readonly DrainView[],
): DrainView {
  return {
    order: [],
    pods: views.flatMap((v, i) => v.pods.map((p) => ({ ...p, groupKey: `${names[i]}/${p.groupKey}` }))),
    unavailable:
      `DisaggregatedSet ${setName} role ${role} has ${names.length} LeaderWorkerSets (${names.join(', ')}), a ` +
      'rollout in progress: which groups a scale-down removes is unknown',
  };
}

/** GPUs of one group when every child's template agrees (old and new may differ mid-rollout), else undefined. */
export function agreedGpus(templates: readonly (LwsTemplateLike | undefined)[]): number | undefined {
  const gpus = new Set(templates.map((t) => groupGpus(lwsGroupShape(t))));
  return gpus.size === 1 ? [...gpus][0] : undefined;
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
    const live: {
      name: string;
      lws: ChildLws;
      drain: DrainView;
      pods: V1Pod[];
    }[] = [];
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
      live.push({ name: lwsName, lws, drain: lwsDrainView(this.namespace, pods), pods });
    }
    // One child: its template is the role's, and its groups 0 … spec − 1 are the scaler's.
    const only = live.length === 1 ? live[0] : undefined;
    const drain =
      only !== undefined
        ? only.drain
        : live.length > 1
          ? roleRolloutDrainView(
              setName,
              role,
              live.map((c) => c.name),
              live.map((c) => c.drain),
            )
          : undefined;
    const template = only?.lws.spec?.leaderWorkerTemplate;
    const queue = only?.lws.metadata?.labels?.[KUEUE_QUEUE_LABEL];
    const placement =
      only !== undefined
        ? {
            group: lwsGroupShape(template),
            ...(queue !== undefined ? { kueueQueue: queue } : {}),
            ...lwsPendingGroups(specGroups, template?.size ?? 1, only.pods),
          }
        : undefined;
    const gpus = live.length > 0 ? agreedGpus(live.map((c) => c.lws.spec?.leaderWorkerTemplate)) : undefined;
    const state: TargetState = {
      specGroups,
      readyGroups: capacityGroups(groups, specGroups),
      groupSize,
      resourceVersion: requireResourceVersion(this.ref, this.namespace, scaler.metadata),
      ...(drain !== undefined ? { drain } : {}),
      ...(placement !== undefined ? { placement } : {}),
      ...(gpus !== undefined ? { gpusPerGroup: gpus } : {}),
      countManagers: managersOf(scaler.metadata, ['f:spec', 'f:replicas']),
      ...(refusal !== undefined ? { refusal } : {}),
    };
    return { state, groups };
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    await setServing(this.clients, this.namespace, podName, serving, message);
  }
}

export const disaggregatedSetRoleScaler: KindModule = {
  kind: 'DisaggregatedSetRoleScaler',
  plural: 'disaggregatedsetrolescalers',
  exampleVersion: 'v1',
  create: (clients, namespace, ref: ScaleTargetRef, gvr) =>
    new DisaggregatedSetRoleScalerTarget(clients, namespace, ref, gvr),
};
