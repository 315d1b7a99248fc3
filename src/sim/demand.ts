/**
 * The trace's demand in groups per time bin, from the sizing rule of the lab's calibration. Only the oracle and
 * static provisioning read it (they are allowed to know the future); every policy starts from the same initial
 * fleet, sized from the demand of the first startup window.
 *
 * Per bin of `binSeconds`:
 * - **prefill:** the prefill work of the prompts arriving in the bin (Σ L·lengthFactor(L) at the group's compute
 *   rate; the forward overhead is left out because batches amortise it) over the bin length and a target
 *   utilisation `prefillUtilization` (default 0.8, leaving queueing headroom for the 2 s TTFT).
 * - **decode:** each request is resident from its arrival for `outputTokens × itl` seconds, where `itl` is the
 *   TPOT SLO × `decodeItlHeadroom` (default 0.9), with a context of `input + output/2` tokens on average. Summing
 *   over residents gives sequences S and context K per bin (difference arrays, fractional at bin edges). The
 *   groups needed are the largest of: step time ≤ itl, i.e. t0 + (a·S + c·K)/(n·R) ≤ itl; KV, K ≤ n·R·kvPerGpu;
 *   and the sequence cap, S ≤ n·R·maxSequencesPerGpu.
 */
import { type Calibration, prefillComputeTokensPerSecond, prefillLengthFactor } from './calibration.ts';
import { readTrace, type TraceOptions } from './trace.ts';

export interface DemandProfile {
  readonly binSeconds: number;
  /** Groups needed in each bin (the load rounded up). */
  readonly prefillGroups: Float64Array;
  readonly decodeGroups: Float64Array;
  /** The load in groups before rounding (the oracle scales it by its headroom); absent in hand-made profiles. */
  readonly prefillLoad?: Float64Array;
  readonly decodeLoad?: Float64Array;
}

export interface DemandOptions {
  readonly binSeconds?: number;
  readonly prefillUtilization?: number;
  readonly decodeItlHeadroom?: number;
}

export function computeDemand(
  file: string,
  traceOptions: TraceOptions,
  calibration: Calibration,
  options: DemandOptions = {},
): DemandProfile {
  const binSeconds = options.binSeconds ?? 10;
  const prefillUtilization = options.prefillUtilization ?? 0.8;
  const itlSeconds = calibration.slo.tpotSeconds * (options.decodeItlHeadroom ?? 0.9);
  const prefillRate = prefillComputeTokensPerSecond(calibration);
  let prefillWork = new Float64Array(1024); // group-seconds of prefill per bin
  let seqDelta = new Float64Array(1024); // difference array of resident sequences (sequence-seconds per bin)
  let ctxDelta = new Float64Array(1024); // difference array of resident context (token-seconds per bin)
  const ensure = (bin: number) => {
    if (bin < prefillWork.length) return;
    let size = prefillWork.length;
    while (size <= bin) size *= 2;
    const grow = (a: Float64Array) => {
      const b = new Float64Array(size);
      b.set(a);
      return b;
    };
    prefillWork = grow(prefillWork);
    seqDelta = grow(seqDelta);
    ctxDelta = grow(ctxDelta);
  };
  // Adds a resident interval [start, end) with weight w to a difference array of per-bin averages.
  const addInterval = (delta: Float64Array, start: number, end: number, w: number) => {
    const b0 = Math.floor(start / binSeconds);
    const b1 = Math.floor(end / binSeconds);
    if (b0 === b1) {
      delta[b0] = (delta[b0] as number) + (w * (end - start)) / binSeconds;
      delta[b0 + 1] = (delta[b0 + 1] as number) - (w * (end - start)) / binSeconds;
      return;
    }
    const head = ((b0 + 1) * binSeconds - start) / binSeconds;
    const tail = (end - b1 * binSeconds) / binSeconds;
    delta[b0] = (delta[b0] as number) + w * head;
    delta[b0 + 1] = (delta[b0 + 1] as number) + w * (1 - head);
    delta[b1] = (delta[b1] as number) - w * (1 - tail);
    delta[b1 + 1] = (delta[b1 + 1] as number) - w * tail;
  };
  let lastBin = 0;
  for (const batch of readTrace(file, traceOptions)) {
    for (let i = 0; i < batch.count; i++) {
      const t = batch.tSeconds[i] as number;
      const input = batch.inputTokens[i] as number;
      const output = batch.outputTokens[i] as number;
      const end = t + Math.max(1, output) * itlSeconds;
      const bin = Math.floor(t / binSeconds);
      ensure(Math.floor(end / binSeconds) + 2);
      prefillWork[bin] =
        (prefillWork[bin] as number) + (input * prefillLengthFactor(calibration, input)) / prefillRate;
      addInterval(seqDelta, t, end, 1);
      addInterval(ctxDelta, t, end, input + output / 2);
      lastBin = Math.max(lastBin, Math.floor(end / binSeconds));
    }
  }
  const bins = lastBin + 1;
  const prefillGroups = new Float64Array(bins);
  const decodeGroups = new Float64Array(bins);
  const prefillLoad = new Float64Array(bins);
  const decodeLoad = new Float64Array(bins);
  const d = calibration.decode;
  const ranks = d.gpusPerGroup;
  const spare = itlSeconds - d.stepTime.baseSeconds;
  let sequences = 0;
  let context = 0;
  for (let b = 0; b < bins; b++) {
    sequences += seqDelta[b] as number;
    context += ctxDelta[b] as number;
    const s = Math.max(0, sequences);
    const k = Math.max(0, context);
    prefillLoad[b] = (prefillWork[b] as number) / (binSeconds * prefillUtilization);
    prefillGroups[b] = Math.ceil((prefillLoad[b] as number) - 1e-9);
    const byStep =
      (d.stepTime.perSequenceSeconds * s + d.stepTime.perContextTokenSeconds * k) / (ranks * spare);
    const byKv = k / (ranks * d.kvCapacityTokensPerGpu);
    const bySequences = s / (ranks * d.maxSequencesPerGpu);
    decodeLoad[b] = Math.max(byStep, byKv, bySequences);
    decodeGroups[b] = Math.ceil((decodeLoad[b] as number) - 1e-9);
  }
  return { binSeconds, prefillGroups, decodeGroups, prefillLoad, decodeLoad };
}

/** The largest value of `groups` over bins overlapping [fromSeconds, toSeconds]. */
export function maxGroupsOver(
  profile: DemandProfile,
  groups: Float64Array,
  fromSeconds: number,
  toSeconds: number,
): number {
  const b0 = Math.max(0, Math.floor(fromSeconds / profile.binSeconds));
  const b1 = Math.min(groups.length - 1, Math.floor(toSeconds / profile.binSeconds));
  let peak = 0;
  for (let b = b0; b <= b1; b++) peak = Math.max(peak, groups[b] as number);
  return peak;
}
