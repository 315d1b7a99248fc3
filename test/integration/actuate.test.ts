// ScaleTarget adapters against the real API server with the upstream CRDs: for every kind, read spec and
// ready groups (surge and partly-ready groups must not count), find heads, write exactly once, no-op when
// unchanged, stale resourceVersion → ConflictError, applyGroups re-reads after a conflict, and a deleted
// target → TargetNotFoundError. Status and Pod status are written by the test (no controllers run).
import { pino } from 'pino';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { applyGroups } from '../../src/actuate/apply.ts';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import {
  ConflictError,
  type HeadPod,
  type ScaleTarget,
  TargetNotFoundError,
  type TargetState,
} from '../../src/actuate/types.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import type { ScaleTargetRef } from '../../src/api/podautoscaler.ts';
import { Controller } from '../../src/control/controller.ts';
import { ManualSignalSource } from '../../src/control/signals.ts';
import { groupGpus } from '../../src/decide/placement.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import {
  at,
  condition,
  customPath,
  type Json,
  metadataOf,
  podSpec,
  podTemplate,
  RawApi,
  setAt,
  withoutWriteMetadata,
} from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);

let ns = '';

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'actuate-' },
  });
  ns = (created.metadata as { name: string }).name;
});

/** What a kind's setup hands to the shared contract. */
interface KindCase {
  ref: ScaleTargetRef;
  /** API path of the target object. */
  objectPath: string;
  /** Where the group count lives in the object (the only field a write may change). */
  countPath: (string | number)[];
  expected: Omit<
    TargetState,
    'resourceVersion' | 'drain' | 'placement' | 'countManagers' | 'workloadBounds' | 'refusal'
  >;
  /** The workload's own bounds on the count (KubeRay), absent for kinds without them. */
  expectedBounds?: TargetState['workloadBounds'];
  /** Heads as `groupKey:ready[:surge]`, sorted. */
  expectedHeads: string[];
  /**
   * Group keys in the order the workload removes them (for a kind whose victims kvpa names, its groups before
   * kvpa ranks them); absent for kinds kvpa does not drain.
   */
  expectedRemovalOrder?: string[];
  /** One group's pods and GPUs, and the requested groups not yet placed; absent for kinds kvpa does not check. */
  expectedPlacement?: { pods: number; gpus: number; unplacedGroups: number; unschedulableGroups: number };
}

function headSummary(heads: readonly HeadPod[]): string[] {
  return heads
    .map(
      (h) =>
        `${h.groupKey}:${h.groupReady ? 'ready' : 'unready'}${h.surge ? ':surge' : ''}` +
        // The group's other pods, read with ranksOn: all.
        ((h.members?.length ?? 0) > 0 ? `:+${h.members?.length}` : ''),
    )
    .sort();
}

/** A ScaleTarget whose first read is followed by another writer's change (a label patch). */
function withInterleavedWriter(target: ScaleTarget, objectPath: string): ScaleTarget {
  let reads = 0;
  return {
    namespace: target.namespace,
    ref: target.ref,
    heads: () => target.heads(),
    write: (groups, rv) => target.write(groups, rv),
    read: async () => {
      const state = await target.read();
      reads++;
      if (reads === 1)
        await api.mergePatch(objectPath, { metadata: { labels: { 'test/other-writer': `${Date.now()}` } } });
      return state;
    },
  };
}

