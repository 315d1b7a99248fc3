import type { V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { gateProblem, notCreatedKey } from '../routing.ts';
import { deploymentDrainView, statefulSetDrainView } from './apps.ts';

const NS = 'llm';

interface PodOptions {
  gated?: boolean;
  phase?: string;
  /** ContainersReady (the engine runs); default true. */
  running?: boolean;
  deleting?: boolean;
  /** The Deployment pod's ReplicaSet hash; default 7c9d. */
  hash?: string;
  /** The ReplicaSet owning it; default `decode-<hash>`. */
  owner?: string;
}

function pod(name: string, o: PodOptions = {}): V1Pod {
  const hash = o.hash ?? '7c9d';
  return {
    metadata: {
      name,
      namespace: NS,
      labels: { app: 'decode', 'pod-template-hash': hash },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: o.owner ?? `decode-${hash}`,
          uid: 'u',
          controller: true,
        },
      ],
      ...(o.deleting ? { deletionTimestamp: new Date('2026-01-01T00:00:00Z') } : {}),
    },
    spec: {
      containers: [{ name: 'vllm', image: 'vllm/vllm-openai:v0.11.0' }],
      ...(o.gated === false ? {} : { readinessGates: [{ conditionType: 'kvpa.io/serving' }] }),
    },
    status: {
      phase: o.phase ?? 'Running',
      podIP: '10.0.0.1',
      conditions: [
        { type: 'ContainersReady', status: o.running === false ? 'False' : 'True' },
        { type: 'Ready', status: o.running === false ? 'False' : 'True' },
      ],
    },
  };
}

function statefulSet(replicas: number, extra: Partial<V1StatefulSet['spec']> = {}): V1StatefulSet {
  return {
    metadata: { name: 'web', namespace: NS },
    spec: {
      replicas,
      serviceName: 'web',
      selector: { matchLabels: { app: 'web' } },
      template: {},
      ...extra,
    },
  };
}

const deployment = (replicas: number): V1Deployment => ({
  metadata: { name: 'decode', namespace: NS },
  spec: { replicas, selector: { matchLabels: { app: 'decode' } }, template: {} },
});

const webPods = (...ordinals: number[]) => ordinals.map((o) => pod(`web-${o}`));
const keys = (v: { order: readonly { key: string }[] }) => v.order.map((g) => g.key);

describe('statefulSetDrainView', () => {
  it('4 replicas listed 1, 3, 0, 2: ordinal 3 goes first, then 2, 1, 0; each pod is its own group and head', () => {
    const v = statefulSetDrainView(NS, statefulSet(4), webPods(1, 3, 0, 2));
    expect(keys(v)).toEqual(['3', '2', '1', '0']);
    expect(v.order.map((g) => g.head?.name)).toEqual(['web-3', 'web-2', 'web-1', 'web-0']);
    expect(v.order.every((g) => g.serving && g.head?.members?.length === 0)).toBe(true);
    expect(v.pods.map((p) => [p.name, p.groupKey])).toEqual([
      ['web-0', '0'],
      ['web-1', '1'],
      ['web-2', '2'],
      ['web-3', '3'],
    ]);
  });

  it('ordinals 10 and 9 of 11 order numerically: 10, 9, 8 … (not "9" after "10" as strings)', () => {
    const v = statefulSetDrainView(NS, statefulSet(11), webPods(...Array.from({ length: 11 }, (_, i) => i)));
    expect(keys(v).slice(0, 3)).toEqual(['10', '9', '8']);
  });

  it('replicas 4 with web-3 not created yet: ordinal 3 stays first, with no head and not serving (nothing to drain)', () => {
    const v = statefulSetDrainView(NS, statefulSet(4), webPods(0, 1, 2));
    expect(keys(v)).toEqual(['3', '2', '1', '0']);
    expect(v.order[0]).toEqual({ key: '3', serving: false, head: undefined });
  });

  it('after 6 → 4, web-5 and web-4 still terminating come after ordinal 0: a 4 → 3 drain takes 3, never 5', () => {
    const v = statefulSetDrainView(NS, statefulSet(4), webPods(0, 1, 2, 3, 4, 5));
    expect(keys(v)).toEqual(['3', '2', '1', '0', '5', '4']);
    expect(keys(v).slice(0, 4 - 3)).toEqual(['3']);
    // Still listed, so a written drain of 4 and 5 sees them until they are gone, and keeps them out of routing.
    expect(v.pods.map((p) => p.name)).toContain('web-5');
  });

  it('ordinals.start 5 with 3 replicas: 7, 6, 5 in range, web-4 below the start is leaving, last', () => {
    const v = statefulSetDrainView(NS, statefulSet(3, { ordinals: { start: 5 } }), webPods(4, 5, 6, 7));
    expect(keys(v)).toEqual(['7', '6', '5', '4']);
  });

  it('pods of another set (web-db-0) or not named web-<n> (web-1a, web-) are not groups: 2 listed, 2 kept', () => {
    const v = statefulSetDrainView(NS, statefulSet(2), [
      ...webPods(0, 1),
      pod('web-db-0'),
      pod('web-1a'),
      pod('web-'),
    ]);
    expect(v.pods.map((p) => p.name)).toEqual(['web-0', 'web-1']);
  });

  it('OrderedReady (the default, or named) drains 1 ordinal per write; Parallel has no limit', () => {
    expect(statefulSetDrainView(NS, statefulSet(4), webPods(0)).maxVictims).toBe(1);
    expect(
      statefulSetDrainView(NS, statefulSet(4, { podManagementPolicy: 'OrderedReady' }), webPods(0))
        .maxVictims,
    ).toBe(1);
    expect(
      statefulSetDrainView(NS, statefulSet(4, { podManagementPolicy: 'Parallel' }), webPods(0)).maxVictims,
    ).toBeUndefined();
  });

  it('web-2 without the gate: the problem names it and the StatefulSet template', () => {
    const pods = [...webPods(0, 1), pod('web-2', { gated: false })];
    expect(gateProblem(statefulSetDrainView(NS, statefulSet(3), pods))).toBe(
      'pod(s) web-2 have no readiness gate kvpa.io/serving: add readinessGates: [{conditionType: kvpa.io/serving}] to the pod template (spec.template.spec of the StatefulSet) to drain',
    );
  });
});

