import { describe, expect, it } from 'vitest';
import { histogramQuantile } from '../decide/histogram.ts';
import { loadCalibration, transferSeconds } from './calibration.ts';
import { Fleet, type FleetOptions } from './fleet.ts';

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

describe('engine series of the simulated groups', () => {
  it('one request of 1,000 prompt and 10 output tokens: prefill counts 1,000 + 1, decode 1,000 + 10 with 9 ITLs', () => {
    const fleet = new Fleet(fleetOptions());
    fleet.arrive(0, 1000, 10);
    fleet.advanceTo(30, noTick);
    expect(fleet.completed).toBe(1);
    const [prefill] = fleet.sampleSeries('prefill');
    const [decode] = fleet.sampleSeries('decode');
    expect(prefill).toMatchObject({
      promptTokensTotal: 1000,
      generationTokensTotal: 1,
      requestSuccessTotal: 1,
    });
    expect(decode).toMatchObject({
      promptTokensTotal: 1000,
      generationTokensTotal: 10,
      requestSuccessTotal: 1,
    });
    const itl = decode?.interTokenLatencySeconds;
    expect(itl?.cumulative.at(-1)).toBe(9);
    // One sequence with a 1K context steps in tens of ms: every ITL lands at or under 0.1 s.
    expect(itl?.cumulative[4]).toBe(9); // le=0.1
    const ttft = decode?.timeToFirstTokenSeconds;
    expect(ttft?.cumulative.at(-1)).toBe(1);
    // Decode's TTFT is the KV transfer (the group was idle): 5 ms + 1,000 × 70,272 B / 50 GB/s ≈ 6.4 ms.
    expect(ttft?.sum).toBeCloseTo(transferSeconds(h200, 1000), 9);
    expect(prefill?.timeToFirstTokenSeconds.cumulative.at(-1)).toBe(1);
  });

  it('p90 ITL from the buckets of 200 concurrent decodes stays within the bucket holding the model step time', () => {
    const fleet = new Fleet(fleetOptions());
    for (let i = 0; i < 200; i++) fleet.arrive(i * 0.01, 2000, 200);
    fleet.advanceTo(120, noTick);
    const [decode] = fleet.sampleSeries('decode');
    const itl = decode?.interTokenLatencySeconds;
    expect(itl?.cumulative.at(-1)).toBe(200 * 199);
    const p90 = histogramQuantile(0.9, itl?.upperBounds ?? [], itl?.cumulative ?? []);
    const mean = (itl?.sum ?? 0) / (itl?.cumulative.at(-1) ?? 1);
    expect(p90).toBeGreaterThan(0.01);
    expect(p90).toBeLessThan(0.1);
    expect(mean).toBeLessThan(0.1);
  });

  it('a scrape every 15 s delivers the series of second 15 until second 30', () => {
    const fleet = new Fleet(fleetOptions({ metricsDelivery: { kind: 'scrape', intervalSeconds: 15 } }));
    fleet.advanceTo(15, noTick);
    fleet.arrive(15.5, 1000, 10);
    fleet.advanceTo(29, noTick);
    expect(fleet.observe('prefill').engineSeries()[0]?.promptTokensTotal).toBe(0);
    fleet.advanceTo(30, noTick);
    expect(fleet.observe('prefill').engineSeries()[0]?.promptTokensTotal).toBe(1000);
  });
});
