/**
 * Work-based signals, the horizon plan, the SLO guard and the capacity estimate, with worked numbers; and
 * the pile-up property, driven through the one PoolRunner with a fleet whose groups take long to start.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maxWithin, newDelayWindow, recordMax } from './delay-window.ts';
import { breachTrim, coldStartSeconds, decide, initialState, nextSloTrim } from './kpa.ts';
import { PoolRunner, type PoolSample } from './pool-runner.ts';
import type { SignalWindowSpec } from './signal-windows.ts';
import { KVPA_EXTENSIONS } from './spec.ts';
import type { DeciderSpec, DeciderState, Observation, SignalReading } from './types.ts';
import {
  CapacityEstimator,
  DEFAULT_CAPACITY_SAMPLING,
  TREND_MIN_T_STATISTIC,
  Trend,
  trendFit,
  trendPerSecond,
  WorkReader,
} from './work.ts';

const T0 = 1_000_000;

const SPEC: DeciderSpec = {
  stableWindowSeconds: 120,
  panicThreshold: 2,
  maxScaleUpRate: 2,
  maxScaleDownRate: 2,
  scaleDownDelaySeconds: 600,
  activationScale: 1,
  reachable: true,
  minReplicas: 1,
  maxReplicas: 0,
  tickSeconds: 2,
  extensions: { ...KVPA_EXTENSIONS, startupTimeoutSeconds: 7200, slo: { ttftSeconds: 2 } },
};

function work(stable: number, extra: Partial<SignalReading> = {}): SignalReading {
  return {
    name: 'promptTokens',
    kind: 'work',
    targetPerGroup: 80_000,
    state: 'ok',
    stableTotal: stable,
    panicTotal: stable,
    ...extra,
  };
}

function once(obs: Observation, spec: DeciderSpec = SPEC) {
  const state = initialState(spec, 0, T0 - 1);
  return decide(spec, state, obs, T0).decision;
}

describe('work signals in the decision core', () => {
  it('400k tok/s against 80k per group wants 5; a 1M-token backlog adds one group, not 1M / 2 s / 80k = 7', () => {
    const calm = once({ readyGroups: 5, signals: [work(400_000)] });
    expect(calm.desiredGroups).toBe(5);
    const queued = once({ readyGroups: 5, signals: [work(400_000, { backlogTotal: 1_000_000 })] });
    expect(queued.desiredGroups).toBe(6);
    const e = queued.explanation.signals[0];
    expect(e?.clearancePerSecond).toBe(80_000);
    expect(queued.explanation.summary).toContain('to clear a backlog of 1000000');
  });

  it('a trend of +200 tok/s/s over a 600 s horizon plans 400k → 520k (7 groups) now; the plan is capped at 1.5×', () => {
    const rising = once({ readyGroups: 5, signals: [work(400_000, { trendPerSecond: 200 })] });
    expect(rising.desiredGroups).toBe(7);
    const horizon = rising.explanation.stages.find((s) => s.stage === 'horizon');
    expect(horizon).toMatchObject({ before: 5, after: 7, applied: true });
    const steep = once({ readyGroups: 5, signals: [work(400_000, { trendPerSecond: 10_000 })] });
    // 400k × 1.5 = 600k wants ceil(600k / 80k) = 8, not the 6.4M the raw trend projects.
    expect(steep.desiredGroups).toBe(8);
    const falling = once({ readyGroups: 5, signals: [work(400_000, { trendPerSecond: -500 })] });
    expect(falling.desiredGroups).toBe(5);
  });

  it('the SLO guard: TTFT p90 3 s > 2 s at 5 ready adds one group (6) although the work wants 3; unknown latency leaves it off', () => {
    const slow = once({
      readyGroups: 5,
      requestedGroups: 5,
      signals: [work(200_000)],
      latency: { ttftSeconds: 3 },
    });
    expect(slow.desiredGroups).toBe(6);
    expect(slow.explanation.stages.find((s) => s.stage === 'sloGuard')?.reason).toContain('TTFT 3s > SLO 2s');
    // With a group already on its way the guard only forbids scale-down: 6 requested, 5 ready stays 6.
    const waiting = once({
      readyGroups: 5,
      requestedGroups: 6,
      signals: [work(200_000)],
      latency: { ttftSeconds: 3 },
    });
    expect(waiting.desiredGroups).toBe(6);
    const unknown = once({ readyGroups: 5, requestedGroups: 5, signals: [work(200_000)], latency: {} });
    expect(unknown.explanation.stages.find((s) => s.stage === 'sloGuard')?.applied).toBe(false);
  });

  it('a queue read as a level (backlog kind) adds at most one group beyond the 4 requested while groups start', () => {
    const queue: SignalReading = {
      name: 'queueDepth',
      kind: 'backlog',
      targetPerGroup: 10,
      state: 'ok',
      stableTotal: 500,
      panicTotal: 500,
    };
    const d = once({ readyGroups: 2, requestedGroups: 4, signals: [queue] });
    expect(d.desiredGroups).toBeLessThanOrEqual(5);
  });

  it('a work want is not held by the startup gate: 26 requested (1 starting), demand for 37 asks for 37 now', () => {
    const d = once({ readyGroups: 25, requestedGroups: 26, signals: [work(37 * 80_000)] });
    expect(d.desiredGroups).toBe(37);
  });
});

describe('the SLO trim and the peak hold', () => {
  it('TTFT 3 s > 2 s with none starting divides work targets by 1.15: 400k at 80k/1.15 wants 6, not 5', () => {
    const d = once({
      readyGroups: 6,
      requestedGroups: 6,
      signals: [work(400_000)],
      latency: { ttftSeconds: 3 },
    });
    expect(d.explanation.sloTrim).toBeCloseTo(1.15, 12);
    expect(d.explanation.signals[0]?.targetPerGroup).toBeCloseTo(80_000 / 1.15, 6);
    expect(d.explanation.summary).toContain('SLO trim ×1.15');
  });

  it('the trim waits for starting groups, and relaxes 0.2 % per decision under half the SLO, never below 1', () => {
    expect(nextSloTrim(SPEC, 2, { ttftSeconds: 3 }, false)).toBe(2);
    expect(nextSloTrim(SPEC, 2, { ttftSeconds: 0.5 }, true)).toBeCloseTo(1.996, 12);
    expect(nextSloTrim(SPEC, 1, { ttftSeconds: 0.5 }, true)).toBe(1);
    // Between half the SLO and the SLO, and with latency unknown, it holds.
    expect(nextSloTrim(SPEC, 2, { ttftSeconds: 1.5 }, true)).toBe(2);
    expect(nextSloTrim(SPEC, 2, {}, true)).toBe(2);
    expect(nextSloTrim(SPEC, 3.9, { ttftSeconds: 9 }, true)).toBe(4);
  });

  it('TTFT 3 s at 10 ready carrying 400k tok/s (40k each) against a 112k capacity trims ×2.8 at once, though a group starts', () => {
    const capacity = {
      configuredPerSecond: 112_000,
      measuredPerSecond: undefined,
      samples: 0,
      usedPerSecond: 112_000,
      source: 'configured' as const,
    };
    const signals = [work(300_000, { panicTotal: 400_000, targetPerGroup: 112_000 / 1.5, capacity })];
    expect(breachTrim(signals, 10)).toBeCloseTo(2.8, 12);
    const d = once({ readyGroups: 10, requestedGroups: 11, signals, latency: { ttftSeconds: 3 } });
    expect(d.explanation.sloTrim).toBeCloseTo(2.8, 12);
    // 300k stable at 112k / 1.5 / 2.8 = 26.7k per group wants ceil(11.25) = 12 groups, not 5.
    expect(d.desiredGroups).toBe(12);
    // Within the SLO the bound proves nothing: the trim relaxes from where it was.
    expect(nextSloTrim(SPEC, 1, { ttftSeconds: 0.5 }, true, 2.8)).toBe(1);
    // The bound never exceeds the 4× cap, and a load of zero proves nothing.
    expect(nextSloTrim(SPEC, 1, { ttftSeconds: 3 }, false, 9)).toBe(4);
    expect(breachTrim([work(0, { panicTotal: 0, capacity })], 10)).toBeUndefined();
  });

  it('3 groups released at 602 s and wanted again by demand at 700 s, inside a 600 s cold start, teach a hold of 1.25 × (98 + 600) = 873 s', () => {
    const level = (stable: number): SignalReading => ({
      name: 'kv',
      targetPerGroup: 1,
      state: 'ok',
      stableTotal: stable,
      panicTotal: stable,
    });
    const spec: DeciderSpec = { ...SPEC, panicThreshold: 10, maxScaleUpRate: 10 };
    const run = (steps: [t: number, stable: number][]) => {
      let state = initialState(spec, 0, T0 - 1);
      let requested = 1;
      return steps.map(([t, stable]) => {
        const out = decide(
          spec,
          state,
          { readyGroups: requested, requestedGroups: requested, signals: [level(stable)] },
          T0 + t,
        );
        state = out.state;
        requested = out.decision.desiredGroups;
        return {
          desired: requested,
          state,
          delay: out.decision.explanation.stages.find((x) => x.stage === 'scaleDownDelay'),
        };
      });
    };
    const burst = run([
      [0, 3],
      [100, 1],
      [602, 1], // the 600 s hold ends: 3 → 1
      [700, 3], // demand is back 98 s later: regret
      [800, 1],
      [1302, 1], // 602 s after the last want of 3: the old hold would let go, the learned one holds
      [1574, 1], // 874 s after it: let go
    ]);
    expect(burst.map((b) => b.desired)).toEqual([3, 3, 1, 3, 3, 3, 1]);
    expect(burst[3]?.state.regret).toEqual({ holdSeconds: 873, atSeconds: T0 + 700 });
    expect(burst[5]?.delay?.reason).toContain('learned');
    // The same rise 601 s after the release is past one cold start: releasing was right, nothing is learned.
    const late = run([
      [0, 3],
      [602, 1],
      [1203, 3],
      [1805, 1],
    ]);
    expect(late.map((b) => b.desired)).toEqual([3, 1, 3, 1]);
    expect(late[2]?.state.regret).toBeUndefined();
  });

  it('a panic peak of 8 groups 100 s ago holds 8 requested against a stable want of 4 until the 600 s delay passes', () => {
    const level = (stable: number, panic: number): SignalReading => ({
      name: 'kv',
      targetPerGroup: 1,
      state: 'ok',
      stableTotal: stable,
      panicTotal: panic,
    });
    const spec: DeciderSpec = { ...SPEC, panicThreshold: 10 };
    let state = initialState(spec, 0, T0 - 1);
    const at = (t: number, stable: number, panic: number) => {
      const out = decide(
        spec,
        state,
        { readyGroups: 8, requestedGroups: 8, signals: [level(stable, panic)] },
        T0 + t,
      );
      state = out.state;
      return out.decision;
    };
    at(0, 4, 8);
    expect(at(100, 4, 4).desiredGroups).toBe(8);
    expect(at(602, 4, 4).desiredGroups).toBe(4);
  });
});

describe('reading work from counters (WorkReader)', () => {
  const g = (id: string, tokens: number, requests: number, waiting: number) => ({
    id,
    tokensTotal: tokens,
    requestsTotal: requests,
    waitingRequests: waiting,
  });

  it('two groups at 50k and 30k tok/s over 10 s flow 80k; 42 waiting × 2,000 tokens per request is an 84k backlog; only the group with ≥ 1 s of work queued at both scrapes samples capacity', () => {
    const r = new WorkReader(10);
    r.read(0, [g('a', 0, 0, 30), g('b', 0, 0, 0)]);
    const w = r.read(10, [g('a', 500_000, 250, 40), g('b', 300_000, 150, 2)]);
    expect(w.flowPerSecond).toBe(80_000);
    expect(w.backlogTokens).toBe(84_000);
    // a: 30 × 2,000 = 60k ≥ 50k tok/s × 1 s at both scrapes; b: 2 × 2,000 is a few ms of work, not saturation.
    expect(w.capacitySamples).toEqual([50_000]);
  });

  it('a counter reset (a restarted engine) counts from zero, not as a negative rate', () => {
    const r = new WorkReader(10);
    r.read(0, [g('a', 900_000, 100, 0)]);
    const w = r.read(10, [g('a', 100_000, 10, 0)]);
    expect(w.flowPerSecond).toBe(10_000);
  });

  it('waiting requests with no known tokens per request are an unknown backlog, not zero', () => {
    const r = new WorkReader(10);
    r.read(0, [g('a', 0, 0, 3)]);
    const w = r.read(10, [g('a', 0, 0, 3)]);
    expect(w.backlogTokens).toBeUndefined();
    expect(w.flowPerSecond).toBe(0);
  });

  it('a decode group queued at ITL 120 ms against an 80 ms SLO samples 60k × 80/120 = 40k tok/s; at ITL 30 ms it is no sample', () => {
    const r = new WorkReader(10, 0.08);
    const d = (t: number, itlSum: number, itlCount: number) => ({
      ...g('d', 60_000 * t, 10 * t, 20),
      latencySumSeconds: itlSum,
      latencyCount: itlCount,
    });
    r.read(0, [d(0, 0, 0)]);
    expect(r.read(10, [d(10, 120, 1000)]).capacitySamples[0]).toBeCloseTo(40_000, 6);
    const fast = new WorkReader(10, 0.08);
    fast.read(0, [d(0, 0, 0)]);
    expect(fast.read(10, [d(10, 30, 1000)]).capacitySamples).toEqual([]);
  });

  it('the least-squares trend of 100, 110, 120 at t = 0, 10, 20 is 1 per second', () => {
    expect(
      trendPerSecond([
        { t: 0, v: 100 },
        { t: 10, v: 110 },
        { t: 20, v: 120 },
      ]),
    ).toBeCloseTo(1, 12);
    expect(trendPerSecond([{ t: 5, v: 1 }])).toBe(0);
  });

  it('a flat 100k flow that wanders ±5k over a 15-minute swing reads no trend over 600 s; plain least squares would read one', () => {
    const wander = new Trend(600);
    const points: { t: number; v: number }[] = [];
    for (let t = 0; t <= 600; t++) {
      const v = 100_000 + 5_000 * Math.sin((2 * Math.PI * t) / 900);
      points.push({ t, v });
      wander.add(t, v);
    }
    // The slope across the window is real for the points (about −17/s, −10k over 600 s: 10 %, a plan)…
    expect(Math.abs(trendPerSecond(points))).toBeGreaterThan(10);
    // …but the residuals move together, so the 601 samples are worth about one: not a trend.
    const fit = trendFit(points);
    expect(Math.abs(fit.tStatistic)).toBeLessThan(TREND_MIN_T_STATISTIC);
    expect(wander.perSecond()).toBe(0);
  });

  it('a ramp of 50/s under ±2k alternating noise, about 100 standard errors out, is believed at 49–50/s', () => {
    const ramp = new Trend(600);
    for (let t = 0; t <= 600; t++) ramp.add(t, 100_000 + 50 * t + (t % 2 === 0 ? 2_000 : -2_000));
    expect(ramp.perSecond()).toBeGreaterThan(49);
    expect(ramp.perSecond()).toBeLessThanOrEqual(50);
  });

  it('a slope 2.5 standard errors out is believed at a fifth of itself; one 10 out at four fifths', () => {
    // Zero-mean noise that alternates in sign every 2 s: its residuals' lag-1 autocorrelation is 0.
    const series = (slope: number, amplitude: number) => {
      const trend = new Trend(300);
      const points: { t: number; v: number }[] = [];
      for (let t = 0; t <= 300; t++) {
        const v = 100_000 + slope * t + (Math.floor(t / 2) % 2 === 0 ? amplitude : -amplitude);
        points.push({ t, v });
        trend.add(t, v);
      }
      return { trend, fit: trendFit(points) };
    };
    const faint = series(14, 8_000); // t ≈ 2.5: 13.5/s believed at about 2.8/s
    const clear = series(55, 8_000); // t ≈ 10.2: 54.5/s believed at about 43.8/s
    expect(faint.fit.tStatistic).toBeGreaterThan(2);
    expect(faint.fit.tStatistic).toBeLessThan(3);
    expect(faint.trend.perSecond()).toBeCloseTo(faint.fit.perSecond * (1 - 2 / faint.fit.tStatistic), 9);
    expect(faint.trend.perSecond()).toBeLessThan(0.25 * faint.fit.perSecond);
    expect(clear.fit.tStatistic).toBeGreaterThan(10);
    expect(clear.trend.perSecond()).toBeGreaterThan(0.75 * clear.fit.perSecond);
  });

  it('a trend over less than half its 600 s window is not believed, however steep', () => {
    const young = new Trend(600);
    for (let t = 0; t <= 290; t++) young.add(t, 1_000 * t);
    expect(young.perSecond()).toBe(0);
    young.add(300, 300_000);
    expect(young.perSecond()).toBeCloseTo(1_000, 6);
  });
});

describe('capacity measured online', () => {
  const spec = { ...DEFAULT_CAPACITY_SAMPLING, configuredPerSecond: 100_000, measure: true };

  it('29 samples at 60k keep the configured 100k; the 30th switches to the measured median 60k', () => {
    const c = new CapacityEstimator(spec);
    c.add(Array(29).fill(60_000));
    expect(c.estimate()).toMatchObject({ usedPerSecond: 100_000, source: 'configured', samples: 29 });
    c.add([60_000]);
    expect(c.estimate()).toMatchObject({ usedPerSecond: 60_000, source: 'measured', samples: 30 });
  });

  it('a measurement is used within 4× of the configured figure, and a pinned figure is never replaced', () => {
    const c = new CapacityEstimator(spec);
    c.add(Array(40).fill(1_000));
    expect(c.estimate().usedPerSecond).toBe(25_000);
    const pinned = new CapacityEstimator({ ...spec, measure: false });
    pinned.add(Array(40).fill(60_000));
    expect(pinned.estimate()).toMatchObject({
      usedPerSecond: 100_000,
      source: 'pinned',
      measuredPerSecond: 60_000,
    });
  });

  it('non-finite or non-positive samples are ignored, never averaged in', () => {
    const c = new CapacityEstimator(spec);
    c.add([Number.NaN, -5, 0, Number.POSITIVE_INFINITY]);
    expect(c.estimate().samples).toBe(0);
  });
});

/**
 * A pool under constant demand λ tokens/s with capacity c per group (N = λ / c groups needed): ready groups
 * serve min(λ + backlog drain, ready × c); a requested group serves after `startupSeconds`. The runner is fed
 * the work sample each second and decides every 2 s, as the controller does.
 */
