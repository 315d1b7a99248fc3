import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { groupGpus, indexedPendingGroups } from '../placement.ts';
import { gateProblem, routingPatches } from '../routing.ts';
import { rolloutDrainView } from './dynamo.ts';
import { GROVE_LABELS, groveDrainView, groveGroupShape, type PodCliqueLike } from './grove.ts';

const NS = 'llm';
const PCSG = 'pcs-0-dec';
const CLIQUES = ['dec-ldr', 'dec-wkr'];

interface PodOptions {
  gated?: boolean;
  nodeName?: string;
  unschedulable?: boolean;
  deleting?: boolean;
}

/** One pod of clique `clique` in PCSG replica j, labelled as Grove labels it (PodClique labels + pod index). */
function grovePod(j: number, clique: string, i: number, o: PodOptions = {}): V1Pod {
  const pclq = `${PCSG}-${j}-${clique}`;
  return {
    metadata: {
      name: `${pclq}-${i}-x${j}${i}`,
      namespace: NS,
      labels: {
        [GROVE_LABELS.pcsg]: PCSG,
        [GROVE_LABELS.pcsgReplicaIndex]: String(j),
        [GROVE_LABELS.podClique]: pclq,
        [GROVE_LABELS.podIndex]: String(i),
      },
      ...(o.deleting ? { deletionTimestamp: new Date('2026-01-01T00:00:00Z') } : {}),
    },
    spec: {
      containers: [{ name: 'vllm', image: 'vllm/vllm-openai:v0.11.0' }],
      ...(o.gated === false ? {} : { readinessGates: [{ conditionType: 'kvpa.io/serving' }] }),
      ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}),
    },
    status: {
      phase: 'Running',
      podIP: `10.2.${j}.${i + 10}`,
      conditions: [
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
        ...(o.unschedulable ? [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] : []),
      ],
    },
  };
}

/** Replica j: 1 leader pod and `workers` worker pods. */
function replica(j: number, workers: number, o: PodOptions = {}): V1Pod[] {
  return [
    grovePod(j, 'dec-ldr', 0, o),
    ...Array.from({ length: workers }, (_, i) => grovePod(j, 'dec-wkr', i, o)),
  ];
}

const gpuSpec = (gpus: number): V1PodSpec => ({
  containers: [{ name: 'main', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }],
});

function clique(j: number, name: string, replicas: number, podSpec?: V1PodSpec): PodCliqueLike {
  return { metadata: { name: `${PCSG}-${j}-${name}` }, spec: { replicas, ...(podSpec ? { podSpec } : {}) } };
}

describe('groveDrainView', () => {
  it('3 replicas listed 1, 2, 0: Grove deletes [spec, existing), so 2 goes first, then 1, 0', () => {
    const v = groveDrainView(NS, PCSG, CLIQUES, [...replica(1, 2), ...replica(2, 2), ...replica(0, 2)]);
    expect(v.order.map((g) => g.key)).toEqual(['2', '1', '0']);
  });

  it('replicas 2 and 10 order numerically: 10 before 2', () => {
    const v = groveDrainView(NS, PCSG, CLIQUES, [...replica(2, 1), ...replica(10, 1)]);
    expect(v.order.map((g) => g.key)).toEqual(['10', '2']);
  });

  it('the head of replica 2 is the leader clique pod 0, its 3 workers its members by pod index, listed in any order', () => {
    const [ldr, w0, w1, w2] = replica(2, 3);
    if (!ldr || !w0 || !w1 || !w2) throw new Error('4 pods expected');
    const v = groveDrainView(NS, PCSG, CLIQUES, [w2, w0, ldr, w1]);
    expect(v.order[0]?.head).toEqual({
      namespace: NS,
      name: 'pcs-0-dec-2-dec-ldr-0-x20',
      groupKey: '2',
      groupReady: false,
      surge: false,
      podIP: '10.2.2.10',
      members: [
        { name: 'pcs-0-dec-2-dec-wkr-0-x20', podIP: '10.2.2.10' },
        { name: 'pcs-0-dec-2-dec-wkr-1-x21', podIP: '10.2.2.11' },
        { name: 'pcs-0-dec-2-dec-wkr-2-x22', podIP: '10.2.2.12' },
      ],
    });
    expect(v.order[0]?.serving).toBe(true);
  });

  it('a Dynamo-style leader clique (`-ldr`) listed second is still the head', () => {
    const v = groveDrainView(NS, PCSG, ['dec-wkr', 'dec-ldr'], replica(0, 1));
    expect(v.order[0]?.head?.name).toBe('pcs-0-dec-0-dec-ldr-0-x00');
  });

  it('replica 1 with workers but no leader pod has no head and is not serving; its pods still get routing', () => {
    const v = groveDrainView(NS, PCSG, CLIQUES, [...replica(0, 1), grovePod(1, 'dec-wkr', 0)]);
    expect(v.order.find((g) => g.key === '1')).toEqual({ key: '1', serving: false, head: undefined });
    expect(v.pods.filter((p) => p.groupKey === '1').map((p) => p.name)).toEqual([
      'pcs-0-dec-1-dec-wkr-0-x10',
    ]);
  });

  it('pods without a digits-only replica index ("", "x", "-1") are no group and get no routing', () => {
    const bad = ['', 'x', '-1'].map((index, k) => {
      const p = grovePod(0, 'dec-wkr', k);
      if (p.metadata?.labels) p.metadata.labels[GROVE_LABELS.pcsgReplicaIndex] = index;
      return p;
    });
    const v = groveDrainView(NS, PCSG, CLIQUES, [...bad, ...replica(1, 1)]);
    expect(v.order.map((g) => g.key)).toEqual(['1']);
    expect(v.pods).toHaveLength(2);
  });

  it('3 → 2 takes the 3 pods of replica 2 out of routing and keeps replicas 0 and 1 in', () => {
    const v = groveDrainView(NS, PCSG, CLIQUES, [...replica(0, 2), ...replica(1, 2), ...replica(2, 2)]);
    const victims = v.order.slice(0, 1).map((g) => g.key);
    expect(victims).toEqual(['2']);
    const patches = routingPatches(v.pods, new Set(victims));
    expect(patches.filter((p) => !p.serving).map((p) => p.name)).toEqual([
      'pcs-0-dec-2-dec-ldr-0-x20',
      'pcs-0-dec-2-dec-wkr-0-x20',
      'pcs-0-dec-2-dec-wkr-1-x21',
    ]);
    expect(patches.filter((p) => p.serving)).toHaveLength(6);
  });

  it('an ungated leader pod: the message names it and where the gate goes in Grove', () => {
    const pods = [...replica(0, 1), ...replica(1, 1, { gated: false })];
    expect(gateProblem(groveDrainView(NS, PCSG, CLIQUES, pods))).toBe(
      'pod(s) pcs-0-dec-1-dec-ldr-0-x10 have no readiness gate kvpa.io/serving: add readinessGates: ' +
        "[{conditionType: kvpa.io/serving}] to the pod template (the PodCliqueSet's " +
        "spec.template.cliques[].spec.podSpec of the clique, copied into each PodClique's spec.podSpec) to drain",
    );
  });

  it('every leader gated, workers not: no problem (the head is the pod that is read and routed)', () => {
    const pods = [grovePod(0, 'dec-ldr', 0), grovePod(0, 'dec-wkr', 0, { gated: false })];
    expect(gateProblem(groveDrainView(NS, PCSG, CLIQUES, pods))).toBeUndefined();
  });
});

