import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { groupGpus } from '../placement.ts';
import { gateProblem } from '../routing.ts';
import {
  STORM_LABELS,
  type StormSetup,
  stormDrainView,
  stormGroupShape,
  stormPendingGroups,
} from './storm-service.ts';

const NS = 'llm';

interface PodOptions {
  gated?: boolean;
  nodeName?: string;
  unschedulable?: boolean;
  roleSet?: string;
}

/** A pod of PodSet `<rs>-decode-<index>` as AIBrix labels it: the PodSet's labels plus its pod-group-index. */
function podSetPod(index: number, i: number, o: PodOptions = {}): V1Pod {
  const roleSet = o.roleSet ?? 'ss-roleset-a';
  const podSet = `${roleSet}-decode-h1-${index}`;
  return {
    metadata: {
      name: `${podSet}-${i}`,
      namespace: NS,
      labels: {
        [STORM_LABELS.service]: 'ss',
        [STORM_LABELS.role]: 'decode',
        [STORM_LABELS.roleSet]: roleSet,
        [STORM_LABELS.roleReplicaIndex]: String(index),
        [STORM_LABELS.podSet]: podSet,
        [STORM_LABELS.podGroupIndex]: String(i),
      },
    },
    spec: {
      containers: [{ name: 'vllm', image: 'vllm/vllm-openai:v0.11.0' }],
      ...(o.gated === false ? {} : { readinessGates: [{ conditionType: 'kvpa.io/serving' }] }),
      ...(o.nodeName !== undefined ? { nodeName: o.nodeName } : {}),
    },
    status: {
      phase: 'Running',
      podIP: `10.4.${index}.${i + 10}`,
      conditions: [
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
        ...(o.unschedulable ? [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] : []),
      ],
    },
  };
}

/** PodSet `index`: pod-group-index 0 … size − 1. */
const podSet = (index: number, size: number, o: PodOptions = {}) =>
  Array.from({ length: size }, (_, i) => podSetPod(index, i, o));

/** A stateless pod: no role-replica-index (AIBrix renders it with roleIndex nil). */
function statelessPod(name: string, o: PodOptions = {}): V1Pod {
  const p = podSetPod(0, 0, o);
  const labels = { ...p.metadata?.labels };
  delete labels[STORM_LABELS.roleReplicaIndex];
  delete labels[STORM_LABELS.podSet];
  delete labels[STORM_LABELS.podGroupIndex];
  return { ...p, metadata: { ...p.metadata, name, labels } };
}

const SETUP: StormSetup = {
  service: 'ss',
  role: 'decode',
  roleSets: 1,
  updateStrategy: 'InPlaceUpdate',
  podGroupSize: 2,
  stateful: false,
};

