/**
 * The lab's drain, end to end: kvpa's preset on a load that halves after 40 minutes. With the readiness gate
 * (drain on) the scale-down takes its victims out of routing first and aborts nothing; without it, the same
 * decisions remove groups with requests in flight.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCalibration } from './calibration.ts';
import { defaultSettings, runSimulation } from './run.ts';

const h200 = loadCalibration('deepseek-r1-h200');

function halvingTrace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvpa-drain-'));
  const trace = join(dir, 'bins.csv');
  const rows = ['t_s,requests,input_tokens_sum,output_tokens_sum'];
  // 40 req/s of 2,000-token prompts and 1,500-token answers, then 15 req/s: decode must shed groups.
  for (let m = 0; m < 90; m++) {
    const perMinute = (m < 40 ? 40 : 15) * 60;
    rows.push(`${m * 60},${perMinute},${perMinute * 2000},${perMinute * 1500}`);
  }
  writeFileSync(trace, `${rows.join('\n')}\n`);
  return trace;
}

describe('drain in the lab', () => {
  const trace = halvingTrace();
  const run = (drain: boolean) =>
    runSimulation(defaultSettings(trace, h200, { startupSeconds: 300, drain }), 'kvpa');

  it('with the gate, decode scales down and abortedByScaleDown is 0; without it, the same run aborts requests', () => {
    const on = run(true);
    const off = run(false);
    expect(off.pools.decode.scaleEvents).toBeGreaterThan(0);
    expect(off.requests.abortedByScaleDown).toBeGreaterThan(0);
    expect(on.pools.decode.scaleEvents).toBeGreaterThan(0);
    expect(on.requests.abortedByScaleDown).toBe(0);
    // Draining is paid for in GPU-hours held out of routing, and reported.
    expect(on.drainGpuHours).toBeGreaterThan(0);
    expect(off.drainGpuHours).toBe(0);
    expect(on.sloAttainment).toBeGreaterThan(off.sloAttainment);
  }, 120_000);
});
