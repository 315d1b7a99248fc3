/**
 * The fleet calibration: a YAML file under `calibration/`, parsed once at the edge and validated here.
 * Units are in the field names (seconds, tokens, bytes, GPUs); every figure's source is a comment in the YAML.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';

const positive = z.number().positive();

export const calibrationSchema = z
  .object({
    name: z.string().min(1),
    hardware: z.string().min(1),
    prefill: z.strictObject({
      gpusPerGroup: z.number().int().positive(),
      throughputTokensPerSecondPerGpu: positive,
      lengthFactor: z.strictObject({
        baseCost: positive,
        perContextTokenCost: z.number().nonnegative(),
        referenceCost: positive,
      }),
      forwardOverheadSeconds: z.number().nonnegative(),
      maxBatchTokensPerGpu: z.number().int().positive(),
    }),
    decode: z.strictObject({
      gpusPerGroup: z.number().int().positive(),
      stepTime: z.strictObject({
        baseSeconds: positive,
        perSequenceSeconds: z.number().nonnegative(),
        perContextTokenSeconds: z.number().nonnegative(),
      }),
      kvCapacityTokensPerGpu: z.number().int().positive(),
      maxSequencesPerGpu: z.number().int().positive(),
    }),
    transfer: z.strictObject({
      bytesPerToken: positive,
      bandwidthBytesPerSecond: positive,
      fixedSeconds: z.number().nonnegative(),
    }),
    slo: z.strictObject({ ttftSeconds: positive, tpotSeconds: positive }),
    lifecycle: z.strictObject({
      startupSeconds: z.number().nonnegative(),
      decodeDrainCapSeconds: positive,
      prefillDrainSeconds: z.number().nonnegative(),
    }),
    cost: z.strictObject({ usdPerGpuHour: z.number().nonnegative() }),
  })
  .strict()
  .refine(
    (c) =>
      c.prefill.maxBatchTokensPerGpu / c.prefill.throughputTokensPerSecondPerGpu >
      c.prefill.forwardOverheadSeconds,
    {
      message: 'prefill: a full batch must take longer than the forward overhead at the saturated throughput',
      path: ['prefill', 'forwardOverheadSeconds'],
    },
  );

export type Calibration = Readonly<z.infer<typeof calibrationSchema>>;

/** The directory of the bundled calibrations (`calibration/` at the package's top level, beside `policies/`). */
export const calibrationDirectory = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'calibration');

/** Parses and validates calibration YAML; errors name the file and each bad field. */
export function parseCalibration(text: string, source: string): Calibration {
  const result = calibrationSchema.safeParse(parse(text));
  if (!result.success) {
    const problems = result.error.issues
      .map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('\n');
    throw new Error(`${source}: invalid calibration:\n${problems}`);
  }
  return Object.freeze(result.data);
}

/** Loads a calibration by file path, or by bundled name (`deepseek-r1-h200`, `deepseek-r1-h100`). */
export function loadCalibration(nameOrPath = 'deepseek-r1-h200'): Calibration {
  const path =
    nameOrPath.endsWith('.yaml') || nameOrPath.includes('/')
      ? nameOrPath
      : join(calibrationDirectory, `${nameOrPath}.yaml`);
  return parseCalibration(readFileSync(path, 'utf8'), path);
}

// Derived quantities used by the fleet model and the sizing rule; pure functions of the calibration.

/**
 * Per-token prefill cost relative to a 2K prompt: (74 + 0.0025·L) / 79, that is 2 × 37B active parameters
 * (deepseek-ai/DeepSeek-V3 README.md) plus ≈2.5 MFLOP·L of causal MLA attention, in GFLOP.
 */
export function prefillLengthFactor(c: Calibration, inputTokens: number): number {
  const f = c.prefill.lengthFactor;
  return (f.baseCost + f.perContextTokenCost * inputTokens) / f.referenceCost;
}

/**
 * Pure compute rate of a prefill group in reference tokens/s, chosen so that a full batch
 * (maxBatchTokensPerGpu per GPU) runs at exactly the saturated throughput including the forward overhead:
 * B / (overhead + B / rate) = T_p.
 */
export function prefillComputeTokensPerSecond(c: Calibration): number {
  const p = c.prefill;
  const perGpu =
    p.maxBatchTokensPerGpu /
    (p.maxBatchTokensPerGpu / p.throughputTokensPerSecondPerGpu - p.forwardOverheadSeconds);
  return perGpu * p.gpusPerGroup;
}

/** Decode step time for a whole group with `sequences` running and `contextTokens` resident, spread evenly over its ranks. */
export function decodeStepSeconds(c: Calibration, sequences: number, contextTokens: number): number {
  const s = c.decode.stepTime;
  const ranks = c.decode.gpusPerGroup;
  return (
    s.baseSeconds + (s.perSequenceSeconds * sequences + s.perContextTokenSeconds * contextTokens) / ranks
  );
}

/** Transfer time of a prompt's KV from prefill to decode. */
export function transferSeconds(c: Calibration, inputTokens: number): number {
  const t = c.transfer;
  return t.fixedSeconds + (inputTokens * t.bytesPerToken) / t.bandwidthBytesPerSecond;
}

/**
 * Sequences per decode rank at which the step time equals `itlSeconds`, for a mean context of
 * `meanContextTokens` per sequence; capped by the sequence cap and by the KV capacity.
 */
export function decodeSequencesPerGpuAtItl(
  c: Calibration,
  itlSeconds: number,
  meanContextTokens: number,
): number {
  const s = c.decode.stepTime;
  const computeBound =
    (itlSeconds - s.baseSeconds) / (s.perSequenceSeconds + s.perContextTokenSeconds * meanContextTokens);
  const kvBound = c.decode.kvCapacityTokensPerGpu / Math.max(1, meanContextTokens);
  return Math.max(0, Math.min(computeBound, kvBound, c.decode.maxSequencesPerGpu));
}
