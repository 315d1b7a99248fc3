/**
 * The registry of workload kinds and scaleTargetFor() to pick one. Each kind is one module under kinds/
 * holding its resource, its scale read/write and its readiness rule, with its upstream sources. Writes go
 * through each workload's own API: the /scale subresource where the kind has one, else a JSON patch of
 * exactly one list element's replicas; every write carries the resourceVersion of the read it was
 * decided on (409 → ConflictError). Adding a kind: a module, and one line here.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { SCALE_TARGET_GROUPS, type ScaleTargetRef } from '../api/podautoscaler.ts';
import { rayClusterFleet } from './kinds/aibrix-fleet.ts';
import { deployment, statefulSet } from './kinds/apps.ts';
import type { KindModule, ScaleTargetKind } from './kinds/base.ts';
import { disaggregatedSetRoleScaler } from './kinds/disaggregated-set.ts';
import { dynamoScalingAdapter } from './kinds/dynamo.ts';
import { podCliqueScalingGroup } from './kinds/grove.ts';
import { rayClusterWorkerGroup } from './kinds/kuberay.ts';
import { leaderWorkerSet } from './kinds/lws.ts';
import { stormServiceRole } from './kinds/storm-service.ts';
import { type Gvr, kubeClients } from './kube.ts';
import type { ScaleTarget } from './types.ts';

export { labelSelectorString } from './kinds/base.ts';

/** Every kind kvpa scales, by the name scaleTargetRef.kind gives it. */
export const KINDS: Readonly<Record<ScaleTargetKind, KindModule>> = {
  LeaderWorkerSet: leaderWorkerSet,
  DisaggregatedSetRoleScaler: disaggregatedSetRoleScaler,
  RayClusterFleet: rayClusterFleet,
  PodCliqueScalingGroup: podCliqueScalingGroup,
  DynamoGraphDeploymentScalingAdapter: dynamoScalingAdapter,
  Deployment: deployment,
  StatefulSet: statefulSet,
  RayCluster: rayClusterWorkerGroup,
  StormService: stormServiceRole,
};

/**
 * Picks the adapter for ref.kind. Throws when apiVersion's group does not belong to the kind, which a
 * spec that passed the schema (scaleTargetRules) never does.
 */
export function scaleTargetFor(kubeConfig: KubeConfig, namespace: string, ref: ScaleTargetRef): ScaleTarget {
  const kind = KINDS[ref.kind];
  const group = SCALE_TARGET_GROUPS[ref.kind];
  const slash = ref.apiVersion.indexOf('/');
  const refGroup = slash < 0 ? '' : ref.apiVersion.slice(0, slash);
  const version = ref.apiVersion.slice(slash + 1);
  if (refGroup !== group || version === '') {
    const example = group === '' ? kind.exampleVersion : `${group}/${kind.exampleVersion}`;
    throw new Error(
      `scaleTargetRef of ${ref.kind} ${namespace}/${ref.name} has apiVersion "${ref.apiVersion}": ` +
        `use ${group}/<version> (e.g. ${example})`,
    );
  }
  const gvr: Gvr = { group, version, plural: kind.plural };
  return kind.create(kubeClients(kubeConfig), namespace, ref, gvr);
}
