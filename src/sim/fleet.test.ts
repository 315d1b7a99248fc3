import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  loadCalibration,
  prefillComputeTokensPerSecond,
  prefillLengthFactor,
  transferSeconds,
} from './calibration.ts';
import { type CompletedRequest, Fleet, type FleetOptions } from './fleet.ts';
import { Random } from './random.ts';
import { defaultSettings, runSimulation } from './run.ts';

const h200 = loadCalibration('deepseek-r1-h200');

function fleetOptions(overrides: Partial<FleetOptions> = {}): FleetOptions {
  return {
    calibration: h200,
    startupSeconds: 600,
    metricsDelivery: { kind: 'direct' },
    requestTimeoutSeconds: 600,
    initialGroups: { prefill: 1, decode: 1 },
    maxGroups: { prefill: 64, decode: 64 },
    ttftSloSeconds: 2,
    tpotSloSeconds: 0.08,
    ...overrides,
  };
}

const noTick = () => {};

describe('calibration: the fleet reproduces the calibration table (±10 %)', () => {
  it('decode: ≈1.9k output tok/s per GPU at an 80 ms ITL with a 3K context (H200)', () => {
    // Poisson arrivals of 2,900-token prompts with 200-token outputs (mean decode context ≈ 3,000). At 304 req/s
    // one 32-GPU decode group settles where t0 + (a·b + c·K)/32 = ITL with b = λ·O·ITL: ITL ≈ 80 ms.
    const random = new Random(42);
    const rate = 304;
    let t = 0;
    let tokensAt40 = 0;
    const itl: number[] = [];
    const measured = new Fleet(
      fleetOptions({
        initialGroups: { prefill: 12, decode: 1 },
        onComplete: (r: CompletedRequest) => {
          if (r.arrivalSeconds > 40) itl.push((r.finishSeconds - r.firstTokenSeconds) / (r.outputTokens - 1));
        },
      }),
    );
    while (t < 120) {
      t += random.exponential(rate);
      if (t >= 40 && tokensAt40 === 0) {
        measured.advanceTo(40, noTick);
        tokensAt40 = measured.outputTokensCompleted;
      }
      measured.advanceTo(t, noTick);
      measured.arrive(t, 2900, 200);
    }
    measured.advanceTo(120, noTick);
    const tokensPerSecondPerGpu =
      (measured.outputTokensCompleted - tokensAt40) / 80 / h200.decode.gpusPerGroup;
    itl.sort((a, b) => a - b);
    const medianItl = itl[Math.floor(itl.length / 2)] as number;
    expect(measured.preemptions).toBe(0);
    expect(Math.abs(medianItl / 0.08 - 1)).toBeLessThan(0.1);
    expect(Math.abs(tokensPerSecondPerGpu / 1900 - 1)).toBeLessThan(0.1);
  });

  it('prefill: ≈7k input tok/s per GPU saturated at 2K prompts (H200)', () => {
    // 80 prompts/s of 2,048 tokens overload one 16-GPU prefill group (capacity ≈ 55/s); one-token outputs
    // complete at the decode admission, so completions per second measure the prefill rate.
    const fleet = new Fleet(fleetOptions({ initialGroups: { prefill: 1, decode: 2 } }));
    let completedAt20 = 0;
    for (let i = 0; i < 80 * 80; i++) {
      const t = i / 80;
      if (t >= 20 && completedAt20 === 0) {
        fleet.advanceTo(20, noTick);
        completedAt20 = fleet.completed;
      }
      fleet.advanceTo(t, noTick);
      fleet.arrive(t, 2048, 1);
    }
    fleet.advanceTo(80, noTick);
    const tokensPerSecondPerGpu = ((fleet.completed - completedAt20) * 2048) / 60 / h200.prefill.gpusPerGroup;
    expect(Math.abs(tokensPerSecondPerGpu / 7000 - 1)).toBeLessThan(0.1);
  });

  it('H100 decode is KV-bound: at most 210k tokens per GPU resident, and it preempts when full', () => {
    const h100 = loadCalibration('deepseek-r1-h100');
    const fleet = new Fleet(fleetOptions({ calibration: h100, initialGroups: { prefill: 8, decode: 1 } }));
    let peakUsage = 0;
    for (let i = 0; i < 4000; i++) {
      const t = i / 100;
      fleet.advanceTo(t, () => {
        for (const m of fleet.sampleMetrics('decode')) peakUsage = Math.max(peakUsage, m.kvCacheUsagePerc);
      });
      fleet.arrive(t, 4000, 2000);
    }
    fleet.advanceTo(900, noTick);
    expect(fleet.completed).toBe(4000);
    expect(peakUsage).toBeLessThanOrEqual(1);
    expect(peakUsage).toBeGreaterThan(0.9);
    expect(fleet.preemptions).toBeGreaterThan(0);
    // Full KV shows up as the decode pool's share of TTFT: requests wait for room after their KV landed.
    expect(fleet.decodeAdmissionWait.max).toBeGreaterThan(1);
  });
});