async function expectRejects<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${type.name}`).toBeInstanceOf(type);
  return err as E;
}

/** The contract every kind must meet; see the file comment. */
async function exerciseContract(c: KindCase): Promise<void> {
  const target = scaleTargetFor(kubeConfig, ns, c.ref);

  // Read: spec, capacity (no surge, no partly-ready groups), size; heads with per-group readiness.
  const state = await target.read();
  const initial = await api.get(c.objectPath);
  const { drain, placement, countManagers, workloadBounds, refusal, gpusPerGroup, ...counts } = state;
  expect({ ...counts, resourceVersion: undefined }).toEqual({ ...c.expected, resourceVersion: undefined });
  expect(refusal, 'a plain target is not refused').toBeUndefined();
  expect(workloadBounds).toEqual(c.expectedBounds);
  expect(countManagers ?? [], 'kvpa never names itself as another owner').not.toContain('kvpa');
  // Kinds that know their victims give the removal order: groups first removed first.
  expect(drain?.order.map((g) => g.key)).toEqual(c.expectedRemovalOrder);
  expect(
    placement === undefined
      ? undefined
      : {
          pods: placement.group.pods.length,
          gpus: groupGpus(placement.group),
          unplacedGroups: placement.unplacedGroups,
          unschedulableGroups: placement.unschedulableGroups,
        },
  ).toEqual(c.expectedPlacement);
  // GPUs per group for the ledger: the placement shape's where the kind has one.
  if (placement !== undefined) expect(gpusPerGroup).toBe(groupGpus(placement.group));
  expect(state.resourceVersion).toBe(metadataOf(initial).resourceVersion);
  expect(headSummary(await target.heads())).toEqual([...c.expectedHeads].sort());

  // No-op: the decision equals spec → no write at all.
  const noop = await applyGroups(target, (s) => s.specGroups);
  expect(noop).toEqual({ from: c.expected.specGroups, to: c.expected.specGroups, wrote: false, attempts: 1 });
  expect(metadataOf(await api.get(c.objectPath)).resourceVersion).toBe(metadataOf(initial).resourceVersion);

  // Write: exactly one write, the count at its path, nothing else changed, kvpa in managedFields.
  const up = c.expected.specGroups + 1;
  const wrote = await applyGroups(target, () => up);
  expect(wrote).toEqual({ from: c.expected.specGroups, to: up, wrote: true, attempts: 1 });
  const after = await api.get(c.objectPath);
  expect(at(after, c.countPath)).toBe(up);
  expect(metadataOf(after).resourceVersion).not.toBe(metadataOf(initial).resourceVersion);
  expect(metadataOf(after).generation).toBe(metadataOf(initial).generation + 1);
  expect(metadataOf(after).managers.some((m) => m.startsWith('kvpa'))).toBe(true);
  const expectedAfter = withoutWriteMetadata(initial);
  setAt(expectedAfter, c.countPath, up);
  expect(withoutWriteMetadata(after)).toEqual(expectedAfter);
  expect((await target.read()).specGroups).toBe(up);

  // Stale resourceVersion → ConflictError, and nothing written.
  const conflict = await expectRejects(target.write(up + 1, state.resourceVersion), ConflictError);
  expect(conflict.message).toContain(`${c.ref.kind} ${ns}/${c.ref.name}`);
  expect(metadataOf(await api.get(c.objectPath)).resourceVersion).toBe(metadataOf(after).resourceVersion);

  // applyGroups: another writer moves the object between read and write → 409 → re-read, decide, write.
  const decided: number[] = [];
  const retried = await applyGroups(withInterleavedWriter(target, c.objectPath), (s) => {
    decided.push(s.specGroups);
    return s.specGroups - 1;
  });
  expect(retried).toEqual({ from: up, to: up - 1, wrote: true, attempts: 2 });
  expect(decided).toEqual([up, up]);
  expect(at(await api.get(c.objectPath), c.countPath)).toBe(up - 1);

  // Through the controller: a load signal on a pool over this target changes the count in one write.
  await controllerScales(c, up - 1);

  // Deleted target → TargetNotFoundError from read and write.
  const last = await target.read();
  await api.delete(c.objectPath);
  await expectRejects(target.read(), TargetNotFoundError);
  await expectRejects(target.write(1, last.resourceVersion), TargetNotFoundError);
}

/**
 * Runs the real controller over this target: a PodAutoscaler (Apply) whose signal asks for one more
 * group than the spec has. Expect exactly one write of that count at the kind's path, the status and
 * a SuccessfulRescale event. The PodAutoscaler is removed again so later steps see only the target.
 */
async function controllerScales(c: KindCase, specGroups: number): Promise<void> {
  const want = specGroups + 1;
  const name = `pa-${c.ref.name}`.slice(0, 60);
  let nowMs = Date.parse('2026-11-23T12:00:00Z');
  const signals = new ManualSignalSource();
  const controller = new Controller({
    kubeConfig,
    signals,
    policies: loadPolicies().policies,
    targetFor: (namespace, ref) => scaleTargetFor(kubeConfig, namespace, ref),
    logger: pino({ level: 'silent' }),
    namespace: ns,
    nowMs: () => nowMs,
    sampleIntervalMs: 3_600_000,
  });
  const paPath = `${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/${name}`;
  await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'pool',
          scaleTargetRef: c.ref,
          minReplicas: 0,
          maxReplicas: 50,
          // one group per unit of queue: the total below asks for exactly `want` groups
          metrics: [{ type: 'queueDepth', target: 1 }],
          stableWindowSeconds: 6,
          tickSeconds: 1,
          startupTimeoutSeconds: 0,
        },
      ],
    },
  });
  await controller.start();
  try {
    for (let i = 0; i < 100 && controller.watched().length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    signals.set(`${ns}/${name}/pool`, 'queueDepth', want);
    const before = metadataOf(await api.get(c.objectPath));
    nowMs += 1000;
    await controller.tick();
    const after = await api.get(c.objectPath);
    expect(at(after, c.countPath), `${c.ref.kind}: count after the controller's write`).toBe(want);
    expect(metadataOf(after).generation).toBe(before.generation + 1);
    const pa = await api.get(paPath);
    expect(at(pa, ['status', 'pools', 0, 'desiredReplicas'])).toBe(want);
    const events = (await api.get(
      `/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name%3D${name}`,
    )) as {
      items: { reason: string }[];
    };
    expect(events.items.map((e) => e.reason)).toContain('SuccessfulRescale');
  } finally {
    await controller.stop();
    await api.delete(paPath);
  }
}

// ---- per-kind fixtures ------------------------------------------------------------------------------

const LWS = 'leaderworkerset.sigs.k8s.io';

