import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectTraceFormat, parseShape, readTrace, TraceError, traceStats } from './trace.ts';

/** Small generated traces in the repository (test/fixtures/traces/generate.ts). */
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'traces');
const perRequest = join(fixtures, 'per-request-10min.csv');
const binned = join(fixtures, 'per-request-10min_per_minute.csv');
const rateSeries = join(fixtures, 'rate-series-2d_10min.csv');

/** The development traces beside the clone, when present: `$KVPA_SHARED_DIR/traces` or `../shared/traces`. */
const shared = join(
  process.env.KVPA_SHARED_DIR ?? join(import.meta.dirname, '..', '..', '..', 'shared'),
  'traces',
);
const code = join(shared, 'azure2023_code.csv');
const conv = join(shared, 'azure2023_conv.csv');
const servegen = join(shared, 'servegen_mlarge_day09_scale0.04.csv');
const perMinute = join(shared, 'servegen_mlarge_day09_scale0.04_per_minute.csv');
const fourteenDays = join(shared, 'servegen_mlarge_14d_10min.csv');
const hasShared = [code, conv, servegen, perMinute, fourteenDays].every((f) => existsSync(f));

function collect(file: string, options = {}) {
  const t: number[] = [];
  const input: number[] = [];
  const output: number[] = [];
  for (const batch of readTrace(file, options)) {
    for (let i = 0; i < batch.count; i++) {
      t.push(batch.tSeconds[i] as number);
      input.push(batch.inputTokens[i] as number);
      output.push(batch.outputTokens[i] as number);
    }
  }
  return { t, input, output };
}

function tempFile(name: string, text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'kvpa-trace-')), name);
  writeFileSync(path, text);
  return path;
}

describe('trace formats are detected from the header', () => {
  it('knows the three formats and allows extra columns only on rate series', () => {
    expect(detectTraceFormat('t_ms,input_tokens,output_tokens', 'f')).toBe('per-request');
    expect(detectTraceFormat('t_s,requests,input_tokens_sum,output_tokens_sum\r', 'f')).toBe('binned');
    expect(detectTraceFormat('t_s,req_per_s,mean_input_tokens,mean_output_tokens,active_clients', 'f')).toBe(
      'rate-series',
    );
    expect(() => detectTraceFormat('t_ms,input_tokens,output_tokens,extra', 'f')).toThrow(TraceError);
  });
});

describe('per-request traces (in-repo generated fixture)', () => {
  it('per-request-10min: 2,745 rows over 599.722 s; mean lengths 913 / 152', () => {
    const s = traceStats(perRequest);
    expect(s.format).toBe('per-request');
    expect(s.requests).toBe(2745);
    expect(s.firstSeconds).toBe(0);
    expect(s.lastSeconds).toBe(599.722);
    expect(Math.round(s.inputTokens / s.requests)).toBe(913);
    expect(Math.round(s.outputTokens / s.requests)).toBe(152);
  });

  it('an integer rate multiplier makes exactly that many arrivals, within the row gap, still sorted', () => {
    const base = collect(perRequest);
    const tripled = collect(perRequest, { rateMultiplier: 3, seed: 7 });
    expect(tripled.t.length).toBe(3 * 2745);
    let unsorted = 0;
    for (let i = 1; i < tripled.t.length; i++)
      if ((tripled.t[i] as number) < (tripled.t[i - 1] as number)) unsorted++;
    expect(unsorted).toBe(0);
    // Every copy keeps a source row's lengths: the token totals triple exactly.
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    expect(sum(tripled.input)).toBe(3 * sum(base.input));
    // Copies land within 1 s of a source row: the span grows by less than a second.
    expect((tripled.t.at(-1) as number) - (base.t.at(-1) as number)).toBeLessThan(1);
  });

  it('×2.5 gives 2.5 × 2,745 ≈ 6,863 arrivals (±2 %); time compression 2 halves the span to 299.861 s', () => {
    const n = collect(perRequest, { rateMultiplier: 2.5, seed: 3 }).t.length;
    expect(Math.abs(n / 2745 - 2.5)).toBeLessThan(0.05);
    const compressed = traceStats(perRequest, { timeCompression: 2 });
    expect(compressed.requests).toBe(2745);
    expect(compressed.lastSeconds).toBeCloseTo(599.722 / 2, 6);
  });

  it('the output scale multiplies output lengths and nothing else', () => {
    const base = collect(perRequest, { untilSeconds: 300 });
    const scaled = collect(perRequest, { untilSeconds: 300, outputScale: 10 });
    expect(scaled.t).toEqual(base.t);
    expect(scaled.input).toEqual(base.input);
    expect(scaled.output).toEqual(base.output.map((o) => o * 10));
  });

  it('a slice keeps [120 s, 300 s) and shifts it to start at 0', () => {
    const all = collect(perRequest);
    const slice = collect(perRequest, { fromSeconds: 120, untilSeconds: 300 });
    const expected = all.t.filter((t) => t >= 120 && t < 300).length;
    expect(expected).toBeGreaterThan(0);
    expect(slice.t.length).toBe(expected);
    expect(slice.t[0]).toBeGreaterThanOrEqual(0);
    expect(slice.t.at(-1)).toBeLessThan(180);
  });
});

