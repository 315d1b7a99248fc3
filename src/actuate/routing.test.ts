import type { V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { isPodReady } from './readiness.ts';
import {
  type DrainView,
  drainingMessage,
  drainingOwner,
  gateProblem,
  lwsDrainView,
  orphanedPods,
  type RoutingPod,
  routingOwnerKey,
  routingPatches,
} from './routing.ts';

const LWS = 'decode';
const NS = 'llm';

interface PodOptions {
  /** Lists kvpa's readiness gate (default true). */
  gated?: boolean;
  /** The kvpa.io/serving condition: omitted when undefined. */
  serving?: 'True' | 'False' | 'Unknown';
  phase?: string;
  /** Status of ContainersReady and Ready (default 'True'). */
  containersReady?: 'True' | 'False';
  ready?: 'True' | 'False';
  deleting?: boolean;
  podIP?: string;
  /** Labels to replace the LWS ones (for malformed pods). */
  labels?: Record<string, string>;
}

/** One LWS pod as the LWS controller labels it: leader `<lws>-<i>`, workers `<lws>-<i>-<w>`. */
function lwsPod(group: number, worker: number, o: PodOptions = {}): V1Pod {
  const conditions: V1PodCondition[] = [
    { type: 'PodScheduled', status: 'True' },
    { type: 'Initialized', status: 'True' },
    { type: 'ContainersReady', status: o.containersReady ?? 'True' },
    { type: 'Ready', status: o.ready ?? 'True' },
  ];
  if (o.serving !== undefined) conditions.push({ type: 'kvpa.io/serving', status: o.serving });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: worker === 0 ? `${LWS}-${group}` : `${LWS}-${group}-${worker}`,
      namespace: NS,
      labels: o.labels ?? {
        'leaderworkerset.sigs.k8s.io/name': LWS,
        'leaderworkerset.sigs.k8s.io/group-index': String(group),
        'leaderworkerset.sigs.k8s.io/worker-index': String(worker),
        'leaderworkerset.sigs.k8s.io/group-key': `sha-${group}`,
      },
      ...(o.deleting ? { deletionTimestamp: new Date('2025-06-01T12:00:00Z') } : {}),
    },
    spec: {
      containers: [{ name: 'vllm', image: 'vllm/vllm-openai:v0.11.0' }],
      readinessGates: [
        { conditionType: 'example.com/other' },
        ...(o.gated === false ? [] : [{ conditionType: 'kvpa.io/serving' }]),
      ],
    },
    status: {
      phase: o.phase ?? 'Running',
      podIP: o.podIP ?? `10.0.${group}.${worker + 10}`,
      conditions,
    },
  };
}

/** A whole group: leader and `size - 1` workers, all with the same options. */
function lwsGroup(group: number, size: number, o: PodOptions = {}): V1Pod[] {
  return Array.from({ length: size }, (_, w) => lwsPod(group, w, o));
}

function view(pods: readonly V1Pod[]): DrainView {
  return lwsDrainView(NS, pods);
}

