/**
 * Property tests of the decision core. Each property is stated in words a reviewer can check; on a
 * failure fast-check reports the seed and the shrunk counterexample (re-run with { seed, path }).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currentMax } from './delay-window.ts';
import { decide, initialState, nextRegret, REGRET_MEMORY_SECONDS } from './kpa.ts';
import { KNATIVE_DEFAULTS, KNATIVE_EXTENSIONS, KVPA_EXTENSIONS } from './spec.ts';
import type { DeciderSpec, DeciderState, Decision, Observation, SignalKind, SignalReading } from './types.ts';

const T0 = 1_000_000;
const RUNS = { numRuns: Number(process.env.KVPA_PROPERTY_RUNS ?? 300) };

const specArb: fc.Arbitrary<DeciderSpec> = fc
  .record({
    stableWindowSeconds: fc.integer({ min: 6, max: 600 }),
    panicThreshold: fc.double({ min: 1.1, max: 10, noNaN: true }),
    maxScaleUpRate: fc.double({ min: 1.01, max: 1000, noNaN: true }),
    maxScaleDownRate: fc.double({ min: 1.01, max: 10, noNaN: true }),
    scaleDownDelaySeconds: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 900 })),
    activationScale: fc.integer({ min: 1, max: 4 }),
    reachable: fc.boolean(),
    minReplicas: fc.integer({ min: 0, max: 5 }),
    extra: fc.integer({ min: 0, max: 60 }),
    unbounded: fc.boolean(),
    kvpa: fc.boolean(),
  })
  .map(({ extra, unbounded, kvpa, ...rest }) => ({
    ...KNATIVE_DEFAULTS,
    ...rest,
    maxReplicas: unbounded ? 0 : rest.minReplicas + extra + 1,
    extensions: kvpa ? KVPA_EXTENSIONS : KNATIVE_EXTENSIONS,
  }));

interface Tick {
  dtSeconds: number;
  readyGroups: number;
  startingGroups: number;
  stable: number;
  panic: number;
  missing: boolean;
}
const tickArb: fc.Arbitrary<Tick> = fc.record({
  dtSeconds: fc.integer({ min: 1, max: 40 }),
  readyGroups: fc.integer({ min: 0, max: 40 }),
  startingGroups: fc.integer({ min: 0, max: 4 }),
  stable: fc.double({ min: 0, max: 60, noNaN: true }),
  panic: fc.double({ min: 0, max: 60, noNaN: true }),
  missing: fc.boolean(),
});
const targetArb = fc.constantFrom(0.5, 0.7, 0.85, 1, 5);

function observationOf(t: Tick, target: number): Observation {
  return {
    readyGroups: t.readyGroups,
    requestedGroups: t.readyGroups + t.startingGroups,
    signals: [
      t.missing
        ? { name: 'kv', targetPerGroup: target, state: 'stale' }
        : { name: 'kv', targetPerGroup: target, state: 'ok', stableTotal: t.stable, panicTotal: t.panic },
    ],
  };
}

interface Step {
  now: number;
  obs: Observation;
  before: DeciderState;
  decision: Decision;
}
function run(spec: DeciderSpec, target: number, ticks: readonly Tick[], initialReady = 1): Step[] {
  let state = initialState(spec, initialReady, T0);
  let now = T0;
  const steps: Step[] = [];
  for (const t of ticks) {
    now += t.dtSeconds;
    const obs = observationOf(t, target);
    const out = decide(spec, state, obs, now);
    steps.push({ now, obs, before: state, decision: out.decision });
    state = out.state;
  }
  return steps;
}

const stage = (d: Decision, name: string) => d.explanation.stages.find((s) => s.stage === name);

describe('decision core properties', () => {
  it('results are whole, non-negative numbers of groups', () => {
    fc.assert(
      fc.property(specArb, targetArb, fc.array(tickArb, { maxLength: 40 }), (spec, target, ticks) => {
        for (const s of run(spec, target, ticks)) {
          expect(Number.isInteger(s.decision.desiredGroups)).toBe(true);
          expect(s.decision.desiredGroups).toBeGreaterThanOrEqual(0);
        }
      }),
      RUNS,
    );
  });

  it('the result stays within [minReplicas, maxReplicas] (min is 0 for an unreachable pool, max 0 is unbounded)', () => {
    fc.assert(
      fc.property(specArb, targetArb, fc.array(tickArb, { maxLength: 40 }), (spec, target, ticks) => {
        const min = spec.reachable ? spec.minReplicas : 0;
        for (const s of run(spec, target, ticks)) {
          expect(s.decision.desiredGroups).toBeGreaterThanOrEqual(min);
          if (spec.maxReplicas > 0) expect(s.decision.desiredGroups).toBeLessThanOrEqual(spec.maxReplicas);
        }
      }),
      RUNS,
    );
  });

  it('from a calm start, one decision moves at most to ceil(up × (ready + starting)) and at least to floor(ready / down), before min/max and activation; with nothing starting the base is the ready count alone', () => {
    fc.assert(
      fc.property(specArb, targetArb, tickArb, (spec, target, tick) => {
        const calm = { ...spec, activationScale: 1 };
        const [s] = run(calm, target, [{ ...tick, missing: false }]);
        if (s === undefined) return;
        const rate = stage(s.decision, 'rateLimit');
        const ready = Math.max(1, tick.readyGroups);
        const starting = spec.extensions.startupTimeoutSeconds > 0 ? tick.startingGroups : 0;
        expect(rate?.after).toBeLessThanOrEqual(
          Math.ceil(spec.maxScaleUpRate * Math.max(ready, tick.readyGroups + starting)),
        );
        if (spec.reachable)
          expect(rate?.after).toBeGreaterThanOrEqual(Math.floor(ready / spec.maxScaleDownRate));
      }),
      RUNS,
    );
  });

  it('while panicking it never drops below the level it already chose', () => {
    fc.assert(
      fc.property(specArb, targetArb, fc.array(tickArb, { maxLength: 40 }), (spec, target, ticks) => {
        // invalid ticks (no usable signal) leave the panic state untouched, so compare valid ones
        const steps = run(spec, target, ticks).filter((s) => s.decision.valid);
        for (let i = 1; i < steps.length; i++) {
          const prev = steps[i - 1]?.decision;
          const cur = steps[i]?.decision;
          if (prev?.inPanic && cur?.inPanic) {
            const panicStage = stage(cur, 'panic');
            expect(panicStage?.after).toBeGreaterThanOrEqual(stage(prev, 'panic')?.after ?? 0);
          }
        }
      }),
      RUNS,
    );
  });

  it('is monotone in load: more stable and panic load from the same state never gives fewer groups', () => {
    fc.assert(
      fc.property(
        specArb,
        targetArb,
        fc.array(tickArb, { maxLength: 20 }),
        tickArb,
        fc.double({ min: 0, max: 30, noNaN: true }),
        fc.double({ min: 0, max: 30, noNaN: true }),
        (spec, target, history, last, moreStable, morePanic) => {
          const steps = run(spec, target, history);
          let state = initialState(spec, 1, T0);
          let now = T0;
          for (const s of steps) {
            state = decide(spec, s.before, s.obs, s.now).state;
            now = s.now;
          }
          now += last.dtSeconds;
          const base = { ...last, missing: false };
          const low = decide(spec, state, observationOf(base, target), now).decision.desiredGroups;
          const high = decide(
            spec,
            state,
            observationOf(
              { ...base, stable: base.stable + moreStable, panic: base.panic + morePanic },
              target,
            ),
            now,
          ).decision.desiredGroups;
          expect(high).toBeGreaterThanOrEqual(low);
        },
      ),
      RUNS,
    );
  });

  it('a horizon term only ever raises the want: a seasonal look-back on a work flow, or a trend toward a KV ceiling, never gives fewer groups than the same inputs without it, and its horizon want never exceeds the groups for (1 + horizonMaxGrowth) × now (plus the backlog clearance)', () => {
    fc.assert(
      fc.property(
        specArb,
        fc.array(tickArb, { maxLength: 12 }),
        tickArb,
        fc.record({
          flow: fc.double({ min: 0, max: 2_000_000, noNaN: true }),
          backlog: fc.double({ min: 0, max: 4_000_000, noNaN: true }),
          lookbacks: fc.array(
            fc.record({
              thenTotal: fc.double({ min: 0, max: 1_000_000, noNaN: true }),
              aheadPeakTotal: fc.double({ min: 0, max: 3_000_000, noNaN: true }),
            }),
            { minLength: 1, maxLength: 3 },
          ),
          kvTrendPerSecond: fc.double({ min: -0.05, max: 0.05, noNaN: true }),
        }),
        (spec, history, last, term) => {
          let state = initialState(spec, 1, T0);
          let now = T0;
          for (const s of run(spec, 0.7, history)) {
            state = decide(spec, s.before, s.obs, s.now).state;
            now = s.now;
          }
          now += last.dtSeconds;
          const work: SignalReading = {
            name: 'promptTokens',
            kind: 'work',
            targetPerGroup: 80_000,
            state: 'ok',
            stableTotal: term.flow,
            panicTotal: term.flow,
            backlogTotal: term.backlog,
          };
          const kv: SignalReading = {
            name: 'kv',
            targetPerGroup: 0.7,
            state: 'ok',
            stableTotal: last.stable / 10,
            panicTotal: last.panic / 10,
          };
          const obs = (signals: SignalReading[]): Observation => ({
            readyGroups: last.readyGroups,
            requestedGroups: last.readyGroups + last.startingGroups,
            signals,
          });
          const without = decide(spec, state, obs([work, kv]), now).decision;
          const seasonal = term.lookbacks.map((l, i) => ({
            ...l,
            lookbackSeconds: 86_400 * (i + 1),
            horizonSeconds: 600,
          }));
          const withTerms = decide(
            spec,
            state,
            obs([
              { ...work, seasonal },
              { ...kv, ceilingPerGroup: 1, trendPerSecond: term.kvTrendPerSecond },
            ]),
            now,
          ).decision;
          expect(withTerms.desiredGroups).toBeGreaterThanOrEqual(without.desiredGroups);
          const growth = 1 + spec.extensions.horizonMaxGrowth;
          for (const e of withTerms.explanation.signals) {
            if (e.horizonWant === undefined || e.stableTotal === undefined || e.panicTotal === undefined)
              continue;
            const clearance = e.clearancePerSecond ?? 0;
            const nowTotal = Math.max(e.stableTotal, e.panicTotal) - clearance;
            expect(e.horizonWant).toBeLessThanOrEqual(
              Math.ceil((nowTotal * growth + clearance) / e.targetPerGroup + 1e-9),
            );
          }
        },
      ),
      RUNS,
    );
  });

  it('missing data never scales down: with kvpa extensions, a tick with a missing signal never goes below the requested count (capped by maxReplicas)', () => {
    fc.assert(
      fc.property(specArb, targetArb, fc.array(tickArb, { maxLength: 40 }), (spec0, target, ticks) => {
        const spec = { ...spec0, extensions: KVPA_EXTENSIONS };
        for (const s of run(spec, target, ticks)) {
          if (!s.obs.signals.some((x) => x.state !== 'ok')) continue;
          const requested = s.obs.requestedGroups ?? 0;
          const cap = spec.maxReplicas > 0 ? spec.maxReplicas : Number.POSITIVE_INFINITY;
          expect(s.decision.desiredGroups).toBeGreaterThanOrEqual(Math.min(requested, cap));
          expect(s.decision.explanation.holdReason ?? '').not.toBe('');
        }
      }),
      RUNS,
    );
  });

  it('missing data never scales down with several signals (a level, a queue and a work flow), any subset of them missing, and latency known or not', () => {
    const stateArb = fc.constantFrom<SignalReading['state']>(
      'ok',
      'ok',
      'noData',
      'stale',
      'noQuorum',
      'outOfRange',
      'error',
    );
    const signalArb = (name: string, kind: SignalKind, target: number) =>
      fc
        .record({
          state: stateArb,
          stable: fc.double({ min: 0, max: 60 * target, noNaN: true }),
          panic: fc.double({ min: 0, max: 60 * target, noNaN: true }),
          backlog: fc.double({ min: 0, max: 1e7, noNaN: true }),
          trend: fc.double({ min: -1000, max: 1000, noNaN: true }),
        })
        .map(
          ({ state, stable, panic, backlog, trend }): SignalReading =>
            state === 'ok'
              ? {
                  name,
                  kind,
                  targetPerGroup: target,
                  state,
                  stableTotal: stable,
                  panicTotal: panic,
                  backlogTotal: backlog,
                  trendPerSecond: trend,
                }
              : { name, kind, targetPerGroup: target, state },
        );
    const tickArbN = fc.record({
      dt: fc.integer({ min: 1, max: 40 }),
      ready: fc.integer({ min: 0, max: 40 }),
      starting: fc.integer({ min: 0, max: 4 }),
      signals: fc.tuple(
        signalArb('kv', 'level', 0.7),
        signalArb('queue', 'backlog', 10),
        signalArb('tokens', 'work', 80_000),
      ),
      ttft: fc.option(fc.double({ min: 0, max: 10, noNaN: true }), { nil: undefined }),
    });
    fc.assert(
      fc.property(specArb, fc.array(tickArbN, { maxLength: 40 }), (spec0, ticks) => {
        const spec: DeciderSpec = { ...spec0, extensions: { ...KVPA_EXTENSIONS, slo: { ttftSeconds: 2 } } };
        let state = initialState(spec, 1, T0);
        let now = T0;
        for (const t of ticks) {
          now += t.dt;
          const requested = t.ready + t.starting;
          const obs: Observation = {
            readyGroups: t.ready,
            requestedGroups: requested,
            signals: t.signals,
            ...(t.ttft !== undefined ? { latency: { ttftSeconds: t.ttft } } : {}),
          };
          const out = decide(spec, state, obs, now);
          state = out.state;
          if (t.signals.every((x) => x.state === 'ok')) continue;
          const cap = spec.maxReplicas > 0 ? spec.maxReplicas : Number.POSITIVE_INFINITY;
          expect(out.decision.desiredGroups).toBeGreaterThanOrEqual(Math.min(requested, cap));
        }
      }),
      RUNS,
    );
  });

  it('the rate limits and the ratchet hold on the final result: one decision never exceeds ceil(up × (ready or starting)) unless min, activation, the request, the panic high-water mark or a want the delay window still holds keep it there, and while panicking never drops below its own high-water mark (or the request, where the startup gate holds a rise at it)', () => {
    fc.assert(
      fc.property(specArb, targetArb, fc.array(tickArb, { maxLength: 40 }), (spec0, target, ticks) => {
        const spec = { ...spec0, extensions: KVPA_EXTENSIONS };
        for (const s of run(spec, target, ticks)) {
          const e = s.decision.explanation;
          if (e.maxScaleUp === null) continue;
          const floor = Math.max(
            spec.reachable ? spec.minReplicas : 0,
            spec.activationScale,
            s.obs.requestedGroups ?? 0,
          );
          const mark = s.before.panicSinceSeconds !== null ? s.before.maxPanicGroups : 0;
          const held = s.before.delayWindow !== null ? currentMax(s.before.delayWindow) : 0;
          expect(s.decision.desiredGroups).toBeLessThanOrEqual(Math.max(e.maxScaleUp, floor, mark, held));
          if (s.before.panicSinceSeconds !== null && s.decision.inPanic) {
            const cap = spec.maxReplicas > 0 ? spec.maxReplicas : Number.POSITIVE_INFINITY;
            const requested = s.obs.requestedGroups ?? 0;
            expect(s.decision.desiredGroups).toBeGreaterThanOrEqual(
              Math.min(s.before.maxPanicGroups, requested, cap),
            );
          }
        }
      }),
      RUNS,
    );
  });

  it('the scale-down delay never returns less than any want recorded within the delay', () => {
    fc.assert(
      fc.property(
        specArb.filter((s) => s.scaleDownDelaySeconds > 0 && s.reachable),
        targetArb,
        fc.array(tickArb, { maxLength: 40 }),
        (spec, target, ticks) => {
          const steps = run(spec, target, ticks).filter((s) => s.decision.valid);
          const bucket = (t: number) => Math.floor(t / spec.tickSeconds);
          const buckets = Math.ceil(spec.scaleDownDelaySeconds / spec.tickSeconds);
          for (let j = 0; j < steps.length; j++) {
            const sj = steps[j] as Step;
            const out = stage(sj.decision, 'scaleDownDelay')?.after ?? 0;
            for (let i = 0; i <= j; i++) {
              const si = steps[i] as Step;
              if (bucket(sj.now) - bucket(si.now) < buckets) {
                expect(out).toBeGreaterThanOrEqual(stage(si.decision, 'scaleDownDelay')?.before ?? 0);
              }
            }
          }
        },
      ),
      RUNS,
    );
  });

  it('a learned hold is taught only by demand asking back, within one cold start, for groups just released; it never shrinks while remembered, and a plan alone teaches nothing', () => {
    const releaseArb = fc.option(
      fc.record({
        atSeconds: fc.integer({ min: 0, max: 20_000 }),
        holdSeconds: fc.integer({ min: 0, max: 3_000 }),
      }),
      { nil: undefined },
    );
    const regretArb = fc.option(
      fc.record({
        atSeconds: fc.integer({ min: 0, max: 20_000 }),
        holdSeconds: fc.integer({ min: 1, max: 5_000 }),
      }),
      { nil: undefined },
    );
    fc.assert(
      fc.property(
        releaseArb,
        regretArb,
        fc.record({
          requested: fc.integer({ min: 0, max: 20 }),
          desired: fc.integer({ min: 0, max: 20 }),
          demandWant: fc.integer({ min: 0, max: 20 }),
          holdSeconds: fc.integer({ min: 0, max: 3_000 }),
          coldStartSeconds: fc.integer({ min: 0, max: 3_000 }),
          nowSeconds: fc.integer({ min: 20_000, max: 40_000 }),
        }),
        (lastRelease, regret, d) => {
          const state = {
            ...initialState({ ...KNATIVE_DEFAULTS, extensions: KVPA_EXTENSIONS }, 1, 0),
            ...(lastRelease !== undefined ? { lastRelease } : {}),
            ...(regret !== undefined ? { regret } : {}),
          };
          const out = nextRegret(state, d);
          const remembered =
            regret !== undefined && d.nowSeconds - regret.atSeconds <= REGRET_MEMORY_SECONDS
              ? regret
              : undefined;
          if (d.desired < d.requested) {
            expect(out.lastRelease).toEqual({ atSeconds: d.nowSeconds, holdSeconds: d.holdSeconds });
          }
          const taught = out.regret !== undefined && out.regret !== remembered;
          if (taught) {
            expect(lastRelease).toBeDefined();
            expect(d.desired).toBeGreaterThan(d.requested);
            expect(d.demandWant).toBeGreaterThan(d.requested);
            expect(d.nowSeconds - (lastRelease?.atSeconds ?? 0)).toBeLessThanOrEqual(d.coldStartSeconds);
            expect(out.regret?.holdSeconds ?? 0).toBeGreaterThanOrEqual(remembered?.holdSeconds ?? 0);
            expect(out.lastRelease).toBeUndefined();
          } else {
            expect(out.regret).toEqual(remembered);
          }
          if (d.demandWant <= d.requested) expect(taught).toBe(false);
        },
      ),
      RUNS,
    );
  });

  it('identical inputs at the same time give identical results, and the input state is not modified', () => {
    fc.assert(
      fc.property(
        specArb,
        targetArb,
        fc.array(tickArb, { minLength: 1, maxLength: 20 }),
        (spec, target, ticks) => {
          const steps = run(spec, target, ticks);
          const last = steps[steps.length - 1] as Step;
          const frozen = structuredClone(last.before);
          const a = decide(spec, last.before, last.obs, last.now);
          const b = decide(spec, last.before, last.obs, last.now);
          expect(a).toEqual(b);
          expect(last.before).toEqual(frozen);
        },
      ),
      RUNS,
    );
  });

  it('the explanation agrees with the result: stages chain, the last stage is the result, panic and winner match', () => {
    fc.assert(
      fc.property(specArb, targetArb, fc.array(tickArb, { maxLength: 40 }), (spec, target, ticks) => {
        for (const s of run(spec, target, ticks)) {
          const { desiredGroups, inPanic, explanation } = s.decision;
          const stages = explanation.stages;
          expect(stages[stages.length - 1]?.after).toBe(desiredGroups);
          for (let i = 1; i < stages.length; i++) expect(stages[i]?.before).toBe(stages[i - 1]?.after);
          for (const st of stages) expect(st.applied).toBe(st.before !== st.after);
          expect(explanation.panic.inPanic).toBe(inPanic);
          expect(explanation.summary).toContain(`→ ${desiredGroups} groups`);
          if (s.decision.valid) {
            const wants = explanation.signals.filter((x) => x.state === 'ok').map((x) => x.stableWant ?? 0);
            expect(explanation.rawStableWant).toBe(Math.max(...wants));
          }
        }
      }),
      RUNS,
    );
  });

  it('with extensions off it reproduces Knative’s Scale + min/max decision for decision (reference transliteration)', () => {
    fc.assert(
      fc.property(
        specArb.map((s) => ({ ...s, extensions: KNATIVE_EXTENSIONS })),
        targetArb,
        fc.array(tickArb, { maxLength: 40 }),
        fc.integer({ min: 0, max: 6 }),
        (spec, target, ticks, initialReady) => {
          const reference = new KnativeReference(spec, initialReady, T0);
          for (const s of run(spec, target, ticks, initialReady)) {
            const signal = s.obs.signals[0];
            const expected =
              signal?.state === 'ok'
                ? reference.scale(
                    s.now,
                    s.obs.readyGroups,
                    signal.stableTotal ?? 0,
                    signal.panicTotal ?? 0,
                    target,
                  )
                : reference.invalid(s.obs.requestedGroups ?? 0);
            expect(s.decision.desiredGroups).toBe(expected);
          }
        },
      ),
      RUNS,
    );
  });
});

/**
 * A deliberately literal, mutable transliteration of Knative's autoscaler.Scale plus the KPA
 * reconciler's bounds (knative/serving pkg/autoscaler/scaling/autoscaler.go,
 * pkg/reconciler/autoscaling/kpa/scaler.go), kept apart from the implementation under test.
 */
