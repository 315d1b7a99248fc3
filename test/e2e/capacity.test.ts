/**
 * A scale-up that can land, end to end on the live stack: kwok GPU nodes, the real kube-scheduler and LWS
 * controller. The stack gets 10 fake 8-GPU nodes: prefill's one 2-pod group takes 2, and each 4-pod decode
 * group takes 4, so decode fits 2 groups, not the 4 it is pinned to (min = max = 4, the bounds stage).
 *   1. Enforce (the default): kvpa asks for 2, sets ScalingLimited/InsufficientCapacity with the numbers,
 *      raises the Event, and keeps deciding.
 *   2. AskAnyway: kvpa asks for 4; the 2 groups the scheduler cannot place keep the shortage reported.
 *   3. Pinned back to 1: the scale-down goes through, and the condition clears.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Behavior, PodAutoscaler } from '../../src/api/podautoscaler.ts';
import { type Stack, startStack } from '../../src/stack/up.ts';
import { pinDecode, sleep, until } from './helpers.ts';

let stack: Stack;

function scalingLimited(pa: PodAutoscaler | null) {
  return pa?.status?.conditions?.find((c) => c.type === 'ScalingLimited');
}

const pin = (groups: number, capacityCheck: Behavior['capacityCheck']) =>
  pinDecode(stack, groups, { capacityCheck: capacityCheck });

beforeAll(async () => {
  stack = await startStack({
    workDir: mkdtempSync(path.join(tmpdir(), 'kvpa-e2e-capacity-')),
    podStartupSeconds: 3,
    scrapeIntervalSeconds: 1,
    accelerationFactor: 4,
    maxGroups: { prefill: 1, decode: 4 },
    fakeNodes: 10,
    initialMode: 'Apply',
    autoscaler: {
      stableWindowSeconds: 12,
      panicWindowPercentage: 25,
      scaleDownDelaySeconds: 10,
      staleAfterSeconds: 5,
    },
    load: {
      kind: 'steps',
      steps: [{ atSeconds: 0, requestsPerSecond: 2, inputTokens: 1000, outputTokens: 200 }],
    },
    loadDurationSeconds: 24 * 3600,
    log: (m) => process.stderr.write(`[e2e capacity] ${m}\n`),
  });
  stack.load.start();
}, 600_000);

afterAll(async () => {
  await stack?.stop();
}, 120_000);

describe('a scale-up that can land, on the live stack', () => {
  it('decode pinned at 4 with room for 2 asks for 2, says InsufficientCapacity, and raises the Event', async () => {
    await until('decode at 1 ready group', 180, async () => (await stack.lws('decode')).readyGroups === 1);
    await pin(4, 'Enforce');
    const limited = await until('ScalingLimited InsufficientCapacity', 90, async () => {
      const c = scalingLimited(await stack.podAutoscaler());
      return c?.status === 'True' && c.reason === 'InsufficientCapacity' ? c : null;
    });
    expect(limited.message).toMatch(/decode: want 4, 2 can land, asked 2/);
    expect(limited.message).toMatch(/a group is 4 pod\(s\) and 32 nvidia\.com\/gpu/);
    await until('decode at 2 ready groups', 120, async () => {
      const l = await stack.lws('decode');
      return l.specGroups === 2 && l.readyGroups === 2;
    });
    // It keeps deciding and keeps the ask at what fits: never 3 or 4 while only 2 fit.
    for (let i = 0; i < 10; i++) {
      expect((await stack.lws('decode')).specGroups).toBe(2);
      await sleep(500);
    }
    const decode = (await stack.podAutoscaler())?.status?.pools?.find((p) => p.name === 'decode');
    expect(decode?.lastDecision?.limitedBy).toContain('placement');
    const events = (await stack.newEvents()).join('\n');
    expect(events).toMatch(/InsufficientCapacity: decode: insufficient capacity: want 4, 2 can land/);
  }, 420_000);

  it('with AskAnyway it asks for 4, and the 2 unschedulable groups keep the shortage reported', async () => {
    await pin(4, 'AskAnyway');
    await until('decode asked for 4', 60, async () => (await stack.lws('decode')).specGroups === 4);
    const limited = await until('the shortage of 2 unschedulable groups', 90, async () => {
      const c = scalingLimited(await stack.podAutoscaler());
      return c?.reason === 'InsufficientCapacity' &&
        /2 requested group\(s\) cannot be scheduled/.test(c.message)
        ? c
        : null;
    });
    expect(limited.message).toMatch(/decode: want 4, 2 can land, asked 4/);
    expect((await stack.lws('decode')).readyGroups).toBe(2);
    const events = (await stack.newEvents()).join('\n');
    expect(events).toMatch(/InsufficientCapacity: decode: .*asking for 4 anyway/);
  }, 300_000);

  it('pinned back to 1, decode scales down and the condition clears', async () => {
    await pin(1, 'Enforce');
    await until('decode written down to 1', 60, async () => (await stack.lws('decode')).specGroups === 1);
    const c = await until('ScalingLimited no longer InsufficientCapacity', 60, async () => {
      const cond = scalingLimited(await stack.podAutoscaler());
      return cond !== undefined && cond.reason !== 'InsufficientCapacity' ? cond : null;
    });
    expect(c.reason).not.toBe('InsufficientCapacity');
  }, 180_000);
});
