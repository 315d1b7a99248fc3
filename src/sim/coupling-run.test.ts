/**
 * The lab's ratio band (`kvpa simulate --coupling MIN:MAX`), end to end: a load whose mix turns from long
 * prompts and short answers to short prompts and long answers pulls kvpa's two pools apart. Uncoupled, the
 * prefill/decode ratio leaves [0.5, 2]; coupled, every requested pair on the timeline stays inside it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inBand } from '../decide/coupling.ts';
import { loadCalibration } from './calibration.ts';
import { defaultSettings, runSimulation } from './run.ts';

const h200 = loadCalibration('deepseek-r1-h200');

function mixTurnTrace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvpa-coupling-'));
  const trace = join(dir, 'bins.csv');
  const rows = ['t_s,requests,input_tokens_sum,output_tokens_sum'];
  // 40 min of 40 req/s with 8,000-token prompts and 200-token answers (prefill-heavy), then 40 min of
  // 60 req/s with 500-token prompts and 3,000-token answers (decode-heavy).
  for (let m = 0; m < 80; m++) {
    const [rate, input, output] = m < 40 ? [40, 8000, 200] : [60, 500, 3000];
    const n = rate * 60;
    rows.push(`${m * 60},${n},${n * input},${n * output}`);
  }
  writeFileSync(trace, `${rows.join('\n')}\n`);
  return trace;
}

/** 40 min of 40 req/s, 4,000-token prompts and 1,500-token answers, then 40 min of 60 req/s, 1,500 and 3,000. */
function thickMixTurnTrace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvpa-coupling-flows-'));
  const trace = join(dir, 'bins.csv');
  const rows = ['t_s,requests,input_tokens_sum,output_tokens_sum'];
  for (let m = 0; m < 80; m++) {
    const [rate, input, output] = m < 40 ? [40, 4000, 1500] : [60, 1500, 3000];
    const n = rate * 60;
    rows.push(`${m * 60},${n},${n * input},${n * output}`);
  }
  writeFileSync(trace, `${rows.join('\n')}\n`);
  return trace;
}

describe('coupling in the lab', () => {
  const trace = mixTurnTrace();
  const band = { min: 0.5, max: 2 };
  const run = (coupling: typeof band | null) =>
    runSimulation(defaultSettings(trace, h200, { startupSeconds: 300, coupling }), 'kvpa');

  it('kvpa from 8,000-token prompts to 3,000-token answers: uncoupled it requests 8/1 and 1/23, outside [0.5, 2]; coupled 0.5:2, every timeline row is in band, starting from 8/4', () => {
    const off = run(null);
    const on = run(band);
    const pairs = (s: typeof off) =>
      s.timeline.map((r) => ({ minute: r.minute, prefill: r.prefillRequested, decode: r.decodeRequested }));
    const outside = pairs(off).filter((p) => !inBand(band, p));
    expect(outside.length).toBeGreaterThan(0);
    expect(pairs(off)).toContainEqual(expect.objectContaining({ prefill: 8, decode: 1 }));
    expect(pairs(off)).toContainEqual(expect.objectContaining({ prefill: 1, decode: 23 }));
    expect(off.coupling).toBeNull();
    expect(pairs(on).filter((p) => !inBand(band, p))).toEqual([]);
    expect(on.coupling?.band).toEqual(band);
    expect(on.coupling?.repairs).toBeGreaterThan(0);
    expect(on.coupling?.outOfBand).toBe(0);
    // Both pools stay below --max-groups here, so the band only ever raises.
    expect(on.coupling?.lowered).toEqual({ prefill: 0, decode: 0 });
    // The starting fleet (8 prefill beside 1 decode, sized from the first window) is moved into the band too.
    expect(on.coupling?.initialGroups.sized).toEqual({ prefill: 8, decode: 1 });
    expect(on.coupling?.initialGroups.coupled).toEqual({ prefill: 8, decode: 4 });
  }, 180_000);

  it('--coupling flows on a mix that turns: the derived centre follows it, about 1.7 prefill per decode (160k prompt tok/s × 1.5 ÷ 112k beside 60k generated × 1.25 ÷ 60k) then about 0.31; minute 60 is 3/10 where uncoupled kvpa asks 2/9', () => {
    const thick = thickMixTurnTrace();
    const runFlows = (coupling: { fromFlows: { tolerance: number } } | null) =>
      runSimulation(defaultSettings(thick, h200, { startupSeconds: 300, coupling }), 'kvpa');
    const off = runFlows(null);
    const on = runFlows({ fromFlows: { tolerance: 0.25 } });
    const f = on.coupling?.fromFlows;
    expect(on.coupling?.band).toBeNull();
    expect(f?.decisionsWithBand).toBeGreaterThan(0);
    expect(f?.ratioMax).toBeGreaterThan(1.5);
    expect(f?.ratioMin).toBeLessThan(0.35);
    expect(on.coupling?.outOfBand).toBe(0);
    expect(on.coupling?.lowered).toEqual({ prefill: 0, decode: 0 });
    // No flows before the first scrape: the starting fleet is as sized.
    expect(on.coupling?.initialGroups.coupled).toEqual(on.coupling?.initialGroups.sized);
    const at = (s: typeof off, minute: number) => {
      const r = s.timeline.find((x) => x.minute === minute);
      return { prefill: r?.prefillRequested, decode: r?.decodeRequested };
    };
    expect(at(off, 60)).toEqual({ prefill: 2, decode: 9 });
    expect(at(on, 60)).toEqual({ prefill: 3, decode: 10 });
  }, 180_000);
});
