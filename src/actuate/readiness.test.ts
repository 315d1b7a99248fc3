import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { applyGroups } from './apply.ts';
import { fleetGroups, type RayClusterLike, rayClusterReady } from './kinds/aibrix-fleet.ts';
import { statefulSetGroups } from './kinds/apps.ts';
import { groveGroupSize, groveGroups, leaderClique, type PodCliqueLike } from './kinds/grove.ts';
import { rayWorkerGroups } from './kinds/kuberay.ts';
import { lwsGroups } from './kinds/lws.ts';
import { stormRoleGroups, stormRoleReady } from './kinds/storm-service.ts';
import { listElementReplicasPatch, scalePatch } from './kube.ts';
import { capacityGroups, isPodReady } from './readiness.ts';
import { labelSelectorString } from './targets.ts';
import { ConflictError, type ScaleTarget, type TargetState } from './types.ts';

function pod(name: string, labels: Record<string, string>, ready = true, extra: Partial<V1Pod> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'llm', labels, ...extra.metadata },
    spec: { containers: [{ name: 'vllm', image: 'vllm/vllm-openai:v0.11.0' }] },
    status: {
      phase: 'Running',
      podIP: '10.0.0.7',
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Ready', status: ready ? 'True' : 'False' },
      ],
    },
  };
}

/** Pods of an LWS group as the LWS controller labels them (leader `<lws>-<i>`, workers `<lws>-<i>-<w>`). */
function lwsGroup(lws: string, i: number, size: number, notReady: number[] = []): V1Pod[] {
  return Array.from({ length: size }, (_, w) =>
    pod(
      w === 0 ? `${lws}-${i}` : `${lws}-${i}-${w}`,
      {
        'leaderworkerset.sigs.k8s.io/name': lws,
        'leaderworkerset.sigs.k8s.io/group-index': String(i),
        'leaderworkerset.sigs.k8s.io/worker-index': String(w),
        'leaderworkerset.sigs.k8s.io/group-key': `sha-${i}`,
        'leaderworkerset.sigs.k8s.io/template-revision-hash': 'abc123',
      },
      !notReady.includes(w),
    ),
  );
}

describe('isPodReady', () => {
  it('needs Running, Ready=True and no deletionTimestamp', () => {
    expect(isPodReady(pod('a', {}))).toBe(true);
    expect(isPodReady(pod('a', {}, false))).toBe(false);
    const pending = pod('a', {});
    if (pending.status) pending.status.phase = 'Pending';
    expect(isPodReady(pending)).toBe(false);
    expect(isPodReady(pod('a', {}, true, { metadata: { deletionTimestamp: new Date() } }))).toBe(false);
  });
});

describe('lwsGroups', () => {
  it('counts a group only when leader and all workers are Ready, and never a surge group', () => {
    const pods = [
      ...lwsGroup('ds', 0, 4),
      ...lwsGroup('ds', 1, 4, [3]), // one worker unready
      ...lwsGroup('ds', 2, 4, [0]), // leader unready
      ...lwsGroup('ds', 3, 4), // maxSurge group (spec 3)
    ];
    const groups = lwsGroups(3, 4, pods);
    expect(groups.map((g) => [g.key, g.ready, g.surge])).toEqual([
      ['0', true, false],
      ['1', false, false],
      ['2', false, false],
      ['3', true, true],
    ]);
    expect(capacityGroups(groups, 3)).toBe(1);
    expect(groups[0]?.head?.metadata?.name).toBe('ds-0');
  });

  it('treats a group with a missing worker as not ready, and size 1 as leader only', () => {
    const missing = lwsGroup('x', 0, 4).filter((p) => p.metadata?.name !== 'x-0-2');
    expect(lwsGroups(1, 4, missing)[0]?.ready).toBe(false);
    expect(lwsGroups(1, 1, lwsGroup('y', 0, 1))[0]?.ready).toBe(true);
  });

  it('ignores workers left from an earlier incarnation of the leader (different group-key)', () => {
    const pods = lwsGroup('z', 0, 2, [1]);
    const stale = lwsGroup('z', 0, 2)[1];
    if (stale?.metadata?.labels) stale.metadata.labels['leaderworkerset.sigs.k8s.io/group-key'] = 'old';
    expect(lwsGroups(1, 2, [...pods, ...(stale ? [stale] : [])])[0]?.ready).toBe(false);
  });
});

function rayCluster(
  name: string,
  ready: number,
  desired: number,
  provisioned = true,
  headReady = true,
): RayClusterLike {
  const cond = (type: string, ok: boolean) => ({
    type,
    status: ok ? 'True' : 'False',
    reason: ok ? 'Ready' : 'NotReady',
    message: '',
    lastTransitionTime: '2026-01-01T00:00:00Z',
  });
  return {
    metadata: { name },
    status: {
      readyWorkerReplicas: ready,
      desiredWorkerReplicas: desired,
      conditions: [cond('RayClusterProvisioned', provisioned), cond('HeadPodReady', headReady)],
    },
  };
}

