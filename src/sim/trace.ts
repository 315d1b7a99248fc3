/**
 * Trace readers for the decision-quality lab. Three CSV formats (examples: test/fixtures/traces), told
 * apart by their header:
 *
 * | format        | header                                                        | expansion                      |
 * |---------------|---------------------------------------------------------------|--------------------------------|
 * | `per-request` | `t_ms,input_tokens,output_tokens`                             | one arrival per row            |
 * | `binned`      | `t_s,requests,input_tokens_sum,output_tokens_sum`             | Poisson arrivals in each bin   |
 * | `rate-series` | `t_s,req_per_s,mean_input_tokens,mean_output_tokens[,…]`      | Poisson process at the rate    |
 *
 * Readers are synchronous generators of fixed-size batches in typed arrays: the file is read in 1 MiB chunks
 * and no more than one batch of arrivals is alive at a time, so a 24-hour trace at ×30 (20 M requests) costs
 * the same memory as ×1.
 *
 * Transformations, applied in this order to every format:
 * 1. **Time compression** `c`: an arrival at trace time `t` happens at `t / c`. Rates grow by `c`, the span
 *    shrinks by `c`.
 * 2. **Rate multiplier** `x`: each source arrival becomes `floor(x)` or `floor(x)+1` arrivals (mean `x`;
 *    ×1 is the trace itself, ×0.5 thins it). For per-request traces the extra copies keep the row's lengths and
 *    land uniformly in `[t, t + min(gap to the next row, copyJitterSeconds))`, so a burst stays a burst and
 *    an idle gap stays idle (superposition of near-copies). For binned and
 *    rate-series traces the multiplier scales the count or the rate before expansion.
 * 3. **Shape** (`--shape`, `parseShape`): the rate multiplier becomes `x × f(t)` with `f` a step, ramp or
 *    diurnal sine of the output time (before the slice). Per-request rows are copied or thinned at the row's
 *    time; binned counts and rate-series rates are scaled by `f` at the middle of their row.
 * 4. **Slice** `[fromSeconds, untilSeconds)` on the output time axis, shifted to start at 0.
 *
 * Lengths: `inputScale` and `outputScale` multiply every prompt and output length (rounded, at least 1).
 *
 * Lengths drawn "around a mean" (binned and rate-series formats) are log-normal with the given mean and
 * shape `lengthSigma` (default 1.0: coefficient of variation 1.31, near the ServeGen output tail), rounded,
 * at least 1 token.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { Random } from './random.ts';

export type TraceFormat = 'per-request' | 'binned' | 'rate-series';

export interface TraceOptions {
  /** Mean number of arrivals per source arrival (or per unit of binned count / rate). Default 1. */
  readonly rateMultiplier?: number;
  /** Divide trace time by this factor. Default 1. */
  readonly timeCompression?: number;
  /** Seed for expansion, copies and length draws. Default 1. */
  readonly seed?: number;
  /** Log-normal shape for drawn lengths. Default 1.0. */
  readonly lengthSigma?: number;
  /** Upper bound on the spread of a per-request row's extra copies. Default 1 s. */
  readonly copyJitterSeconds?: number;
  /** Keep arrivals at output time ≥ this, shifted so the slice starts at 0. Default 0. */
  readonly fromSeconds?: number;
  /** Keep arrivals at output time < this (before the shift). Default unbounded. */
  readonly untilSeconds?: number;
  /**
   * Multiply every output length (rounded, at least 1). Default 1. The development traces' outputs are short
   * (median 13–129 tokens) next to DeepSeek-R1's reasoning outputs; this makes a decode-heavy variant.
   */
  readonly outputScale?: number;
  /** Multiply every prompt length (rounded, at least 1). Default 1: long-prompt variants of short traces. */
  readonly inputScale?: number;
  /** A time-varying factor on the rate multiplier (`parseShape`). Default none (factor 1). */
  readonly shape?: RateShape;
  /** Arrivals per yielded batch. Default 4096. */
  readonly batchSize?: number;
}

/** A batch of arrivals sorted by time; only the first `count` entries are valid. */
export interface ArrivalBatch {
  count: number;
  readonly tSeconds: Float64Array;
  readonly inputTokens: Int32Array;
  readonly outputTokens: Int32Array;
}