function runPool(opts: {
  demand: number;
  capacity: number;
  headroom: number;
  startupSeconds: number;
  initialGroups: number;
  seconds: number;
  level: boolean;
}): { maxRequestedWhileStarting: number; finalRequested: number } {
  const signal: SignalWindowSpec = opts.level
    ? {
        name: 'kv',
        targetPerGroup: 1 / (1 + opts.headroom),
        stableWindowSeconds: 120,
        panicWindowPercentage: 25,
        aggregation: 'linear',
        // KV: the level is min(N, ready) groups' worth, rising as groups land; the trigger must not read that as growth.
        exhaustion: { ceilingPerGroup: 1, trendWindowSeconds: 600 },
      }
    : {
        name: 'promptTokens',
        targetPerGroup: opts.capacity,
        stableWindowSeconds: 120,
        panicWindowPercentage: 25,
        aggregation: 'linear',
        kind: 'work',
        work: {
          capacity: { ...DEFAULT_CAPACITY_SAMPLING, configuredPerSecond: opts.capacity, measure: true },
          headroom: opts.headroom,
          trendWindowSeconds: 600,
        },
      };
  const spec: DeciderSpec = {
    ...SPEC,
    maxReplicas: 0,
    extensions: { ...SPEC.extensions, startupTimeoutSeconds: opts.startupSeconds * 4, slo: {} },
  };
  const runner = new PoolRunner(spec, [signal]);
  let backlog = 0;
  const readyAt: number[] = Array(opts.initialGroups).fill(0);
  let maxStarting = 0;
  for (let t = 0; t < opts.seconds; t++) {
    const ready = readyAt.filter((at) => at <= t).length;
    const requested = readyAt.length;
    const capacity = ready * opts.capacity;
    const served = Math.min(capacity, opts.demand + backlog);
    backlog = Math.max(0, backlog + opts.demand - served);
    const saturated = backlog > 0;
    const sample: PoolSample = opts.level
      ? { name: 'kv', state: 'ok', total: Math.min(opts.demand / opts.capacity, ready) }
      : {
          name: 'promptTokens',
          state: 'ok',
          total: served,
          backlog,
          capacitySamples: saturated ? Array(ready).fill(opts.capacity) : [],
        };
    runner.record([sample], T0 + t);
    if (t % 2 !== 0) continue;
    const d = runner.decide(T0 + t, ready, requested, [sample]);
    if (requested > ready) maxStarting = Math.max(maxStarting, requested);
    if (d.desiredGroups > requested)
      for (let i = requested; i < d.desiredGroups; i++) readyAt.push(t + opts.startupSeconds);
    else if (d.desiredGroups < requested) readyAt.splice(d.desiredGroups);
    if (requested > ready || d.desiredGroups > requested)
      maxStarting = Math.max(maxStarting, Math.max(requested, d.desiredGroups));
  }
  return { maxRequestedWhileStarting: maxStarting, finalRequested: readyAt.length };
}

