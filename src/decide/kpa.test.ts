/**
 * One example per Knative rule (knative/serving pkg/autoscaler/scaling/autoscaler.go and its
 * autoscaler_test.go scenarios), with numbers worked by hand,
 * plus kvpa's extensions. Time runs as offsets from T0, as Knative's tests do.
 */
import { describe, expect, it } from 'vitest';
import { decide, groupsFor, initialState } from './kpa.ts';
import { KNATIVE_DEFAULTS, KVPA_EXTENSIONS } from './spec.ts';
import type { DeciderSpec, DeciderState, Observation, SignalReading } from './types.ts';

const T0 = 1_000_000;

function signal(stableTotal: number, panicTotal: number, targetPerGroup = 1, name = 'load'): SignalReading {
  return { name, targetPerGroup, state: 'ok', stableTotal, panicTotal };
}
function obs(readyGroups: number, ...signals: SignalReading[]): Observation {
  return { readyGroups, signals };
}

/** Drives a decider through ticks, like Knative's expectScale. */
class Driver {
  state: DeciderState;
  constructor(
    readonly spec: DeciderSpec,
    initialReady = 1,
  ) {
    this.state = initialState(spec, initialReady, T0);
  }
  tick(atOffsetSeconds: number, observation: Observation) {
    const { state, decision } = decide(this.spec, this.state, observation, T0 + atOffsetSeconds);
    this.state = state;
    return decision;
  }
}

const knative = (overrides: Partial<DeciderSpec> = {}): DeciderSpec => ({
  ...KNATIVE_DEFAULTS,
  ...overrides,
});