/** A bad trace file: names the file, the 1-based line and column, what is wrong and how to fix it. */
export class TraceError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    problem: string,
    fix: string,
  ) {
    super(`${file}:${line}:${column}: ${problem}. Fix: ${fix}`);
    this.name = 'TraceError';
  }
}

const HEADERS: Readonly<Record<TraceFormat, readonly string[]>> = {
  'per-request': ['t_ms', 'input_tokens', 'output_tokens'],
  binned: ['t_s', 'requests', 'input_tokens_sum', 'output_tokens_sum'],
  'rate-series': ['t_s', 'req_per_s', 'mean_input_tokens', 'mean_output_tokens'],
};

/** Tells the format from a header line; extra trailing columns are allowed only for rate series. */
export function detectTraceFormat(headerLine: string, file: string): TraceFormat {
  const columns = headerLine.trim().split(',');
  for (const format of ['per-request', 'binned', 'rate-series'] as const) {
    const expected = HEADERS[format];
    const prefixMatches = expected.every((name, i) => columns[i]?.trim() === name);
    if (prefixMatches && (columns.length === expected.length || format === 'rate-series')) return format;
  }
  throw new TraceError(
    file,
    1,
    1,
    `unknown header ${JSON.stringify(headerLine.trim())}`,
    `use one of ${Object.values(HEADERS)
      .map((h) => JSON.stringify(h.join(',')))
      .join(', ')} (rate series may have extra columns)`,
  );
}

/** Reads a file line by line in 1 MiB chunks; yields [lineNumber, line] with 1-based numbers. */
function* readLines(file: string): Generator<[number, string]> {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let carry = '';
    let lineNumber = 0;
    for (;;) {
      const bytes = readSync(fd, chunk, 0, chunk.length, null);
      if (bytes === 0) break;
      const text = carry + chunk.toString('utf8', 0, bytes);
      let start = 0;
      for (let nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
        lineNumber++;
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        yield [lineNumber, text.slice(start, end)];
        start = nl + 1;
      }
      carry = text.slice(start);
    }
    if (carry.length > 0) yield [lineNumber + 1, carry.endsWith('\r') ? carry.slice(0, -1) : carry];
  } finally {
    closeSync(fd);
  }
}

/** Parses a data line's cells as non-negative finite numbers; errors name the line and the column. */
function parseRow(file: string, lineNumber: number, line: string, names: readonly string[], out: number[]) {
  const cells = line.split(',');
  if (cells.length < names.length) {
    throw new TraceError(
      file,
      lineNumber,
      line.length + 1,
      `expected ${names.length} columns (${names.join(',')}), found ${cells.length}`,
      'complete the row or delete it',
    );
  }
  let column = 1;
  for (let i = 0; i < names.length; i++) {
    const cell = cells[i] ?? '';
    const value = cell.trim() === '' ? Number.NaN : Number(cell);
    if (!Number.isFinite(value) || value < 0) {
      throw new TraceError(
        file,
        lineNumber,
        column,
        `column ${names[i]} is ${JSON.stringify(cell)}, not a non-negative number`,
        `write a plain decimal number in column ${i + 1} (${names[i]})`,
      );
    }
    out[i] = value;
    column += cell.length + 1;
  }
}

/** A factor on the arrival rate as a function of output time (seconds), and the spec it came from. */
export interface RateShape {
  readonly spec: string;
  factorAt(tSeconds: number): number;
  /** The largest factor it reaches: the rate's peak is this times the rate multiplier. */
  readonly maxFactor: number;
}

const SHAPE_USAGE =
  'use step:AT=F[,AT=F…] (e.g. step:30m=2,90m=1), ramp:FROM-TO=F0-F1 (e.g. ramp:0-60m=1-3) or ' +
  'diurnal:peak=P,mean=M[,period=24h][,peakAt=14h] (e.g. diurnal:peak=2,mean=1,period=2h); ' +
  'times take s, m or h';

/** Seconds from `90`, `90s`, `30m` or `2h`; NaN when malformed. */
function durationSeconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(text.trim());
  if (m === null) return Number.NaN;
  const unit = m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1;
  return Number(m[1]) * unit;
}