describe('groveGroupShape', () => {
  it('1 leader of 8 GPUs and 3 workers of 8 GPUs: 4 pods, 32 GPUs, from the lowest complete replica', () => {
    const cliques = [
      clique(1, 'dec-ldr', 1, gpuSpec(8)),
      clique(1, 'dec-wkr', 3, gpuSpec(8)),
      clique(0, 'dec-ldr', 1, gpuSpec(8)), // replica 0 lacks its worker clique: skipped
    ];
    const shape = groveGroupShape(PCSG, CLIQUES, cliques);
    expect(shape?.pods).toHaveLength(4);
    expect(shape && groupGpus(shape)).toBe(32);
    expect(shape?.gpuResource).toBe('nvidia.com/gpu');
  });

  it('no PodClique yet, or no clique names: no shape (the capacity check is skipped)', () => {
    expect(groveGroupShape(PCSG, CLIQUES, [])).toBeUndefined();
    expect(groveGroupShape(PCSG, [], [clique(0, 'dec-ldr', 1)])).toBeUndefined();
  });
});

describe('pending PCSG replicas by replica-index label', () => {
  it('of 3 requested 3-pod replicas: one bound, one with an unbound worker, one Unschedulable', () => {
    const pods = [
      ...replica(0, 2, { nodeName: 'n0' }),
      grovePod(1, 'dec-ldr', 0, { nodeName: 'n1' }),
      grovePod(1, 'dec-wkr', 0, { nodeName: 'n1' }),
      grovePod(1, 'dec-wkr', 1),
      ...replica(2, 2, { unschedulable: true }),
    ];
    expect(indexedPendingGroups(3, 3, pods, GROVE_LABELS.pcsgReplicaIndex)).toEqual({
      unplacedGroups: 2,
      unschedulableGroups: 1,
    });
  });

  it('a replica whose pods are being deleted counts as missing pods: unplaced', () => {
    const pods = [...replica(0, 2, { nodeName: 'n0' }), ...replica(1, 2, { nodeName: 'n1', deleting: true })];
    expect(indexedPendingGroups(2, 3, pods, GROVE_LABELS.pcsgReplicaIndex)).toEqual({
      unplacedGroups: 1,
      unschedulableGroups: 0,
    });
  });
});

describe('rolloutDrainView (a Dynamo component naming two PCSGs)', () => {
  it('no removal order, every pod kept under a prefixed key, and the reason names both', () => {
    const a = groveDrainView(NS, PCSG, CLIQUES, replica(0, 1));
    const b = groveDrainView(NS, PCSG, CLIQUES, replica(1, 1));
    const v = rolloutDrainView('PodCliqueScalingGroup', ['old', 'new'], [a, b]);
    expect(v.order).toEqual([]);
    expect(v.pods.map((p) => p.groupKey)).toEqual(['old/0', 'old/0', 'new/1', 'new/1']);
    expect(gateProblem(v)).toBe(
      'the DynamoGraphDeployment status names 2 PodCliqueScalingGroups (old, new), a rollout in progress: ' +
        'which groups a scale-down removes is unknown',
    );
    // Nothing out of routing: every gated pod is set serving.
    expect(routingPatches(v.pods, new Set()).every((p) => p.serving)).toBe(true);
  });
});
