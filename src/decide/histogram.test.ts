import { describe, expect, it } from 'vitest';
import {
  addBuckets,
  BucketHistogram,
  counterIncrease,
  histogramIncrease,
  histogramQuantile,
  VLLM_ITL_BUCKETS_SECONDS,
  VLLM_TTFT_BUCKETS_SECONDS,
} from './histogram.ts';

describe('histogramQuantile (PromQL histogram_quantile)', () => {
  const bounds = [0.1, 0.5, 1, 2.5];
  it('p50 of 10 observations in le=0.5 and 10 in le=1 interpolates to 0.5 (rank 10 is the top of le=0.5)', () => {
    expect(histogramQuantile(0.5, bounds, [0, 10, 20, 20, 20])).toBeCloseTo(0.5, 12);
  });
  it('p90 of [0, 10, 20, 20, 20] is 0.5 + 0.5 × (18 − 10)/10 = 0.9', () => {
    expect(histogramQuantile(0.9, bounds, [0, 10, 20, 20, 20])).toBeCloseTo(0.9, 12);
  });
  it('the lowest bucket starts at 0: p50 of 4 observations in le=0.1 is 0.05', () => {
    expect(histogramQuantile(0.5, bounds, [4, 4, 4, 4, 4])).toBeCloseTo(0.05, 12);
  });
  it('a rank in the +Inf bucket gives the highest finite bound (2.5), no data gives NaN, q out of [0,1] gives ±Inf', () => {
    expect(histogramQuantile(0.99, bounds, [0, 0, 0, 1, 10])).toBe(2.5);
    expect(histogramQuantile(0.5, bounds, [0, 0, 0, 0, 0])).toBeNaN();
    expect(histogramQuantile(-0.1, bounds, [1, 1, 1, 1, 1])).toBe(Number.NEGATIVE_INFINITY);
    expect(histogramQuantile(1.1, bounds, [1, 1, 1, 1, 1])).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('BucketHistogram and increases', () => {
  it('3 ITLs of 0.03 s and 1 of 0.2 s land in le=0.05 and le=0.2 (vLLM bounds), sum 0.29', () => {
    const h = new BucketHistogram(VLLM_ITL_BUCKETS_SECONDS);
    h.observe(0.03, 3);
    h.observe(0.2);
    const s = h.snapshot();
    expect(s.cumulative[1]).toBe(0); // le=0.025
    expect(s.cumulative[2]).toBe(3); // le=0.05
    expect(s.cumulative[6]).toBe(4); // le=0.2 (inclusive upper bound)
    expect(s.cumulative[VLLM_ITL_BUCKETS_SECONDS.length]).toBe(4);
    expect(s.sum).toBeCloseTo(0.29, 12);
    expect(h.count).toBe(4);
  });
  it('vLLM bounds: TTFT 22 buckets up to 2560 s, ITL 19 up to 80 s', () => {
    expect(VLLM_TTFT_BUCKETS_SECONDS).toHaveLength(22);
    expect(VLLM_TTFT_BUCKETS_SECONDS.at(-1)).toBe(2560);
    expect(VLLM_ITL_BUCKETS_SECONDS).toHaveLength(19);
    expect(VLLM_ITL_BUCKETS_SECONDS.at(-1)).toBe(80);
  });
  it('a counter 100 → 130 increased by 30; after a reset to 7 it increased by 7', () => {
    expect(counterIncrease(100, 130)).toBe(30);
    expect(counterIncrease(100, 7)).toBe(7);
  });
  it('bucket increases subtract per le; a new series counts from zero; sums add per le', () => {
    const before = { upperBounds: [1], cumulative: [2, 3], sum: 2 };
    const now = { upperBounds: [1], cumulative: [5, 9], sum: 9 };
    expect(histogramIncrease(before, now)).toEqual([3, 6]);
    expect(histogramIncrease(undefined, now)).toEqual([5, 9]);
    expect(histogramIncrease(now, before)).toEqual([2, 3]); // reset
    expect(addBuckets([1, 1], [3, 6])).toEqual([4, 7]);
  });
});