describe('RayClusterFleet', () => {
  it("applies AIBrix's rule: Provisioned, HeadPodReady and all desired workers ready", () => {
    expect(rayClusterReady(rayCluster('a', 3, 3))).toBe(true);
    expect(rayClusterReady(rayCluster('a', 2, 3))).toBe(false);
    expect(rayClusterReady(rayCluster('a', 3, 3, false))).toBe(false);
    expect(rayClusterReady(rayCluster('a', 3, 3, true, false))).toBe(false);
    expect(rayClusterReady({ metadata: { name: 'fresh' } })).toBe(false);
  });

  it('caps ready clusters at spec during a rollout and pairs heads by ray.io/cluster', () => {
    const heads = [pod('f-a-head', { 'ray.io/cluster': 'f-a', 'ray.io/node-type': 'head' })];
    const groups = fleetGroups(
      [rayCluster('f-a', 2, 2), rayCluster('f-b', 2, 2), rayCluster('f-c', 2, 2)],
      heads,
    );
    expect(capacityGroups(groups, 2)).toBe(2);
    expect(groups[0]?.head?.metadata?.name).toBe('f-a-head');
    expect(groups[1]?.head).toBeUndefined();
  });
});

describe('rayWorkerGroups', () => {
  const host = (replica: string, index: number, ready: boolean) =>
    pod(
      `${replica}-${index}`,
      {
        'ray.io/cluster': 'rc',
        'ray.io/group': 'gpu',
        'ray.io/node-type': 'worker',
        'ray.io/worker-group-replica-name': replica,
        'ray.io/replica-host-index': String(index),
      },
      ready,
    );

  it('groups multi-host replicas and needs every host Ready; head is host 0', () => {
    const groups = rayWorkerGroups(2, [
      host('r1', 1, true),
      host('r1', 0, true),
      host('r2', 0, true),
      host('r2', 1, false),
    ]);
    expect(groups.map((g) => [g.key, g.ready, g.head?.metadata?.name])).toEqual([
      ['r1', true, 'r1-0'],
      ['r2', false, 'r2-0'],
    ]);
  });

  it('treats each pod as a group when numOfHosts is 1', () => {
    expect(rayWorkerGroups(1, [pod('w1', {}), pod('w2', {}, false)]).map((g) => g.ready)).toEqual([
      true,
      false,
    ]);
  });
});

describe('Grove PCSG', () => {
  const pclq = (name: string, replicas: number, ready: number): PodCliqueLike => ({
    metadata: { name },
    spec: { replicas },
    status: { readyReplicas: ready },
  });

  it('needs every member clique fully ready (not minAvailable); replicas ≥ spec are surge', () => {
    const cliques = [
      pclq('pcs-0-dec-0-dec-ldr', 1, 1),
      pclq('pcs-0-dec-0-dec-wkr', 3, 3),
      pclq('pcs-0-dec-1-dec-ldr', 1, 1),
      pclq('pcs-0-dec-1-dec-wkr', 3, 2),
      pclq('pcs-0-dec-2-dec-ldr', 1, 1), // worker clique missing: not ready
      pclq('pcs-0-dec-3-dec-ldr', 1, 1),
      pclq('pcs-0-dec-3-dec-wkr', 3, 3),
    ];
    const leaderPod = pod('pcs-0-dec-0-dec-ldr-abc', {
      'grove.io/podclique': 'pcs-0-dec-0-dec-ldr',
      'grove.io/podclique-pod-index': '0',
    });
    const groups = groveGroups('pcs-0-dec', 3, ['dec-ldr', 'dec-wkr'], cliques, [leaderPod]);
    expect(groups.map((g) => [g.key, g.ready, g.surge])).toEqual([
      ['0', true, false],
      ['1', false, false],
      ['2', false, false],
      ['3', true, true],
    ]);
    expect(capacityGroups(groups, 3)).toBe(1);
    expect(groups[0]?.head?.metadata?.name).toBe('pcs-0-dec-0-dec-ldr-abc');
    expect(groveGroupSize('pcs-0-dec', ['dec-ldr', 'dec-wkr'], cliques)).toBe(4);
  });

  it('picks the leader clique: Dynamo -ldr, else a leader/head name, else the first', () => {
    expect(leaderClique(['dec-wkr', 'dec-ldr'])).toBe('dec-ldr');
    expect(leaderClique(['workers', 'leader'])).toBe('leader');
    expect(leaderClique(['a', 'b'])).toBe('a');
  });
});

