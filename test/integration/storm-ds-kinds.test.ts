// An AIBrix StormService role (pool mode), a DisaggregatedSetRoleScaler and a Dynamo adapter over a
// DisaggregatedSet role, through the controller against a real API server with the upstream CRDs: the GPUs per
// group reach the dry-run ledger in status, Node objects' free GPUs limit a scale-up, and a scale-down drains
// the group the workload removes. No AIBrix, LWS or Dynamo controller runs: the test writes the objects, their
// status and the pods with the labels those controllers give them, and the readings through SignalSource.
//
// Nodes are cluster-wide and other files share this API server, so each kind's pods request a GPU resource of
// its own (`<kind>.kvpa.test/gpu`): no other test's capacity check sees these nodes' room.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import type { PodAutoscalerStatus, ScaleTargetRef } from '../../src/api/podautoscaler.ts';
import { DRAIN_SETTLE_SECONDS } from '../../src/decide/drain.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, type Json, RawApi } from './actuate-fixtures.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-11-23T10:00:00Z');
const LWS = 'leaderworkerset.sigs.k8s.io';
const DS = 'disaggregatedset.x-k8s.io';
const STORM = 'stormservice.orchestration.aibrix.ai';
const GPUS_PER_POD = 4;
const POD_GROUP = 2; // pods per group in every kind here: 8 GPUs a group

let ns = '';
const nodes: string[] = [];
const paBase = () => customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers');

interface WorkloadOptions {
  /** Pods list kvpa's readiness gate (and start routed). */
  gated?: boolean;
  /** Pods are bound to this node. */
  nodeName?: string;
  /** Index of a group whose last pod is not Ready. */
  unreadyGroup?: number;
}

interface Workload {
  readonly ref: ScaleTargetRef;
  /** The count kvpa writes. */
  count(): Promise<number>;
  /** Label selector of the pods and the label that carries each pod's group index. */
  readonly pods: { selector: string; groupLabel: string };
}

/** One kind: a workload of `groups` groups of POD_GROUP pods, pods requesting GPUS_PER_POD of `gpuResource`. */
interface KindFixture {
  readonly kind: string;
  readonly gpuResource: string;
  create(name: string, groups: number, o?: WorkloadOptions): Promise<Workload>;
}

function podSpecFor(gpuResource: string, o: WorkloadOptions): Json {
  return {
    containers: [
      {
        name: 'engine',
        image: 'example.invalid/engine:1',
        resources: { limits: { [gpuResource]: String(GPUS_PER_POD) } },
      },
    ],
    ...(o.gated ? { readinessGates: [{ conditionType: 'kvpa.io/serving' }] } : {}),
  };
}

/** A pod as the workload's controller and the kubelet would leave it: Running, Ready unless `ready` is false. */
async function pod(
  name: string,
  labels: Record<string, string>,
  spec: Json,
  o: WorkloadOptions,
  ready: boolean,
): Promise<void> {
  const base = `/api/v1/namespaces/${ns}/pods`;
  await api.create(base, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: { ...spec, ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}) },
  });
  await api.setStatus(`${base}/${name}`, {
    phase: 'Running',
    podIP: '10.5.0.1',
    conditions: [
      { type: 'ContainersReady', status: ready ? 'True' : 'False' },
      { type: 'Ready', status: ready ? 'True' : 'False' },
      ...(o.gated ? [{ type: 'kvpa.io/serving', status: 'True' }] : []),
    ],
  });
}

/** LWS group i's pods (leader `<lws>-<i>`, worker `<lws>-<i>-1`), labelled as the LWS controller labels them. */
async function lwsGroupPods(
  lws: string,
  i: number,
  extraLabels: Record<string, string>,
  spec: Json,
  o: WorkloadOptions,
): Promise<void> {
  for (let w = 0; w < POD_GROUP; w++) {
    await pod(
      w === 0 ? `${lws}-${i}` : `${lws}-${i}-${w}`,
      {
        ...extraLabels,
        [`${LWS}/name`]: lws,
        [`${LWS}/group-index`]: String(i),
        [`${LWS}/worker-index`]: String(w),
        [`${LWS}/group-key`]: `k-${lws}-${i}`,
      },
      spec,
      o,
      !(o.unreadyGroup === i && w === POD_GROUP - 1),
    );
  }
}

/** A child LWS as the DisaggregatedSet controller makes it: the role's template, the set's labels. */
async function childLws(name: string, groups: number, labels: Record<string, string>, spec: Json) {
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name, labels },
    spec: { replicas: groups, leaderWorkerTemplate: { size: POD_GROUP, workerTemplate: { spec } } },
  });
}

const countAt = async (path: string, at: (obj: Json) => number) => at(await api.get(path));