describe('no pile-up while groups start', () => {
  it('2 groups of 100k tok/s under 700k tok/s (N = 7) with a 20-min start ask for at most ceil(7 × 1.25) + 1 = 10, not 64', () => {
    const r = runPool({
      demand: 700_000,
      capacity: 100_000,
      headroom: 0.25,
      startupSeconds: 1200,
      initialGroups: 2,
      seconds: 4000,
      level: false,
    });
    expect(r.maxRequestedWhileStarting).toBeLessThanOrEqual(10);
    expect(r.finalRequested).toBeGreaterThanOrEqual(7);
  });

  it('property: under constant load needing N groups, the groups requested while groups start never exceed ceil(N × (1 + headroom)) + 1, for a queue that grows (work) and for a level', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.double({ min: 0.5, max: 30, noNaN: true }),
          headroom: fc.constantFrom(0, 0.25, 0.5),
          startupSeconds: fc.integer({ min: 60, max: 2400 }),
          initialGroups: fc.integer({ min: 1, max: 4 }),
          level: fc.boolean(),
        }),
        ({ n, headroom, startupSeconds, initialGroups, level }) => {
          const capacity = 100_000;
          const r = runPool({
            demand: n * capacity,
            capacity,
            headroom,
            startupSeconds,
            initialGroups,
            seconds: Math.min(3 * startupSeconds + 600, 4000),
            level,
          });
          const bound = Math.max(initialGroups, Math.ceil(n * (1 + headroom) - 1e-9) + 1);
          expect(r.maxRequestedWhileStarting).toBeLessThanOrEqual(bound);
        },
      ),
      { numRuns: Number(process.env.KVPA_PROPERTY_RUNS ?? 40) },
    );
  });
});