describe('StormService role', () => {
  it('uses roleStatuses readyReplicas for the role, capped at spec', () => {
    const statuses = [
      { name: 'prefill', replicas: 2, readyReplicas: 2 },
      { name: 'decode', replicas: 5, readyReplicas: 4 }, // old + new RoleSets mid-rollout
    ];
    expect(stormRoleReady(statuses, 'decode', 3)).toBe(3);
    expect(stormRoleReady(statuses, 'prefill', 3)).toBe(2);
    expect(stormRoleReady(undefined, 'decode', 3)).toBe(0);
  });

  it('groups pods by PodSet for heads; the head is pod-group-index 0', () => {
    const member = (ps: string, i: number, ready: boolean) =>
      pod(
        `${ps}-${i}`,
        {
          'storm-service-name': 's',
          'role-name': 'decode',
          'stormservice.orchestration.aibrix.ai/podset-name': ps,
          'stormservice.orchestration.aibrix.ai/pod-group-index': String(i),
        },
        ready,
      );
    const groups = stormRoleGroups(2, [
      member('p0', 1, true),
      member('p0', 0, true),
      member('p1', 0, false),
      member('p1', 1, true),
    ]);
    expect(groups.map((g) => [g.key, g.ready, g.head?.metadata?.name])).toEqual([
      ['p0', true, 'p0-0'],
      ['p1', false, 'p1-0'],
    ]);
  });
});

describe('statefulSetGroups', () => {
  it('marks ordinals ≥ spec as surge and ignores pods of other sets', () => {
    const groups = statefulSetGroups('db', 2, [
      pod('db-1', {}),
      pod('db-0', {}, false),
      pod('db-2', {}),
      pod('dbx-0', {}),
    ]);
    expect(groups.map((g) => [g.key, g.ready, g.surge])).toEqual([
      ['0', false, false],
      ['1', true, false],
      ['2', true, true],
    ]);
  });
});

describe('patch bodies and selectors', () => {
  it('carries the resourceVersion precondition and touches only the count', () => {
    expect(scalePatch(4, '123')).toEqual({ metadata: { resourceVersion: '123' }, spec: { replicas: 4 } });
    expect(listElementReplicasPatch('/spec/workerGroupSpecs', 1, 'groupName', 'gpu', 3, '77')).toEqual([
      { op: 'test', path: '/spec/workerGroupSpecs/1/groupName', value: 'gpu' },
      { op: 'replace', path: '/metadata/resourceVersion', value: '77' },
      { op: 'add', path: '/spec/workerGroupSpecs/1/replicas', value: 3 },
    ]);
  });

  it('renders matchLabels and matchExpressions', () => {
    expect(
      labelSelectorString({
        matchLabels: { app: 'x' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['a', 'b'] },
          { key: 'gone', operator: 'DoesNotExist' },
        ],
      }),
    ).toBe('app=x,tier in (a,b),!gone');
  });
});

/** An in-memory ScaleTarget: the API-server behaviour is covered by the integration test. */
function memoryTarget(spec: number, conflictsBeforeSuccess: number) {
  let rv = 1;
  let conflicts = conflictsBeforeSuccess;
  const writes: number[] = [];
  const target: ScaleTarget = {
    namespace: 'llm',
    ref: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: 'decode' },
    read: async (): Promise<TargetState> => ({
      specGroups: spec,
      readyGroups: spec,
      groupSize: 2,
      resourceVersion: String(rv),
    }),
    heads: async () => [],
    write: async (groups, resourceVersion) => {
      if (conflicts > 0 || resourceVersion !== String(rv)) {
        conflicts--;
        rv++; // another writer bumped it
        throw new ConflictError(target.ref, 'llm', 'the object has been modified');
      }
      writes.push(groups);
      spec = groups;
      rv++;
    },
  };
  return { target, writes };
}

describe('applyGroups', () => {
  it('does not write when the decision equals spec', async () => {
    const { target, writes } = memoryTarget(3, 0);
    expect(await applyGroups(target, (s) => s.specGroups)).toEqual({
      from: 3,
      to: 3,
      wrote: false,
      attempts: 1,
    });
    expect(writes).toEqual([]);
  });

  it('re-reads and decides again after a conflict', async () => {
    const { target, writes } = memoryTarget(3, 1);
    const seen: string[] = [];
    const result = await applyGroups(target, (s) => {
      seen.push(s.resourceVersion);
      return 5;
    });
    expect(result).toEqual({ from: 3, to: 5, wrote: true, attempts: 2 });
    expect(seen).toEqual(['1', '2']);
    expect(writes).toEqual([5]);
  });

  it('gives up after the bounded attempts with a ConflictError', async () => {
    const { target, writes } = memoryTarget(3, 10);
    await expect(applyGroups(target, () => 4, 3)).rejects.toThrow(/still conflicting after 3 attempts/);
    expect(writes).toEqual([]);
  });
});