describe('lwsDrainView', () => {
  it('a 4-group LWS listed 1, 3, 0, 2 drains index 3 first, then 2, 1, 0', () => {
    const v = view([...lwsGroup(1, 2), ...lwsGroup(3, 2), ...lwsGroup(0, 2), ...lwsGroup(2, 2)]);
    expect(v.order.map((g) => g.key)).toEqual(['3', '2', '1', '0']);
  });

  it('groups 2 and 10 order numerically (10 before 2), not as strings', () => {
    const v = view([...lwsGroup(2, 1), ...lwsGroup(10, 1), ...lwsGroup(9, 1)]);
    expect(v.order.map((g) => g.key)).toEqual(['10', '9', '2']);
  });

  it('the head of group 3 is its worker-index 0 pod decode-3 with its IP, even listed after its 2 workers, which are its members in order', () => {
    const [leader, w1, w2] = lwsGroup(3, 3, { podIP: '10.4.3.7' });
    if (leader === undefined || w1 === undefined || w2 === undefined) throw new Error('3 pods expected');
    const v = view([w2, w1, leader]);
    expect(v.order).toHaveLength(1);
    expect(v.order[0]?.head).toEqual({
      namespace: NS,
      name: 'decode-3',
      groupKey: '3',
      groupReady: false,
      surge: false,
      podIP: '10.4.3.7',
      members: [
        { name: 'decode-3-1', podIP: '10.4.3.7' },
        { name: 'decode-3-2', podIP: '10.4.3.7' },
      ],
    });
  });

  it('a head without a podIP yet carries no podIP field', () => {
    const leader = lwsPod(0, 0, { phase: 'Pending' });
    if (leader.status) delete leader.status.podIP;
    const head = view([leader]).order[0]?.head;
    expect(head?.name).toBe('decode-0');
    expect(head !== undefined && 'podIP' in head).toBe(false);
  });

  it('group 1 with workers 1 and 2 but no leader pod has no head and is not serving', () => {
    const v = view([...lwsGroup(0, 3), lwsPod(1, 1), lwsPod(1, 2)]);
    const g1 = v.order.find((g) => g.key === '1');
    expect(g1).toEqual({ key: '1', serving: false, head: undefined });
    expect(v.order.map((g) => g.key)).toEqual(['1', '0']);
    expect(v.pods.filter((p) => p.groupKey === '1').map((p) => p.name)).toEqual(['decode-1-1', 'decode-1-2']);
  });

  it('serving follows the leader: Running with ContainersReady or Ready True, and not being deleted', () => {
    const cases: [string, PodOptions, boolean][] = [
      ['Running, both True', {}, true],
      ['Running, ContainersReady True, Ready False (out of routing)', { ready: 'False' }, true],
      ['Running, ContainersReady False, Ready True', { containersReady: 'False' }, true],
      ['Running, both False', { containersReady: 'False', ready: 'False' }, false],
      ['Pending', { phase: 'Pending' }, false],
      ['Succeeded', { phase: 'Succeeded' }, false],
      ['Running but terminating', { deleting: true }, false],
    ];
    for (const [label, options, serving] of cases) {
      const v = view([lwsPod(0, 0, options), lwsPod(0, 1)]);
      expect({ label, serving: v.order[0]?.serving }).toEqual({ label, serving });
    }
  });

  it('a running worker does not make group 2 serving when its leader is Pending', () => {
    const v = view([lwsPod(2, 0, { phase: 'Pending' }), lwsPod(2, 1), lwsPod(2, 2)]);
    expect(v.order[0]?.serving).toBe(false);
  });

  it('a leader with no conditions at all (just started, phase Running) is not serving', () => {
    const leader = lwsPod(0, 0);
    if (leader.status) leader.status.conditions = [];
    expect(view([leader]).order[0]?.serving).toBe(false);
  });

  it('pods with group-index missing, "abc", "-1", "1.5", "", " 2", "0x3" or "1e1" are skipped: only group 0 of 9 pods remains', () => {
    const labels = (groupIndex: string | undefined): Record<string, string> => ({
      'leaderworkerset.sigs.k8s.io/name': LWS,
      'leaderworkerset.sigs.k8s.io/worker-index': '0',
      ...(groupIndex === undefined ? {} : { 'leaderworkerset.sigs.k8s.io/group-index': groupIndex }),
    });
    // '', ' 2', '0x3' and '1e1' are numbers to Number() but not to lwsGroups: skipped here too.
    const bad = [undefined, 'abc', '-1', '1.5', '', ' 2', '0x3', '1e1'].map((g, i) => {
      const p = lwsPod(7, 0, { labels: labels(g) });
      if (p.metadata) p.metadata.name = `stray-${i}`;
      return p;
    });
    const v = view([...bad, lwsPod(0, 0)]);
    expect(v.order.map((g) => g.key)).toEqual(['0']);
    expect(v.pods.map((p) => p.name)).toEqual(['decode-0']);
  });

  it('every pod of 2 groups × 3 is a routing pod with its group key: 6 pods', () => {
    const v = view([...lwsGroup(0, 3), ...lwsGroup(1, 3)]);
    expect(v.pods.map((p) => [p.name, p.groupKey])).toEqual([
      ['decode-0', '0'],
      ['decode-0-1', '0'],
      ['decode-0-2', '0'],
      ['decode-1', '1'],
      ['decode-1-1', '1'],
      ['decode-1-2', '1'],
    ]);
  });

  it('gated is true only for a kvpa.io/serving gate; another gate alone does not count', () => {
    const v = view([lwsPod(0, 0), lwsPod(0, 1, { gated: false })]);
    expect(v.pods.map((p) => [p.name, p.gated])).toEqual([
      ['decode-0', true],
      ['decode-0-1', false],
    ]);
  });

  it('a pod with no spec.readinessGates at all is ungated', () => {
    const p = lwsPod(0, 0);
    if (p.spec) delete p.spec.readinessGates;
    expect(view([p]).pods[0]?.gated).toBe(false);
  });

  it('serving of a routing pod reads kvpa.io/serving: True → true, False → false, Unknown → false, absent → undefined', () => {
    const v = view([
      lwsPod(0, 0, { serving: 'True' }),
      lwsPod(0, 1, { serving: 'False' }),
      lwsPod(0, 2, { serving: 'Unknown' }),
      lwsPod(0, 3),
    ]);
    const byName = new Map(v.pods.map((p) => [p.name, p.serving]));
    expect(byName.get('decode-0')).toBe(true);
    expect(byName.get('decode-0-1')).toBe(false);
    expect(byName.get('decode-0-2')).toBe(false);
    expect(byName.has('decode-0-3')).toBe(true);
    expect(byName.get('decode-0-3')).toBeUndefined();
  });

  it('a group out of routing (serving False, Ready False) still counts as serving while its engine runs', () => {
    const v = view(lwsGroup(3, 2, { serving: 'False', ready: 'False' }));
    expect(v.order[0]?.serving).toBe(true);
    expect(v.pods.every((p) => p.serving === false)).toBe(true);
  });

  it('no pods: an empty order and no routing pods', () => {
    expect(view([])).toEqual({ order: [], pods: [] });
  });
});