describe('one cold start: measured, planned over and held for', () => {
  const level = (v: number): SignalReading => ({
    name: 'kv',
    targetPerGroup: 1,
    state: 'ok',
    stableTotal: v,
    panicTotal: v,
  });

  it('a group requested at 0 and ready at 2,400 s measures a 2,400 s start; one ready at 3,000 s in the same episode does not', () => {
    const spec: DeciderSpec = { ...SPEC, panicThreshold: 100 };
    let state = initialState(spec, 4, T0 - 1, 4);
    const at = (t: number, ready: number, requested: number, v: number) => {
      const out = decide(
        spec,
        state,
        { readyGroups: ready, requestedGroups: requested, signals: [level(v)] },
        T0 + t,
      );
      state = out.state;
      return out.decision;
    };
    at(0, 4, 6, 6);
    at(1200, 4, 6, 6);
    expect(state.measuredStartupSeconds).toBeUndefined();
    at(2400, 5, 6, 6);
    expect(state.measuredStartupSeconds).toBe(2400);
    at(3000, 6, 6, 6);
    expect(state.measuredStartupSeconds).toBe(2400);
    // Past startupTimeoutSeconds (7,200 s here) a start counts as stuck: the horizon stops there.
    expect(coldStartSeconds(spec, 9000)).toBe(7200);
    // Shorter than the configured 600 s horizon: the horizon stays the preset's.
    expect(coldStartSeconds(spec, 300)).toBe(600);
    expect(coldStartSeconds(spec, undefined)).toBe(600);
  });

  it('with a 2,400 s cold start, a want of 8 at 0 holds 8 against a want of 4 at 1,000 s (600 s delay), and is let go after 2,400 s', () => {
    const spec: DeciderSpec = { ...SPEC, panicThreshold: 100, maxScaleDownRate: 100 };
    let state: DeciderState = {
      ...initialState(spec, 8, T0 - 1, 8),
      panicSinceSeconds: null,
      measuredStartupSeconds: 2400,
    };
    const at = (t: number, v: number) => {
      const signals = [level(v), work(v * 80_000)];
      const out = decide(spec, state, { readyGroups: 8, requestedGroups: 8, signals }, T0 + t);
      state = out.state;
      return out.decision;
    };
    at(0, 8);
    const held = at(1000, 4);
    expect(held.desiredGroups).toBe(8);
    expect(held.explanation.stages.find((r) => r.stage === 'scaleDownDelay')?.reason).toContain(
      'one cold start',
    );
    for (let t = 1002; t < 2400; t += 200) at(t, 4);
    expect(at(2402, 4).desiredGroups).toBe(4);
    // A pool without a work signal plans no cold start: its 600 s delay lets go at 1,000 s.
    const levelOnly = {
      ...initialState(spec, 8, T0 - 1, 8),
      panicSinceSeconds: null,
      measuredStartupSeconds: 2400,
    };
    const first = decide(spec, levelOnly, { readyGroups: 8, requestedGroups: 8, signals: [level(8)] }, T0);
    const later = decide(
      spec,
      first.state,
      { readyGroups: 8, requestedGroups: 8, signals: [level(4)] },
      T0 + 1000,
    );
    expect(later.decision.desiredGroups).toBe(4);
  });

  it('the delay window answers the max of a shorter span: 9 at 0 s and 5 at 100 s give 9 over 600 s and 5 over 50 s', () => {
    let w = newDelayWindow(2400, 2);
    w = recordMax(w, T0, 9);
    w = recordMax(w, T0 + 100, 5);
    expect(maxWithin(w, T0 + 100, 600)).toBe(9);
    expect(maxWithin(w, T0 + 100, 50)).toBe(5);
    expect(maxWithin(w, T0 + 100, 10_000)).toBe(9);
  });
});