const stormService: KindFixture = {
  kind: 'StormService',
  gpuResource: 'storm.kvpa.test/gpu',
  async create(name, groups, o = {}) {
    const base = customPath('orchestration.aibrix.ai', 'v1alpha1', ns, 'stormservices');
    const spec = podSpecFor(this.gpuResource, o);
    const role = (roleName: string, replicas: number) => ({
      name: roleName,
      replicas,
      podGroupSize: POD_GROUP,
      template: { metadata: { labels: { app: name } }, spec },
    });
    await api.create(base, {
      apiVersion: 'orchestration.aibrix.ai/v1alpha1',
      kind: 'StormService',
      metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        updateStrategy: { type: 'InPlaceUpdate' },
        template: {
          metadata: { labels: { app: name } },
          spec: { roles: [role('prefill', 1), role('decode', groups)] },
        },
      },
    });
    const ready = o.unreadyGroup === undefined ? groups : groups - 1;
    await api.setStatus(`${base}/${name}`, {
      replicas: 1,
      roleStatuses: [
        { name: 'prefill', replicas: 1, readyReplicas: 1 },
        { name: 'decode', replicas: groups, readyReplicas: ready },
      ],
    });
    // PodSet i of the one RoleSet: its pods carry the PodSet's labels and their pod-group-index.
    for (let i = 0; i < groups; i++) {
      const podSet = `${name}-rs-decode-h1-${i}`;
      for (let k = 0; k < POD_GROUP; k++) {
        await pod(
          `${podSet}-${k}`,
          {
            'storm-service-name': name,
            'role-name': 'decode',
            'roleset-name': `${name}-rs`,
            [`${STORM}/role-replica-index`]: String(i),
            [`${STORM}/podset-name`]: podSet,
            [`${STORM}/pod-group-index`]: String(k),
          },
          spec,
          o,
          !(o.unreadyGroup === i && k === POD_GROUP - 1),
        );
      }
    }
    return {
      ref: { apiVersion: 'orchestration.aibrix.ai/v1alpha1', kind: 'StormService', name, roleName: 'decode' },
      count: () =>
        countAt(`${base}/${name}`, (obj) => {
          const roles = (obj.spec as { template: { spec: { roles: { name: string; replicas: number }[] } } })
            .template.spec.roles;
          return roles.find((r) => r.name === 'decode')?.replicas ?? -1;
        }),
      pods: {
        selector: `storm-service-name=${name},role-name=decode`,
        groupLabel: `${STORM}/role-replica-index`,
      },
    };
  },
};

const roleScaler: KindFixture = {
  kind: 'DisaggregatedSetRoleScaler',
  gpuResource: 'dsrs.kvpa.test/gpu',
  async create(name, groups, o = {}) {
    const base = customPath(DS, 'v1', ns, 'disaggregatedsetrolescalers');
    const labels = { [`${DS}/name`]: name, [`${DS}/role`]: 'decode' };
    const scaler = `${name}-decode`;
    await api.create(base, {
      apiVersion: `${DS}/v1`,
      kind: 'DisaggregatedSetRoleScaler',
      metadata: { name: scaler, labels },
      spec: { replicas: groups },
    });
    await api.setStatus(`${base}/${scaler}`, { replicas: groups });
    const spec = podSpecFor(this.gpuResource, o);
    const lws = `${name}-0-rev1-decode`;
    await childLws(lws, groups, { ...labels, [`${DS}/slice`]: '0' }, spec);
    for (let i = 0; i < groups; i++) await lwsGroupPods(lws, i, labels, spec, o);
    return {
      ref: { apiVersion: `${DS}/v1`, kind: 'DisaggregatedSetRoleScaler', name: scaler },
      count: () => countAt(`${base}/${scaler}`, (obj) => (obj.spec as { replicas: number }).replicas),
      pods: { selector: `${LWS}/name=${lws}`, groupLabel: `${LWS}/group-index` },
    };
  },
};

/**
 * A Dynamo component on the DisaggregatedSet backend while the set is not all ready: the DGD status entry has
 * the set's counts and no componentNames (dgd_disaggregatedset_readiness_resolver.go); the role's pods carry
 * Dynamo's graph and component labels, which the adapter's status.selector matches.
 */