describe('gateProblem', () => {
  it('3 groups × 2 with every head gated: no problem, even with the 3 workers ungated', () => {
    const pods = [0, 1, 2].flatMap((g) => [lwsPod(g, 0), lwsPod(g, 1, { gated: false })]);
    expect(gateProblem(view(pods))).toBeUndefined();
  });

  it('an empty pool has no problem', () => {
    expect(gateProblem(view([]))).toBeUndefined();
  });

  it('2 of 3 heads ungated: the message names decode-0 and decode-2, not decode-1, and the fix', () => {
    const pods = [lwsPod(0, 0, { gated: false }), lwsPod(1, 0), lwsPod(2, 0, { gated: false })];
    const message = gateProblem(view(pods));
    expect(message).toBe(
      'pod(s) decode-0, decode-2 have no readiness gate kvpa.io/serving: add readinessGates: [{conditionType: kvpa.io/serving}] to the pod template to drain',
    );
  });

  it('5 ungated heads: the message names the first 3 and the count (5), and not the 4th', () => {
    const pods = [0, 1, 2, 3, 4].map((g) => lwsPod(g, 0, { gated: false }));
    const message = gateProblem(view(pods)) ?? '';
    expect(message).toContain('pod(s) decode-0, decode-1, decode-2, … (5) have no readiness gate');
    expect(message).not.toContain('decode-3');
    expect(message).toContain('readinessGates: [{conditionType: kvpa.io/serving}]');
  });

  it('exactly 3 ungated heads are all named, with no count', () => {
    const pods = [0, 1, 2].map((g) => lwsPod(g, 0, { gated: false }));
    const message = gateProblem(view(pods)) ?? '';
    expect(message).toContain('pod(s) decode-0, decode-1, decode-2 have no');
    expect(message).not.toContain('…');
  });

  it('a view that names where the gate goes puts it in the message after "the pod template"', () => {
    const message = gateProblem({
      ...view([lwsPod(0, 0, { gated: false })]),
      gateTemplate: 'spec.x.podSpec',
    });
    expect(message).toContain('to the pod template (spec.x.podSpec) to drain');
  });

  it("a view's own reason wins, even with every head gated", () => {
    expect(gateProblem({ ...view([lwsPod(0, 0)]), unavailable: 'two resources named' })).toBe(
      'two resources named',
    );
  });

  it('a group without a leader pod adds no head to check: ungated workers of group 1 are no problem', () => {
    const pods = [lwsPod(0, 0), lwsPod(1, 1, { gated: false }), lwsPod(1, 2, { gated: false })];
    expect(gateProblem(view(pods))).toBeUndefined();
  });
});