class KnativeReference {
  panicTime: number | null;
  maxPanicPods: number;
  delay: Array<[number, number]> | null;
  last: number | null = null;
  constructor(
    private readonly spec: DeciderSpec,
    readyAtCreation: number,
    now: number,
  ) {
    this.panicTime = readyAtCreation > 1 ? now : null;
    this.maxPanicPods = readyAtCreation;
    this.delay = spec.scaleDownDelaySeconds > 0 ? [] : null;
  }
  invalid(requested: number): number {
    this.last = this.last ?? requested;
    return this.bounds(this.last);
  }
  scale(now: number, readyRaw: number, stable: number, panic: number, target: number): number {
    const sp = this.spec;
    const ready = Math.max(1, readyRaw);
    const maxUp = Math.ceil(sp.maxScaleUpRate * ready);
    const maxDown = sp.reachable ? Math.floor(ready / sp.maxScaleDownRate) : 0;
    const dspc = Math.ceil(stable / target);
    const dppc = Math.ceil(panic / target);
    let desiredStable = Math.min(Math.max(dspc, maxDown), maxUp);
    let desiredPanic = Math.min(Math.max(dppc, maxDown), maxUp);
    if (sp.activationScale > 1) {
      if (dspc > 0 && sp.activationScale > desiredStable) desiredStable = sp.activationScale;
      if (dppc > 0 && sp.activationScale > desiredPanic) desiredPanic = sp.activationScale;
    }
    const over = dppc / ready >= sp.panicThreshold;
    if (this.panicTime === null && over) this.panicTime = now;
    else if (over) this.panicTime = now;
    else if (this.panicTime !== null && this.panicTime + sp.stableWindowSeconds < now) {
      this.panicTime = null;
      this.maxPanicPods = 0;
    }
    let desired = desiredStable;
    if (this.panicTime !== null) {
      if (desired < desiredPanic) desired = desiredPanic;
      if (desired > this.maxPanicPods) this.maxPanicPods = desired;
      desired = this.maxPanicPods;
    }
    if (sp.reachable && this.delay !== null) {
      const nb = Math.ceil(sp.scaleDownDelaySeconds / sp.tickSeconds);
      const idx = Math.floor(now / sp.tickSeconds);
      this.delay = this.delay.filter(([i]) => idx - i < nb);
      this.delay.push([idx, desired]);
      desired = Math.max(...this.delay.map(([, v]) => v));
    }
    this.last = this.bounds(desired);
    return this.last;
  }
  private bounds(x: number): number {
    const min = this.spec.reachable ? this.spec.minReplicas : 0;
    if (x < min) return min;
    if (this.spec.maxReplicas !== 0 && x > this.spec.maxReplicas) return this.spec.maxReplicas;
    return x;
  }
}
