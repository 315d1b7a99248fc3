/**
 * Drain before scale-down, end to end on the live stack (`kvpa up`'s pieces): the decode LeaderWorkerSet's
 * pod template carries kvpa's readiness gate, the emulated engines route only to pods whose gate is True,
 * and a deleted leader's engine dies with whatever it still holds (counted as aborted by scale-down).
 *
 * Prefill is pinned at one group so every abort counted below is decode's. Decode is moved by its bounds
 * (min = max), which the decider applies last, so each step is one scale-up or one 3 → 2 scale-down:
 *   1. with draining on: 3 → 2 drains group 2 (the one LWS removes), and no request is aborted;
 *   2. with draining off (drainTimeoutSeconds 0): the same 3 → 2 aborts the requests group 2 held.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVING_CONDITION } from '../../src/actuate/routing.ts';
import type { Behavior, PodAutoscaler } from '../../src/api/podautoscaler.ts';
import { lwsName } from '../../src/stack/demo.ts';
import { type Stack, startStack } from '../../src/stack/up.ts';
import { pinDecode, sleep, until } from './helpers.ts';

// Enough decode work that every group holds requests whenever it is removed (4× engines: ~40 s of
// virtual decode per request, 10 s of wall time).
const LOAD = { requestsPerSecond: 12, inputTokens: 1000, outputTokens: 1200 };
const DRAIN_TIMEOUT_SECONDS = 120;

let stack: Stack;

function decodeStatus(pa: PodAutoscaler | null) {
  return pa?.status?.pools?.find((p) => p.name === 'decode');
}

const pin = (groups: number, drainTimeoutSeconds: Behavior['drainTimeoutSeconds']) =>
  pinDecode(stack, groups, { drainTimeoutSeconds: drainTimeoutSeconds });

/** The `kvpa.io/serving` condition of the decode leader of group `index`: 'True', 'False' or undefined. */
async function servingCondition(index: number): Promise<string | undefined> {
  const core = stack.kubeConfig.makeApiClient(CoreV1Api);
  try {
    const pod = await core.readNamespacedPod({
      namespace: stack.namespace,
      name: `${lwsName('decode')}-${index}`,
    });
    return pod.status?.conditions?.find((c) => c.type === SERVING_CONDITION)?.status;
  } catch {
    return undefined;
  }
}

async function threeReadyDecodeGroups(): Promise<void> {
  await until('decode at 3 ready groups', 240, async () => {
    const l = await stack.lws('decode');
    return l.specGroups === 3 && l.readyGroups === 3;
  });
  // The engines route to group 2 only once kvpa has set its gate True; then it takes a share of the load.
  await until('group 2 routed and busy', 120, async () => {
    if ((await servingCondition(2)) !== 'True') return false;
    const busy = stack.engines
      .groups()
      .find((g) => g.pool === 'decode' && g.ref.pod === `${lwsName('decode')}-2`);
    if (busy === undefined) return false;
    const text = stack.engines.metricsText(busy.ref.namespace, busy.ref.pod) ?? '';
    const running = Number(/^vllm:num_requests_running\{[^}]*\} (\S+)$/m.exec(text)?.[1] ?? '0');
    return running > 0;
  });
}

beforeAll(async () => {
  stack = await startStack({
    workDir: mkdtempSync(path.join(tmpdir(), 'kvpa-e2e-drain-')),
    podStartupSeconds: 3,
    scrapeIntervalSeconds: 1,
    accelerationFactor: 4,
    maxGroups: { prefill: 1, decode: 3 },
    initialMode: 'Apply',
    drainGate: ['decode'],
    autoscaler: {
      stableWindowSeconds: 12,
      panicWindowPercentage: 25,
      scaleDownDelaySeconds: 20,
      staleAfterSeconds: 5,
      drainTimeoutSeconds: DRAIN_TIMEOUT_SECONDS,
    },
    load: { kind: 'steps', steps: [{ atSeconds: 0, ...LOAD }] },
    loadDurationSeconds: 24 * 3600,
    log: (m) => process.stderr.write(`[e2e drain] ${m}\n`),
  });
  stack.load.start();
}, 600_000);

afterAll(async () => {
  await stack?.stop();
}, 120_000);

describe('drain before scale-down on the live stack', () => {
  it('kvpa sets kvpa.io/serving True on a new gated group, and only then counts it ready', async () => {
    // kwok has no kubelet to hold Ready back for a gate, so kvpa's own count (status readyReplicas) is the check.
    await until('kvpa counting one ready decode group', 180, async () => {
      const ready = decodeStatus(await stack.podAutoscaler())?.readyReplicas === 1;
      return ready && (await servingCondition(0)) === 'True';
    });
    expect(decodeStatus(await stack.podAutoscaler())?.drainUnavailable).toBeUndefined();
  }, 240_000);

  it('with draining on, 3 → 2 drains group 2 (the one LWS removes) and aborts no request', async () => {
    await pin(3, DRAIN_TIMEOUT_SECONDS);
    await threeReadyDecodeGroups();
    const abortedBefore = stack.engines.snapshot().requests.abortedByScaleDown;
    await pin(2, DRAIN_TIMEOUT_SECONDS);
    const drain = await until(
      'the drain in status',
      60,
      async () => decodeStatus(await stack.podAutoscaler())?.drain,
    );
    expect(drain.victims).toEqual(['2']);
    expect(drain.fromReplicas).toBe(3);
    expect(drain.toReplicas).toBe(2);
    expect(Date.parse(drain.deadline) - Date.parse(drain.startedAt)).toBe(DRAIN_TIMEOUT_SECONDS * 1000);
    // Out of routing while it finishes its work, and the count is not lowered before that.
    expect(await servingCondition(2)).toBe('False');
    expect(await servingCondition(1)).toBe('True');
    expect((await stack.lws('decode')).specGroups).toBe(3);
    await until(
      'decode written down to 2',
      DRAIN_TIMEOUT_SECONDS + 60,
      async () => (await stack.lws('decode')).specGroups === 2,
    );
    await until('group 2 gone', 60, async () => (await servingCondition(2)) === undefined);
    // It was drained, not timed out: the write came well before the deadline.
    expect(Date.now()).toBeLessThan(Date.parse(drain.deadline));
    expect(stack.engines.snapshot().requests.abortedByScaleDown - abortedBefore).toBe(0);
    // The controller raises its Events after the write and the status, so they may trail the pod's removal.
    const seen: string[] = [];
    await until('the Drained event', 60, async () => {
      seen.push(...(await stack.newEvents()));
      return /Drained: decode: 2 drained after \d+s: writing 3 → 2/.test(seen.join('\n'));
    });
    expect(seen.join('\n')).toMatch(/DrainStarted: decode: draining 2 before 3 → 2/);
    await until(
      'the drain record closed',
      60,
      async () => decodeStatus(await stack.podAutoscaler())?.drain === undefined,
    );
  }, 600_000);

  it('with draining off, the same 3 → 2 aborts the requests group 2 held', async () => {
    await pin(3, 0);
    await threeReadyDecodeGroups();
    const abortedBefore = stack.engines.snapshot().requests.abortedByScaleDown;
    await pin(2, 0);
    await until('decode written down to 2', 60, async () => (await stack.lws('decode')).specGroups === 2);
    await until('group 2 gone', 60, async () => (await servingCondition(2)) === undefined);
    await sleep(2000); // the engine watch removes the group on the pod's delete event
    expect(stack.engines.snapshot().requests.abortedByScaleDown - abortedBefore).toBeGreaterThan(0);
    expect(decodeStatus(await stack.podAutoscaler())?.drain).toBeUndefined();
  }, 600_000);
});