describe('binned traces expand into the same per-minute load as their source (in-repo fixture)', () => {
  it('per-minute counts match the per-request file exactly (367, 408, …); token sums within 8 %', () => {
    const source = collect(perRequest);
    const expanded = collect(binned, { seed: 11 });
    const perMinuteCounts = (t: number[]) => {
      const counts = new Array<number>(10).fill(0);
      for (const x of t) counts[Math.floor(x / 60)] = (counts[Math.floor(x / 60)] ?? 0) + 1;
      return counts;
    };
    expect(perMinuteCounts(expanded.t)).toEqual(perMinuteCounts(source.t));
    expect(perMinuteCounts(expanded.t).slice(0, 2)).toEqual([367, 408]);
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    // Lengths are redrawn around each bin's mean: 2,745 log-normal draws (CV 1.31) put σ near 2.5 %.
    expect(Math.abs(sum(expanded.input) / sum(source.input) - 1)).toBeLessThan(0.08);
    expect(Math.abs(sum(expanded.output) / sum(source.output) - 1)).toBeLessThan(0.08);
  });
});

describe('rate series expand into a Poisson process at the row rate (in-repo fixture)', () => {
  it('day 0 at ×0.04 has Σ rate × 600 s × 0.04 arrivals (±2 %), with the rate-weighted mean input', () => {
    const rows = readFileSync(rateSeries, 'utf8').trim().split('\n').slice(1, 145);
    const expected = rows.reduce((s, row) => s + Number(row.split(',')[1]) * 600 * 0.04, 0);
    const s = traceStats(rateSeries, { rateMultiplier: 0.04, untilSeconds: 86400, seed: 2 });
    expect(s.format).toBe('rate-series');
    expect(Math.abs(s.requests / expected - 1)).toBeLessThan(0.02);
    const meanInput = rows.reduce((x, row) => x + Number(row.split(',')[1]) * Number(row.split(',')[2]), 0);
    const rateSum = rows.reduce((x, row) => x + Number(row.split(',')[1]), 0);
    expect(Math.abs(s.inputTokens / s.requests / (meanInput / rateSum) - 1)).toBeLessThan(0.03);
  });

  it('the same seed gives the same arrivals; another seed does not', () => {
    const a = collect(rateSeries, { rateMultiplier: 0.1, untilSeconds: 3600, seed: 9 });
    const b = collect(rateSeries, { rateMultiplier: 0.1, untilSeconds: 3600, seed: 9 });
    const c = collect(rateSeries, { rateMultiplier: 0.1, untilSeconds: 3600, seed: 10 });
    expect(a.t.length).toBeGreaterThan(0);
    expect(a).toEqual(b);
    expect(a.t).not.toEqual(c.t);
  });
});

