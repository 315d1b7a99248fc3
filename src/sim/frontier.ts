/**
 * Frontiers: each policy swept over its main knobs, as a competent user would tune it, and judged by the
 * cheapest point that reaches an SLO level. Pure: the sweep plan, the Pareto frontier, the GPU-hours needed at
 * an SLO level and the table. Running the sweep is frontier-run.ts; the picture is frontier-svg.ts.
 *
 * The sweep is one knob at a time through the policy's defaults: `target` (× the default per-group target) over
 * TARGET_SCALES (always with 1, the defaults), then `delay` (its scale-down hold, seconds) over the policy's
 * delay list; a policy without knobs (static, the oracle) is one point.
 */
import { type Knobs, knobbedName, POLICY_KNOBS } from './policies/knobs.ts';

/** Target multipliers: below 1 keeps groups emptier (more GPUs), above 1 fuller. */
export const TARGET_SCALES: readonly number[] = [0.5, 0.6, 0.7, 0.85, 1, 1.2, 1.5, 2];

/** Scale-down holds in seconds; Dynamo's is its adjustment interval (so never 0). */
const DELAYS_SECONDS: readonly number[] = [0, 60, 180, 300, 600, 900, 1200, 1800];
const DYNAMO_INTERVALS_SECONDS: readonly number[] = [30, 60, 90, 120, 180, 300, 600, 900];

export interface FrontierJob {
  readonly policy: string;
  readonly knobs: Knobs;
  /** The name runSimulation takes (`knative@target=0.8`). */
  readonly runName: string;
}

export interface FrontierPoint {
  readonly policy: string;
  readonly knobs: Knobs;
  readonly sloAttainment: number;
  readonly gpuHours: number;
}

/** `count` values spread evenly over a list (its ends included); the whole list when count ≥ its length. */
export function spread(values: readonly number[], count: number): number[] {
  if (count >= values.length) return [...values];
  if (count <= 1) return [values[Math.floor(values.length / 2)] as number];
  const out: number[] = [];
  for (let i = 0; i < count; i++)
    out.push(values[Math.round((i * (values.length - 1)) / (count - 1))] as number);
  return [...new Set(out)];
}

/** The runs of one policy's sweep with `points` values per knob. */
export function sweepJobs(policy: string, points = 8): FrontierJob[] {
  const knobs = POLICY_KNOBS[policy];
  if (knobs === undefined || knobs.length === 0) return [{ policy, knobs: {}, runName: policy }];
  const jobs: FrontierJob[] = [];
  const add = (k: Knobs) => jobs.push({ policy, knobs: k, runName: knobbedName(policy, k) });
  // target 1 is the policy's defaults: run under its plain name, so the default point is in compare.json too.
  if (knobs.includes('target')) {
    const targets = [...new Set([...spread(TARGET_SCALES, points), 1])].sort((a, b) => a - b);
    for (const target of targets) add(target === 1 ? {} : { target });
  }
  if (knobs.includes('delay')) {
    const delays = policy.startsWith('dynamo') ? DYNAMO_INTERVALS_SECONDS : DELAYS_SECONDS;
    for (const delay of spread(delays, points)) add({ delay });
  }
  return jobs;
}

/** A policy's Pareto frontier: the points no other point beats on both SLO (higher) and GPU-hours (lower). */
export function paretoFrontier(points: readonly FrontierPoint[]): FrontierPoint[] {
  const sorted = [...points].sort((a, b) => a.gpuHours - b.gpuHours || b.sloAttainment - a.sloAttainment);
  const out: FrontierPoint[] = [];
  let best = Number.NEGATIVE_INFINITY;
  for (const p of sorted) {
    if (p.sloAttainment > best) {
      out.push(p);
      best = p.sloAttainment;
    }
  }
  return out;
}

/** The fewest GPU-hours among points reaching `level` (a fraction); undefined when none does. */
export function gpuHoursAtSlo(points: readonly FrontierPoint[], level: number): FrontierPoint | undefined {
  let best: FrontierPoint | undefined;
  for (const p of points) {
    if (p.sloAttainment + 1e-12 >= level && (best === undefined || p.gpuHours < best.gpuHours)) best = p;
  }
  return best;
}

/** The SLO levels of the table: static provisioning's attainment, 99 % and 95 %. */
export function sloLevels(staticAttainment: number | undefined): { label: string; level: number }[] {
  const levels = [
    { label: '99 %', level: 0.99 },
    { label: '95 %', level: 0.95 },
  ];
  if (staticAttainment === undefined || !Number.isFinite(staticAttainment)) return levels;
  return [{ label: `static's ${(100 * staticAttainment).toFixed(2)} %`, level: staticAttainment }, ...levels];
}

/** The frontier table: per policy, the fewest GPU-hours reaching each level (with the knobs), or "not reached". */
export function formatFrontierTable(points: readonly FrontierPoint[]): string {
  const policies = [...new Set(points.map((p) => p.policy))];
  const staticPoint = points.find((p) => p.policy === 'static');
  const levels = sloLevels(staticPoint?.sloAttainment);
  const header = ['policy', ...levels.map((l) => `GPU-h at ${l.label}`), 'best SLO %', 'runs'];
  const rows = policies.map((policy) => {
    const own = points.filter((p) => p.policy === policy);
    const cells = levels.map((l) => {
      const hit = gpuHoursAtSlo(own, l.level);
      if (hit === undefined) return 'not reached';
      const knobs = knobbedName('', hit.knobs).replace(/^@/, '');
      return `${hit.gpuHours.toFixed(1)}${knobs === '' ? '' : ` (${knobs})`}`;
    });
    const best = Math.max(...own.map((p) => p.sloAttainment));
    return [policy, ...cells, (100 * best).toFixed(2), String(own.length)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}
