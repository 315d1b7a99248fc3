/**
 * The end-of-run report of `kvpa up`: an SVG timeline per pool (what each signal wanted, what kvpa
 * asked for, what became ready) and a KPI table. The stack records one sample per second while it runs;
 * this module only turns samples into files. Pure apart from `writeReport`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderTimelineSvg, type TimelinePanel, type TimelineSeries } from '../report/svg-timeline.ts';
import type { Quantiles } from '../sim/kpi.ts';

export interface PoolSample {
  readonly specGroups: number | null;
  readonly readyGroups: number | null;
  readonly recommendedGroups: number | null;
  readonly mode: 'Stable' | 'Panic' | null;
  readonly kvCacheUsage: number | null;
  readonly requestsWaiting: number | null;
  /** Each signal's stable want in groups, as the controller last explained it (null: not usable). */
  readonly signalWants: Readonly<Record<string, number | null>>;
}

export interface StackSample {
  readonly atSeconds: number;
  readonly loadRequestsPerSecond: number;
  readonly pools: Readonly<Record<string, PoolSample>>;
}

export interface RunKpis {
  readonly arrived: number;
  readonly completed: number;
  readonly dropped: number;
  readonly ttftSeconds: Quantiles;
  readonly tpotSeconds: Quantiles;
  /** NaN before any request finished. */
  readonly sloAttainment: number;
}

export interface PoolSummary {
  readonly name: string;
  readonly scaleUps: number;
  readonly scaleDowns: number;
  readonly peakGroups: number;
  /** Seconds in panic mode, from the sampled PodAutoscaler status. */
  readonly panicSeconds: number;
  readonly gpuHours: number;
}

/** Scale events are changes of the target's spec count between samples; GPU-hours integrate it. */
export function summarizePools(
  samples: readonly StackSample[],
  gpusPerGroup: Readonly<Record<string, number>>,
) {
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.pools)))];
  return names.map((name): PoolSummary => {
    let ups = 0;
    let downs = 0;
    let peak = 0;
    let panic = 0;
    let gpuSeconds = 0;
    let previous: number | null = null;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      const p = s?.pools[name];
      if (s === undefined || p === undefined) continue;
      const spec = p.specGroups;
      if (spec !== null) {
        if (previous !== null && spec > previous) ups++;
        if (previous !== null && spec < previous) downs++;
        previous = spec;
        peak = Math.max(peak, spec);
      }
      const next = samples[i + 1];
      const dt = next === undefined ? 0 : next.atSeconds - s.atSeconds;
      if (p.mode === 'Panic') panic += dt;
      gpuSeconds += (spec ?? 0) * (gpusPerGroup[name] ?? 0) * dt;
    }
    return {
      name,
      scaleUps: ups,
      scaleDowns: downs,
      peakGroups: peak,
      panicSeconds: panic,
      gpuHours: gpuSeconds / 3600,
    };
  });
}

/** One panel per pool: the signals' wants, kvpa's recommendation, the target's spec and ready groups. */
export function timelinePanels(samples: readonly StackSample[], title: string): TimelinePanel[] {
  if (samples.length === 0) return [];
  const from = samples[0]?.atSeconds ?? 0;
  const to = samples[samples.length - 1]?.atSeconds ?? from;
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.pools)))];
  return names.map((name) => {
    const signalNames = [...new Set(samples.flatMap((s) => Object.keys(s.pools[name]?.signalWants ?? {})))];
    const series: TimelineSeries[] = [
      ...signalNames.map(
        (sig): TimelineSeries => ({
          name: `${sig} wants`,
          kind: 'signal',
          points: samples.map((s) => ({
            atSeconds: s.atSeconds,
            value: s.pools[name]?.signalWants[sig] ?? null,
          })),
        }),
      ),
      {
        name: 'LWS spec (asked)',
        kind: 'desired',
        points: samples.map((s) => ({ atSeconds: s.atSeconds, value: s.pools[name]?.specGroups ?? null })),
      },
      {
        name: 'ready groups',
        kind: 'actual',
        points: samples.map((s) => ({ atSeconds: s.atSeconds, value: s.pools[name]?.readyGroups ?? null })),
      },
    ];
    // Sample times are seconds since the stack started: label them as minutes, not as 1970 dates.
    return { title: `${title} · ${name}`, fromSeconds: from, toSeconds: to, series, timeAxis: 'minutes' };
  });
}

function fmtSeconds(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : '—';
}

export function kpiMarkdown(
  kpis: RunKpis,
  pools: readonly PoolSummary[],
  settings: Readonly<Record<string, string>>,
) {
  const lines = ['# kvpa up: run report', ''];
  for (const [k, v] of Object.entries(settings)) lines.push(`- ${k}: ${v}`);
  lines.push('', '## Requests', '');
  lines.push(
    '| arrived | completed | dropped | SLO attainment | TTFT p50 / p90 / p99 (s) | TPOT p50 / p90 / p99 (ms) |',
  );
  lines.push('|--:|--:|--:|--:|--:|--:|');
  const slo = Number.isFinite(kpis.sloAttainment) ? `${(kpis.sloAttainment * 100).toFixed(2)} %` : '—';
  const ms = (x: number) => (Number.isFinite(x) ? (x * 1000).toFixed(1) : '—');
  lines.push(
    `| ${kpis.arrived} | ${kpis.completed} | ${kpis.dropped} | ${slo} | ${fmtSeconds(kpis.ttftSeconds.p50)} / ${fmtSeconds(kpis.ttftSeconds.p90)} / ${fmtSeconds(kpis.ttftSeconds.p99)} | ${ms(kpis.tpotSeconds.p50)} / ${ms(kpis.tpotSeconds.p90)} / ${ms(kpis.tpotSeconds.p99)} |`,
  );
  lines.push('', '## Pools', '');
  lines.push('| pool | scale-ups | scale-downs | peak groups | seconds in panic | GPU-hours (spec × GPUs) |');
  lines.push('|:--|--:|--:|--:|--:|--:|');
  for (const p of pools) {
    lines.push(
      `| ${p.name} | ${p.scaleUps} | ${p.scaleDowns} | ${p.peakGroups} | ${Math.round(p.panicSeconds)} | ${p.gpuHours.toFixed(2)} |`,
    );
  }
  lines.push('', 'Timelines: `timeline.svg`. Scaling events: `events.log`.', '');
  return lines.join('\n');
}

/** Writes report.md, timeline.svg, events.log and samples.json into `dir`; returns the paths. */
export function writeReport(
  dir: string,
  input: {
    samples: readonly StackSample[];
    kpis: RunKpis;
    events: readonly string[];
    gpusPerGroup: Readonly<Record<string, number>>;
    settings: Readonly<Record<string, string>>;
  },
): { report: string; timeline: string } {
  mkdirSync(dir, { recursive: true });
  const pools = summarizePools(input.samples, input.gpusPerGroup);
  const report = path.join(dir, 'report.md');
  const timeline = path.join(dir, 'timeline.svg');
  writeFileSync(report, kpiMarkdown(input.kpis, pools, input.settings));
  writeFileSync(timeline, renderTimelineSvg(timelinePanels(input.samples, 'kvpa up')));
  writeFileSync(path.join(dir, 'events.log'), `${input.events.join('\n')}\n`);
  writeFileSync(path.join(dir, 'samples.json'), `${JSON.stringify(input.samples)}\n`);
  return { report, timeline };
}