describe('stormDrainView', () => {
  it('PodSets 1, 2, 0 listed in that order: AIBrix deletes indexes ≥ the new count, so 2 goes first, then 1, 0', () => {
    const v = stormDrainView(NS, SETUP, [...podSet(1, 2), ...podSet(2, 2), ...podSet(0, 2)]);
    expect(v.order.map((g) => g.key)).toEqual(['2', '1', '0']);
    expect(v.unavailable).toBeUndefined();
    expect(gateProblem(v)).toBeUndefined();
  });

  it('indexes 2 and 10 order numerically: 10 before 2', () => {
    const v = stormDrainView(NS, SETUP, [...podSet(2, 2), ...podSet(10, 2)]);
    expect(v.order.map((g) => g.key)).toEqual(['10', '2']);
  });

  it('the head of PodSet 2 is its pod-group-index 0, its other 3 pods its members in index order', () => {
    const [p0, p1, p2, p3] = podSet(2, 4);
    if (!p0 || !p1 || !p2 || !p3) throw new Error('4 pods expected');
    const v = stormDrainView(NS, SETUP, [p3, p1, p0, p2]);
    expect(v.order[0]?.head?.name).toBe('ss-roleset-a-decode-h1-2-0');
    expect(v.order[0]?.head?.members?.map((m) => m.name)).toEqual([
      'ss-roleset-a-decode-h1-2-1',
      'ss-roleset-a-decode-h1-2-2',
      'ss-roleset-a-decode-h1-2-3',
    ]);
    // Every pod of the group is routed with it.
    expect(v.pods.filter((p) => p.groupKey === '2')).toHaveLength(4);
  });

  it('a stateful one-pod role goes by the index on its pods: 3 pods, highest first', () => {
    const v = stormDrainView(NS, { ...SETUP, podGroupSize: 1, stateful: true }, [
      ...podSet(0, 1),
      ...podSet(2, 1),
      ...podSet(1, 1),
    ]);
    expect(v.order.map((g) => [g.key, g.head?.members?.length])).toEqual([
      ['2', 0],
      ['1', 0],
      ['0', 0],
    ]);
  });

  it('a stateless one-pod role cannot drain: no order, the reason, and its 3 pods still listed for routing', () => {
    const pods = [statelessPod('a'), statelessPod('b'), statelessPod('c')];
    const v = stormDrainView(NS, { ...SETUP, podGroupSize: 1 }, pods);
    expect(v.order).toEqual([]);
    expect(v.pods.map((p) => p.name).sort()).toEqual(['a', 'b', 'c']);
    expect(gateProblem(v)).toMatch(/role decode is stateless .*set stateful: true on the role/);
  });

  it('updateStrategy unset (RollingUpdate) cannot drain: a new count replaces the RoleSets whole', () => {
    const v = stormDrainView(NS, { ...SETUP, updateStrategy: undefined }, podSet(0, 2));
    expect(v.order).toEqual([]);
    expect(v.unavailable).toMatch(/updateStrategy\.type unset \(RollingUpdate\).*InPlaceUpdate to drain/);
  });

  it('pods of 2 RoleSets (spec.replicas 1, the old one still there) cannot drain: each drops its own highest', () => {
    const v = stormDrainView(NS, SETUP, [...podSet(0, 2), ...podSet(0, 2, { roleSet: 'ss-roleset-b' })]);
    expect(v.order).toEqual([]);
    expect(v.unavailable).toContain('pods of 2: ss-roleset-a, ss-roleset-b');
    expect(v.pods).toHaveLength(4);
  });

  it('spec.replicas 2 cannot drain even before the second RoleSet has pods', () => {
    expect(stormDrainView(NS, { ...SETUP, roleSets: 2 }, podSet(0, 2)).unavailable).toContain(
      'runs 2 RoleSet(s)',
    );
  });

  it('ungated pods: the reason names the role pod template', () => {
    const v = stormDrainView(NS, SETUP, podSet(0, 2, { gated: false }));
    expect(gateProblem(v)).toContain(
      'spec.template.spec.roles[name=decode].template.spec of the StormService',
    );
  });
});

const gpuSpec = (gpus: number): V1PodSpec => ({
  containers: [{ name: 'main', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }],
});

describe('stormGroupShape', () => {
  it('podGroupSize 2 of an 8-GPU template: 2 pods, 16 GPUs per group', () => {
    const shape = stormGroupShape({ name: 'decode', podGroupSize: 2, template: { spec: gpuSpec(8) } });
    expect(shape?.pods).toHaveLength(2);
    expect(shape?.gpuResource).toBe('nvidia.com/gpu');
    expect(shape === undefined ? 0 : groupGpus(shape)).toBe(16);
  });

  it('podGroupSize unset is one pod: 4 GPUs; no template, no shape', () => {
    const shape = stormGroupShape({ name: 'prefill', template: { spec: gpuSpec(4) } });
    expect(shape === undefined ? 0 : groupGpus(shape)).toBe(4);
    expect(stormGroupShape({ name: 'prefill' })).toBeUndefined();
  });
});

describe('stormPendingGroups', () => {
  it('spec 3, PodSet 0 bound, PodSet 1 with one pod unschedulable, PodSet 2 not created: 2 unplaced, 1 unschedulable', () => {
    const pods = [
      ...podSet(0, 2, { nodeName: 'n1' }),
      podSetPod(1, 0, { nodeName: 'n1' }),
      podSetPod(1, 1, { unschedulable: true }),
    ];
    expect(stormPendingGroups(3, 2, true, pods)).toEqual({ unplacedGroups: 2, unschedulableGroups: 1 });
  });

  it('stateless, spec 3: 2 pods bound and 1 unschedulable give 1 unplaced, 1 unschedulable', () => {
    const pods = [
      statelessPod('a', { nodeName: 'n1' }),
      statelessPod('b', { nodeName: 'n2' }),
      statelessPod('c', { unschedulable: true }),
    ];
    expect(stormPendingGroups(3, 1, false, pods)).toEqual({ unplacedGroups: 1, unschedulableGroups: 1 });
  });
});