// The development traces are not in the repository; these checks run when they are beside the clone.
describe.skipIf(!hasShared)('development traces beside the clone (README table)', () => {
  it('azure2023_code: 8,819 rows over 57.3 min, sorted', () => {
    const s = traceStats(code);
    expect(s.format).toBe('per-request');
    expect(s.requests).toBe(8819);
    expect(s.lastSeconds / 60).toBeCloseTo(57.3, 1);
    expect(s.inputTokens / s.requests).toBeCloseTo(2048, -1);
    expect(s.outputTokens / s.requests).toBeCloseTo(27.9, 0);
  });

  it('azure2023_conv: 19,366 rows over 58.4 min; mean lengths 1,155 / 211', () => {
    const s = traceStats(conv);
    expect(s.requests).toBe(19366);
    expect(s.lastSeconds / 60).toBeCloseTo(58.4, 1);
    expect(Math.round(s.inputTokens / s.requests)).toBe(1155);
    expect(Math.round(s.outputTokens / s.requests)).toBe(211);
  });

  it('servegen day 9: 662,958 rows over 24 h; mean lengths 776 / 123', () => {
    const s = traceStats(servegen);
    expect(s.requests).toBe(662958);
    expect(s.lastSeconds).toBeGreaterThan(86399);
    expect(s.lastSeconds).toBeLessThan(86400);
    expect(Math.round(s.inputTokens / s.requests)).toBe(776);
    expect(Math.round(s.outputTokens / s.requests)).toBe(123);
  });

  it('conv at ×2.5 gives 2.5 × 19,366 arrivals (±0.02); code compressed 2× ends at 3,435.948 / 2 s', () => {
    const n = collect(conv, { rateMultiplier: 2.5, seed: 3 }).t.length;
    expect(Math.abs(n / 19366 - 2.5)).toBeLessThan(0.02);
    const compressed = traceStats(code, { timeCompression: 2 });
    expect(compressed.requests).toBe(8819);
    expect(compressed.lastSeconds).toBeCloseTo(3435.948 / 2, 6);
  });

  it('servegen per-minute counts match the per-request file over 6 h; token sums to within 1 % / 3 %', () => {
    const source = collect(servegen, { untilSeconds: 6 * 3600 });
    const expanded = collect(perMinute, { seed: 11, untilSeconds: 6 * 3600 });
    const perMinuteCounts = (t: number[]) => {
      const counts = new Array<number>(360).fill(0);
      for (const x of t) counts[Math.floor(x / 60)] = (counts[Math.floor(x / 60)] ?? 0) + 1;
      return counts;
    };
    expect(perMinuteCounts(expanded.t)).toEqual(perMinuteCounts(source.t));
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    expect(Math.abs(sum(expanded.input) / sum(source.input) - 1)).toBeLessThan(0.01);
    expect(Math.abs(sum(expanded.output) / sum(source.output) - 1)).toBeLessThan(0.03);
  });

  it('the whole 24-hour binned file gives the README count, 662,958 arrivals', () => {
    expect(traceStats(perMinute, { seed: 5 }).requests).toBe(662958);
  });

  it('day 0 of the 14-day series at ×0.04 has Σ rate × 600 s × 0.04 arrivals (±1 %)', () => {
    const rows = readFileSync(fourteenDays, 'utf8').trim().split('\n').slice(1, 145);
    const expected = rows.reduce((s, row) => s + Number(row.split(',')[1]) * 600 * 0.04, 0);
    const s = traceStats(fourteenDays, { rateMultiplier: 0.04, untilSeconds: 86400, seed: 2 });
    expect(s.format).toBe('rate-series');
    expect(Math.abs(s.requests / expected - 1)).toBeLessThan(0.01);
  });
});

describe('bad input names the file, line and column, and the fix', () => {
  it('unknown header', () => {
    const file = tempFile('bad-header.csv', 'time,in,out\n0,1,2\n');
    expect(() => traceStats(file)).toThrow(`${file}:1:1: unknown header "time,in,out"`);
  });

  it('non-numeric cell', () => {
    const file = tempFile('bad-cell.csv', 't_ms,input_tokens,output_tokens\n0,10,5\n7,ten,5\n');
    expect(() => traceStats(file)).toThrow(
      `${file}:3:3: column input_tokens is "ten", not a non-negative number. Fix: write a plain decimal number in column 2 (input_tokens)`,
    );
  });

  it('an empty cell and a short row', () => {
    const empty = tempFile('empty-cell.csv', 't_ms,input_tokens,output_tokens\n0,10,\n');
    expect(() => traceStats(empty)).toThrow(`${empty}:2:6: column output_tokens`);
    const short = tempFile('short.csv', 't_s,requests,input_tokens_sum,output_tokens_sum\n0,1,2\n');
    expect(() => traceStats(short)).toThrow(`${short}:2:6: expected 4 columns`);
  });

  it('unsorted time', () => {
    const file = tempFile('unsorted.csv', 't_ms,input_tokens,output_tokens\n0,10,5\n500,10,5\n400,10,5\n');
    expect(() => traceStats(file)).toThrow(
      `${file}:4:1: t_ms 400 is before the previous row's t_ms (line 3). Fix: sort the rows by t_ms ascending`,
    );
    const bins = tempFile(
      'dup-bin.csv',
      't_s,requests,input_tokens_sum,output_tokens_sum\n0,1,2,3\n0,1,2,3\n',
    );
    expect(() => traceStats(bins)).toThrow('is equal to the previous row');
  });
});