// A random small workload with a random sequence of desired counts: the scaffold of the property tests.
const workload = fc.record({
  arrivals: fc.array(
    fc.record({
      gapSeconds: fc.double({ min: 0, max: 3, noNaN: true }),
      inputTokens: fc.integer({ min: 1, max: 20000 }),
      outputTokens: fc.integer({ min: 1, max: 3000 }),
    }),
    { minLength: 1, maxLength: 200 },
  ),
  initialPrefill: fc.integer({ min: 0, max: 3 }),
  initialDecode: fc.integer({ min: 0, max: 3 }),
  startupSeconds: fc.integer({ min: 0, max: 120 }),
  timeoutSeconds: fc.integer({ min: 5, max: 600 }),
  decisions: fc.array(
    fc.record({
      second: fc.integer({ min: 0, max: 400 }),
      pool: fc.constantFrom('prefill' as const, 'decode' as const),
      groups: fc.integer({ min: 0, max: 4 }),
    }),
    { maxLength: 12 },
  ),
});

type Workload = typeof workload extends fc.Arbitrary<infer T> ? T : never;

function runWorkload(w: Workload, calibration = h200) {
  const completions: CompletedRequest[] = [];
  const fleet = new Fleet(
    fleetOptions({
      calibration,
      startupSeconds: w.startupSeconds,
      requestTimeoutSeconds: w.timeoutSeconds,
      initialGroups: { prefill: w.initialPrefill, decode: w.initialDecode },
      onComplete: (r) => completions.push(r),
    }),
  );
  const onTick = (second: number) => {
    for (const d of w.decisions) if (d.second === second) fleet.setDesired(d.pool, d.groups);
  };
  let t = 0;
  for (const a of w.arrivals) {
    t += a.gapSeconds;
    fleet.advanceTo(t, onTick);
    fleet.arrive(t, a.inputTokens, a.outputTokens);
  }
  const end = Math.ceil(t) + 1;
  fleet.advanceTo(end, onTick);
  fleet.stopAccountingAt(end);
  fleet.advanceTo(end + 1200, noTick);
  fleet.finish();
  return { fleet, completions };
}

