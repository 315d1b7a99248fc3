import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCalibration } from '../sim/calibration.ts';
import type { ArrivalBatch } from '../sim/trace.ts';
import { LiveEngines } from './engines.ts';
import { ArrivalCursor, LoadGenerator, stepArrivals } from './load.ts';

const h200 = loadCalibration('deepseek-r1-h200');

function flatten(batches: Iterable<ArrivalBatch>): { t: number; input: number; output: number }[] {
  const out: { t: number; input: number; output: number }[] = [];
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      out.push({
        t: b.tSeconds[i] as number,
        input: b.inputTokens[i] as number,
        output: b.outputTokens[i] as number,
      });
    }
  }
  return out;
}

function engines(clock: { ms: number }) {
  return new LiveEngines({
    calibration: h200,
    accelerationFactor: 20,
    advanceIntervalMs: 0,
    serveHttp: false,
    clock: { nowMs: () => clock.ms },
  });
}

describe('step profile', () => {
  it('evenly spaced arrivals per step, ending at the duration', () => {
    const arrivals = flatten(
      stepArrivals(
        [
          { atSeconds: 10, requestsPerSecond: 4, inputTokens: 200, outputTokens: 20 },
          { atSeconds: 0, requestsPerSecond: 1, inputTokens: 100, outputTokens: 10 },
          { atSeconds: 12, requestsPerSecond: 0, inputTokens: 1, outputTokens: 1 },
        ],
        100,
      ),
    );
    expect(arrivals.filter((a) => a.input === 100).map((a) => a.t)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(arrivals.filter((a) => a.input === 200).map((a) => a.t)).toEqual([
      10, 10.25, 10.5, 10.75, 11, 11.25, 11.5, 11.75,
    ]);
    expect(arrivals).toHaveLength(18);
  });

  it('many arrivals come in several batches; an endless last step needs a duration', () => {
    const arrivals = flatten(
      stepArrivals([{ atSeconds: 0, requestsPerSecond: 1000, inputTokens: 1, outputTokens: 1 }], 5),
    );
    expect(arrivals).toHaveLength(5000);
    expect(arrivals[4999]?.t).toBeCloseTo(4.999, 9);
    expect(() =>
      flatten(
        stepArrivals([{ atSeconds: 0, requestsPerSecond: 1, inputTokens: 1, outputTokens: 1 }], Infinity),
      ),
    ).toThrow(/durationSeconds/);
  });

  it('the cursor delivers up to the horizon, offset by the start, and stops at the duration', () => {
    const cursor = new ArrivalCursor(
      stepArrivals([{ atSeconds: 0, requestsPerSecond: 2, inputTokens: 5, outputTokens: 6 }], 100),
      50,
      3,
    );
    const got: number[] = [];
    cursor.feedUntil(49, (t) => got.push(t));
    expect(got).toEqual([]);
    cursor.feedUntil(51, (t) => got.push(t));
    expect(got).toEqual([50, 50.5, 51]);
    expect(cursor.done).toBeUndefined();
    cursor.feedUntil(1000, (t) => got.push(t));
    expect(got).toEqual([50, 50.5, 51, 51.5, 52, 52.5]);
    expect(cursor.done).toBe('duration');
    expect(cursor.lastArrivalSeconds).toBe(2.5);
  });
});

describe('LoadGenerator into LiveEngines (fake clock)', () => {
  it('a step profile plays in virtual time from the start, then finishes by itself', async () => {
    const clock = { ms: 0 };
    const e = engines(clock);
    await e.syncGroups('prefill', [{ namespace: 'ns', pod: 'p' }]);
    await e.syncGroups('decode', [{ namespace: 'ns', pod: 'd' }]);
    clock.ms = 1000; // virtual 20 s before the load starts
    const load = new LoadGenerator(e, {
      source: {
        kind: 'steps',
        steps: [{ atSeconds: 0, requestsPerSecond: 5, inputTokens: 1000, outputTokens: 50 }],
      },
      durationSeconds: 60,
    }).start();
    clock.ms = 2000; // virtual 40 s: 20 s of load
    e.advance();
    expect(load.delivered).toBe(101); // t = 0, 0.2, …, 20 inclusive
    clock.ms = 10_000;
    e.advance();
    const summary = await load.finished;
    // A step profile ends at its duration: the source has no more arrivals.
    expect(summary).toEqual({
      delivered: 300,
      lastArrivalSeconds: expect.closeTo(59.8, 9),
      reason: 'end',
    });
    expect(e.fleet.arrived).toBe(300);
    await e.stop();
  });

  it('a per-request trace replays with its rate multiplier and time compression; stop() ends it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvpa-load-'));
    const file = join(dir, 'trace.csv');
    const rows = ['t_ms,input_tokens,output_tokens'];
    for (let i = 0; i < 100; i++) rows.push(`${i * 1000},${100 + i},${10}`);
    writeFileSync(file, `${rows.join('\n')}\n`);

    const clock = { ms: 0 };
    const e = engines(clock);
    const full = new LoadGenerator(e, {
      source: { kind: 'trace', path: file, timeCompression: 2, rateMultiplier: 2 },
    }).start();
    clock.ms = 1000; // 20 virtual s = 40 trace s at compression 2 (arrivals at 0, 0.5, …)
    e.advance();
    expect(full.delivered).toBeGreaterThan(70);
    expect(full.delivered).toBeLessThan(90);
    clock.ms = 5000;
    e.advance();
    expect(await full.finished).toMatchObject({ delivered: 200, reason: 'end' });

    const bounded = new LoadGenerator(e, {
      source: { kind: 'trace', path: file },
      durationSeconds: 10,
    }).start();
    clock.ms = 6000;
    e.advance();
    expect(await bounded.finished).toMatchObject({ delivered: 10, reason: 'duration' });

    const stopped = new LoadGenerator(e, { source: { kind: 'trace', path: file } }).start();
    clock.ms = 6100;
    e.advance();
    stopped.stop();
    const summary = await stopped.finished;
    expect(summary.reason).toBe('stopped');
    clock.ms = 20_000;
    e.advance();
    expect(e.fleet.arrived).toBe(210 + summary.delivered);
    await e.stop();
  });
});
