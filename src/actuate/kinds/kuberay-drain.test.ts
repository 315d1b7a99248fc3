import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ScaleTargetRef } from '../../api/podautoscaler.ts';
import { type DrainContext, runDrain } from '../../control/drain.ts';
import { ManualSignalSource, type PoolSignalRequest } from '../../control/signals.ts';
import { DRAIN_SETTLE_SECONDS, type DrainRecord } from '../../decide/drain.ts';
import type { Decision } from '../../decide/types.ts';
import { gateProblem, lwsDrainView } from '../routing.ts';
import type { HeadPod, ScaleTarget, TargetState } from '../types.ts';
import { RAY_LABELS, rayDrainView, rayWorkerGroups, workersToDeleteOps } from './kuberay.ts';

const NS = 'llm';
const CLUSTER = 'rc';
const GROUP = 'gpu';
const T0 = 1_750_000_000;
const TIMEOUT = 300;
const REF: ScaleTargetRef = {
  apiVersion: 'ray.io/v1',
  kind: 'RayCluster',
  name: CLUSTER,
  workerGroupName: GROUP,
};
const POOL_KEY = `${NS}/pa/decode`;

interface PodOptions {
  gated?: boolean;
  /** Containers not ready yet: the engine is starting. */
  starting?: boolean;
  /** The kvpa.io/serving condition. */
  serving?: boolean;
}

/** A worker pod of group `gpu` as KubeRay labels it; `replica` set for a multi-host replica. */
function rayPod(name: string, o: PodOptions & { replica?: string; host?: number } = {}): V1Pod {
  const ready = o.starting ? 'False' : 'True';
  return {
    metadata: {
      name,
      namespace: NS,
      labels: {
        [RAY_LABELS.cluster]: CLUSTER,
        [RAY_LABELS.nodeType]: 'worker',
        [RAY_LABELS.group]: GROUP,
        ...(o.replica !== undefined ? { [RAY_LABELS.replicaName]: o.replica } : {}),
        ...(o.host !== undefined ? { [RAY_LABELS.hostIndex]: String(o.host) } : {}),
      },
    },
    spec: {
      containers: [{ name: 'vllm', image: 'vllm/vllm-openai:v0.11.0' }],
      ...(o.gated === false ? {} : { readinessGates: [{ conditionType: 'kvpa.io/serving' }] }),
    },
    status: {
      phase: 'Running',
      podIP: '10.4.0.1',
      conditions: [
        { type: 'ContainersReady', status: ready },
        { type: 'Ready', status: ready },
        ...(o.serving !== undefined
          ? [{ type: 'kvpa.io/serving', status: o.serving ? 'True' : 'False' }]
          : []),
      ],
    },
  };
}

describe('rayDrainView', () => {
  it('single-host: each pod is a group keyed by its name; the gate is looked for on the worker template', () => {
    const pods = [rayPod('rc-gpu-worker-b'), rayPod('rc-gpu-worker-a', { gated: false })];
    const view = rayDrainView(NS, GROUP, 2, rayWorkerGroups(1, pods));
    expect(view.chosenVictims).toBe(true);
    expect(view.order.map((g) => g.key)).toEqual(['rc-gpu-worker-a', 'rc-gpu-worker-b']);
    expect(gateProblem(view)).toContain('spec.workerGroupSpecs[groupName=gpu].template.spec');
    expect(gateProblem(view)).toContain('rc-gpu-worker-a');
  });

  it('multi-host: a replica is one group with all its hosts; groups the spec counts but no pod stands for come first', () => {
    const pods = [0, 1].flatMap((h) => [
      rayPod(`r1-${h}`, { replica: 'rc-gpu-r1', host: h }),
      rayPod(`r2-${h}`, { replica: 'rc-gpu-r2', host: h }),
    ]);
    const view = rayDrainView(NS, GROUP, 3, rayWorkerGroups(2, pods));
    expect(view.order.map((g) => [g.key, g.serving, g.head?.name ?? null])).toEqual([
      ['(not created 1)', false, null],
      ['rc-gpu-r1', true, 'r1-0'],
      ['rc-gpu-r2', true, 'r2-0'],
    ]);
    expect(view.order[1]?.head?.members?.map((m) => m.name)).toEqual(['r1-1']);
    expect(view.pods.filter((p) => p.groupKey === 'rc-gpu-r2').map((p) => p.name)).toEqual(['r2-0', 'r2-1']);
    expect(gateProblem(view)).toBeUndefined();
  });
});

describe('workersToDeleteOps', () => {
  const path = '/spec/workerGroupSpecs/1';
  it('adds scaleStrategy when the group has none', () => {
    expect(workersToDeleteOps(path, { groupName: GROUP }, ['p1', 'p2'])).toEqual([
      { op: 'add', path: `${path}/scaleStrategy`, value: { workersToDelete: ['p1', 'p2'] } },
    ]);
  });
  it('replaces the list (stale names of pods long gone) when scaleStrategy is there', () => {
    expect(workersToDeleteOps(path, { scaleStrategy: { workersToDelete: ['old'] } }, ['p1'])).toEqual([
      { op: 'add', path: `${path}/scaleStrategy/workersToDelete`, value: ['p1'] },
    ]);
  });
});

/** A decision for `groups` (only its count and validity matter to the drain). */
const decisionOf = (groups: number) => ({ desiredGroups: groups, valid: true }) as unknown as Decision;

const REQUEST = {
  poolKey: POOL_KEY,
  namespace: NS,
  heads: [],
  metricsSource: { pods: { port: 8000 } },
} as unknown as PoolSignalRequest;

