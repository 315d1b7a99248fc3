import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  calibrationDirectory,
  decodeSequencesPerGpuAtItl,
  decodeStepSeconds,
  loadCalibration,
  parseCalibration,
  prefillLengthFactor,
} from './calibration.ts';

const names = ['deepseek-r1-h200', 'deepseek-r1-h100'] as const;

/**
 * A public source: a URL, an upstream repository path (github.com/owner/name …) or an arXiv paper; a figure no
 * source publishes says it is an estimate and shows its arithmetic.
 */
const PUBLIC_SOURCE =
  /https?:\/\/\S+|github\.com\/[\w.-]+\/[\w.-]+|arXiv:?\s*\d{4}\.\d{4,5}|\bestimates?\b|\barithmetic\b/i;
/** References that resolve only in notes outside the repository (a clone has no `../shared`). */
const PRIVATE_REFERENCE =
  /\bshared\/|\b(?:calibration|knative-kpa|aibrix-kpa|peers|workloads)\.md\b|§|\[S\d+[a-z]?\]|\[J\]|\bissue \d/;

/**
 * The figures (`key: number`) whose comment block cites no public source. A comment block (consecutive comment
 * lines) covers the figures after it, up to a blank line.
 */
function unsourcedFigures(lines: readonly string[]): string[] {
  let lastComment = '';
  let inComment = false;
  const unsourced: string[] = [];
  for (const line of lines) {
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) {
      lastComment = inComment ? `${lastComment} ${trimmed}` : trimmed;
      inComment = true;
      continue;
    }
    inComment = false;
    if (trimmed === '' || trimmed.endsWith(':')) {
      if (trimmed === '') lastComment = '';
      continue;
    }
    const isFigure = /:\s*[-0-9.]/.test(trimmed);
    if (isFigure && !PUBLIC_SOURCE.test(lastComment)) unsourced.push(trimmed);
  }
  return unsourced;
}

/** Comment lines that cite notes a clone of the repository does not have. */
function privateReferences(lines: readonly string[]): string[] {
  return lines.map((l) => l.trim()).filter((l) => l.startsWith('#') && PRIVATE_REFERENCE.test(l));
}

describe('bundled calibrations', () => {
  it.each(names)('%s parses and every figure carries a public source or its estimate arithmetic', (name) => {
    expect(loadCalibration(name).name).toBe(name);
    const lines = readFileSync(join(calibrationDirectory, `${name}.yaml`), 'utf8').split('\n');
    expect(unsourcedFigures(lines)).toEqual([]);
    expect(privateReferences(lines)).toEqual([]);
  });

  it('the source check fails on a figure without a source and on a private reference', () => {
    const lines = [
      'prefill:',
      '  # 16 GPUs, https://example.org/recipe',
      '  gpusPerGroup: 16',
      '  # 7,000 tok/s (see the notes)',
      '  throughputTokensPerSecondPerGpu: 7000',
      '',
      '  forwardOverheadSeconds: 0.08',
      '  # Estimate: 80 ms [J], ../shared/research/calibration.md §9 [S3]',
      '  maxBatchTokensPerGpu: 16384',
    ];
    expect(unsourcedFigures(lines)).toEqual([
      'throughputTokensPerSecondPerGpu: 7000',
      'forwardOverheadSeconds: 0.08',
    ]);
    expect(privateReferences(lines)).toEqual([lines[7]?.trim()]);
  });

  it('the H200 figures reproduce the worked numbers of the calibration: 115.8 ms at b = 256 and 3K context; 1.9k tok/s/GPU at 80 ms', () => {
    const c = loadCalibration('deepseek-r1-h200');
    const ranks = c.decode.gpusPerGroup;
    expect(decodeStepSeconds(c, 256 * ranks, 256 * 3000 * ranks)).toBeCloseTo(0.1157, 3);
    const perGpu = decodeSequencesPerGpuAtItl(c, 0.08, 3000) / 0.08;
    expect(Math.abs(perGpu / 1900 - 1)).toBeLessThan(0.05);
    expect(prefillLengthFactor(c, 2048)).toBeCloseTo(1, 2);
    expect(prefillLengthFactor(c, 32768)).toBeCloseTo(1.97, 2);
  });

  it('H100 at EP32 is KV-bound near 70 sequences per GPU at a 3K context', () => {
    const c = loadCalibration('deepseek-r1-h100');
    expect(decodeSequencesPerGpuAtItl(c, 0.08, 3000)).toBe(70);
  });
});

describe('validation names the field', () => {
  it('rejects a negative throughput and an unknown key with their paths', () => {
    const text = readFileSync(join(calibrationDirectory, 'deepseek-r1-h200.yaml'), 'utf8')
      .replace('throughputTokensPerSecondPerGpu: 7000', 'throughputTokensPerSecondPerGpu: -1')
      .replace('maxSequencesPerGpu: 256', 'maxSequencesPerGpu: 256\n  typo: 1');
    expect(() => parseCalibration(text, 'x.yaml')).toThrow(
      /x\.yaml: invalid calibration:\n {2}prefill\.throughputTokensPerSecondPerGpu/,
    );
    expect(() => parseCalibration(text, 'x.yaml')).toThrow(/decode: Unrecognized key: "typo"|decode.*typo/);
  });
});