describe('trace shapes for development (--input-scale, --shape)', () => {
  /** A flat per-request trace: one request every 100 ms for `minutes`, 1,000-token prompts, 100-token outputs. */
  function flat(minutes: number): string {
    const rows = ['t_ms,input_tokens,output_tokens'];
    for (let ms = 0; ms < minutes * 60_000; ms += 100) rows.push(`${ms},1000,100`);
    return tempFile('flat.csv', `${rows.join('\n')}\n`);
  }
  const perMinute = (t: number[], minutes: number) => {
    const counts = new Array<number>(minutes).fill(0);
    for (const x of t) {
      const m = Math.floor(x / 60);
      if (m < minutes) counts[m] = (counts[m] ?? 0) + 1; // the last row's copies may spill past the end
    }
    return counts;
  };

  it('--input-scale 12 makes 1,000-token prompts 12,000 tokens and leaves outputs and times alone', () => {
    const file = flat(1);
    const base = collect(file);
    const scaled = collect(file, { inputScale: 12 });
    expect(new Set(scaled.input)).toEqual(new Set([12_000]));
    expect(scaled.output).toEqual(base.output);
    expect(scaled.t).toEqual(base.t);
  });

  it('step:5m=2 doubles 600 requests/min from minute 5: 600 before, ≈1,200 after (±5 %)', () => {
    const counts = perMinute(collect(flat(10), { shape: parseShape('step:5m=2') }).t, 10);
    expect(counts.slice(0, 5)).toEqual([600, 600, 600, 600, 600]);
    for (const c of counts.slice(5)) expect(Math.abs(c - 1200)).toBeLessThan(60);
  });

  it('ramp:0-10m=1-3 climbs linearly: minute 0 ≈ 600·1.1, minute 9 ≈ 600·2.9 (±5 %)', () => {
    const counts = perMinute(collect(flat(10), { shape: parseShape('ramp:0-10m=1-3') }).t, 10);
    expect(Math.abs((counts[0] ?? 0) - 660)).toBeLessThan(35);
    expect(Math.abs((counts[9] ?? 0) - 1740)).toBeLessThan(90);
  });

  it('diurnal:peak=2,mean=1,period=20m averages the mean and peaks at 2× (minute 5) and troughs near 0 (minute 15)', () => {
    const shape = parseShape('diurnal:peak=2,mean=1,period=20m');
    expect(shape.factorAt(300)).toBeCloseTo(2, 9);
    expect(shape.factorAt(900)).toBeCloseTo(0, 9);
    expect(shape.factorAt(0)).toBeCloseTo(1, 9);
    const t = collect(flat(20), { shape }).t;
    expect(Math.abs(t.length - 12_000) / 12_000).toBeLessThan(0.02);
    const counts = perMinute(t, 20);
    expect(Math.max(...counts)).toBe(Math.max(counts[4] ?? 0, counts[5] ?? 0));
  });

  it('the largest factor: step:30m=3,90m=1 → 3, step:30m=0.5 → 1 (before the step), ramp 1-4 → 4, diurnal peak 2 → 2', () => {
    expect(parseShape('step:30m=3,90m=1').maxFactor).toBe(3);
    expect(parseShape('step:30m=0.5').maxFactor).toBe(1);
    expect(parseShape('ramp:0-60m=1-4').maxFactor).toBe(4);
    expect(parseShape('diurnal:peak=2,mean=1.5').maxFactor).toBe(2);
  });

  it('bad specs name the flag and the forms to use', () => {
    expect(() => parseShape('wave:1')).toThrow(/--shape "wave:1": unknown shape "wave"; use step:/);
    expect(() => parseShape('step:5x=2')).toThrow(/"5x" is not a time/);
    expect(() => parseShape('diurnal:peak=3,mean=1')).toThrow(/peak 3 must be in \[mean, 2 × mean\]/);
  });
});