/** Pods of one LWS group: leader (worker-index 0) and workers 1..size-1; `unreadyWorker` makes one unready. */
async function lwsGroupPods(lws: string, groupIndex: number, size: number, unreadyWorker = false) {
  const groupKey = `key-${lws}-${groupIndex}`;
  for (let w = 0; w < size; w++) {
    const name = w === 0 ? `${lws}-${groupIndex}` : `${lws}-${groupIndex}-${w}`;
    await api.pod(
      ns,
      name,
      {
        [`${LWS}/name`]: lws,
        [`${LWS}/group-index`]: String(groupIndex),
        [`${LWS}/worker-index`]: String(w),
        [`${LWS}/group-key`]: groupKey,
      },
      !(unreadyWorker && w === size - 1),
    );
  }
}

function lwsObject(name: string, replicas: number, size: number, labels: Record<string, string> = {}): Json {
  return {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name, labels },
    spec: { replicas, leaderWorkerTemplate: { size, workerTemplate: podTemplate } },
  };
}

/** Grove: a PCSG's member PodCliques for replica j (`<pcsg>-<j>-<clique>`) and the leader pod. */
async function groveReplica(
  pcsg: string,
  j: number,
  cliques: { name: string; replicas: number; ready: number }[],
) {
  const base = customPath('grove.io', 'v1alpha1', ns, 'podcliques');
  for (const c of cliques) {
    const name = `${pcsg}-${j}-${c.name}`;
    await api.create(base, {
      apiVersion: 'grove.io/v1alpha1',
      kind: 'PodClique',
      metadata: {
        name,
        labels: {
          'grove.io/podcliquescalinggroup': pcsg,
          'grove.io/podcliquescalinggroup-replica-index': String(j),
        },
      },
      spec: { replicas: c.replicas, roleName: c.name, podSpec },
    });
    await api.setStatus(`${base}/${name}`, {
      readyReplicas: c.ready,
      scheduledReplicas: c.replicas,
      scheduleGatedReplicas: 0,
      updatedReplicas: c.replicas,
    });
  }
  // Every clique's pods, as Grove creates them: the first clique is the leader; its pod 0 is the head.
  for (const c of cliques) {
    for (let i = 0; i < c.replicas; i++) {
      await api.pod(
        ns,
        `${pcsg}-${j}-${c.name}-${i}`,
        {
          'grove.io/podcliquescalinggroup': pcsg,
          'grove.io/podcliquescalinggroup-replica-index': String(j),
          'grove.io/podclique': `${pcsg}-${j}-${c.name}`,
          'grove.io/podclique-pod-index': String(i),
        },
        i < c.ready,
      );
    }
  }
}

async function pcsgObject(name: string, replicas: number, cliqueNames: string[]): Promise<string> {
  const base = customPath('grove.io', 'v1alpha1', ns, 'podcliquescalinggroups');
  await api.create(base, {
    apiVersion: 'grove.io/v1alpha1',
    kind: 'PodCliqueScalingGroup',
    metadata: { name },
    spec: { replicas, cliqueNames },
  });
  // Grove copies spec into status.replicas and counts minAvailable-available replicas: both say "all ok".
  await api.setStatus(`${base}/${name}`, {
    replicas,
    availableReplicas: replicas,
    scheduledReplicas: replicas,
    updatedReplicas: replicas,
  });
  return `${base}/${name}`;
}

function rayClusterStatus(ready: number, desired: number, provisioned = true): Json {
  return {
    readyWorkerReplicas: ready,
    desiredWorkerReplicas: desired,
    conditions: [
      condition('RayClusterProvisioned', provisioned ? 'True' : 'False'),
      condition('HeadPodReady', 'True'),
    ],
  };
}