describe('fleet invariants (property tests)', () => {
  it('conservation: every request either completes or is counted as dropped', () => {
    fc.assert(
      fc.property(workload, (w) => {
        const { fleet, completions } = runWorkload(w);
        expect(fleet.arrived).toBe(w.arrivals.length);
        expect(fleet.completed + fleet.dropped).toBe(fleet.arrived);
        expect(completions.length).toBe(fleet.completed);
        expect(fleet.requestsInFlight).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('causality: first token after arrival, finish after first token, TPOT ≥ the empty-group step time', () => {
    fc.assert(
      fc.property(workload, (w) => {
        const { completions } = runWorkload(w);
        for (const r of completions) {
          expect(r.firstTokenSeconds).toBeGreaterThan(r.arrivalSeconds);
          expect(r.finishSeconds).toBeGreaterThanOrEqual(r.firstTokenSeconds);
          if (r.outputTokens > 1) {
            // Each further token costs at least one step of t0 (less the credit of admission inside a step).
            const steps = r.outputTokens - 1;
            expect(r.finishSeconds - r.firstTokenSeconds).toBeGreaterThanOrEqual(
              (steps - 1) * h200.decode.stepTime.baseSeconds,
            );
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  it('GPU-hours equal the time-integral of the groups held (sampled each second, ±1 s per group)', () => {
    fc.assert(
      fc.property(workload, (w) => {
        const { fleet } = runWorkload(w);
        for (const pool of ['prefill', 'decode'] as const) {
          const record = fleet.pools[pool];
          const gpus = pool === 'prefill' ? h200.prefill.gpusPerGroup : h200.decode.gpusPerGroup;
          const groupsEver = fleet.groups.filter((g) => g.pool === pool).length;
          const toleranceHours = (groupsEver * gpus * 1) / 3600 + 1e-9;
          expect(Math.abs(record.gpuHours - record.gpuSecondsSampled / 3600)).toBeLessThanOrEqual(
            toleranceHours,
          );
        }
      }),
      { numRuns: 60 },
    );
  });

  it('infinite capacity: TTFT is exactly the prefill time plus the KV transfer', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            inputTokens: fc.integer({ min: 1, max: 60000 }),
            outputTokens: fc.integer({ min: 1, max: 4000 }),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        (requests) => {
          const completions: CompletedRequest[] = [];
          const fleet = new Fleet(
            fleetOptions({
              initialGroups: { prefill: 16, decode: 4 }, // a prompt keeps a group < 3 s busy; arrivals come every 0.5 s
              onComplete: (r) => completions.push(r),
            }),
          );
          requests.forEach((r, i) => {
            fleet.advanceTo(i * 0.5, noTick);
            fleet.arrive(i * 0.5, r.inputTokens, r.outputTokens);
          });
          fleet.advanceTo(400, noTick);
          expect(completions.length).toBe(requests.length);
          // All of TTFT is the prefill pool's share; the decode pool adds no admission wait.
          expect(fleet.decodeAdmissionWait.max).toBe(0);
          expect(fleet.prefillLatency.count).toBe(requests.length);
          const rate = prefillComputeTokensPerSecond(h200);
          for (const r of completions) {
            const prefill =
              h200.prefill.forwardOverheadSeconds +
              (r.inputTokens * prefillLengthFactor(h200, r.inputTokens)) / rate;
            const expected = prefill + transferSeconds(h200, r.inputTokens);
            expect(r.firstTokenSeconds - r.arrivalSeconds).toBeCloseTo(expected, 9);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('runs are reproducible', () => {
  it('the same seed gives the same summary; another seed gives another', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvpa-sim-'));
    const trace = join(dir, 'bins.csv');
    const rows = ['t_s,requests,input_tokens_sum,output_tokens_sum'];
    for (let m = 0; m < 30; m++) rows.push(`${m * 60},${600 + 400 * Math.sin(m / 3)},${900_000},${200_000}`);
    writeFileSync(trace, `${rows.join('\n')}\n`);
    const run = (seed: number) => {
      const settings = defaultSettings(trace, h200, {
        trace: { seed, rateMultiplier: 2 },
        startupSeconds: 120,
      });
      const { wallSeconds, requestsPerWallSecond, ...summary } = runSimulation(settings, 'aibrix-apa');
      void wallSeconds;
      void requestsPerWallSecond;
      return summary;
    };
    const a = run(5);
    expect(run(5)).toEqual(a);
    expect(run(6).ttftSeconds).not.toEqual(a.ttftSeconds);
    expect(a.requests.completed + a.requests.dropped).toBe(a.requests.arrived);
  });
});

describe('lifecycle and metric delivery', () => {
  it('a decode group asked to go is removed at once: its 20 in-flight sequences are aborted, and it stops being charged at 10 s', () => {
    const fleet = new Fleet(fleetOptions({ initialGroups: { prefill: 1, decode: 1 } }));
    for (let i = 0; i < 20; i++) {
      fleet.advanceTo(i * 0.1, noTick);
      fleet.arrive(i * 0.1, 1000, 2000); // ≈2,000 steps of ≈30 ms: about a minute of decoding
    }
    fleet.advanceTo(300, (second) => {
      if (second === 10) fleet.setDesired('decode', 0);
    });
    expect(fleet.completed).toBe(0);
    expect(fleet.abortedByScaleDown).toBe(20);
    expect(fleet.dropped).toBe(20); // aborts are drops: arrived = completed + dropped
    expect(fleet.groups.find((g) => g.pool === 'decode')?.state).toBe('released');
    expect(fleet.pools.decode.gpuHours).toBeCloseTo((10 * h200.decode.gpusPerGroup) / 3600, 9);
  });

  /** Three ready decode groups (ids 4–6 after prefill 0–3), 10 running sequences each, at 20 s. */
  function threeDecodeGroups(overrides: Partial<FleetOptions> = {}) {
    const fleet = new Fleet(fleetOptions({ initialGroups: { prefill: 4, decode: 3 }, ...overrides }));
    for (let i = 0; i < 30; i++) {
      fleet.advanceTo(i * 0.01, noTick);
      fleet.arrive(i * 0.01, 1000, 4000);
    }
    fleet.advanceTo(20, noTick);
    return fleet;
  }

  it('highest-index (LeaderWorkerSet, Grove, Dynamo): 3 → 2 removes the newest group whatever its load, aborting what it runs', () => {
    const fleet = threeDecodeGroups({ victimRule: 'highest-index' });
    const running = fleet.sampleMetrics('decode').map((m) => m.numRequestsRunning);
    expect(running).toEqual([10, 10, 10]); // least-outstanding routing spreads 30 requests evenly
    fleet.setDesired('decode', 2);
    const decode = fleet.groups.filter((g) => g.pool === 'decode');
    expect(decode.map((g) => g.state)).toEqual(['ready', 'ready', 'released']);
    expect(fleet.abortedByScaleDown).toBe(10);
  });

  it('highest-index removes a starting group before a ready one, because it is newer: 2 ready + 1 starting → 2 aborts nothing', () => {
    const fleet = threeDecodeGroups({
      victimRule: 'highest-index',
      initialGroups: { prefill: 4, decode: 2 },
    });
    fleet.setDesired('decode', 3);
    fleet.advanceTo(30, noTick);
    fleet.setDesired('decode', 2);
    const decode = fleet.groups.filter((g) => g.pool === 'decode');
    expect(decode.map((g) => g.state)).toEqual(['ready', 'ready', 'released']);
    expect(fleet.abortedByScaleDown).toBe(0);
  });

  it('arbitrary (KubeRay without workersToDelete): starting groups get no priority; over 20 seeds some remove a ready group while one is starting', () => {
    let readyRemoved = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const fleet = threeDecodeGroups({
        victimRule: 'arbitrary',
        victimSeed: seed,
        initialGroups: { prefill: 4, decode: 2 },
      });
      fleet.setDesired('decode', 3);
      fleet.advanceTo(30, noTick);
      fleet.setDesired('decode', 2);
      const decode = fleet.groups.filter((g) => g.pool === 'decode');
      expect(decode.filter((g) => g.state === 'released')).toHaveLength(1);
      if (decode[2]?.state !== 'released') readyRemoved++;
    }
    expect(readyRemoved).toBeGreaterThan(0);
    expect(readyRemoved).toBeLessThan(20);
  });

  it('chosen: the named group goes (id 4, the oldest), not the highest index', () => {
    const fleet = threeDecodeGroups({ victimRule: 'chosen' });
    fleet.setDesired('decode', 2, [4]);
    const decode = fleet.groups.filter((g) => g.pool === 'decode');
    expect(decode.map((g) => [g.id, g.state])).toEqual([
      [4, 'released'],
      [5, 'ready'],
      [6, 'ready'],
    ]);
    expect(fleet.abortedByScaleDown).toBe(10);
  });

  it('out of routing, decode group 6 gets nothing new, finishes its 10 sequences, and 3 → 2 then aborts nothing', () => {
    const fleet = threeDecodeGroups({ victimRule: 'highest-index' });
    expect(fleet.removalOrder('decode')?.map((g) => [g.id, g.inFlight])).toEqual([
      [6, 10],
      [5, 10],
      [4, 10],
    ]);
    fleet.setRouting('decode', 6, false);
    expect(fleet.observe('decode').readyGroups).toBe(2); // its pods are not Ready: not counted
    expect(fleet.sampleMetrics('decode')).toHaveLength(2);
    for (let i = 0; i < 30; i++) fleet.arrive(20 + i * 0.01, 1000, 10);
    let emptyAt = Number.NaN;
    fleet.advanceTo(600, (second) => {
      const six = fleet.removalOrder('decode')?.find((g) => g.id === 6);
      if (Number.isNaN(emptyAt) && six?.inFlight === 0) emptyAt = second;
    });
    expect(emptyAt).toBeGreaterThan(20);
    fleet.setDesired('decode', 2);
    expect(fleet.abortedByScaleDown).toBe(0);
    expect(fleet.groups.filter((g) => g.pool === 'decode').map((g) => g.state)).toEqual([
      'ready',
      'ready',
      'released',
    ]);
    expect(fleet.pools.decode.drainGpuSeconds).toBeGreaterThan(0);
  });

  it('routing restored: group 6 takes new work again', () => {
    const fleet = threeDecodeGroups({ victimRule: 'highest-index' });
    fleet.setRouting('decode', 6, false);
    fleet.setRouting('decode', 6, true);
    expect(fleet.observe('decode').readyGroups).toBe(3);
    expect(fleet.sampleMetrics('decode')).toHaveLength(3);
  });

  it('arbitrary victims cannot be drained: no removal order', () => {
    expect(threeDecodeGroups({ victimRule: 'arbitrary' }).removalOrder('decode')).toBeNull();
  });

  it('a new group serves only after its startup delay, and is charged from the request', () => {
    const fleet = new Fleet(fleetOptions({ startupSeconds: 120, initialGroups: { prefill: 0, decode: 1 } }));
    fleet.advanceTo(5, (second) => {
      if (second === 0) fleet.setDesired('prefill', 1);
    });
    fleet.arrive(5, 1000, 1);
    fleet.advanceTo(119.5, noTick);
    expect(fleet.completed).toBe(0); // no prefill capacity yet: the request waits at the gateway
    fleet.advanceTo(200, noTick);
    expect(fleet.completed).toBe(1);
    fleet.stopAccountingAt(200);
    fleet.finish();
    expect(fleet.pools.prefill.gpuHours).toBeCloseTo((200 * h200.prefill.gpusPerGroup) / 3600, 9);
  });

  it('with a 15 s scrape interval policies see the sample of the last scrape, not the current one', () => {
    const fleet = new Fleet(
      fleetOptions({
        metricsDelivery: { kind: 'scrape', intervalSeconds: 15 },
        initialGroups: { prefill: 2, decode: 1 },
      }),
    );
    const seen: number[] = [];
    const truth: number[] = [];
    let t = 0;
    for (let i = 0; i < 3000; i++) {
      t += 0.01;
      fleet.advanceTo(t, () => {
        seen.push(fleet.observe('decode').metrics[0]?.numRequestsRunning ?? -1);
        truth.push(fleet.sampleMetrics('decode')[0]?.numRequestsRunning ?? -1);
      });
      fleet.arrive(t, 500, 3000);
    }
    // Seconds 0–14 see the scrape at 0, 15–29 the scrape at 15: constant within each interval.
    for (let s = 1; s < 30; s++) if (s % 15 !== 0) expect(seen[s]).toBe(seen[s - 1]);
    expect(seen[15]).toBe(truth[15]);
    expect(seen[20]).not.toBe(truth[20]); // the load is growing, so the delivered value lags
  });
});

describe('externally owned groups (the live stack: a group exists while its leader pod is Ready)', () => {
  // Random arrivals with random add/remove of named groups, at random virtual times (not only whole seconds).
  const churn = fc.record({
    arrivals: workload.map((w) => w.arrivals),
    timeoutSeconds: fc.integer({ min: 5, max: 600 }),
    changes: fc.array(
      fc.record({
        atSeconds: fc.double({ min: 0, max: 400, noNaN: true }),
        pool: fc.constantFrom('prefill' as const, 'decode' as const),
        id: fc.constantFrom('a', 'b', 'c'),
        add: fc.boolean(),
      }),
      { maxLength: 20 },
    ),
  });

  it('conservation holds while groups come and go; ids track what was added and not removed', () => {
    fc.assert(
      fc.property(churn, (w) => {
        const fleet = new Fleet(
          fleetOptions({ requestTimeoutSeconds: w.timeoutSeconds, initialGroups: { prefill: 0, decode: 0 } }),
        );
        const events = [
          ...w.changes.map((c) => ({ t: c.atSeconds, change: c })),
          ...(() => {
            let t = 0;
            return w.arrivals.map((a) => {
              t += a.gapSeconds;
              return { t, arrival: a };
            });
          })(),
        ].sort((x, y) => x.t - y.t);
        const expected = { prefill: new Set<string>(), decode: new Set<string>() };
        for (const e of events) {
          fleet.advanceTo(e.t, noTick);
          if ('arrival' in e && e.arrival !== undefined) {
            fleet.arrive(e.t, e.arrival.inputTokens, e.arrival.outputTokens);
          } else if ('change' in e && e.change !== undefined) {
            const { pool, id, add } = e.change;
            const changed = add ? fleet.addReadyGroup(pool, id) : fleet.removeGroup(pool, id);
            expect(changed).toBe(add ? !expected[pool].has(id) : expected[pool].has(id));
            if (add) expected[pool].add(id);
            else expected[pool].delete(id);
          }
          expect(fleet.completed + fleet.dropped + fleet.requestsInFlight).toBe(fleet.arrived);
          for (const pool of ['prefill', 'decode'] as const) {
            expect(new Set(fleet.externalGroupIds(pool))).toEqual(expected[pool]);
            expect(fleet.observe(pool).requestedGroups).toBe(expected[pool].size);
          }
        }
        fleet.advanceTo((events.at(-1)?.t ?? 0) + 2000, noTick);
        fleet.finish();
        expect(fleet.completed + fleet.dropped).toBe(fleet.arrived);
        expect(fleet.requestsInFlight).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('a ready group serves at once: requests waiting at the gateway go to it', () => {
    const fleet = new Fleet(fleetOptions({ initialGroups: { prefill: 0, decode: 0 } }));
    fleet.arrive(0, 1000, 10);
    fleet.advanceTo(30, noTick);
    expect(fleet.completed).toBe(0);
    expect(fleet.addReadyGroup('prefill', 'ns/p-0')).toBe(true);
    expect(fleet.addReadyGroup('prefill', 'ns/p-0')).toBe(false); // already there
    expect(fleet.addReadyGroup('decode', 'ns/d-0')).toBe(true);
    fleet.advanceTo(35, noTick);
    expect(fleet.completed).toBe(1);
    expect(fleet.groupMetrics('decode', 'ns/d-0')).toEqual({
      kvCacheUsagePerc: 0,
      numRequestsWaiting: 0,
      numRequestsRunning: 0,
    });
    expect(fleet.groupMetrics('decode', 'ns/unknown')).toBeUndefined();
    expect(fleet.pools.decode.scaleEvents).toEqual([{ tSeconds: 30, fromGroups: 0, toGroups: 1 }]);
  });

  it('a removed decode group drains its in-flight sequences; its metrics are gone at once', () => {
    const completions: CompletedRequest[] = [];
    const fleet = new Fleet(
      fleetOptions({ initialGroups: { prefill: 0, decode: 0 }, onComplete: (r) => completions.push(r) }),
    );
    fleet.addReadyGroup('prefill', 'p');
    fleet.addReadyGroup('decode', 'd');
    for (let i = 0; i < 20; i++) {
      fleet.advanceTo(i * 0.1, noTick);
      fleet.arrive(i * 0.1, 1000, 2000);
    }
    fleet.advanceTo(10, noTick);
    expect(fleet.groupMetrics('decode', 'd')?.numRequestsRunning).toBe(20);
    expect(fleet.removeGroup('decode', 'd')).toBe(true);
    expect(fleet.removeGroup('decode', 'd')).toBe(false);
    expect(fleet.groupMetrics('decode', 'd')).toBeUndefined();
    fleet.advanceTo(300, noTick);
    expect(fleet.completed).toBe(20);
    expect(fleet.dropped).toBe(0);
    expect(Math.max(...completions.map((r) => r.finishSeconds))).toBeGreaterThan(30);
    expect(fleet.groups.find((g) => g.externalId === 'd')?.state).toBe('released');
  });

  it('a removed prefill group finishes its batch and hands its queue to another group', () => {
    const fleet = new Fleet(fleetOptions({ initialGroups: { prefill: 0, decode: 0 } }));
    fleet.addReadyGroup('prefill', 'p0');
    fleet.addReadyGroup('decode', 'd0');
    for (let i = 0; i < 200; i++) fleet.arrive(0, 20000, 2);
    fleet.advanceTo(0.5, noTick);
    const before = fleet.groupMetrics('prefill', 'p0');
    expect(before?.numRequestsWaiting).toBeGreaterThan(0);
    fleet.addReadyGroup('prefill', 'p1');
    fleet.removeGroup('prefill', 'p0');
    expect(fleet.groupMetrics('prefill', 'p1')?.numRequestsWaiting).toBeGreaterThan(0);
    fleet.advanceTo(2000, noTick);
    expect(fleet.completed + fleet.dropped).toBe(200);
    expect(fleet.groups.find((g) => g.externalId === 'p0')?.state).toBe('released');
  });
});
