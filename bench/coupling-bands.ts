/**
 * The prefill/decode ratio bands of bench/RESULTS.md ("Prefill and decode coupled"), derived from the
 * calibration: the lab's sizing rule (src/sim/demand.ts: a prefill group's compute rate, a decode group's
 * step time at the TPOT SLO, its KV and sequence caps) turns each scenario's requests into whole groups per
 * 10-s bin, and the calibrated band is the 5th to 95th percentile of prefill groups per decode group over the
 * bins (rounded out to two significant digits); the wide band is that band widened by a factor 2 each way.
 * Scenarios are bench/decisions.sh's; start-up time does not change the demand, so one band serves both.
 *
 *   KVPA_TRACES=<trace dir> npx tsx bench/coupling-bands.ts
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadCalibration } from '../src/sim/calibration.ts';
import { computeDemand } from '../src/sim/demand.ts';
import { parseShape, type TraceOptions } from '../src/sim/trace.ts';

const dir = process.env.KVPA_TRACES;
if (dir === undefined || !existsSync(dir)) {
  process.stderr.write('bench/coupling-bands.ts: set KVPA_TRACES to the development trace directory\n');
  process.exit(2);
}
const DIURNAL = 'diurnal:peak=1.6,mean=1,period=1h,peakAt=40m';
const scenarios: readonly [string, string, TraceOptions][] = [
  ['conv-x20', 'azure2023_conv.csv', { rateMultiplier: 20 }],
  ['conv-x20-in10', 'azure2023_conv.csv', { rateMultiplier: 20, inputScale: 10 }],
  [
    'conv-x10-step2',
    'azure2023_conv.csv',
    { rateMultiplier: 10, shape: parseShape('step:30m=2'), outputScale: 10 },
  ],
  [
    'conv-x20-diurnal',
    'azure2023_conv.csv',
    { rateMultiplier: 20, shape: parseShape(DIURNAL), outputScale: 10 },
  ],
  ['code-x20', 'azure2023_code.csv', { rateMultiplier: 20 }],
  ['servegen-x10', 'servegen_mlarge_day09_scale0.04.csv', { rateMultiplier: 10 }],
];

/** Two significant digits, rounded down (`up` false) or up. */
function round2(x: number, up: boolean): number {
  const scale = 10 ** (Math.floor(Math.log10(x)) - 1);
  return (up ? Math.ceil(x / scale - 1e-9) : Math.floor(x / scale + 1e-9)) * scale;
}
const fmt = (x: number) => String(Number(x.toPrecision(2)));

const calibration = loadCalibration('deepseek-r1-h200');
process.stdout.write(
  '| scenario | bins | mean load ratio | p5 | median | p95 | calibrated band | wide band |\n',
);
process.stdout.write('|:--|--:|--:|--:|--:|--:|:--|:--|\n');
for (const [name, file, options] of scenarios) {
  const d = computeDemand(join(dir, file), { seed: 1, ...options }, calibration);
  const ratios: number[] = [];
  let prefill = 0;
  let decode = 0;
  for (let b = 0; b < d.prefillGroups.length; b++) {
    prefill += d.prefillLoad?.[b] ?? 0;
    decode += d.decodeLoad?.[b] ?? 0;
    const p = d.prefillGroups[b] as number;
    const q = d.decodeGroups[b] as number;
    if (p > 0 && q > 0) ratios.push(p / q);
  }
  ratios.sort((a, b) => a - b);
  const at = (f: number) => ratios[Math.floor(f * (ratios.length - 1))] as number;
  const [lo, hi] = [round2(at(0.05), false), round2(at(0.95), true)];
  process.stdout.write(
    `| ${name} | ${ratios.length} | ${(prefill / decode).toFixed(2)} | ${fmt(at(0.05))} | ${fmt(at(0.5))} | ${fmt(at(0.95))} | ${fmt(lo)}:${fmt(hi)} | ${fmt(round2(lo / 2, false))}:${fmt(round2(hi * 2, true))} |\n`,
  );
}