describe('ScaleTarget adapters on the real API server', () => {
  it('LeaderWorkerSet: pods decide; a surge group and a group with one unready worker do not count', async () => {
    const base = customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets');
    await api.create(base, lwsObject('lws-a', 3, 3));
    // status.readyReplicas counts burst groups (4 here): the adapter must not trust it.
    await api.setStatus(`${base}/lws-a`, { replicas: 4, readyReplicas: 4, updatedReplicas: 4 });
    await lwsGroupPods('lws-a', 0, 3);
    await lwsGroupPods('lws-a', 1, 3, true);
    await lwsGroupPods('lws-a', 2, 3);
    await lwsGroupPods('lws-a', 3, 3); // maxSurge group: index ≥ spec.replicas
    await exerciseContract({
      ref: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: 'lws-a' },
      objectPath: `${base}/lws-a`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 3, readyGroups: 2, groupSize: 3 },
      // Each head lists its group's other pods (+2: a group of 3), read with ranksOn: all.
      expectedHeads: ['0:ready:+2', '1:unready:+2', '2:ready:+2', '3:ready:surge:+2'],
      // LWS removes the highest index first (its leader StatefulSet's highest ordinal).
      expectedRemovalOrder: ['3', '2', '1', '0'],
      // No scheduler here: every pod is unbound, so every requested group is unplaced (none Unschedulable).
      expectedPlacement: { pods: 3, gpus: 0, unplacedGroups: 3, unschedulableGroups: 0 },
    });
  });

  it('DisaggregatedSetRoleScaler: the LWS rule over the role’s child LWS', async () => {
    const dsLabels = { 'disaggregatedset.x-k8s.io/name': 'ds1', 'disaggregatedset.x-k8s.io/role': 'decode' };
    const base = customPath('disaggregatedset.x-k8s.io', 'v1', ns, 'disaggregatedsetrolescalers');
    await api.create(base, {
      apiVersion: 'disaggregatedset.x-k8s.io/v1',
      kind: 'DisaggregatedSetRoleScaler',
      metadata: { name: 'ds1-decode', labels: dsLabels },
      spec: { replicas: 2 },
    });
    await api.setStatus(`${base}/ds1-decode`, { replicas: 2 });
    const lwsBase = customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets');
    await api.create(lwsBase, lwsObject('ds1-0-rev1-decode', 2, 2, dsLabels));
    await lwsGroupPods('ds1-0-rev1-decode', 0, 2);
    await lwsGroupPods('ds1-0-rev1-decode', 1, 2, true);
    await exerciseContract({
      ref: {
        apiVersion: 'disaggregatedset.x-k8s.io/v1',
        kind: 'DisaggregatedSetRoleScaler',
        name: 'ds1-decode',
      },
      objectPath: `${base}/ds1-decode`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 2, readyGroups: 1, groupSize: 2 },
      expectedHeads: ['ds1-0-rev1-decode/0:ready:+1', 'ds1-0-rev1-decode/1:unready:+1'],
      // One child LWS: its highest group index goes first, and its template is one group's shape.
      expectedRemovalOrder: ['1', '0'],
      expectedPlacement: { pods: 2, gpus: 0, unplacedGroups: 2, unschedulableGroups: 0 },
    });
  });

  it('RayClusterFleet: each RayCluster by AIBrix’s rule, capped at spec during a rollout', async () => {
    const base = customPath('orchestration.aibrix.ai', 'v1alpha1', ns, 'rayclusterfleets');
    await api.create(base, {
      apiVersion: 'orchestration.aibrix.ai/v1alpha1',
      kind: 'RayClusterFleet',
      metadata: { name: 'fleet-a' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'fleet-a' } },
        template: {
          metadata: { labels: { app: 'fleet-a' } },
          spec: {
            headGroupSpec: { rayStartParams: {}, template: podTemplate },
            workerGroupSpecs: [
              {
                groupName: 'w',
                replicas: 3,
                minReplicas: 0,
                maxReplicas: 8,
                rayStartParams: {},
                template: podTemplate,
              },
            ],
          },
        },
      },
    });
    // The fleet's own readyReplicas counts old + new clusters: 3 here, with spec 2.
    await api.setStatus(`${base}/fleet-a`, { replicas: 3, readyReplicas: 3 });
    const rcBase = customPath('ray.io', 'v1', ns, 'rayclusters');
    const clusters: [string, Json][] = [
      ['fleet-a-x1', rayClusterStatus(3, 3)],
      ['fleet-a-x2', rayClusterStatus(2, 3)], // one worker not ready
      ['fleet-a-x3', rayClusterStatus(3, 3)], // surge cluster of a rollout
    ];
    for (const [name, status] of clusters) {
      await api.create(rcBase, {
        apiVersion: 'ray.io/v1',
        kind: 'RayCluster',
        metadata: { name, labels: { app: 'fleet-a' } },
        spec: { headGroupSpec: { template: podTemplate } },
      });
      await api.setStatus(`${rcBase}/${name}`, status);
      await api.pod(
        ns,
        `${name}-head`,
        {
          'orchestration.aibrix.ai/raycluster-fleet-name': 'fleet-a',
          'ray.io/node-type': 'head',
          'ray.io/cluster': name,
        },
        true,
      );
    }
    await exerciseContract({
      ref: { apiVersion: 'orchestration.aibrix.ai/v1alpha1', kind: 'RayClusterFleet', name: 'fleet-a' },
      objectPath: `${base}/fleet-a`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 2, readyGroups: 2, groupSize: 4 },
      expectedHeads: ['fleet-a-x1:ready', 'fleet-a-x2:unready', 'fleet-a-x3:ready'],
      // A cluster is its head and 3 workers; no pod is bound to a node here, so both requested are unplaced.
      expectedPlacement: { pods: 4, gpus: 0, unplacedGroups: 2, unschedulableGroups: 0 },
    });
  });

  it('PodCliqueScalingGroup: every member PodClique fully ready; replicas beyond spec do not count', async () => {
    const path = await pcsgObject('pcs-0-decode', 2, ['decode-ldr', 'decode-wkr']);
    await groveReplica('pcs-0-decode', 0, [
      { name: 'decode-ldr', replicas: 1, ready: 1 },
      { name: 'decode-wkr', replicas: 3, ready: 3 },
    ]);
    await groveReplica('pcs-0-decode', 1, [
      { name: 'decode-ldr', replicas: 1, ready: 1 },
      { name: 'decode-wkr', replicas: 3, ready: 2 }, // one worker not ready; minAvailable would hide it
    ]);
    await groveReplica('pcs-0-decode', 2, [
      { name: 'decode-ldr', replicas: 1, ready: 1 },
      { name: 'decode-wkr', replicas: 3, ready: 3 },
    ]);
    await exerciseContract({
      ref: { apiVersion: 'grove.io/v1alpha1', kind: 'PodCliqueScalingGroup', name: 'pcs-0-decode' },
      objectPath: path,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 2, readyGroups: 1, groupSize: 4 },
      // +3: each group's 3 decode workers beside its leader.
      expectedHeads: ['0:ready:+3', '1:unready:+3', '2:ready:surge:+3'],
      // Grove deletes replica indices [spec, existing): the highest first, by the pods' replica-index label.
      expectedRemovalOrder: ['2', '1', '0'],
      // One replica: 1 leader + 3 workers from the PodCliques' spec; no pod is bound, so both requested are unplaced.
      expectedPlacement: { pods: 4, gpus: 0, unplacedGroups: 2, unschedulableGroups: 0 },
    });
  });

  it('DynamoGraphDeploymentScalingAdapter: readiness from the PCSG its DGD status names (a shortened name)', async () => {
    const base = customPath('nvidia.com', 'v1alpha1', ns, 'dynamographdeploymentscalingadapters');
    await api.create(base, {
      apiVersion: 'nvidia.com/v1alpha1',
      kind: 'DynamoGraphDeploymentScalingAdapter',
      metadata: { name: 'dgd1-vllmdecodeworker' },
      spec: { replicas: 2, dgdRef: { name: 'dgd1', serviceName: 'VllmDecodeWorker' } },
    });
    await api.setStatus(`${base}/dgd1-vllmdecodeworker`, {
      replicas: 2,
      selector: 'nvidia.com/dynamo-component=VllmDecodeWorker',
    });
    // The operator shortened the PodCliqueSet name (name[:budget-5]-<hash>): building `dgd1-0-…` finds nothing.
    const pcsg = 'dgd1-a3f9-0-vllmdecodeworker';
    const dgdBase = customPath('nvidia.com', 'v1alpha1', ns, 'dynamographdeployments');
    await api.create(dgdBase, {
      apiVersion: 'nvidia.com/v1alpha1',
      kind: 'DynamoGraphDeployment',
      metadata: { name: 'dgd1' },
      spec: { services: { VllmDecodeWorker: { replicas: 2 } } },
    });
    await api.setStatus(`${dgdBase}/dgd1`, {
      state: 'pending',
      services: {
        VllmDecodeWorker: {
          componentKind: 'PodCliqueScalingGroup',
          componentNames: [pcsg],
          replicas: 2,
          updatedReplicas: 2,
          availableReplicas: 2,
        },
      },
    });
    await pcsgObject(pcsg, 2, ['vllmdecodeworker-ldr', 'vllmdecodeworker-wkr']);
    await groveReplica(pcsg, 0, [
      { name: 'vllmdecodeworker-ldr', replicas: 1, ready: 1 },
      { name: 'vllmdecodeworker-wkr', replicas: 1, ready: 1 },
    ]);
    await groveReplica(pcsg, 1, [
      { name: 'vllmdecodeworker-ldr', replicas: 1, ready: 1 },
      { name: 'vllmdecodeworker-wkr', replicas: 1, ready: 0 },
    ]);
    await exerciseContract({
      ref: {
        apiVersion: 'nvidia.com/v1alpha1',
        kind: 'DynamoGraphDeploymentScalingAdapter',
        name: 'dgd1-vllmdecodeworker',
      },
      objectPath: `${base}/dgd1-vllmdecodeworker`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 2, readyGroups: 1, groupSize: 2 },
      expectedHeads: ['0:ready:+1', '1:unready:+1'],
      // The one PCSG behind the component drains and places as a Grove target does.
      expectedRemovalOrder: ['1', '0'],
      expectedPlacement: { pods: 2, gpus: 0, unplacedGroups: 2, unschedulableGroups: 0 },
    });
  });

  it('DynamoGraphDeploymentScalingAdapter on an LWS backend: the LWS rule over the names in DGD status', async () => {
    const base = customPath('nvidia.com', 'v1alpha1', ns, 'dynamographdeploymentscalingadapters');
    await api.create(base, {
      apiVersion: 'nvidia.com/v1alpha1',
      kind: 'DynamoGraphDeploymentScalingAdapter',
      metadata: { name: 'dgd2-prefill' },
      spec: { replicas: 2, dgdRef: { name: 'dgd2', serviceName: 'Prefill' } },
    });
    await api.setStatus(`${base}/dgd2-prefill`, {
      replicas: 2,
      selector: 'nvidia.com/dynamo-component=Prefill',
    });
    const dgdBase = customPath('nvidia.com', 'v1alpha1', ns, 'dynamographdeployments');
    await api.create(dgdBase, {
      apiVersion: 'nvidia.com/v1alpha1',
      kind: 'DynamoGraphDeployment',
      metadata: { name: 'dgd2' },
      spec: {},
    });
    // Mid-rollout: old and new LWS both named; each is judged by the LWS rule, the sum capped at spec.
    await api.setStatus(`${dgdBase}/dgd2`, {
      state: 'pending',
      services: {
        Prefill: {
          componentKind: 'LeaderWorkerSet',
          componentNames: ['dgd2-prefill-old', 'dgd2-prefill-new'],
          replicas: 2,
          updatedReplicas: 1,
          readyReplicas: 2,
        },
      },
    });
    await api.create(
      customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'),
      lwsObject('dgd2-prefill-old', 1, 2),
    );
    await api.create(
      customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'),
      lwsObject('dgd2-prefill-new', 1, 2),
    );
    await lwsGroupPods('dgd2-prefill-old', 0, 2);
    await lwsGroupPods('dgd2-prefill-new', 0, 2, true); // one worker unready
    await exerciseContract({
      ref: {
        apiVersion: 'nvidia.com/v1alpha1',
        kind: 'DynamoGraphDeploymentScalingAdapter',
        name: 'dgd2-prefill',
      },
      objectPath: `${base}/dgd2-prefill`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 2, readyGroups: 1, groupSize: 2 },
      expectedHeads: ['dgd2-prefill-new/0:unready:+1', 'dgd2-prefill-old/0:ready:+1'],
      // Two LWSs named mid-rollout: which groups go is unknown, so no removal order (and no drain).
      expectedRemovalOrder: [],
    });
  });
  it('DynamoGraphDeploymentScalingAdapter v1beta1: readiness from the v1beta1 DGD’s status.components', async () => {
    const base = customPath('nvidia.com', 'v1beta1', ns, 'dynamographdeploymentscalingadapters');
    const selector = {
      'nvidia.com/dynamo-graph-deployment-name': 'dgd3',
      'nvidia.com/dynamo-component': 'decode',
    };
    await api.create(base, {
      apiVersion: 'nvidia.com/v1beta1',
      kind: 'DynamoGraphDeploymentScalingAdapter',
      metadata: { name: 'dgd3-decode' },
      spec: { replicas: 3, dgdRef: { name: 'dgd3', componentName: 'decode' } },
    });
    await api.setStatus(`${base}/dgd3-decode`, {
      replicas: 3,
      selector: Object.entries(selector)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    });
    const dgdBase = customPath('nvidia.com', 'v1beta1', ns, 'dynamographdeployments');
    await api.create(dgdBase, {
      apiVersion: 'nvidia.com/v1beta1',
      kind: 'DynamoGraphDeployment',
      metadata: { name: 'dgd3' },
      spec: {
        components: [
          { name: 'decode', replicas: 3 },
          { name: 'prefill', replicas: 1 },
        ],
      },
    });
    // One-pod-per-replica kinds: the entry's readyReplicas is the count. The other component's entry
    // (1 ready) and a missing entry (0) would both give another number.
    await api.setStatus(`${dgdBase}/dgd3`, {
      state: 'pending',
      components: {
        decode: {
          componentKind: 'PodClique',
          componentNames: ['dgd3-0-decode'],
          replicas: 3,
          updatedReplicas: 3,
          readyReplicas: 2,
        },
        prefill: {
          componentKind: 'PodClique',
          componentNames: ['dgd3-0-prefill'],
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
        },
      },
    });
    // The v1beta1 status survives storage (the test CRD stores v1alpha1).
    expect(at(await api.get(`${dgdBase}/dgd3`), ['status', 'components', 'decode', 'readyReplicas'])).toBe(2);
    await api.pod(ns, 'dgd3-0-decode-0', selector, true);
    await api.pod(ns, 'dgd3-0-decode-1', selector, true);
    await api.pod(ns, 'dgd3-0-decode-2', selector, false);
    await exerciseContract({
      ref: {
        apiVersion: 'nvidia.com/v1beta1',
        kind: 'DynamoGraphDeploymentScalingAdapter',
        name: 'dgd3-decode',
      },
      objectPath: `${base}/dgd3-decode`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 3, readyGroups: 2, groupSize: 1 },
      expectedHeads: ['dgd3-0-decode-0:ready', 'dgd3-0-decode-1:ready', 'dgd3-0-decode-2:unready'],
    });
  });

  it('DynamoGraphDeploymentScalingAdapter with dgdRef.componentGroupName: the group’s PCSG from its members’ status', async () => {
    const base = customPath('nvidia.com', 'v1beta1', ns, 'dynamographdeploymentscalingadapters');
    await api.create(base, {
      apiVersion: 'nvidia.com/v1beta1',
      kind: 'DynamoGraphDeploymentScalingAdapter',
      metadata: { name: 'dgd4-pd-a' },
      spec: { replicas: 2, dgdRef: { name: 'dgd4', componentGroupName: 'pd-a' } },
    });
    await api.setStatus(`${base}/dgd4-pd-a`, {
      replicas: 2,
      selector: 'nvidia.com/dynamo-component-group=pd-a',
    });
    const dgdBase = customPath('nvidia.com', 'v1beta1', ns, 'dynamographdeployments');
    // Two groups, each rendered as one PCSG; status is keyed by component, so pd-a is found through its
    // first member. The two PCSGs differ in ready replicas, size and members, so the wrong one shows.
    await api.create(dgdBase, {
      apiVersion: 'nvidia.com/v1beta1',
      kind: 'DynamoGraphDeployment',
      metadata: { name: 'dgd4' },
      spec: {
        components: [
          { name: 'prefill-a' },
          { name: 'decode-a' },
          { name: 'prefill-b' },
          { name: 'decode-b' },
        ],
        experimental: {
          componentGroups: [
            { name: 'pd-b', replicas: 2, components: [{ name: 'prefill-b' }, { name: 'decode-b' }] },
            { name: 'pd-a', replicas: 2, components: [{ name: 'prefill-a' }, { name: 'decode-a' }] },
          ],
        },
      },
    });
    const pcsgEntry = (pcsg: string) => ({
      componentKind: 'PodCliqueScalingGroup',
      componentNames: [pcsg],
      replicas: 2,
      updatedReplicas: 2,
      availableReplicas: 2,
    });
    await api.setStatus(`${dgdBase}/dgd4`, {
      state: 'pending',
      components: {
        'prefill-b': pcsgEntry('dgd4-0-pd-b'),
        'decode-b': pcsgEntry('dgd4-0-pd-b'),
        'prefill-a': pcsgEntry('dgd4-0-pd-a'),
        'decode-a': pcsgEntry('dgd4-0-pd-a'),
      },
    });
    await pcsgObject('dgd4-0-pd-a', 2, ['prefill-a', 'decode-a']);
    await groveReplica('dgd4-0-pd-a', 0, [
      { name: 'prefill-a', replicas: 1, ready: 1 },
      { name: 'decode-a', replicas: 2, ready: 2 },
    ]);
    await groveReplica('dgd4-0-pd-a', 1, [
      { name: 'prefill-a', replicas: 1, ready: 1 },
      { name: 'decode-a', replicas: 2, ready: 1 }, // one decode pod not ready
    ]);
    await pcsgObject('dgd4-0-pd-b', 2, ['prefill-b', 'decode-b']);
    for (const j of [0, 1]) {
      await groveReplica('dgd4-0-pd-b', j, [
        { name: 'prefill-b', replicas: 1, ready: 1 },
        { name: 'decode-b', replicas: 1, ready: 1 },
      ]);
    }
    await exerciseContract({
      ref: {
        apiVersion: 'nvidia.com/v1beta1',
        kind: 'DynamoGraphDeploymentScalingAdapter',
        name: 'dgd4-pd-a',
      },
      objectPath: `${base}/dgd4-pd-a`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 2, readyGroups: 1, groupSize: 3 },
      expectedHeads: ['0:ready:+2', '1:unready:+2'],
      // The group's one PCSG drains and places as a Grove target does.
      expectedRemovalOrder: ['1', '0'],
      expectedPlacement: { pods: 3, gpus: 0, unplacedGroups: 2, unschedulableGroups: 0 },
    });
  });

  it('Deployment: readyReplicas capped at spec (rollout surge pods are not capacity)', async () => {
    const base = `/apis/apps/v1/namespaces/${ns}/deployments`;
    await api.create(base, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'dep-a' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'dep-a' } },
        template: { metadata: { labels: { app: 'dep-a' } }, spec: podSpec },
      },
    });
    await api.setStatus(`${base}/dep-a`, { replicas: 4, readyReplicas: 4, availableReplicas: 4 });
    await api.pod(ns, 'dep-a-1', { app: 'dep-a' }, true);
    await api.pod(ns, 'dep-a-2', { app: 'dep-a' }, false);
    await exerciseContract({
      ref: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'dep-a' },
      objectPath: `${base}/dep-a`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 3, readyGroups: 3, groupSize: 1 },
      expectedHeads: ['dep-a-1:ready', 'dep-a-2:unready'],
      // kvpa chooses among the pods its ReplicaSets own; these two name no owner, so none is a group yet.
      expectedRemovalOrder: ['(not created 1)', '(not created 2)', '(not created 3)'],
    });
  });

  it('StatefulSet: readyReplicas capped at spec; ordinals ≥ spec are surge heads', async () => {
    const base = `/apis/apps/v1/namespaces/${ns}/statefulsets`;
    await api.create(base, {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'sts-a' },
      spec: {
        replicas: 2,
        serviceName: 'sts-a',
        selector: { matchLabels: { app: 'sts-a' } },
        template: { metadata: { labels: { app: 'sts-a' } }, spec: podSpec },
      },
    });
    await api.setStatus(`${base}/sts-a`, { replicas: 3, readyReplicas: 2, availableReplicas: 2 });
    await api.pod(ns, 'sts-a-0', { app: 'sts-a' }, true);
    await api.pod(ns, 'sts-a-1', { app: 'sts-a' }, false);
    await api.pod(ns, 'sts-a-2', { app: 'sts-a' }, true); // scale-down leftover
    await exerciseContract({
      ref: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'sts-a' },
      objectPath: `${base}/sts-a`,
      countPath: ['spec', 'replicas'],
      expected: { specGroups: 2, readyGroups: 2, groupSize: 1 },
      expectedHeads: ['0:ready', '1:unready', '2:ready:surge'],
      // The highest ordinal in range first; the leftover 2 is already leaving, so last.
      expectedRemovalOrder: ['1', '0', '2'],
    });
  });

  it('RayCluster worker group: multi-host replicas counted from pods; only the named group is patched', async () => {
    const base = customPath('ray.io', 'v1', ns, 'rayclusters');
    await api.create(base, {
      apiVersion: 'ray.io/v1',
      kind: 'RayCluster',
      metadata: { name: 'rc-a' },
      spec: {
        headGroupSpec: { template: podTemplate },
        workerGroupSpecs: [
          { groupName: 'cpu', replicas: 1, minReplicas: 0, maxReplicas: 4, template: podTemplate },
          {
            groupName: 'gpu',
            replicas: 2,
            numOfHosts: 2,
            minReplicas: 0,
            maxReplicas: 8,
            template: podTemplate,
          },
        ],
      },
    });
    // Cluster-wide pod counts say "all ready"; they are not per worker group, so the adapter ignores them.
    await api.setStatus(`${base}/rc-a`, rayClusterStatus(5, 5));
    const hostPod = (replica: string, host: number, ready: boolean) =>
      api.pod(
        ns,
        `rc-a-gpu-${replica}-${host}`,
        {
          'ray.io/cluster': 'rc-a',
          'ray.io/node-type': 'worker',
          'ray.io/group': 'gpu',
          'ray.io/worker-group-replica-name': `rc-a-gpu-${replica}`,
          'ray.io/replica-host-index': String(host),
        },
        ready,
      );
    await hostPod('r1', 0, true);
    await hostPod('r1', 1, true);
    await hostPod('r2', 0, true);
    await hostPod('r2', 1, false); // one host not ready
    await api.pod(
      ns,
      'rc-a-cpu-0',
      { 'ray.io/cluster': 'rc-a', 'ray.io/node-type': 'worker', 'ray.io/group': 'cpu' },
      true,
    );
    await exerciseContract({
      ref: { apiVersion: 'ray.io/v1', kind: 'RayCluster', name: 'rc-a', workerGroupName: 'gpu' },
      objectPath: `${base}/rc-a`,
      countPath: ['spec', 'workerGroupSpecs', 1, 'replicas'],
      expected: { specGroups: 2, readyGroups: 1, groupSize: 2 },
      expectedBounds: { minGroups: 0, maxGroups: 8 },
      expectedHeads: ['rc-a-gpu-r1:ready:+1', 'rc-a-gpu-r2:unready:+1'],
      // KubeRay removes the pods kvpa names: every replica by name, for kvpa to rank.
      expectedRemovalOrder: ['rc-a-gpu-r1', 'rc-a-gpu-r2'],
      // A replica is numOfHosts 2 pods of the template; no pod is bound to a node here.
      expectedPlacement: { pods: 2, gpus: 0, unplacedGroups: 2, unschedulableGroups: 0 },
    });
  });

  it('StormService role (pool mode): roleStatuses ready PodSets; only the named role is patched', async () => {
    const base = customPath('orchestration.aibrix.ai', 'v1alpha1', ns, 'stormservices');
    const role = (name: string, replicas: number) => ({
      name,
      replicas,
      podGroupSize: 2,
      template: { metadata: { labels: { app: 'ss-a' } }, spec: podSpec },
    });
    await api.create(base, {
      apiVersion: 'orchestration.aibrix.ai/v1alpha1',
      kind: 'StormService',
      metadata: { name: 'ss-a' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'ss-a' } },
        updateStrategy: { type: 'InPlaceUpdate' },
        template: {
          metadata: { labels: { app: 'ss-a' } },
          spec: { roles: [role('prefill', 2), role('decode', 3)] },
        },
      },
    });
    await api.setStatus(`${base}/ss-a`, {
      replicas: 1,
      readyReplicas: 0,
      roleStatuses: [
        { name: 'prefill', replicas: 2, readyReplicas: 2 },
        { name: 'decode', replicas: 3, readyReplicas: 2 },
      ],
    });
    const member = (podSet: string, index: number, ready: boolean) =>
      api.pod(
        ns,
        `${podSet}-${index}`,
        {
          'storm-service-name': 'ss-a',
          'role-name': 'decode',
          'roleset-name': 'ss-a-rs',
          'stormservice.orchestration.aibrix.ai/role-replica-index': podSet.slice(-1),
          'stormservice.orchestration.aibrix.ai/podset-name': podSet,
          'stormservice.orchestration.aibrix.ai/pod-group-index': String(index),
        },
        ready,
      );
    await member('ss-a-decode-p0', 0, true);
    await member('ss-a-decode-p0', 1, true);
    await member('ss-a-decode-p1', 0, true);
    await member('ss-a-decode-p1', 1, false);
    await exerciseContract({
      ref: {
        apiVersion: 'orchestration.aibrix.ai/v1alpha1',
        kind: 'StormService',
        name: 'ss-a',
        roleName: 'decode',
      },
      objectPath: `${base}/ss-a`,
      countPath: ['spec', 'template', 'spec', 'roles', 1, 'replicas'],
      expected: { specGroups: 3, readyGroups: 2, groupSize: 2 },
      expectedHeads: ['ss-a-decode-p0:ready:+1', 'ss-a-decode-p1:unready:+1'],
      // PodSets go by role-replica-index, highest first; PodSet 2 is not created, its pods not bound.
      expectedRemovalOrder: ['1', '0'],
      expectedPlacement: { pods: 2, gpus: 0, unplacedGroups: 3, unschedulableGroups: 0 },
    });
  });

  it('rejects a ref whose apiVersion does not belong to the kind, naming the fix', () => {
    expect(() =>
      scaleTargetFor(kubeConfig, ns, { apiVersion: 'apps/v1', kind: 'LeaderWorkerSet', name: 'x' }),
    ).toThrow(/use leaderworkerset\.x-k8s\.io\/<version>/);
  });
});
