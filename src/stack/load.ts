/**
 * The live stack's load generator: replays a trace (any format `src/sim/trace.ts` reads) or a synthetic step
 * profile into `LiveEngines`.
 *
 * **Time.** Trace time is the engines' virtual time: an arrival at trace second `t` (after the trace's own
 * `timeCompression` and `rateMultiplier`) enters the model at virtual `start + t`, where `start` is the
 * engines' virtual now at `start()`. The engines' `accelerationFactor` maps that to wall time, so a trace span
 * of S seconds plays in S / (timeCompression × accelerationFactor) wall seconds. The generator is pulled by
 * the engines' advance (a feeder), which puts every arrival at its exact virtual time.
 *
 * **Bounds.** It stops by itself at the trace's end or after `durationSeconds` of trace time, whichever comes
 * first, and only one batch of arrivals (typed arrays) is in memory at a time.
 */
import { type ArrivalBatch, readTrace, type TraceOptions } from '../sim/trace.ts';
import type { ArrivalFeeder } from './engines.ts';

/** From `atSeconds` (trace time) until the next step, `requestsPerSecond` evenly spaced arrivals. */
export interface LoadStep {
  readonly atSeconds: number;
  readonly requestsPerSecond: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export type LoadSource =
  | {
      readonly kind: 'trace';
      readonly path: string;
      readonly rateMultiplier?: number;
      readonly timeCompression?: number;
      readonly seed?: number;
      readonly outputScale?: number;
      /** Start this far into the (compressed) trace. */
      readonly fromSeconds?: number;
    }
  | { readonly kind: 'steps'; readonly steps: readonly LoadStep[] };

export interface LoadOptions {
  readonly source: LoadSource;
  /** Trace seconds to play; required for a step profile whose last step has a positive rate. */
  readonly durationSeconds?: number;
}

export interface LoadSummary {
  readonly delivered: number;
  /** Trace seconds of the last delivered arrival. */
  readonly lastArrivalSeconds: number;
  readonly reason: 'end' | 'duration' | 'stopped';
}

/** Where the generator plays: `LiveEngines` or a test double. */
export interface LoadTarget {
  virtualNowSeconds(): number;
  addFeeder(feeder: ArrivalFeeder): () => void;
}

// ------------------------------------------------------------------ pure parts

const BATCH = 1024;

/** Batches of evenly spaced arrivals for a step profile, ending at `untilSeconds`. Pure and lazy. */
export function* stepArrivals(steps: readonly LoadStep[], untilSeconds: number): Generator<ArrivalBatch> {
  const sorted = [...steps].sort((a, b) => a.atSeconds - b.atSeconds);
  const last = sorted[sorted.length - 1];
  if (!Number.isFinite(untilSeconds) && last !== undefined && last.requestsPerSecond > 0) {
    throw new Error('a step profile whose last step has a positive rate needs durationSeconds');
  }
  let batch = newBatch();
  for (let i = 0; i < sorted.length; i++) {
    const step = sorted[i] as LoadStep;
    const end = Math.min(untilSeconds, sorted[i + 1]?.atSeconds ?? untilSeconds);
    if (!(step.requestsPerSecond > 0)) continue;
    const gap = 1 / step.requestsPerSecond;
    // The k-th arrival of a step at atSeconds + k·gap: computed, not accumulated, so no drift over long steps.
    for (let k = 0; ; k++) {
      const t = step.atSeconds + k * gap;
      if (t >= end) break;
      batch.tSeconds[batch.count] = t;
      batch.inputTokens[batch.count] = step.inputTokens;
      batch.outputTokens[batch.count] = step.outputTokens;
      if (++batch.count === BATCH) {
        yield batch;
        batch = newBatch();
      }
    }
  }
  if (batch.count > 0) yield batch;
}

function newBatch(): ArrivalBatch {
  return {
    count: 0,
    tSeconds: new Float64Array(BATCH),
    inputTokens: new Int32Array(BATCH),
    outputTokens: new Int32Array(BATCH),
  };
}

/** The arrivals a source produces, in trace seconds from 0. */
export function arrivalsOf(source: LoadSource, durationSeconds?: number): Iterator<ArrivalBatch> {
  if (source.kind === 'steps') return stepArrivals(source.steps, durationSeconds ?? Number.POSITIVE_INFINITY);
  const options: TraceOptions = {
    rateMultiplier: source.rateMultiplier ?? 1,
    timeCompression: source.timeCompression ?? 1,
    seed: source.seed ?? 1,
    outputScale: source.outputScale ?? 1,
    fromSeconds: source.fromSeconds ?? 0,
    batchSize: BATCH,
  };
  return readTrace(source.path, options);
}

/**
 * Walks batches of arrivals against a moving horizon. `feedUntil(h)` delivers every arrival with
 * `offset + t ≤ h` (and `t < durationSeconds`) in order. Pure apart from pulling the iterator.
 */
export class ArrivalCursor {
  private batch: ArrivalBatch | undefined;
  private index = 0;
  private finished: LoadSummary['reason'] | undefined;
  delivered = 0;
  lastArrivalSeconds = Number.NaN;

