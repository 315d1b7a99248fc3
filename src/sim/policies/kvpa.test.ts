/**
 * One decider: the lab's kvpa and the controller run the same PoolRunner. One sample stream goes through the
 * controller's path (poolRunnerFor, record each second, decide every tickSeconds with the spec and ready counts
 * and the latest samples, groupsToWrite: the calls of src/control/controller.ts) and through the lab's path
 * (kvpaPolicy fed GroupMetrics), and the decisions must be identical second by second.
 */
import { describe, expect, it } from 'vitest';
import { poolRunnerFor } from '../../api/resolve.ts';
import { groupsToWrite, type PoolSample } from '../../decide/pool-runner.ts';
import { WorkReader } from '../../decide/work.ts';
import { loadCalibration } from '../calibration.ts';
import type { EngineSeries } from '../engine-series.ts';
import { kvpaPolicy, resolveKvpaPool } from './kvpa.ts';
import type { GroupMetrics, PolicyContext } from './types.ts';

const h200 = loadCalibration('deepseek-r1-h200');
const context: PolicyContext = {
  pool: 'decode',
  calibration: h200,
  startupSeconds: 120,
  minGroups: 1,
  maxGroups: 64,
  demand: { binSeconds: 10, prefillGroups: Float64Array.of(1), decodeGroups: Float64Array.of(1) },
};

/**
 * The stream: ready and requested counts and the per-group KV use each second (values that sum exactly in
 * binary). It starts after a restart with 4 requested and 2 ready, has a 40 s stretch with no ready group
 * (noData: hold), then high load, then low load long enough for the 900 s scale-down delay to pass.
 */
function streamAt(t: number, requested: number): { ready: number; kvPerGroup: number } {
  const ready = t >= 300 && t < 340 ? 0 : Math.min(requested, t < 600 ? 2 : requested);
  const kvPerGroup = t < 300 ? 0.25 : t < 1200 ? 0.75 : 0.125;
  return { ready, kvPerGroup };
}

const END_SECONDS = 3000;

/** Each ready group generates 20,000 tok/s and completes 10 requests/s; nothing waits. */
function seriesAt(t: number, ready: number): EngineSeries[] {
  const empty = { upperBounds: [0.1], cumulative: [0, 0], sum: 0 };
  return Array.from({ length: ready }, (_, i) => ({
    groupId: i,
    promptTokensTotal: 0,
    generationTokensTotal: 20000 * t,
    preemptionsTotal: 0,
    requestSuccessTotal: 10 * t,
    timeToFirstTokenSeconds: empty,
    interTokenLatencySeconds: empty,
  }));
}

function controllerPath(): (number | undefined)[] {
  // The lab's PodAutoscaler sets horizonSeconds to the run's cold start; the controller is given the same.
  const pool = resolveKvpaPool(
    'decode',
    context.minGroups,
    context.maxGroups,
    undefined,
    undefined,
    context.startupSeconds,
  );
  const runner = poolRunnerFor(pool);
  // The direct scrape's reader: rates over 10 s of successive scrapes, as the lab's engines are read.
  const work = new WorkReader(10, pool.slo.tpotSeconds);
  let requested = 4;
  let nextDecisionAt = 0;
  const out: (number | undefined)[] = [];
  for (let t = 0; t < END_SECONDS; t++) {
    const { ready, kvPerGroup } = streamAt(t, requested);
    const read = work.read(
      t,
      seriesAt(t, ready).map((e) => ({
        id: String(e.groupId),
        tokensTotal: e.generationTokensTotal,
        requestsTotal: e.requestSuccessTotal,
        waitingRequests: 0,
        latencySumSeconds: 0,
        latencyCount: 0,
      })),
    );
    const flow = read.flowPerSecond;
    const latest: PoolSample[] =
      ready === 0
        ? [
            { name: 'kvCacheUtilization', state: 'noData', detail: 'no ready group to scrape' },
            { name: 'generationTokens', state: 'noData', detail: 'no ready group to scrape' },
          ]
        : [
            { name: 'kvCacheUtilization', state: 'ok', total: ready * kvPerGroup },
            flow === undefined
              ? {
                  name: 'generationTokens',
                  state: 'noData',
                  detail: 'no group has two scrapes of its counters yet',
                }
              : {
                  name: 'generationTokens',
                  state: 'ok',
                  total: flow,
                  ...(read.backlogTokens !== undefined ? { backlog: read.backlogTokens } : {}),
                  capacitySamples: read.capacitySamples,
                },
          ];
    runner.record(latest, t);
    let written: number | undefined;
    if (t >= nextDecisionAt) {
      nextDecisionAt = t + pool.tickSeconds;
      written = groupsToWrite(runner.decide(t, ready, requested, latest), requested);
    }
    if (written !== undefined) requested = written;
    out.push(written);
  }
  return out;
}

function labPath(): (number | undefined)[] {
  const policy = kvpaPolicy(context);
  let requested = 4;
  const out: (number | undefined)[] = [];
  for (let t = 0; t < END_SECONDS; t++) {
    const { ready, kvPerGroup } = streamAt(t, requested);
    const metrics: GroupMetrics[] = Array.from({ length: ready }, () => ({
      kvCacheUsagePerc: kvPerGroup,
      numRequestsWaiting: 0,
      numRequestsRunning: 100,
    }));
    const written = policy.decide({
      nowSeconds: t,
      pool: 'decode',
      requestedGroups: requested,
      readyGroups: ready,
      metrics,
      engineSeries: () => seriesAt(t, ready),
    });
    if (written !== undefined) requested = written;
    out.push(written);
  }
  return out;
}

describe('one decider: the lab drives the controller’s PoolRunner', () => {
  it('gives identical writes, second by second, for one 3,000 s stream (restart at 4 requested / 2 ready, a noData gap, a rise and a fall)', () => {
    const controller = controllerPath();
    const lab = labPath();
    expect(lab).toEqual(controller);
    // The stream exercises the drift the lab had: restart safety from the requested count holds 4 until the
    // rise (0.75 × 2 = 1.5 wants ceil(1.5 / 0.7) = 3 < 4), so nothing is written before t = 300 …
    expect(controller.slice(0, 300).every((w) => w === undefined)).toBe(true);
    // … then the rise scales up (to 9 groups) and the fall, once the delay has passed, back down (to 4).
    const writes = controller.filter((w): w is number => w !== undefined);
    expect(Math.max(...writes)).toBe(9);
    expect(writes.at(-1)).toBe(4);
  });

  it('an invalid decision never lowers the pool (groupsToWrite): 2 ready, no signal, requested 4 → no write', () => {
    const pool = resolveKvpaPool('decode', 1, 64);
    const runner = poolRunnerFor(pool);
    const none: PoolSample[] = [
      { name: 'kvCacheUtilization', state: 'noData' },
      { name: 'runningRequests', state: 'noData' },
    ];
    const decision = runner.decide(0, 2, 4, none);
    expect(decision.valid).toBe(false);
    expect(groupsToWrite(decision, 4)).toBeUndefined();
  });
});