describe('Knative rules (extensions off)', () => {
  it('wants ceil(total / target): stable 50 at target 10 on 1 ready → 5', () => {
    const d = new Driver(knative());
    expect(d.tick(0, obs(1, signal(50, 50, 10))).desiredGroups).toBe(5);
  });

  it('a higher stable total scales up: 100 at target 10 → 10', () => {
    const d = new Driver(knative());
    d.tick(0, obs(1, signal(50, 10, 10)));
    expect(d.tick(2, obs(1, signal(100, 10, 10))).desiredGroups).toBe(10);
  });

  it('stable decrease follows the total: 8 ready, 100 → 10, then 50 → 5', () => {
    const d = new Driver(knative());
    expect(d.tick(0, obs(8, signal(100, 100, 10))).desiredGroups).toBe(10);
    expect(d.tick(2, obs(8, signal(50, 50, 10))).desiredGroups).toBe(5);
  });

  it('scale-up rate: ceil(1.1 × 2 ready) = 3 caps a want of 3.1 → 4', () => {
    const d = new Driver(knative({ maxScaleUpRate: 1.1 }));
    const r = d.tick(0, obs(2, signal(3, 3.1, 1)));
    expect(r.desiredGroups).toBe(3);
    expect(r.explanation.maxScaleUp).toBe(3);
  });

  it('scale-down rate: floor(100 ready / 1.1) = 90 is the floor for a want of 1', () => {
    const d = new Driver(knative({ maxScaleDownRate: 1.1 }));
    const r = d.tick(0, obs(100, signal(1, 1, 10)));
    expect(r.desiredGroups).toBe(90);
    expect(r.explanation.stages.find((s) => s.stage === 'rateLimit')?.applied).toBe(true);
  });

  it('an unreachable pool may drop at once: no scale-down limit', () => {
    const d = new Driver(knative({ maxScaleDownRate: 1.1, reachable: false }));
    expect(d.tick(0, obs(100, signal(1, 1, 10))).desiredGroups).toBe(1);
  });

  it('rate limits use max(1, ready): from 0 ready, maxScaleUp = ceil(1000 × 1)', () => {
    const d = new Driver(knative());
    const r = d.tick(0, obs(0, signal(5000, 5000, 1)));
    expect(r.explanation.maxScaleUp).toBe(1000);
    expect(r.desiredGroups).toBe(1000);
  });

  it('activation scale raises a non-zero want, after the rate limit', () => {
    const d = new Driver(knative({ activationScale: 3, maxScaleUpRate: 1.5 }));
    // want 1 at 1 ready; maxUp = ceil(1.5) = 2; activation lifts it to 3, past the rate limit
    expect(d.tick(0, obs(1, signal(1, 1, 1))).desiredGroups).toBe(3);
  });

  it('activation scale leaves a zero want at zero', () => {
    const d = new Driver(knative({ activationScale: 3 }));
    expect(d.tick(0, obs(1, signal(0, 0, 1))).desiredGroups).toBe(0);
  });

  it('panic entry uses the UNCLAMPED panic want over max(1, ready): 4 / 2 ≥ 2 panics even when capped to 3', () => {
    const d = new Driver(knative({ maxScaleUpRate: 1.1 }));
    const r = d.tick(0, obs(2, signal(3, 3.1, 1)));
    expect(r.inPanic).toBe(true);
    expect(r.explanation.panic.transition).toBe('started');
    expect(r.explanation.rawPanicWant).toBe(4);
  });

  it('in panic the larger of stable and panic wins (stable 50 > panic 30 → 50)', () => {
    const d = new Driver(knative());
    d.state = { ...d.state, panicSinceSeconds: T0 - 5, maxPanicGroups: 5 };
    expect(d.tick(0, obs(5, signal(50, 30, 1))).desiredGroups).toBe(50);
  });

  it('panic doubles: stable 50, panic 100 at target 10 on 1 ready → 10', () => {
    const d = new Driver(knative());
    expect(d.tick(0, obs(1, signal(50, 100, 10))).desiredGroups).toBe(10);
  });

  it('panic is extended while over the threshold and ends one stable window after the last tick over it', () => {
    const d = new Driver(knative());
    // ready 10, panic 25 → 2.5 ≥ 2: panic starts at 0
    expect(d.tick(0, obs(10, signal(11, 25, 1))).desiredGroups).toBe(25);
    // at 30 s: 41/40 < 2, not over; panic started at 0 and 0 + 60 is not before 30: still panicking
    const mid = d.tick(30, obs(40, signal(30, 41, 1)));
    expect(mid.inPanic).toBe(true);
    expect(mid.desiredGroups).toBe(41);
    expect(d.state.panicSinceSeconds).toBe(T0);
    // at 62 s: 0 + 60 < 62 and not over: panic ends, stable want 50 applies
    const end = d.tick(62, obs(55, signal(50, 56, 1)));
    expect(end.inPanic).toBe(false);
    expect(end.explanation.panic.transition).toBe('ended');
    expect(end.desiredGroups).toBe(50);
  });

  it('a tick over the threshold moves the panic time forward', () => {
    const d = new Driver(knative());
    d.tick(0, obs(10, signal(11, 25, 1)));
    const r = d.tick(30, obs(40, signal(30, 80, 1)));
    expect(r.explanation.panic.transition).toBe('extended');
    expect(d.state.panicSinceSeconds).toBe(T0 + 30);
    expect(r.desiredGroups).toBe(80);
  });

  it('never scales down while panicking (the ratchet)', () => {
    const d = new Driver(knative());
    expect(d.tick(0, obs(1, signal(100, 100, 10))).desiredGroups).toBe(10);
    expect(d.tick(2, obs(10, signal(100, 1000, 10))).desiredGroups).toBe(100); // panic
    // load collapses, still inside the stable window after the last over-threshold tick: hold 100
    const held = d.tick(30, obs(100, signal(1, 1, 10)));
    expect(held.desiredGroups).toBe(100);
    // one stable window after the last over tick (2 + 60 < 64): panic ends, rate limit floor(100/2) = 50
    expect(d.tick(64, obs(100, signal(1, 1, 10))).desiredGroups).toBe(50);
  });

  it('tracks exponential growth in panic: 6 → 36 → 216 → 1296', () => {
    const d = new Driver(knative());
    expect(d.tick(0, obs(1, signal(6, 6, 1))).desiredGroups).toBe(6);
    expect(d.tick(0, obs(6, signal(36, 36, 1))).desiredGroups).toBe(36);
    expect(d.tick(1, obs(36, signal(216, 216, 1))).desiredGroups).toBe(216);
    expect(d.tick(1, obs(216, signal(1296, 1296, 1))).desiredGroups).toBe(1296);
    expect(d.tick(2, obs(1296, signal(1296, 1296, 1))).desiredGroups).toBe(1296);
  });

  it('a fresh decider with more than one ready group starts in panic at that count', () => {
    const spec = knative();
    const s = initialState(spec, 5, T0);
    expect(s.panicSinceSeconds).toBe(T0);
    expect(s.maxPanicGroups).toBe(5);
    const d = new Driver(spec, 5);
    // no history, load says 1: hold 5 until one stable window has passed
    expect(d.tick(2, obs(5, signal(1, 1, 1))).desiredGroups).toBe(5);
    // one stable window later panic ends; the want of 1 is limited by floor(5 / 2) = 2
    expect(d.tick(62, obs(5, signal(1, 1, 1))).desiredGroups).toBe(2);
  });

  it('a fresh decider with one ready group starts calm', () => {
    expect(initialState(knative(), 1, T0).panicSinceSeconds).toBeNull();
  });

  it('scale-down delay returns the max want of the last delay window, in 2 s buckets', () => {
    const d = new Driver(knative({ scaleDownDelaySeconds: 10 }));
    expect(d.tick(0, obs(1, signal(4, 4, 1))).desiredGroups).toBe(4);
    // panic from 4/1; keep load flat at 4 until panic ends to isolate the delay
    for (let t = 2; t <= 62; t += 2) d.tick(t, obs(4, signal(4, 4, 1)));
    // the 4 recorded at 62 s (bucket 31) is held while bucket − 31 < ceil(10 / 2) = 5
    expect(d.tick(64, obs(4, signal(2, 2, 1))).desiredGroups).toBe(4);
    expect(d.tick(70, obs(4, signal(2, 2, 1))).desiredGroups).toBe(4); // bucket 35
    expect(d.tick(72, obs(4, signal(2, 2, 1))).desiredGroups).toBe(2); // bucket 36: expired
  });

  it('no usable signal is an invalid result that keeps the previous decision and the panic state', () => {
    const d = new Driver(knative());
    d.tick(0, obs(1, signal(30, 30, 10)));
    const before = d.state;
    const r = d.tick(2, obs(3, { name: 'load', targetPerGroup: 10, state: 'noData' }));
    expect(r.valid).toBe(false);
    expect(r.desiredGroups).toBe(3);
    expect(d.state.panicSinceSeconds).toBe(before.panicSinceSeconds);
  });

  it('bounds apply last: min raises, max caps, 0 means unbounded', () => {
    expect(new Driver(knative({ minReplicas: 2 })).tick(0, obs(1, signal(0, 0))).desiredGroups).toBe(2);
    expect(new Driver(knative({ maxReplicas: 4 })).tick(0, obs(1, signal(9, 9))).desiredGroups).toBe(4);
    expect(
      new Driver(knative({ minReplicas: 2, reachable: false })).tick(0, obs(1, signal(0, 0))).desiredGroups,
    ).toBe(0);
  });
});

