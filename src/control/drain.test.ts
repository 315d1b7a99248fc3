import type { V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { deploymentDrainView, statefulSetDrainView } from '../actuate/kinds/apps.ts';
import { type DrainView, lwsDrainView, type RoutingOwner } from '../actuate/routing.ts';
import type { HeadPod, ScaleTarget, TargetState } from '../actuate/types.ts';
import { loadPolicies } from '../api/documents.ts';
import type { ScaleTargetRef } from '../api/podautoscaler.ts';
import { type ResolvedPool, resolvePool, toDeciderSpec } from '../api/resolve.ts';
import { DRAIN_SETTLE_SECONDS, type DrainOutcome, type DrainRecord } from '../decide/drain.ts';
import { decide } from '../decide/kpa.ts';
import type { Decision } from '../decide/types.ts';
import {
  type DrainContext,
  type DrainStatus,
  drainRecordOf,
  drainStatus,
  MAX_ROUTING_PATCHES,
  runDrain,
} from './drain.ts';
import { ManualSignalSource, type PoolSignalRequest, type SignalSource } from './signals.ts';

const NS = 'llm';
const LWS = 'decode';
const POOL_KEY = `${NS}/decode-pa/decode`;
/** 2025-06-15T15:06:40Z */
const T0 = 1_750_000_000;
const TIMEOUT = 300;

const REF: ScaleTargetRef = { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: LWS };

const POOL: ResolvedPool = resolvePool(
  {},
  {
    name: 'decode',
    scaleTargetRef: REF,
    minReplicas: 1,
    maxReplicas: 100,
    metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
    scaleDownDelaySeconds: 0,
    drainTimeoutSeconds: TIMEOUT,
  },
  0,
  loadPolicies().policies,
);

const OWNER: RoutingOwner = { podAutoscaler: 'decode-pa', pool: 'decode', target: `LeaderWorkerSet/${LWS}` };

const REQUEST: PoolSignalRequest = {
  poolKey: POOL_KEY,
  namespace: NS,
  pool: POOL,
  heads: [],
  metricsSource: { pods: { port: 8000 } },
};

/** A real decision of the KPA core for `groups` ready groups carrying `kvTotal` of KV cache (target 0.7). */
function decisionFor(groups: number, kvTotal: number): Decision {
  const { decision } = decide(
    toDeciderSpec(POOL),
    {
      panicSinceSeconds: null,
      maxPanicGroups: 0,
      delayWindow: null,
      lastDesired: groups,
      pendingSinceSeconds: null,
      missingSinceSeconds: null,
    },
    {
      readyGroups: groups,
      requestedGroups: groups,
      signals: [
        {
          name: 'kvCacheUtilization',
          targetPerGroup: 0.7,
          state: 'ok',
          stableTotal: kvTotal,
          panicTotal: kvTotal,
        },
      ],
    },
    T0,
  );
  return decision;
}

/** 4 → 3: 2.1 of KV at 0.7 per group. */
const FOUR_TO_THREE = decisionFor(4, 2.1);

interface PodOptions {
  gated?: boolean;
  serving?: boolean | undefined;
}

function lwsPod(group: number, worker: number, o: PodOptions = {}): V1Pod {
  const conditions: V1PodCondition[] = [
    { type: 'PodScheduled', status: 'True' },
    { type: 'ContainersReady', status: 'True' },
    { type: 'Ready', status: o.serving === false ? 'False' : 'True' },
  ];
  if (o.serving !== undefined) {
    conditions.push({ type: 'kvpa.io/serving', status: o.serving ? 'True' : 'False' });
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: worker === 0 ? `${LWS}-${group}` : `${LWS}-${group}-${worker}`,
      namespace: NS,
      labels: {
        'leaderworkerset.sigs.k8s.io/name': LWS,
        'leaderworkerset.sigs.k8s.io/group-index': String(group),
        'leaderworkerset.sigs.k8s.io/worker-index': String(worker),
      },
    },
    spec: {
      containers: [{ name: 'vllm', image: 'vllm/vllm-openai:v0.11.0' }],
      ...(o.gated === false ? {} : { readinessGates: [{ conditionType: 'kvpa.io/serving' }] }),
    },
    status: { phase: 'Running', podIP: `10.0.${group}.${worker + 10}`, conditions },
  };
}