describe('deploymentDrainView', () => {
  it('3 pods of ReplicaSet decode-7c9d: kvpa chooses among them, each pod its own group keyed by name', () => {
    const v = deploymentDrainView(NS, deployment(3), [
      pod('decode-7c9d-c'),
      pod('decode-7c9d-a'),
      pod('decode-7c9d-b'),
    ]);
    expect(v.chosenVictims).toBe(true);
    expect(keys(v)).toEqual(['decode-7c9d-a', 'decode-7c9d-b', 'decode-7c9d-c']);
    expect(v.unavailable).toBeUndefined();
    expect(gateProblem(v)).toBeUndefined();
  });

  it('spec 4 with 3 pods: 1 not-created entry comes first, naming no pod', () => {
    const v = deploymentDrainView(NS, deployment(4), [
      pod('decode-7c9d-a'),
      pod('decode-7c9d-b'),
      pod('decode-7c9d-c'),
    ]);
    expect(keys(v)).toEqual([notCreatedKey(1), 'decode-7c9d-a', 'decode-7c9d-b', 'decode-7c9d-c']);
    expect(v.pods).toHaveLength(3);
  });

  it('of 5 pods listed, a terminating one and a Failed one are not counted: spec 4 has 3 groups and 1 not created', () => {
    const v = deploymentDrainView(NS, deployment(4), [
      pod('decode-7c9d-a'),
      pod('decode-7c9d-b'),
      pod('decode-7c9d-c'),
      pod('decode-7c9d-d', { deleting: true }),
      pod('decode-7c9d-e', { phase: 'Failed' }),
    ]);
    expect(keys(v)).toEqual([notCreatedKey(1), 'decode-7c9d-a', 'decode-7c9d-b', 'decode-7c9d-c']);
    // A terminating pod kvpa drained keeps its condition: it is no routing pod any more.
    expect(v.pods.map((p) => p.name)).not.toContain('decode-7c9d-d');
  });

  it('a starting pod (engine not running) is a group that is not serving', () => {
    const v = deploymentDrainView(NS, deployment(2), [
      pod('decode-7c9d-a'),
      pod('decode-7c9d-b', { running: false }),
    ]);
    expect(v.order.map((g) => [g.key, g.serving])).toEqual([
      ['decode-7c9d-a', true],
      ['decode-7c9d-b', false],
    ]);
  });

  it("a pod matching the selector but owned by another Deployment's ReplicaSet (api-7c9d) is not one of its 2", () => {
    const v = deploymentDrainView(NS, deployment(2), [
      pod('decode-7c9d-a'),
      pod('decode-7c9d-b'),
      pod('api-7c9d-x', { owner: 'api-7c9d' }),
    ]);
    expect(keys(v)).toEqual(['decode-7c9d-a', 'decode-7c9d-b']);
  });

  it('pods of 2 ReplicaSets (7c9d and 5f6b) mid-rollout: unavailable says the split cannot be chosen', () => {
    const v = deploymentDrainView(NS, deployment(3), [
      pod('decode-7c9d-a'),
      pod('decode-7c9d-b'),
      pod('decode-5f6b-c', { hash: '5f6b' }),
    ]);
    expect(gateProblem(v)).toBe(
      'the Deployment is rolling out (pods of 2 ReplicaSets): it splits a scale-down between them, so the pods it removes cannot be chosen',
    );
    // Every pod is still routed by kvpa.
    expect(v.pods).toHaveLength(3);
  });

  it('an ungated pod: the problem names the Deployment template', () => {
    const v = deploymentDrainView(NS, deployment(1), [pod('decode-7c9d-a', { gated: false })]);
    expect(gateProblem(v)).toContain('(spec.template.spec of the Deployment)');
  });
});