class FakeRay implements ScaleTarget {
  readonly namespace = NS;
  readonly ref = REF;
  readonly serving: { pod: string; serving: boolean }[] = [];
  async read(): Promise<TargetState> {
    throw new Error('not read here');
  }
  async write(): Promise<void> {}
  async heads(): Promise<HeadPod[]> {
    return [];
  }
  async setServing(pod: string, serving: boolean): Promise<void> {
    this.serving.push({ pod, serving });
  }
}

function rayContext(
  pods: readonly V1Pod[],
  o: {
    numOfHosts?: number;
    spec?: number;
    want?: number;
    previous?: DrainRecord | null;
    now?: number;
    signals?: ManualSignalSource;
    target?: FakeRay;
    lws?: boolean;
  } = {},
): DrainContext {
  const spec = o.spec ?? 3;
  const drain = o.lws
    ? lwsDrainView(NS, pods)
    : rayDrainView(NS, GROUP, spec, rayWorkerGroups(o.numOfHosts ?? 1, pods));
  return {
    mode: 'Apply',
    nowSeconds: o.now ?? T0,
    state: { specGroups: spec, readyGroups: spec, groupSize: 1, resourceVersion: '1', drain },
    decision: decisionOf(o.want ?? spec - 1),
    previous: o.previous ?? null,
    timeoutSeconds: TIMEOUT,
    target: o.target ?? new FakeRay(),
    owner: { podAutoscaler: 'ray-pa', pool: 'decode', target: 'RayCluster/rc' },
    signals: o.signals ?? new ManualSignalSource(),
    request: REQUEST,
    onError: () => {},
  };
}

describe('runDrain with kvpa choosing the victims (KubeRay)', () => {
  const pods = ['w-a', 'w-b', 'w-c'].map((n) => rayPod(n, { serving: true }));

  it('3 → 2: drains the least-loaded group, not the last one, and names its pod once drained', async () => {
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, 'w-a', { requests: 6, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'w-b', { requests: 1, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'w-c', { requests: 4, atSeconds: T0 });
    const target = new FakeRay();
    const started = await runDrain(rayContext(pods, { signals, target }));
    expect(started.outcome).toMatchObject({ phase: 'draining', write: undefined, outOfRouting: ['w-b'] });
    expect(started.removePods).toBeNull();
    expect(target.serving).toEqual([{ pod: 'w-b', serving: false }]);

    // w-b still holds a request; meanwhile w-c became idle: the victim stays w-b, nothing is written.
    const record = started.outcome.record as DrainRecord;
    const later = T0 + DRAIN_SETTLE_SECONDS + 1;
    signals.setInFlight(POOL_KEY, 'w-b', { requests: 1, atSeconds: later });
    signals.setInFlight(POOL_KEY, 'w-c', { requests: 0, atSeconds: later });
    const waiting = await runDrain(rayContext(pods, { signals, previous: record, now: later }));
    expect(waiting.outcome).toMatchObject({ phase: 'draining', outOfRouting: ['w-b'], inFlightLeft: 1 });
    expect(waiting.removePods).toBeNull();

    signals.setInFlight(POOL_KEY, 'w-b', { requests: 0, atSeconds: later + 1 });
    const drained = await runDrain(rayContext(pods, { signals, previous: record, now: later + 1 }));
    expect(drained.outcome).toMatchObject({ phase: 'drained', write: 2, outOfRouting: ['w-b'] });
    expect(drained.removePods).toEqual(['w-b']);
  });

  it('multi-host: the write names every host of the drained replica', async () => {
    const hosts = ['r1', 'r2', 'r3'].flatMap((r) =>
      [0, 1].map((h) => rayPod(`${r}-${h}`, { replica: r, host: h, serving: true })),
    );
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, 'r1', { requests: 3, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'r2', { requests: 0, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'r3', { requests: 2, atSeconds: T0 });
    const started = await runDrain(rayContext(hosts, { numOfHosts: 2, signals }));
    expect(started.outcome.outOfRouting).toEqual(['r2']);
    const now = T0 + DRAIN_SETTLE_SECONDS + 1;
    signals.setInFlight(POOL_KEY, 'r2', { requests: 0, atSeconds: now });
    const drained = await runDrain(
      rayContext(hosts, {
        numOfHosts: 2,
        signals,
        previous: started.outcome.record,
        now,
      }),
    );
    expect(drained.outcome.phase).toBe('drained');
    expect(drained.removePods).toEqual(['r2-0', 'r2-1']);
  });

  it('a starting group goes first, at once and by name: nothing to drain', async () => {
    const mixed = [rayPod('w-a', { serving: true }), rayPod('w-b', { starting: true }), rayPod('w-c')];
    const run = await runDrain(rayContext(mixed));
    expect(run.outcome).toMatchObject({ phase: 'direct', write: 2 });
    expect(run.removePods).toEqual(['w-b']);
  });

  it('a group the spec counts but no pod stands for goes first, naming no pod', async () => {
    const run = await runDrain(rayContext(pods.slice(0, 2), { spec: 3 }));
    expect(run.outcome).toMatchObject({ phase: 'direct', write: 2 });
    expect(run.removePods).toEqual([]);
  });

  it('without the gate the count is lowered at once, still naming the group kvpa ranks first', async () => {
    const ungated = ['w-a', 'w-b', 'w-c'].map((n) => rayPod(n, { gated: false }));
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, 'w-a', { requests: 2, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'w-b', { requests: 3, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'w-c', { requests: 0, atSeconds: T0 });
    const run = await runDrain(rayContext(ungated, { signals }));
    expect(run.outcome.phase).toBe('direct');
    expect(run.unavailable).toContain('have no readiness gate');
    expect(run.removePods).toEqual(['w-c']);
  });

  it('a workload that picks its own victims (LWS) gets no pod names', async () => {
    const run = await runDrain(rayContext([], { lws: true, spec: 3 }));
    expect(run.removePods).toBeNull();
  });
});