/** `groups` groups of 2 pods; `serving(g)` gives the kvpa.io/serving condition of group g's pods. */
function lwsPods(groups: number, serving: (g: number) => boolean | undefined, gated = true): V1Pod[] {
  return Array.from({ length: groups }, (_, g) =>
    [0, 1].map((w) => lwsPod(g, w, { gated, serving: serving(g) })),
  ).flat();
}

/** The pods after the kubelet saw kvpa's condition writes. */
function applyServing(pods: readonly V1Pod[], calls: readonly ServingCall[]): V1Pod[] {
  const last = new Map(calls.map((c) => [c.pod, c.serving]));
  return pods.map((p) => {
    const serving = last.get(p.metadata?.name ?? '');
    if (serving === undefined) return p;
    const conditions = (p.status?.conditions ?? []).filter((c) => c.type !== 'kvpa.io/serving');
    conditions.push({ type: 'kvpa.io/serving', status: serving ? 'True' : 'False' });
    return { ...p, status: { ...p.status, conditions } };
  });
}

interface ServingCall {
  readonly pod: string;
  readonly serving: boolean;
  readonly message: string;
}

/** An LWS target that records what kvpa asks of it; `failOn` pods make setServing throw. */
class FakeLws implements ScaleTarget {
  readonly namespace = NS;
  readonly ref = REF;
  readonly calls: ServingCall[] = [];
  readonly writes: number[] = [];
  constructor(
    private readonly pods: readonly V1Pod[],
    private readonly failOn: ReadonlySet<string> = new Set(),
  ) {}

  async read(): Promise<TargetState> {
    return stateOf(this.pods, 4);
  }

  async write(groups: number): Promise<void> {
    this.writes.push(groups);
  }

  async heads(): Promise<HeadPod[]> {
    return lwsDrainView(NS, this.pods).order.flatMap((g) => (g.head ? [g.head] : []));
  }

  async setServing(podName: string, serving: boolean, message: string): Promise<void> {
    if (this.failOn.has(podName)) {
      throw new Error(
        `setting kvpa.io/serving on pod ${NS}/${podName} failed (HTTP 500): etcdserver: timeout`,
      );
    }
    this.calls.push({ pod: podName, serving, message });
  }
}

function stateOf(pods: readonly V1Pod[], specGroups: number): TargetState & { drain: DrainView } {
  return {
    specGroups,
    readyGroups: specGroups,
    groupSize: 2,
    resourceVersion: '4711',
    drain: lwsDrainView(NS, pods),
  };
}

interface Run {
  pods: readonly V1Pod[];
  target?: ScaleTarget;
  mode?: 'Apply' | 'DryRun';
  nowSeconds?: number;
  specGroups?: number;
  decision?: Decision;
  previous?: DrainRecord | null;
  timeoutSeconds?: number;
  signals?: SignalSource;
  errors?: string[];
}

function context(r: Run): DrainContext {
  const errors = r.errors ?? [];
  return {
    mode: r.mode ?? 'Apply',
    nowSeconds: r.nowSeconds ?? T0,
    state: stateOf(r.pods, r.specGroups ?? 4),
    decision: r.decision ?? FOUR_TO_THREE,
    previous: r.previous ?? null,
    timeoutSeconds: r.timeoutSeconds ?? TIMEOUT,
    target: r.target ?? new FakeLws(r.pods),
    owner: OWNER,
    signals: r.signals ?? new ManualSignalSource(),
    request: REQUEST,
    onError: (what) => errors.push(what),
  };
}

/** The record a 4 → 3 drain of group 3 started at T0 leaves. */
const STARTED: DrainRecord = {
  fromGroups: 4,
  toGroups: 3,
  victims: ['3'],
  startedAtSeconds: T0,
  deadlineSeconds: T0 + TIMEOUT,
  writtenAtSeconds: null,
};

