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

describe('bundled calibrations', () => {
  it.each(names)('%s parses and every figure carries a source comment (§ or [Sn] or [J])', (name) => {
    expect(loadCalibration(name).name).toBe(name);
    const lines = readFileSync(join(calibrationDirectory, `${name}.yaml`), 'utf8').split('\n');
    // A comment block (consecutive comment lines) covers the figures after it, up to a blank line.
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
      if (isFigure && !/§|\[S\d+\]|\[J\]/.test(lastComment)) unsourced.push(trimmed);
    }
    expect(unsourced).toEqual([]);
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

  it('H100 at EP32 is KV-bound near 70 sequences per GPU at a 3K context (§9)', () => {
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