/**
 * Parses a rate shape (`kvpa simulate --shape`):
 * - `step:AT=F,…`: factor 1 before the first step, then F from each AT on (a 2× step: `step:30m=2`);
 * - `ramp:FROM-TO=F0-F1`: F0 until FROM, linear to F1 at TO, F1 after;
 * - `diurnal:peak=P,mean=M[,period=24h][,peakAt=…]`: `M + (P − M)·cos(2π(t − peakAt)/period)`, peaking at P
 *   (default peakAt: a quarter period, so the run starts at the mean and rising). The trough 2M − P must be ≥ 0.
 * Errors name the spec and the form to use.
 */
export function parseShape(spec: string): RateShape {
  const fail = (problem: string): never => {
    throw new RangeError(`--shape ${JSON.stringify(spec)}: ${problem}; ${SHAPE_USAGE}`);
  };
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const body = colon < 0 ? '' : spec.slice(colon + 1);
  const factor = (text: string | undefined): number => {
    const x = Number(text?.trim().replace(/x$/, ''));
    return text !== undefined && text.trim() !== '' && Number.isFinite(x) && x >= 0
      ? x
      : fail(`${JSON.stringify(text ?? '')} is not a factor ≥ 0`);
  };
  const time = (text: string | undefined): number => {
    const t = durationSeconds(text ?? '');
    return Number.isFinite(t) ? t : fail(`${JSON.stringify(text ?? '')} is not a time`);
  };
  switch (kind) {
    case 'step': {
      const steps = body
        .split(',')
        .filter((p) => p.trim() !== '')
        .map((p) => {
          const [at, f] = p.split('=');
          return { at: time(at), f: factor(f) };
        })
        .sort((a, b) => a.at - b.at);
      if (steps.length === 0) fail('no step given');
      return {
        spec,
        maxFactor: Math.max(1, ...steps.map((s) => s.f)),
        factorAt: (t) => {
          let f = 1;
          for (const step of steps) if (t >= step.at) f = step.f;
          return f;
        },
      };
    }
    case 'ramp': {
      const [span, factors] = body.split('=');
      const [from, to] = (span ?? '').split('-');
      const [f0text, f1text] = (factors ?? '').split('-');
      const t0 = time(from);
      const t1 = time(to);
      const f0 = factor(f0text);
      const f1 = factor(f1text);
      if (!(t1 > t0)) fail('the ramp must end after it starts');
      return {
        spec,
        maxFactor: Math.max(f0, f1),
        factorAt: (t) => (t <= t0 ? f0 : t >= t1 ? f1 : f0 + ((f1 - f0) * (t - t0)) / (t1 - t0)),
      };
    }
    case 'diurnal': {
      const fields = new Map(
        body
          .split(',')
          .filter((p) => p.trim() !== '')
          .map((p) => {
            const [k, v] = p.split('=');
            return [k?.trim() ?? '', v ?? ''] as const;
          }),
      );
      for (const k of fields.keys()) {
        if (!['peak', 'mean', 'period', 'peakAt'].includes(k)) fail(`unknown field ${JSON.stringify(k)}`);
      }
      const peak = factor(fields.get('peak'));
      const mean = factor(fields.get('mean'));
      const period = fields.has('period') ? time(fields.get('period')) : 86_400;
      const peakAt = fields.has('peakAt') ? time(fields.get('peakAt')) : period / 4;
      if (!(period > 0)) fail('the period must be > 0');
      if (peak < mean || 2 * mean - peak < 0) fail(`peak ${peak} must be in [mean, 2 × mean] (mean ${mean})`);
      return {
        spec,
        maxFactor: peak,
        factorAt: (t) => mean + (peak - mean) * Math.cos((2 * Math.PI * (t - peakAt)) / period),
      };
    }
    default:
      return fail(`unknown shape ${JSON.stringify(kind)}`);
  }
}