/** Groups 0–2 routed, group 3 out of routing: the pods after the drain of STARTED began. */
const DRAINING_PODS = lwsPods(4, (g) => g !== 3);

describe('drainStatus / drainRecordOf', () => {
  const outcome = (inFlightLeft?: number, unreadVictims?: number): DrainOutcome => ({
    record: STARTED,
    write: undefined,
    outOfRouting: ['3'],
    phase: 'draining',
    reason: 'draining 3',
    ...(inFlightLeft !== undefined ? { inFlightLeft } : {}),
    ...(unreadVictims !== undefined ? { unreadVictims } : {}),
  });

  it('a 4 → 3 drain started at 1750000000 s shows Draining from 15:06:40Z to the deadline 15:11:40Z', () => {
    expect(drainStatus(STARTED, outcome(2, 1))).toEqual({
      phase: 'Draining',
      victims: ['3'],
      fromReplicas: 4,
      toReplicas: 3,
      startedAt: '2025-06-15T15:06:40.000Z',
      deadline: '2025-06-15T15:11:40.000Z',
      inFlightRequests: 2,
      unreadGroups: 1,
    });
  });

  it('no writtenAt while draining; written at +12 s it is Removing with writtenAt 15:06:52Z', () => {
    const draining = drainStatus(STARTED, null);
    expect(draining !== null && 'writtenAt' in draining).toBe(false);
    const removing = drainStatus({ ...STARTED, writtenAtSeconds: T0 + 12 }, null);
    expect(removing?.phase).toBe('Removing');
    expect(removing?.writtenAt).toBe('2025-06-15T15:06:52.000Z');
  });

  it('inFlightRequests 0 and unreadGroups 0 are shown (0 is a reading, not absent); no outcome shows neither', () => {
    const zero = drainStatus(STARTED, outcome(0, 0));
    expect(zero?.inFlightRequests).toBe(0);
    expect(zero?.unreadGroups).toBe(0);
    const none = drainStatus(STARTED, null);
    expect(none !== null && ('inFlightRequests' in none || 'unreadGroups' in none)).toBe(false);
  });

  it('no record shows no drain, whatever the outcome', () => {
    expect(drainStatus(null, outcome(3, 0))).toBeNull();
  });

  it('the victims are copied: changing the status does not change the record', () => {
    const status = drainStatus({ ...STARTED, victims: ['3', '2'] }, null);
    status?.victims.push('1');
    expect(STARTED.victims).toEqual(['3']);
  });

  it('round trip: draining and written records (victims 3, 2; at 1750000000.5 s) come back equal', () => {
    const records: DrainRecord[] = [
      { ...STARTED, victims: ['3', '2'], toGroups: 2 },
      { ...STARTED, startedAtSeconds: T0 + 0.5, writtenAtSeconds: T0 + 42 },
    ];
    for (const r of records) expect(drainRecordOf(drainStatus(r, outcome(5, 1)) ?? undefined)).toEqual(r);
  });

  it('a status without writtenAt resumes as draining (writtenAtSeconds null)', () => {
    const status: DrainStatus = {
      phase: 'Draining',
      victims: ['3'],
      fromReplicas: 4,
      toReplicas: 3,
      startedAt: '2025-06-15T15:06:40Z',
      deadline: '2025-06-15T15:11:40Z',
    };
    expect(drainRecordOf(status)).toEqual(STARTED);
  });

  it('absent status or an unparsable startedAt, deadline or writtenAt resumes nothing', () => {
    const good = drainStatus(STARTED, null);
    if (good === null) throw new Error('expected a status');
    expect(drainRecordOf(undefined)).toBeNull();
    expect(drainRecordOf({ ...good, startedAt: 'yesterday' })).toBeNull();
    expect(drainRecordOf({ ...good, deadline: '' })).toBeNull();
    expect(drainRecordOf({ ...good, writtenAt: '2025-13-45T99:00:00Z' })).toBeNull();
    expect(drainRecordOf(good)).toEqual(STARTED);
  });
});