describe('time to exhaustion: a level that fills its ceiling sooner than a group can start', () => {
  const kv = (total: number, extra: Partial<SignalReading> = {}): SignalReading => ({
    name: 'kvCacheUtilization',
    targetPerGroup: 0.7,
    state: 'ok',
    stableTotal: total,
    panicTotal: total,
    ceilingPerGroup: 1,
    ...extra,
  });
  const on4 = (s: SignalReading) => once({ readyGroups: 4, requestedGroups: 4, signals: [s] });

  it('4 groups at KV 2.8 rising 0.004/s fill 4 in 300 s < a 600 s start: planned at min(2.8 + 2.4, 1.5 × 2.8) = 4.2, so 6 groups now, not 4', () => {
    const d = on4(kv(2.8, { trendPerSecond: 0.004 }));
    expect(d.desiredGroups).toBe(6);
    const e = d.explanation.signals[0];
    expect(e?.exhaustionSeconds).toBeCloseTo(300, 6);
    expect(e?.projectedTotal).toBeCloseTo(4.2, 9);
    expect(e?.horizonWant).toBe(6);
    const horizon = d.explanation.stages.find((s) => s.stage === 'horizon');
    expect(horizon).toMatchObject({ before: 4, after: 6, applied: true });
    expect(horizon?.reason).toContain('reaches its ceiling on the requested groups in 300s');
    expect(d.explanation.summary).toContain('exhausted in 300s');
  });

  it('rising 0.001/s it fills 4 in 1,200 s, after a group could start: reported, not planned (4 groups)', () => {
    const d = on4(kv(2.8, { trendPerSecond: 0.001 }));
    expect(d.desiredGroups).toBe(4);
    expect(d.explanation.signals[0]?.exhaustionSeconds).toBeCloseTo(1200, 6);
    expect(d.explanation.signals[0]?.projectedTotal).toBeUndefined();
  });

  it('no ceiling, a flat or falling trend, or no horizon: no plan and no exhaustion time', () => {
    const { ceilingPerGroup: _, ...plain } = kv(2.8, { trendPerSecond: 0.004 });
    const noCeiling = on4(plain);
    expect(noCeiling.desiredGroups).toBe(4);
    expect(noCeiling.explanation.signals[0]?.exhaustionSeconds).toBeUndefined();
    expect(
      on4(kv(2.8, { trendPerSecond: -0.004 })).explanation.signals[0]?.exhaustionSeconds,
    ).toBeUndefined();
    const noHorizon: DeciderSpec = { ...SPEC, extensions: { ...SPEC.extensions, horizonSeconds: 0 } };
    const off = once(
      { readyGroups: 4, requestedGroups: 4, signals: [kv(2.8, { trendPerSecond: 0.004 })] },
      noHorizon,
    );
    expect(off.desiredGroups).toBe(4);
  });

  it('through the runner: KV on 4 groups rising 0.2 each per 300 s for 320 s (trend 0.0027/s) plans 8 now; a fifth group landing restarts the trend', () => {
    const runner = new PoolRunner(SPEC, [
      {
        name: 'kvCacheUtilization',
        targetPerGroup: 0.7,
        stableWindowSeconds: 120,
        panicWindowPercentage: 25,
        aggregation: 'linear',
        exhaustion: { ceilingPerGroup: 1, trendWindowSeconds: 600 },
      },
    ]);
    runner.start(T0, 4, 4);
    let d = runner.decide(T0, 4, 4, []);
    for (let t = 1; t <= 320; t++) {
      const sample: PoolSample = {
        name: 'kvCacheUtilization',
        state: 'ok',
        total: 4 * (0.7 + (0.2 * t) / 300),
      };
      runner.record([sample], T0 + t);
      if (t % 2 === 0) d = runner.decide(T0 + t, 4, 4, [sample]);
    }
    // At ≈ 3.65 (panic window) it fills 4 in ≈ 130 s: planned at 3.65 + 1.6 over 600 s, 8 groups, rate-limited to 2 × 4.
    const e = d.explanation.signals[0];
    expect(e?.exhaustionSeconds).toBeLessThan(600);
    expect(d.desiredGroups).toBe(8);
    const sample: PoolSample = { name: 'kvCacheUtilization', state: 'ok', total: 3.6 };
    runner.record([sample], T0 + 321);
    const landed = runner.decide(T0 + 322, 5, 6, [sample]);
    expect(landed.explanation.signals[0]?.exhaustionSeconds).toBeUndefined();
  });
});