describe('routingPatches', () => {
  const rp = (name: string, groupKey: string, gated: boolean, serving: boolean | undefined): RoutingPod => ({
    name,
    groupKey,
    gated,
    serving,
  });

  it('out of routing {3} for 4 groups × 2 with no conditions: group 3 pods → false, the other 6 → true', () => {
    const pods = view([0, 1, 2, 3].flatMap((g) => lwsGroup(g, 2))).pods;
    const patches = routingPatches(pods, new Set(['3']));
    expect(patches).toHaveLength(8);
    expect(patches.filter((p) => !p.serving).map((p) => p.name)).toEqual(['decode-3', 'decode-3-1']);
    expect(patches.filter((p) => p.serving).map((p) => p.name)).toEqual([
      'decode-0',
      'decode-0-1',
      'decode-1',
      'decode-1-1',
      'decode-2',
      'decode-2-1',
    ]);
  });

  it('pods already right are not patched: 4 pods, only the 2 wrong ones come back', () => {
    const pods = [
      rp('decode-0', '0', true, true), // routed, right
      rp('decode-1', '1', true, false), // routed, wrong
      rp('decode-2', '2', true, false), // out of routing, right
      rp('decode-3', '3', true, true), // out of routing, wrong
    ];
    expect(routingPatches(pods, new Set(['2', '3']))).toEqual([
      { name: 'decode-1', serving: true },
      { name: 'decode-3', serving: false },
    ]);
  });

  it('an out-of-routing pod without the condition yet is set false (undefined ≠ false)', () => {
    expect(routingPatches([rp('decode-3', '3', true, undefined)], new Set(['3']))).toEqual([
      { name: 'decode-3', serving: false },
    ]);
  });

  it('ungated pods are never patched, in or out of routing, whatever their condition', () => {
    const pods = [
      rp('decode-0', '0', false, undefined),
      rp('decode-1', '1', false, false),
      rp('decode-3', '3', false, true),
      rp('decode-3-1', '3', false, undefined),
    ];
    expect(routingPatches(pods, new Set(['3']))).toEqual([]);
  });

  it('nothing out of routing restores a drained group: 2 pods False → true, 2 pods True untouched', () => {
    const pods = view([...lwsGroup(0, 2, { serving: 'True' }), ...lwsGroup(1, 2, { serving: 'False' })]).pods;
    expect(routingPatches(pods, new Set())).toEqual([
      { name: 'decode-1', serving: true },
      { name: 'decode-1-1', serving: true },
    ]);
  });
});