const dynamoOnDs: KindFixture = {
  kind: 'DynamoGraphDeploymentScalingAdapter',
  gpuResource: 'dynamo.kvpa.test/gpu',
  async create(name, groups, o = {}) {
    const base = customPath('nvidia.com', 'v1alpha1', ns, 'dynamographdeploymentscalingadapters');
    const adapter = `${name}-decode`;
    const dynamoLabels = {
      'nvidia.com/dynamo-graph-deployment-name': name,
      'nvidia.com/dynamo-component': 'Decode',
    };
    await api.create(base, {
      apiVersion: 'nvidia.com/v1alpha1',
      kind: 'DynamoGraphDeploymentScalingAdapter',
      metadata: { name: adapter },
      spec: { replicas: groups, dgdRef: { name, serviceName: 'Decode' } },
    });
    await api.setStatus(`${base}/${adapter}`, {
      replicas: groups,
      selector: Object.entries(dynamoLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    });
    const dgdBase = customPath('nvidia.com', 'v1alpha1', ns, 'dynamographdeployments');
    await api.create(dgdBase, {
      apiVersion: 'nvidia.com/v1alpha1',
      kind: 'DynamoGraphDeployment',
      metadata: { name },
      spec: {},
    });
    await api.setStatus(`${dgdBase}/${name}`, {
      state: 'pending',
      services: {
        Decode: {
          componentKind: 'LeaderWorkerSet',
          replicas: groups,
          updatedReplicas: groups,
          readyReplicas: o.unreadyGroup === undefined ? groups : groups - 1,
        },
      },
    });
    const dsLabels = { [`${DS}/name`]: name, [`${DS}/role`]: 'decode', [`${DS}/slice`]: '0' };
    const spec = podSpecFor(this.gpuResource, o);
    const lws = `${name}-0-abcd1234-decode`;
    await childLws(lws, groups, dsLabels, spec);
    for (let i = 0; i < groups; i++) await lwsGroupPods(lws, i, { ...dsLabels, ...dynamoLabels }, spec, o);
    return {
      ref: { apiVersion: 'nvidia.com/v1alpha1', kind: 'DynamoGraphDeploymentScalingAdapter', name: adapter },
      count: () => countAt(`${base}/${adapter}`, (obj) => (obj.spec as { replicas: number }).replicas),
      pods: { selector: `${LWS}/name=${lws}`, groupLabel: `${LWS}/group-index` },
    };
  },
};

const KINDS = [stormService, roleScaler, dynamoOnDs];

function podAutoscaler(name: string, ref: ScaleTargetRef, mode: 'Apply' | 'DryRun', extra: Json = {}): Json {
  return {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode,
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: ref,
          minReplicas: 1,
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          scaleDownDelaySeconds: 0,
          tickSeconds: 1,
          maxScaleUpRate: 1000,
          ...extra,
        },
      ],
    },
  };
}

const poolStatus = async (pa: string) =>
  ((await api.get(`${paBase()}/${pa}`)).status as PodAutoscalerStatus | undefined)?.pools?.[0];
const conditionOf = async (pa: string, type: string) =>
  ((await api.get(`${paBase()}/${pa}`)).status as PodAutoscalerStatus | undefined)?.conditions?.find(
    (c) => c.type === type,
  );

/** Each pod's kvpa.io/serving condition as `<group index>: True|False`, sorted. */
async function servingByGroup(w: Workload): Promise<string[]> {
  const pods = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace: ns, labelSelector: w.pods.selector });
  return pods.items
    .map((p) => {
      const serving = p.status?.conditions?.find((c) => c.type === 'kvpa.io/serving')?.status;
      return `${p.metadata?.labels?.[w.pods.groupLabel]}: ${serving}`;
    })
    .sort();
}

/** A Ready node with `gpus` of `gpuResource` allocatable (no kubelet: the test writes its status). */
async function gpuNode(name: string, gpuResource: string, gpus: number): Promise<void> {
  await api.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } });
  nodes.push(name);
  // The API server's TaintNodesByCondition admission taints a new node not-ready; its lifecycle controller,
  // which would lift the taint once the node reports Ready, does not run here.
  await api.mergePatch(`/api/v1/nodes/${name}`, { spec: { taints: null } });
  await api.setStatus(`/api/v1/nodes/${name}`, {
    capacity: { [gpuResource]: String(gpus), cpu: '64', memory: '512Gi', pods: '110' },
    allocatable: { [gpuResource]: String(gpus), cpu: '64', memory: '512Gi', pods: '110' },
    conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'set by the test' }],
  });
}

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-storm-ds-' },
  });
  ns = (created.metadata as { name: string }).name;
});

afterAll(async () => {
  for (const n of nodes) await api.delete(`/api/v1/nodes/${n}`).catch(() => undefined);
});

describe('a partly ready Dynamo component on a DisaggregatedSet', () => {
  it('3 groups, one worker down, no names in the DGD status: 2 ready groups, 3 heads, removal 2, 1, 0', async () => {
    const w = await dynamoOnDs.create('dgd-partial', 3, { unreadyGroup: 1 });
    const target = scaleTargetFor(kubeConfig, ns, w.ref);
    const state = await target.read();
    expect(state).toMatchObject({ specGroups: 3, readyGroups: 2, groupSize: 2, gpusPerGroup: 8 });
    expect(state.drain?.order.map((g) => g.key)).toEqual(['2', '1', '0']);
    const heads = await target.heads();
    expect(heads.map((h) => `${h.groupKey}:${h.groupReady}`).sort()).toEqual(['0:true', '1:false', '2:true']);
  });
});

