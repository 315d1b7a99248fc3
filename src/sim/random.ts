/**
 * A small seeded PRNG for the simulator: xoshiro128** (Blackman and Vigna, 2018, public domain reference
 * code at https://prng.di.unimi.it/xoshiro128starstar.c), seeded through splitmix32 so that any integer
 * seed gives a well-mixed state. 32-bit arithmetic only, so it stays in V8's fast integer paths.
 * Period 2^128 − 1; ample for tens of millions of requests with a few draws each.
 */
export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal = Number.NaN;

  constructor(seed: number) {
    // splitmix32: expands one 32-bit seed into four state words (never all zero).
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in (0, 1]: safe under a logarithm. */
  uniformPositive(): number {
    return (this.nextUint32() + 1) / 4294967296;
  }

  /** Exponential with the given rate (mean 1/rate). */
  exponential(rate: number): number {
    return -Math.log(this.uniformPositive()) / rate;
  }

  /** Standard normal by the Box–Muller transform; the second value of each pair is kept for the next call. */
  normal(): number {
    if (!Number.isNaN(this.spareNormal)) {
      const spare = this.spareNormal;
      this.spareNormal = Number.NaN;
      return spare;
    }
    const radius = Math.sqrt(-2 * Math.log(this.uniformPositive()));
    const angle = 2 * Math.PI * this.uniform();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  /**
   * A count with mean `mean` that keeps the integer part exactly: floor(mean) plus one with probability
   * frac(mean). Used by the rate multiplier so that ×1 reproduces the trace exactly.
   */
  roundedCount(mean: number): number {
    const whole = Math.floor(mean);
    return whole + (this.uniform() < mean - whole ? 1 : 0);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