  constructor(
    private readonly source: Iterator<ArrivalBatch>,
    private readonly offsetSeconds: number,
    private readonly durationSeconds = Number.POSITIVE_INFINITY,
  ) {}

  /** Why it finished, or undefined while arrivals remain. */
  get done(): LoadSummary['reason'] | undefined {
    return this.finished;
  }

  feedUntil(horizon: number, arrive: (t: number, inputTokens: number, outputTokens: number) => void): void {
    while (this.finished === undefined) {
      if (this.batch === undefined || this.index >= this.batch.count) {
        const next = this.source.next();
        if (next.done === true) {
          this.finish('end');
          return;
        }
        this.batch = next.value;
        this.index = 0;
        continue;
      }
      const t = this.batch.tSeconds[this.index] as number;
      if (t >= this.durationSeconds) {
        this.finish('duration');
        return;
      }
      const at = this.offsetSeconds + t;
      if (at > horizon) return;
      arrive(at, this.batch.inputTokens[this.index] as number, this.batch.outputTokens[this.index] as number);
      this.index++;
      this.delivered++;
      this.lastArrivalSeconds = t;
    }
  }

  stop(): void {
    this.finish('stopped');
  }

  private finish(reason: LoadSummary['reason']): void {
    if (this.finished !== undefined) return;
    this.finished = reason;
    this.source.return?.(undefined); // closes the trace file of an unfinished reader
  }
}

// ------------------------------------------------------------------ the generator

export class LoadGenerator {
  /** Resolves when the generator stops: trace end, duration, or `stop()`. */
  readonly finished: Promise<LoadSummary>;
  private resolve!: (summary: LoadSummary) => void;
  private cursor: ArrivalCursor | undefined;
  private detach: (() => void) | undefined;

  constructor(
    private readonly target: LoadTarget,
    private readonly options: LoadOptions,
  ) {
    this.finished = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  /** Starts playing from the target's virtual now. A second call does nothing. */
  start(): this {
    if (this.cursor !== undefined) return this;
    const cursor = new ArrivalCursor(
      arrivalsOf(this.options.source, this.options.durationSeconds),
      this.target.virtualNowSeconds(),
      this.options.durationSeconds,
    );
    this.cursor = cursor;
    this.detach = this.target.addFeeder({
      feedUntil: (horizon, arrive) => {
        cursor.feedUntil(horizon, arrive);
        if (cursor.done !== undefined) this.finish();
      },
    });
    return this;
  }

  get delivered(): number {
    return this.cursor?.delivered ?? 0;
  }

  stop(): void {
    if (this.cursor === undefined) {
      this.resolve({ delivered: 0, lastArrivalSeconds: Number.NaN, reason: 'stopped' });
      return;
    }
    this.cursor.stop();
    this.finish();
  }

  private finish(): void {
    const cursor = this.cursor;
    if (cursor === undefined || cursor.done === undefined) return;
    this.detach?.();
    this.detach = undefined;
    this.resolve({
      delivered: cursor.delivered,
      lastArrivalSeconds: cursor.lastArrivalSeconds,
      reason: cursor.done,
    });
  }
}