describe.each(KINDS)('$kind through the controller', (k) => {
  let harness: ReturnType<typeof manualController>;
  beforeAll(async () => {
    harness = manualController(kubeConfig, ns, T0_MS);
    await harness.controller.start();
  });
  afterAll(() => harness.controller.stop());
  const prefix = k.kind.toLowerCase().slice(0, 6);

  it('DryRun: 8-GPU groups, 4 recommended against 2 held for 144 s: 1.28 against 0.64 GPU-hours in status', async () => {
    const name = `${prefix}-ledger`;
    const w = await k.create(name, 2);
    // No node has this resource: AskAnyway recommends the want, as beside a cluster autoscaler.
    await api.create(paBase(), podAutoscaler(name, w.ref, 'DryRun', { capacityCheck: 'AskAnyway' }));
    await harness.waitFor(name);
    harness.signals.set(`${ns}/${name}/decode`, 'kvCacheUtilization', 2.8); // 2.8 / 0.7 → 4 groups
    // The first tick opens the ledger; the next four accrue 36 s each.
    for (let i = 0; i < 5; i++) await harness.step(36);
    expect((await poolStatus(name))?.dryRunLedger).toMatchObject({
      gpusPerGroup: 8,
      recommendedGroupHours: 0.16,
      actualGroupHours: 0.08,
      recommendedGpuHours: 1.28,
      actualGpuHours: 0.64,
    });
    expect(await w.count()).toBe(2);
  });

  it('Apply: want 4 of 8-GPU groups with 8 GPUs free on the nodes: 3 written, InsufficientCapacity', async () => {
    const name = `${prefix}-room`;
    // Node a holds the 2 groups (16 of 16 GPUs); node b has room for 1 more group.
    await gpuNode(`${ns}-${prefix}-a`, k.gpuResource, 16);
    await gpuNode(`${ns}-${prefix}-b`, k.gpuResource, 8);
    const w = await k.create(name, 2, { nodeName: `${ns}-${prefix}-a` });
    await api.create(paBase(), podAutoscaler(name, w.ref, 'Apply'));
    await harness.waitFor(name);
    harness.signals.set(`${ns}/${name}/decode`, 'kvCacheUtilization', 2.8);
    await stepUntil(harness, async () => ((await w.count()) !== 2 ? true : undefined));
    expect(await w.count()).toBe(3);
    const limited = await conditionOf(name, 'ScalingLimited');
    expect(limited).toMatchObject({ status: 'True', reason: 'InsufficientCapacity' });
    expect(limited?.message).toMatch(/^decode: want 4, 3 can land, asked 3 /);
    expect(limited?.message).toContain(`a group is 2 pod(s) and 8 ${k.gpuResource}`);
    expect(limited?.message).toContain('pass its filters with 8 free');
  });

  it('Apply: 3 → 2 takes group 2 out of routing, waits for its requests, then writes 2', async () => {
    const name = `${prefix}-drain`;
    const w = await k.create(name, 3, { gated: true });
    await api.create(paBase(), podAutoscaler(name, w.ref, 'Apply', { drainTimeoutSeconds: 300 }));
    await harness.waitFor(name);
    const pool = `${ns}/${name}/decode`;
    // 3 ready groups carrying 1.2 of KV at 0.7 per group: 1.71 → 2 groups.
    harness.signals.set(pool, 'kvCacheUtilization', 1.2);
    const started = await stepUntil(harness, async () => (await poolStatus(name))?.drain);
    expect(started).toMatchObject({ phase: 'Draining', victims: ['2'], fromReplicas: 3, toReplicas: 2 });
    expect(await w.count()).toBe(3);
    expect(await servingByGroup(w)).toEqual([
      '0: True',
      '0: True',
      '1: True',
      '1: True',
      '2: False',
      '2: False',
    ]);
    // Group 2 reports 3 requests after the settle time: nothing is written; then none, and 2 is.
    await harness.step(DRAIN_SETTLE_SECONDS + 1);
    harness.signals.setInFlight(pool, '2', { requests: 3, atSeconds: harness.nowSeconds() });
    await harness.step();
    expect(await w.count()).toBe(3);
    harness.signals.setInFlight(pool, '2', { requests: 0, atSeconds: harness.nowSeconds() + 1 });
    await harness.step();
    expect(await w.count()).toBe(2);
    expect((await poolStatus(name))?.drain?.phase).toBe('Removing');
  });
});
