import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCalibration, prefillComputeTokensPerSecond, prefillLengthFactor } from './calibration.ts';
import { computeDemand, maxGroupsOver } from './demand.ts';

const h200 = loadCalibration('deepseek-r1-h200');

describe('demand profile (the sizing rule the oracle and static provisioning use)', () => {
  it('prefill: 100 prompts/s of 2,048 tokens need ceil(work / (bin × 0.8)) groups per 10 s bin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvpa-demand-'));
    const trace = join(dir, 'flat.csv');
    const rows = ['t_s,requests,input_tokens_sum,output_tokens_sum'];
    for (let m = 0; m < 20; m++) rows.push(`${m * 60},6000,${6000 * 2048},${6000 * 100}`);
    writeFileSync(trace, `${rows.join('\n')}\n`);
    const demand = computeDemand(trace, { seed: 1, lengthSigma: 1e-9 }, h200);
    const perGroupSeconds = (2048 * prefillLengthFactor(h200, 2048)) / prefillComputeTokensPerSecond(h200);
    const expected = Math.ceil((100 * perGroupSeconds) / 0.8); // ≈ 2.2 → 3
    const steady = Array.from(demand.prefillGroups.slice(6, 100)).sort((a, b) => a - b);
    expect(steady[Math.floor(steady.length / 2)]).toBe(expected);
    // Decode: 100/s × 100 tokens × 72 ms resident = 720 sequences of ≈2.1K context: one group carries them.
    expect(maxGroupsOver(demand, demand.decodeGroups, 60, 1100)).toBe(1);
  });

  it('decode: long outputs at a high rate need the groups that keep the step within 90 % of the TPOT SLO', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvpa-demand-'));
    const trace = join(dir, 'decode-heavy.csv');
    const rows = ['t_s,requests,input_tokens_sum,output_tokens_sum'];
    for (let m = 0; m < 30; m++) rows.push(`${m * 60},6000,${6000 * 1000},${6000 * 2000}`);
    writeFileSync(trace, `${rows.join('\n')}\n`);
    const demand = computeDemand(trace, { seed: 1, lengthSigma: 1e-9 }, h200);
    // Resident: S = 100/s × 2,000 × 0.072 s = 14,400 sequences, K = S × (1,000 + 1,000) = 28.8M tokens.
    const s = 14_400;
    const k = s * 2000;
    const d = h200.decode;
    const byStep =
      (d.stepTime.perSequenceSeconds * s + d.stepTime.perContextTokenSeconds * k) / (32 * (0.072 - 0.028));
    expect(maxGroupsOver(demand, demand.decodeGroups, 600, 1500)).toBe(Math.ceil(byStep)); // ≈ 3.3 → 4
  });
});