describe('kvpa extensions', () => {
  const kvpa = (overrides: Partial<DeciderSpec> = {}): DeciderSpec => ({
    ...KNATIVE_DEFAULTS,
    extensions: KVPA_EXTENSIONS,
    ...overrides,
  });

  it('does not buy an extra group for float noise: 2.1 / 0.7 is 3 groups, not 4', () => {
    expect(2.1 / 0.7).toBeGreaterThan(3); // the noise is real
    expect(groupsFor(2.1, 0.7, 0)).toBe(4); // what Knative's ceil gives
    expect(groupsFor(2.1, 0.7, KVPA_EXTENSIONS.ratioEpsilon)).toBe(3);
  });

  it('with several signals the largest want wins, and the winner is named', () => {
    const d = new Driver(kvpa());
    const r = d.tick(0, obs(4, signal(2.1, 2.1, 0.7, 'kvCacheUtilization'), signal(30, 30, 5, 'queueDepth')));
    expect(r.desiredGroups).toBe(6);
    expect(r.explanation.stableWinner).toBe('queueDepth');
  });

  it('sums a per-group signal over ready groups: 4 groups at 0.875 KV with target 0.7 want 5, not 2', () => {
    // The AIBrix defect fed the mean (0.875) into the total formula: ceil(0.875 / 0.7) = 2.
    const d = new Driver(kvpa());
    expect(d.tick(0, obs(4, signal(4 * 0.875, 4 * 0.875, 0.7, 'kvCacheUtilization'))).desiredGroups).toBe(5);
  });

  it('missing data holds the requested level: no scale-down, and says why', () => {
    const d = new Driver(kvpa());
    const r = d.tick(0, {
      readyGroups: 6,
      requestedGroups: 6,
      signals: [
        signal(0.7, 0.7, 0.7, 'kvCacheUtilization'),
        { name: 'queueDepth', targetPerGroup: 5, state: 'stale' },
      ],
    });
    expect(r.desiredGroups).toBe(6);
    expect(r.explanation.holdReason).toMatch(/missing queueDepth/);
  });

  it('missing data still allows scale-up from the signals that are present', () => {
    const d = new Driver(kvpa());
    const r = d.tick(0, {
      readyGroups: 2,
      requestedGroups: 2,
      signals: [
        signal(2.8, 2.8, 0.7, 'kvCacheUtilization'),
        { name: 'queueDepth', targetPerGroup: 5, state: 'noData' },
      ],
    });
    expect(r.desiredGroups).toBe(4);
  });

  it('after fallbackAfterSeconds of missing data, raises the pool to the fallback floor (never lowers it)', () => {
    const spec = kvpa({
      extensions: { ...KVPA_EXTENSIONS, missingFallbackAfterSeconds: 60, fallbackMinReplicas: 4 },
    });
    const d = new Driver(spec);
    const missing: Observation = {
      readyGroups: 2,
      requestedGroups: 2,
      signals: [{ name: 'kvCacheUtilization', targetPerGroup: 0.7, state: 'noData' }],
    };
    expect(d.tick(0, missing).desiredGroups).toBe(2);
    expect(d.tick(58, missing).desiredGroups).toBe(2);
    expect(d.tick(60, missing).desiredGroups).toBe(4);
  });

  it('startup: while requested groups start, a modest further want waits for them', () => {
    const d = new Driver(kvpa());
    // 2 ready, 4 requested (2 starting). Want 5 < 2 × 4: hold at 4.
    const r = d.tick(0, { readyGroups: 2, requestedGroups: 4, signals: [signal(5, 5, 1)] });
    expect(r.desiredGroups).toBe(4);
    expect(r.explanation.holdReason).toMatch(/still starting/);
  });

  it('startup: a want past the panic threshold of the request still scales up', () => {
    const d = new Driver(kvpa());
    const r = d.tick(0, { readyGroups: 2, requestedGroups: 4, signals: [signal(9, 9, 1)] });
    expect(r.desiredGroups).toBe(9);
  });

  it('startup: maxScaleUpRate multiplies the groups ready or starting, so a surge is not capped at doubling the ready ones', () => {
    const o: Observation = { readyGroups: 2, requestedGroups: 4, signals: [signal(20, 20, 1)] };
    const r = new Driver(kvpa({ maxScaleUpRate: 2 })).tick(0, o);
    expect(r.explanation.maxScaleUp).toBe(8); // 2 × (2 ready + 2 starting)
    expect(r.desiredGroups).toBe(8);
    expect(r.explanation.stages.find((s) => s.stage === 'rateLimit')?.reason).toMatch(/4 ready or starting/);
    // Knative's base is the ready count alone.
    expect(new Driver(knative({ maxScaleUpRate: 2 })).tick(0, o).explanation.maxScaleUp).toBe(4);
    // Past the startup timeout the starting groups stop counting.
    const late = new Driver(
      kvpa({ maxScaleUpRate: 2, extensions: { ...KVPA_EXTENSIONS, startupTimeoutSeconds: 600 } }),
    );
    late.tick(0, o);
    expect(late.tick(600, o).explanation.maxScaleUp).toBe(4);
  });

  it('a controller restarted mid scale-up holds the requested groups, not only the ready ones, for a stable window', () => {
    const spec = kvpa();
    const state = initialState(spec, 2, T0, 6); // 2 ready, 6 requested (4 still starting)
    expect(state.panicSinceSeconds).toBe(T0);
    const r = decide(
      spec,
      state,
      { readyGroups: 2, requestedGroups: 6, signals: [signal(0.5, 0.5, 0.7)] },
      T0 + 2,
    );
    expect(r.decision.desiredGroups).toBe(6);
    // Knative's rule alone would hold only the 2 ready groups
    expect(initialState(knative(), 2, T0, 6).maxPanicGroups).toBe(2);
  });

  it('startup: the gate lifts after startupTimeoutSeconds so stuck groups do not block scaling', () => {
    const d = new Driver(kvpa({ extensions: { ...KVPA_EXTENSIONS, startupTimeoutSeconds: 600 } }));
    const o: Observation = { readyGroups: 2, requestedGroups: 4, signals: [signal(5, 5, 1)] };
    expect(d.tick(0, o).desiredGroups).toBe(4);
    expect(d.tick(598, o).desiredGroups).toBe(4);
    expect(d.tick(600, o).desiredGroups).toBe(5);
  });

  it('startup: scale-down is never held by starting groups', () => {
    const d = new Driver(kvpa());
    const r = d.tick(0, { readyGroups: 1, requestedGroups: 4, signals: [signal(1, 1, 1)] });
    expect(r.desiredGroups).toBeLessThan(4);
  });

  it('startup: a constant load gives a constant want however long groups take (no pile-up)', () => {
    const d = new Driver(kvpa());
    let requested = 2;
    const wants: number[] = [];
    for (let t = 0; t < 1800; t += 2) {
      // 2 groups stay ready and saturated; everything requested beyond them keeps starting
      const r = d.tick(t, { readyGroups: 2, requestedGroups: requested, signals: [signal(1.9, 1.9, 0.7)] });
      requested = r.desiredGroups;
      wants.push(r.desiredGroups);
    }
    expect(new Set(wants)).toEqual(new Set([3]));
  });
});
