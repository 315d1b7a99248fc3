/**
 * Renders the markdown tables of bench/RESULTS.md from the compare.json files that bench/compare-all.sh
 * writes: a summary (SLO attainment / GPU-hours per scenario) and one full table per scenario.
 *
 *   npx tsx bench/compare-tables.ts out > out/tables.md
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

interface Row {
  name: string;
  sloAttainment: number;
  gpuHours: number;
  ttftP99Seconds: number;
  tpotP99Seconds: number;
  costPerMillionOutputTokens: number;
  scaleEvents: number;
  flaps: number;
  requests: { arrived: number; dropped: number; abortedByScaleDown?: number };
  oracle?: { targetSloAttainment: number; landed: boolean; runs: number };
}
interface Compare {
  trace: string;
  policies: Row[];
}

const dir = process.argv[2] ?? 'out';
const scenarios = readdirSync(dir)
  .filter((d) => existsSync(path.join(dir, d, 'compare.json')))
  .sort();
if (scenarios.length === 0) {
  process.stderr.write(`no <scenario>/compare.json under ${dir}; run bash bench/compare-all.sh first\n`);
  process.exit(2);
}
const load = (s: string) => JSON.parse(readFileSync(path.join(dir, s, 'compare.json'), 'utf8')) as Compare;
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const gpuh = (x: number) => Math.round(x).toLocaleString('en-US');
const REACTIVE = ['knative', 'aibrix-kpa', 'aibrix-apa', 'hpa'];

const out: string[] = [];
out.push(
  '| scenario | kvpa | best reactive peer | static | oracle (target) | kvpa leads the reactive peers? | kvpa within 0.5 points of static for fewer GPU-h? |',
);
out.push('|:--|--:|--:|--:|--:|:--|:--|');
for (const s of scenarios) {
  const c = load(s);
  const by = new Map(c.policies.map((p) => [p.name, p]));
  const kvpa = by.get('kvpa');
  const peers = c.policies.filter((p) => REACTIVE.includes(p.name));
  const best = peers.reduce<Row | undefined>(
    (a, p) => (a === undefined || p.sloAttainment > a.sloAttainment ? p : a),
    undefined,
  );
  const cell = (p: Row | undefined) => (p ? `${pct(p.sloAttainment)} / ${gpuh(p.gpuHours)}` : '—');
  // Leads: at least the best peer's SLO, or within 0.5 points of it for fewer GPU-hours.
  const leads =
    kvpa !== undefined && best !== undefined
      ? kvpa.sloAttainment >= best.sloAttainment ||
        (kvpa.sloAttainment >= best.sloAttainment - 0.005 && kvpa.gpuHours < best.gpuHours)
      : false;
  const stat = by.get('static');
  const beatsStatic =
    kvpa !== undefined && stat !== undefined
      ? kvpa.sloAttainment >= stat.sloAttainment - 0.005 && kvpa.gpuHours < stat.gpuHours
      : false;
  const oracle = by.get('oracle');
  const target = oracle?.oracle
    ? ` (${pct(oracle.oracle.targetSloAttainment)}${oracle.oracle.landed ? '' : ', **not landed**'})`
    : '';
  out.push(
    `| ${s} | ${cell(kvpa)} | ${best?.name ?? '—'} ${cell(best)} | ${cell(stat)} | ${cell(oracle)}${target} | ${leads ? 'yes' : '**no**'} | ${beatsStatic ? 'yes' : '**no**'} |`,
  );
}
out.push('');
for (const s of scenarios) {
  const c = load(s);
  out.push(`##### ${s} (\`out/${s}\`)`, '');
  out.push(`${(c.policies[0]?.requests.arrived ?? 0).toLocaleString('en-US')} requests.`, '');
  out.push(
    '| policy | SLO attainment | GPU-h | TTFT p99 (s) | TPOT p99 (ms) | $ / M output tokens | scale events | flaps | dropped | of which aborted by scale-down |',
  );
  out.push('|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const p of c.policies) {
    out.push(
      `| ${p.name === 'kvpa' ? '**kvpa**' : p.name} | ${(p.sloAttainment * 100).toFixed(2)} % | ${p.gpuHours.toFixed(1)} | ${p.ttftP99Seconds.toFixed(2)} | ${(p.tpotP99Seconds * 1000).toFixed(1)} | ${p.costPerMillionOutputTokens.toFixed(2)} | ${p.scaleEvents} | ${p.flaps} | ${p.requests.dropped} | ${p.requests.abortedByScaleDown ?? '—'} |`,
    );
  }
  out.push('');
}
process.stdout.write(`${out.join('\n')}\n`);