/** Reads, expands and transforms a trace into sorted arrival batches. */
export function* readTrace(file: string, options: TraceOptions = {}): Generator<ArrivalBatch> {
  const rateMultiplier = options.rateMultiplier ?? 1;
  const timeCompression = options.timeCompression ?? 1;
  if (!(rateMultiplier > 0) || !(timeCompression > 0)) {
    throw new RangeError(
      `rateMultiplier (${rateMultiplier}) and timeCompression (${timeCompression}) must be > 0`,
    );
  }
  const random = new Random(options.seed ?? 1);
  const lengthSigma = options.lengthSigma ?? 1.0;
  const copyJitterSeconds = options.copyJitterSeconds ?? 1;
  const fromSeconds = options.fromSeconds ?? 0;
  const untilSeconds = options.untilSeconds ?? Number.POSITIVE_INFINITY;
  const batchSize = options.batchSize ?? 4096;
  const outputScale = options.outputScale ?? 1;
  if (!(outputScale > 0)) throw new RangeError(`outputScale (${outputScale}) must be > 0`);
  const inputScale = options.inputScale ?? 1;
  if (!(inputScale > 0)) throw new RangeError(`inputScale (${inputScale}) must be > 0`);
  const shape = options.shape;
  /** The rate multiplier at output time t (before the slice). */
  const multiplierAt = (t: number) =>
    shape === undefined ? rateMultiplier : rateMultiplier * shape.factorAt(t);

  let batch = newBatch(batchSize);
  let lastEmitted = Number.NEGATIVE_INFINITY;
  let done = false;
  // Emits one arrival at output time t; returns a full batch to yield, if any.
  const emit = (t: number, inputTokens: number, outputTokens: number): ArrivalBatch | undefined => {
    if (t >= untilSeconds) {
      done = true;
      return undefined;
    }
    if (t < fromSeconds) return undefined;
    if (t < lastEmitted) throw new Error(`internal: arrivals out of order (${t} < ${lastEmitted})`);
    lastEmitted = t;
    const i = batch.count++;
    batch.tSeconds[i] = t - fromSeconds;
    batch.inputTokens[i] = inputScale === 1 ? inputTokens : Math.max(1, Math.round(inputTokens * inputScale));
    batch.outputTokens[i] =
      outputScale === 1 ? outputTokens : Math.max(1, Math.round(outputTokens * outputScale));
    if (batch.count < batchSize) return undefined;
    const full = batch;
    batch = newBatch(batchSize);
    return full;
  };
  const drawLength = (mean: number): number => {
    if (!(mean > 0)) return 1;
    const mu = Math.log(mean) - (lengthSigma * lengthSigma) / 2;
    return Math.max(1, Math.round(Math.exp(mu + lengthSigma * random.normal())));
  };

  const lines = readLines(file);
  const first = lines.next();
  if (first.done) throw new TraceError(file, 1, 1, 'the file is empty', 'add a header line and data rows');
  const format = detectTraceFormat(first.value[1], file);
  const names = HEADERS[format];
  const row: number[] = [0, 0, 0, 0];
  const copies: number[] = [];

  // One row of lookahead in every format: the per-request copy spread and the bin width need the next time.
  let havePrevious = false;
  let prevLine = 0;
  let prevTime = 0; // trace time, seconds
  let prevA = 0;
  let prevB = 0;
  let prevC = 0;
  let previousWidth = format === 'per-request' ? copyJitterSeconds * timeCompression : 60;
  // Rate series: the arrival process carries across windows only through the window start (memoryless).

  function* expand(startTrace: number, widthTrace: number): Generator<ArrivalBatch> {
    const start = startTrace / timeCompression;
    const width = widthTrace / timeCompression;
    switch (format) {
      case 'per-request': {
        const multiplier = multiplierAt(start);
        const n = multiplier === 1 ? 1 : random.roundedCount(multiplier);
        if (n === 0) return;
        const full = emit(start, prevA, prevB);
        if (full) yield full;
        if (n === 1) return;
        const spread = Math.min(width, copyJitterSeconds);
        copies.length = 0;
        for (let k = 1; k < n; k++) copies.push(start + random.uniform() * spread);
        copies.sort((x, y) => x - y);
        for (const t of copies) {
          const f = emit(t, prevA, prevB);
          if (f) yield f;
        }
        return;
      }
      case 'binned': {
        const requests = prevA;
        if (requests <= 0) return;
        const n = random.roundedCount(requests * multiplierAt(start + width / 2));
        const meanInput = prevB / requests;
        const meanOutput = prevC / requests;
        // n sorted uniforms in [start, start+width) from n+1 exponential spacings (Poisson given the count).
        let total = 0;
        copies.length = 0;
        for (let k = 0; k <= n; k++) {
          total += random.exponential(1);
          copies.push(total);
        }
        for (let k = 0; k < n; k++) {
          const f = emit(
            start + ((copies[k] ?? 0) / total) * width,
            drawLength(meanInput),
            drawLength(meanOutput),
          );
          if (f) yield f;
          if (done) return;
        }
        return;
      }
      case 'rate-series': {
        const rate = prevA * multiplierAt(start + width / 2) * timeCompression; // arrivals per output second
        if (rate <= 0) return;
        const end = start + width;
        for (let t = start + random.exponential(rate); t < end; t += random.exponential(rate)) {
          const f = emit(t, drawLength(prevB), drawLength(prevC));
          if (f) yield f;
          if (done) return;
        }
        return;
      }
    }
  }

  for (const [lineNumber, line] of lines) {
    if (line.trim() === '') continue;
    parseRow(file, lineNumber, line, names, row);
    const time = format === 'per-request' ? (row[0] ?? 0) / 1000 : (row[0] ?? 0);
    if (havePrevious) {
      const gap = time - prevTime;
      if (gap < 0 || (gap === 0 && format !== 'per-request')) {
        throw new TraceError(
          file,
          lineNumber,
          1,
          `${names[0]} ${row[0]} is ${gap < 0 ? 'before' : 'equal to'} the previous row's ${names[0]} (line ${prevLine})`,
          format === 'per-request'
            ? 'sort the rows by t_ms ascending (ties are allowed)'
            : 'sort the rows by t_s, strictly ascending, one row per bin',
        );
      }
      if (format !== 'per-request') previousWidth = gap;
      yield* expand(prevTime, format === 'per-request' ? Math.min(gap, previousWidth) : gap);
      if (done) break;
    }
    havePrevious = true;
    prevLine = lineNumber;
    prevTime = time;
    prevA = row[1] ?? 0;
    prevB = row[2] ?? 0;
    prevC = row[3] ?? 0;
  }
  if (havePrevious && !done) yield* expand(prevTime, previousWidth);
  if (batch.count > 0) yield batch;
}