describe('isPodReady with readiness gates', () => {
  const withConditions = (p: V1Pod, extra: V1PodCondition[]): V1Pod => {
    p.status?.conditions?.push(...extra);
    return p;
  };
  const otherGate: V1PodCondition = { type: 'example.com/other', status: 'True' };

  it('Running, Ready True and both gates (kvpa.io/serving, example.com/other) True: ready', () => {
    expect(isPodReady(withConditions(lwsPod(0, 0, { serving: 'True' }), [otherGate]))).toBe(true);
  });

  it('kvpa.io/serving False with Ready still True (before the kubelet syncs): not ready', () => {
    expect(isPodReady(withConditions(lwsPod(0, 0, { serving: 'False' }), [otherGate]))).toBe(false);
  });

  it('kvpa.io/serving absent (a new pod kvpa has not set yet): not ready', () => {
    expect(isPodReady(withConditions(lwsPod(0, 0), [otherGate]))).toBe(false);
  });

  it('kvpa.io/serving True but the other gate missing: not ready (every gate must be True)', () => {
    expect(isPodReady(lwsPod(0, 0, { serving: 'True' }))).toBe(false);
  });

  it('kvpa.io/serving Unknown: not ready', () => {
    expect(isPodReady(withConditions(lwsPod(0, 0, { serving: 'Unknown' }), [otherGate]))).toBe(false);
  });

  it('every gate True but Ready False: not ready', () => {
    expect(isPodReady(withConditions(lwsPod(0, 0, { serving: 'True', ready: 'False' }), [otherGate]))).toBe(
      false,
    );
  });

  it('every gate True but terminating: not ready', () => {
    expect(isPodReady(withConditions(lwsPod(0, 0, { serving: 'True', deleting: true }), [otherGate]))).toBe(
      false,
    );
  });

  it('a pod with no readiness gates needs only Running and Ready True', () => {
    const p = lwsPod(0, 0);
    if (p.spec) p.spec.readinessGates = [];
    expect(isPodReady(p)).toBe(true);
    if (p.spec) delete p.spec.readinessGates;
    expect(isPodReady(p)).toBe(true);
  });
});

describe('drainingMessage / drainingOwner / orphanedPods', () => {
  const owner = { podAutoscaler: 'decode-pa', pool: 'decode', target: 'LeaderWorkerSet/decode' };

  it('a False message names its owner and comes back to the same owner, whatever the reason says', () => {
    const message = drainingMessage(owner, 'draining 3 (pool x, y): 2 request(s) in flight');
    expect(message).toBe(
      'kvpa drains this group (PodAutoscaler decode-pa, pool decode, LeaderWorkerSet/decode): draining 3 (pool x, y): 2 request(s) in flight',
    );
    expect(drainingOwner(message)).toEqual(owner);
  });

  it('messages naming no owner give none: the routed one, an older "kvpa drains this group: …", absent', () => {
    expect(drainingOwner('kvpa routes this group')).toBeUndefined();
    expect(drainingOwner('kvpa drains this group: draining 3')).toBeUndefined();
    expect(drainingOwner(undefined)).toBeUndefined();
  });

  it('of 5 pods out of routing, the 3 whose pool is not live go: gone PodAutoscaler, other namespace, no owner', () => {
    const gone = { ...owner, podAutoscaler: 'old-pa' };
    const pods = [
      { namespace: 'llm', name: 'live-0', owner },
      { namespace: 'llm', name: 'gone-0', owner: gone },
      { namespace: 'other', name: 'elsewhere-0', owner },
      { namespace: 'llm', name: 'anon-0', owner: undefined },
      { namespace: 'llm', name: 'live-1', owner },
    ];
    const live = new Set([routingOwnerKey('llm', owner)]);
    expect(orphanedPods(pods, live).map((p) => p.name)).toEqual(['gone-0', 'elsewhere-0', 'anon-0']);
  });

  it('a pool pointed at another target (StatefulSet web → web2) leaves the pods of web orphaned', () => {
    const before = { podAutoscaler: 'pa', pool: 'decode', target: 'StatefulSet/web' };
    const live = new Set([routingOwnerKey('llm', { ...before, target: 'StatefulSet/web2' })]);
    expect(orphanedPods([{ namespace: 'llm', name: 'web-2', owner: before }], live)).toHaveLength(1);
  });
});