describe('runDrain', () => {
  it('the decision is a real 4 → 3 (2.1 KV at 0.7 per group)', () => {
    expect(FOUR_TO_THREE.desiredGroups).toBe(3);
    expect(FOUR_TO_THREE.valid).toBe(true);
  });

  it('Apply 4 → 3: starts draining group 3, sets it False, sets the 2 new pods of group 2 True, writes nothing', async () => {
    // Groups 0, 1, 3 already routed; group 2 was just recreated and has no condition yet.
    const pods = lwsPods(4, (g) => (g === 2 ? undefined : true));
    const target = new FakeLws(pods);
    const run = await runDrain(context({ pods, target }));
    expect(run.outcome.phase).toBe('draining');
    expect(run.outcome.write).toBeUndefined();
    expect(run.outcome.outOfRouting).toEqual(['3']);
    expect(run.outcome.record).toEqual(STARTED);
    expect(run.unavailable).toBeNull();
    expect(run.routingError).toBeNull();
    expect(target.calls.map((c) => [c.pod, c.serving])).toEqual([
      ['decode-2', true],
      ['decode-2-1', true],
      ['decode-3', false],
      ['decode-3-1', false],
    ]);
    expect(target.calls.find((c) => c.pod === 'decode-3')?.message).toBe(
      `kvpa drains this group (PodAutoscaler decode-pa, pool decode, LeaderWorkerSet/decode): ${run.outcome.reason}`,
    );
    expect(target.calls.find((c) => c.pod === 'decode-2')?.message).toBe('kvpa routes this group');
    expect(target.writes).toEqual([]);
  });

  it(`next tick at +10 s, group 3 reads 0 requests at +${DRAIN_SETTLE_SECONDS + 1} s: drained, write 3, no pod patched`, async () => {
    const first = new FakeLws(lwsPods(4, () => true));
    const started = await runDrain(context({ pods: lwsPods(4, () => true), target: first }));
    const pods = applyServing(
      lwsPods(4, () => true),
      first.calls,
    );
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, '3', { requests: 0, atSeconds: T0 + DRAIN_SETTLE_SECONDS + 1 });
    const target = new FakeLws(pods);
    const run = await runDrain(
      context({ pods, target, signals, previous: started.outcome.record, nowSeconds: T0 + 10 }),
    );
    expect(run.outcome.phase).toBe('drained');
    expect(run.outcome.write).toBe(3);
    expect(run.outcome.record?.writtenAtSeconds).toBe(T0 + 10);
    expect(run.outcome.outOfRouting).toEqual(['3']);
    expect(run.outcome.inFlightLeft).toBe(0);
    expect(run.outcome.unreadVictims).toBe(0);
    expect(target.calls).toEqual([]);
    expect(drainStatus(run.outcome.record, run.outcome)?.phase).toBe('Removing');
  });

  it(`a 0 read at +${DRAIN_SETTLE_SECONDS - 1} s (before the ${DRAIN_SETTLE_SECONDS} s settle) does not count: still draining, 1 unread`, async () => {
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, '3', { requests: 0, atSeconds: T0 + DRAIN_SETTLE_SECONDS - 1 });
    const run = await runDrain(
      context({ pods: DRAINING_PODS, signals, previous: STARTED, nowSeconds: T0 + 10 }),
    );
    expect(run.outcome.phase).toBe('draining');
    expect(run.outcome.write).toBeUndefined();
    expect(run.outcome.unreadVictims).toBe(1);
  });

  it('2 requests still on group 3 at +8 s: keeps draining with inFlightLeft 2, writes nothing', async () => {
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, '3', { requests: 2, atSeconds: T0 + 8 });
    const target = new FakeLws(DRAINING_PODS);
    const run = await runDrain(
      context({ pods: DRAINING_PODS, target, signals, previous: STARTED, nowSeconds: T0 + 10 }),
    );
    expect(run.outcome.phase).toBe('draining');
    expect(run.outcome.write).toBeUndefined();
    expect(run.outcome.inFlightLeft).toBe(2);
    expect(run.outcome.unreadVictims).toBe(0);
    expect(run.outcome.record).toEqual(STARTED);
    expect(drainStatus(run.outcome.record, run.outcome)?.inFlightRequests).toBe(2);
    expect(target.calls).toEqual([]);
  });

  it('after writing 3 at +10 s, group 3 still present: removing, decode-3 stays False; once gone the record closes', async () => {
    const written: DrainRecord = { ...STARTED, writtenAtSeconds: T0 + 10 };
    const decision = decisionFor(3, 2.1);
    expect(decision.desiredGroups).toBe(3);
    const target = new FakeLws(DRAINING_PODS);
    const removing = await runDrain(
      context({
        pods: DRAINING_PODS,
        target,
        decision,
        specGroups: 3,
        previous: written,
        nowSeconds: T0 + 20,
      }),
    );
    expect(removing.outcome.phase).toBe('removing');
    expect(removing.outcome.outOfRouting).toEqual(['3']);
    expect(removing.outcome.write).toBeUndefined();
    expect(target.calls).toEqual([]);
    const gone = DRAINING_PODS.filter((p) => !p.metadata?.name?.startsWith('decode-3'));
    const closed = await runDrain(
      context({ pods: gone, decision, specGroups: 3, previous: written, nowSeconds: T0 + 30 }),
    );
    expect(closed.outcome.phase).toBe('none');
    expect(closed.outcome.record).toBeNull();
    expect(drainStatus(closed.outcome.record, closed.outcome)).toBeNull();
  });

  it('the same 2 requests at the 300 s deadline: timed out, write 3', async () => {
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, '3', { requests: 2, atSeconds: T0 + 299 });
    const run = await runDrain(
      context({ pods: DRAINING_PODS, signals, previous: STARTED, nowSeconds: T0 + TIMEOUT }),
    );
    expect(run.outcome.phase).toBe('timedOut');
    expect(run.outcome.write).toBe(3);
  });

  it('a reading of group 2 (not a victim) is not asked for: group 3 unread keeps the drain waiting', async () => {
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, '2', { requests: 0, atSeconds: T0 + 9 });
    const run = await runDrain(
      context({ pods: DRAINING_PODS, signals, previous: STARTED, nowSeconds: T0 + 10 }),
    );
    expect(run.outcome.phase).toBe('draining');
    expect(run.outcome.unreadVictims).toBe(1);
  });

  it('DryRun with a drain of group 3 in progress: cancelled, nothing written, decode-3 and decode-3-1 set True', async () => {
    const target = new FakeLws(DRAINING_PODS);
    const run = await runDrain(
      context({ pods: DRAINING_PODS, target, mode: 'DryRun', previous: STARTED, nowSeconds: T0 + 10 }),
    );
    expect(run.outcome.phase).toBe('cancelled');
    expect(run.outcome.record).toBeNull();
    expect(run.outcome.write).toBeUndefined();
    expect(run.outcome.outOfRouting).toEqual([]);
    expect(run.outcome.reason).toContain('the pool is in DryRun');
    expect(target.calls.map((c) => [c.pod, c.serving])).toEqual([
      ['decode-3', true],
      ['decode-3-1', true],
    ]);
    expect(target.writes).toEqual([]);
  });

  it('Apply with drainTimeoutSeconds 0 and a drain in progress: cancelled because draining is off', async () => {
    const target = new FakeLws(DRAINING_PODS);
    const run = await runDrain(
      context({ pods: DRAINING_PODS, target, previous: STARTED, timeoutSeconds: 0, nowSeconds: T0 + 10 }),
    );
    expect(run.outcome.phase).toBe('cancelled');
    expect(run.outcome.reason).toContain('draining is off');
    expect(target.calls.map((c) => c.pod)).toEqual(['decode-3', 'decode-3-1']);
  });

  it('DryRun 4 → 3 with no drain: never takes group 3 out of routing (direct, 0 pods set False)', async () => {
    const pods = lwsPods(4, () => true);
    const target = new FakeLws(pods);
    const run = await runDrain(context({ pods, target, mode: 'DryRun' }));
    expect(run.outcome.phase).toBe('direct');
    expect(run.outcome.record).toBeNull();
    expect(run.outcome.outOfRouting).toEqual([]);
    expect(target.calls).toEqual([]);
  });

  it('the decision going back to 4 during the drain cancels it and restores group 3', async () => {
    const target = new FakeLws(DRAINING_PODS);
    const run = await runDrain(
      context({
        pods: DRAINING_PODS,
        target,
        previous: STARTED,
        nowSeconds: T0 + 10,
        decision: decisionFor(4, 2.8),
      }),
    );
    expect(run.outcome.phase).toBe('cancelled');
    expect(run.outcome.write).toBeUndefined();
    expect(target.calls.map((c) => [c.pod, c.serving])).toEqual([
      ['decode-3', true],
      ['decode-3-1', true],
    ]);
  });

  it('an invalid decision asking 3 of 4 is held at 4: no drain starts, 0 pods set False', async () => {
    const pods = lwsPods(4, () => true);
    const target = new FakeLws(pods);
    const run = await runDrain(context({ pods, target, decision: { ...FOUR_TO_THREE, valid: false } }));
    expect(run.outcome.phase).toBe('none');
    expect(run.outcome.write).toBeUndefined();
    expect(target.calls).toEqual([]);
  });

  it('a template without the readiness gate: unavailable names readinessGates, 4 → 3 written directly, no pod patched', async () => {
    const pods = lwsPods(4, () => undefined, false);
    const target = new FakeLws(pods);
    const run = await runDrain(context({ pods, target }));
    expect(run.unavailable).toContain('readinessGates: [{conditionType: kvpa.io/serving}]');
    expect(run.unavailable).toContain('decode-0');
    expect(run.outcome.phase).toBe('direct');
    expect(run.outcome.write).toBe(3);
    expect(run.outcome.record).toBeNull();
    expect(run.outcome.reason).toContain('without drain');
    expect(target.calls).toEqual([]);
  });

  it('the same ungated template in DryRun reports no unavailable (draining is off there)', async () => {
    const pods = lwsPods(4, () => undefined, false);
    const run = await runDrain(context({ pods, mode: 'DryRun' }));
    expect(run.unavailable).toBeNull();
  });

  it('a target that cannot set pod conditions: unavailable says so, 4 → 3 written directly', async () => {
    const pods = lwsPods(4, () => true);
    const full = new FakeLws(pods);
    const target: ScaleTarget = {
      namespace: NS,
      ref: REF,
      read: () => full.read(),
      write: (groups) => full.write(groups),
      heads: () => full.heads(),
    };
    const run = await runDrain(context({ pods, target }));
    expect(run.unavailable).toBe('LeaderWorkerSet cannot set pod conditions');
    expect(run.outcome.phase).toBe('direct');
    expect(run.outcome.write).toBe(3);
  });

  it(`40 groups × 2 = 80 new pods without the condition: ${MAX_ROUTING_PATCHES} patched, then the other 16, then none`, async () => {
    const decision = decisionFor(40, 0.7 * 40);
    expect(decision.desiredGroups).toBe(40);
    let pods: readonly V1Pod[] = lwsPods(40, () => undefined);
    const perRun: number[] = [];
    for (let i = 0; i < 3; i++) {
      const target = new FakeLws(pods);
      const run = await runDrain(context({ pods, target, decision, specGroups: 40, nowSeconds: T0 + i }));
      expect(run.outcome.phase).toBe('none');
      expect(target.calls.every((c) => c.serving)).toBe(true);
      perRun.push(target.calls.length);
      pods = applyServing(pods, target.calls);
    }
    expect(perRun).toEqual([MAX_ROUTING_PATCHES, 80 - MAX_ROUTING_PATCHES, 0]);
  });

  it('setServing failing on decode-2 and decode-3: routingError is the first message, the other 2 pods still set', async () => {
    const pods = lwsPods(4, (g) => (g >= 2 ? undefined : true));
    const target = new FakeLws(pods, new Set(['decode-2', 'decode-3']));
    const errors: string[] = [];
    const run = await runDrain(context({ pods, target, errors }));
    expect(run.routingError).toBe(
      'setting kvpa.io/serving on pod llm/decode-2 failed (HTTP 500): etcdserver: timeout',
    );
    expect(run.outcome.phase).toBe('draining');
    expect(target.calls.map((c) => [c.pod, c.serving])).toEqual([
      ['decode-2-1', true],
      ['decode-3-1', false],
    ]);
    expect(errors).toEqual(['setting routing on pod decode-2', 'setting routing on pod decode-3']);
  });

  it('a setServing that throws a string, not an Error: routingError is that string', async () => {
    const pods = lwsPods(4, () => true);
    const full = new FakeLws(pods);
    const target: ScaleTarget = {
      namespace: NS,
      ref: REF,
      read: () => full.read(),
      write: (groups) => full.write(groups),
      heads: () => full.heads(),
      setServing: () => Promise.reject('connection reset'),
    };
    const run = await runDrain(context({ pods, target }));
    expect(run.routingError).toBe('connection reset');
  });

  it('an in-flight read that throws is reported and leaves group 3 unread: still draining', async () => {
    const failing: SignalSource = {
      sample: async () => new Map(),
      inFlight: () => Promise.reject(new Error('prometheus: 503')),
    };
    const errors: string[] = [];
    const run = await runDrain(
      context({ pods: DRAINING_PODS, signals: failing, errors, previous: STARTED, nowSeconds: T0 + 10 }),
    );
    expect(errors).toEqual(['reading in-flight requests of the drain victims']);
    expect(run.outcome.phase).toBe('draining');
    expect(run.outcome.unreadVictims).toBe(1);
  });

  it('a source without inFlight leaves the victim unread (unknown, never 0): still draining at +10 s', async () => {
    const blind: SignalSource = { sample: async () => new Map() };
    const run = await runDrain(
      context({ pods: DRAINING_PODS, signals: blind, previous: STARTED, nowSeconds: T0 + 10 }),
    );
    expect(run.outcome.phase).toBe('draining');
    expect(run.outcome.unreadVictims).toBe(1);
  });
});