function newBatch(size: number): ArrivalBatch {
  return {
    count: 0,
    tSeconds: new Float64Array(size),
    inputTokens: new Int32Array(size),
    outputTokens: new Int32Array(size),
  };
}

/** Streaming statistics of a trace under the given options (used by tests, sizing and the CLI). */
export interface TraceStats {
  readonly format: TraceFormat;
  readonly requests: number;
  readonly firstSeconds: number;
  readonly lastSeconds: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export function traceStats(file: string, options: TraceOptions = {}): TraceStats {
  let requests = 0;
  let firstSeconds = Number.NaN;
  let lastSeconds = Number.NaN;
  let inputTokens = 0;
  let outputTokens = 0;
  for (const batch of readTrace(file, options)) {
    if (requests === 0 && batch.count > 0) firstSeconds = batch.tSeconds[0] ?? Number.NaN;
    for (let i = 0; i < batch.count; i++) {
      inputTokens += batch.inputTokens[i] ?? 0;
      outputTokens += batch.outputTokens[i] ?? 0;
    }
    requests += batch.count;
    if (batch.count > 0) lastSeconds = batch.tSeconds[batch.count - 1] ?? Number.NaN;
  }
  return { format: traceFormatOf(file), requests, firstSeconds, lastSeconds, inputTokens, outputTokens };
}

/** The format of a file, from its first line. */
export function traceFormatOf(file: string): TraceFormat {
  const lines = readLines(file);
  const first = lines.next();
  lines.return(undefined);
  if (first.done) throw new TraceError(file, 1, 1, 'the file is empty', 'add a header line and data rows');
  return detectTraceFormat(first.value[1], file);
}