describe('runDrain over apps/v1 pools (one pod per group)', () => {
  /** `replicas` pods `<name>-<i>` (StatefulSet) or `<name>-7c9d-<i>` of one ReplicaSet (Deployment), all routed. */
  function appsPod(name: string, owner?: string): V1Pod {
    return {
      metadata: {
        name,
        namespace: NS,
        labels: { 'pod-template-hash': '7c9d' },
        ...(owner !== undefined
          ? {
              ownerReferences: [
                { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: owner, uid: 'u', controller: true },
              ],
            }
          : {}),
      },
      spec: { containers: [{ name: 'vllm' }], readinessGates: [{ conditionType: 'kvpa.io/serving' }] },
      status: {
        phase: 'Running',
        conditions: [
          { type: 'ContainersReady', status: 'True' },
          { type: 'Ready', status: 'True' },
          { type: 'kvpa.io/serving', status: 'True' },
        ],
      },
    };
  }
  const stsPods = (n: number) => Array.from({ length: n }, (_, i) => appsPod(`web-${i}`));
  const stsView = (n: number, policy?: 'Parallel') =>
    statefulSetDrainView(
      NS,
      {
        metadata: { name: 'web' },
        spec: { replicas: n, selector: {}, template: {}, ...(policy ? { podManagementPolicy: policy } : {}) },
      },
      stsPods(n),
    );
  /** 4 → 2: 1.2 of KV at 0.7 per group. */
  const FOUR_TO_TWO = decisionFor(4, 1.2);

  function appsContext(view: DrainView, o: Partial<DrainContext> = {}): DrainContext & { target: FakeLws } {
    const target = new FakeLws([]);
    return {
      ...context({ pods: [], target, decision: FOUR_TO_TWO }),
      state: { specGroups: 4, readyGroups: 4, groupSize: 1, resourceVersion: '4711', drain: view },
      ...o,
      target,
    };
  }

  it('the decision is a real 4 → 2 (1.2 KV at 0.7 per group)', () => {
    expect(FOUR_TO_TWO.desiredGroups).toBe(2);
  });

  it('OrderedReady StatefulSet 4 → 2: drains ordinal 3 alone, toward 3 (one ordinal per write)', async () => {
    const c = appsContext(stsView(4));
    const run = await runDrain(c);
    expect(run.outcome.phase).toBe('draining');
    expect(run.outcome.record).toMatchObject({ fromGroups: 4, toGroups: 3, victims: ['3'] });
    expect(c.target.calls.map((x) => [x.pod, x.serving])).toEqual([['web-3', false]]);
  });

  it('Parallel StatefulSet 4 → 2: drains ordinals 3 and 2 together, toward 2', async () => {
    const c = appsContext(stsView(4, 'Parallel'));
    const run = await runDrain(c);
    expect(run.outcome.record).toMatchObject({ fromGroups: 4, toGroups: 2, victims: ['3', '2'] });
    expect(c.target.calls.map((x) => x.pod)).toEqual(['web-2', 'web-3']);
  });

  it('OrderedReady with draining off writes 4 → 2 at once: the one-ordinal step is for drained pods only', async () => {
    const run = await runDrain(appsContext(stsView(4), { timeoutSeconds: 0 }));
    expect(run.outcome.phase).toBe('direct');
    expect(run.outcome.write).toBe(2);
  });

  it('OrderedReady, 3 written and web-3 gone: the record closes, and the next decision drains ordinal 2 for 3 → 2', async () => {
    const written: DrainRecord = { ...STARTED, victims: ['3'], writtenAtSeconds: T0 + 10 };
    const closed = await runDrain(
      appsContext(stsView(3), {
        previous: written,
        nowSeconds: T0 + 20,
        state: { specGroups: 3, readyGroups: 3, groupSize: 1, resourceVersion: '4712', drain: stsView(3) },
      }),
    );
    expect(closed.outcome.record).toBeNull();
    expect(closed.outcome.write).toBeUndefined();
    const next = await runDrain(
      appsContext(stsView(3), {
        nowSeconds: T0 + 21,
        state: { specGroups: 3, readyGroups: 3, groupSize: 1, resourceVersion: '4712', drain: stsView(3) },
      }),
    );
    expect(next.outcome.record).toMatchObject({ fromGroups: 3, toGroups: 2, victims: ['2'] });
  });

  it('Deployment 3 → 2 with 5, 0 and 2 requests in flight: drains pod b (0 requests), whatever its place', async () => {
    const pods = ['a', 'b', 'c'].map((x) => appsPod(`decode-7c9d-${x}`, 'decode-7c9d'));
    const view = deploymentDrainView(
      NS,
      { metadata: { name: 'decode' }, spec: { replicas: 3, selector: {}, template: {} } },
      pods,
    );
    const signals = new ManualSignalSource();
    signals.setInFlight(POOL_KEY, 'decode-7c9d-a', { requests: 5, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'decode-7c9d-b', { requests: 0, atSeconds: T0 });
    signals.setInFlight(POOL_KEY, 'decode-7c9d-c', { requests: 2, atSeconds: T0 });
    const c = appsContext(view, {
      signals,
      decision: decisionFor(3, 1.2),
      state: { specGroups: 3, readyGroups: 3, groupSize: 1, resourceVersion: '4711', drain: view },
    });
    const run = await runDrain(c);
    expect(run.outcome.record).toMatchObject({ fromGroups: 3, toGroups: 2, victims: ['decode-7c9d-b'] });
    expect(c.target.calls.map((x) => [x.pod, x.serving])).toEqual([['decode-7c9d-b', false]]);
  });
});
