/**
 * A per-pool SVG timeline of one run, from the per-minute timeline rows: load, KV utilisation (decode),
 * queue, requested and ready groups, and SLO violations. Plain SVG, no dependencies: three stacked panels
 * sharing the time axis.
 */

import { escapeXml } from '../report/svg-timeline.ts';
import type { TimelineRow } from './fleet.ts';
import type { Pool } from './policies/types.ts';

interface Series {
  readonly label: string;
  readonly color: string;
  readonly values: readonly number[];
  readonly dashed?: boolean;
}

const WIDTH = 960;
const PANEL_HEIGHT = 150;
const LEFT = 70;
const RIGHT = 150;
const TOP = 56;
const GAP = 30;

function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(x));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= x) return step * magnitude;
  return 10 * magnitude;
}

function panel(title: string, series: readonly Series[], top: number, minutes: number, step = false): string {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const x = (i: number) => LEFT + (minutes <= 1 ? 0 : (i / (minutes - 1)) * plotWidth);
  const y = (v: number) => top + PANEL_HEIGHT - (v / max) * PANEL_HEIGHT;
  const parts: string[] = [];
  parts.push(`<text x="${LEFT}" y="${top - 8}" font-size="13" font-weight="bold">${escapeXml(title)}</text>`);
  parts.push(
    `<rect x="${LEFT}" y="${top}" width="${plotWidth}" height="${PANEL_HEIGHT}" fill="none" stroke="#bbb"/>`,
  );
  for (const fraction of [0, 0.5, 1]) {
    const v = max * fraction;
    parts.push(
      `<text x="${LEFT - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${Number(v.toPrecision(3))}</text>`,
    );
    if (fraction > 0 && fraction < 1) {
      parts.push(`<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    }
  }
  series.forEach((s, k) => {
    const points: string[] = [];
    s.values.forEach((v, i) => {
      if (step && i > 0) points.push(`${x(i).toFixed(1)},${y(s.values[i - 1] ?? 0).toFixed(1)}`);
      points.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    const dash = s.dashed ? ' stroke-dasharray="5,3"' : '';
    parts.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="1.5"${dash} points="${points.join(' ')}"/>`,
    );
    const ly = top + 14 + k * 16;
    parts.push(
      `<line x1="${WIDTH - RIGHT + 10}" x2="${WIDTH - RIGHT + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`,
    );
    parts.push(`<text x="${WIDTH - RIGHT + 35}" y="${ly}" font-size="11">${escapeXml(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** The SVG timeline of one pool of one run. */
export function timelineSvg(rows: readonly TimelineRow[], pool: Pool, title: string): string {
  const minutes = rows.length;
  const requested = rows.map((r) => (pool === 'prefill' ? r.prefillRequested : r.decodeRequested));
  const ready = rows.map((r) => (pool === 'prefill' ? r.prefillReady : r.decodeReady));
  const waiting = rows.map((r) => (pool === 'prefill' ? r.prefillWaiting : r.decodeWaiting));
  const panels = [
    panel(
      'Load and SLO misses (requests per minute)',
      [
        { label: 'arrivals', color: '#1f77b4', values: rows.map((r) => r.arrivals) },
        { label: 'SLO violations', color: '#d62728', values: rows.map((r) => r.sloViolations) },
      ],
      TOP,
      minutes,
    ),
    panel(
      `${pool} groups`,
      [
        { label: 'requested', color: '#ff7f0e', values: requested, dashed: true },
        { label: 'ready', color: '#2ca02c', values: ready },
      ],
      TOP + PANEL_HEIGHT + GAP,
      minutes,
      true,
    ),
    panel(
      pool === 'decode'
        ? 'Decode KV utilisation (mean over groups) and queue'
        : 'Prefill queue (waiting prompts)',
      pool === 'decode'
        ? [
            { label: 'KV use ×100 %', color: '#9467bd', values: rows.map((r) => r.decodeKvUsageMean * 100) },
            { label: 'waiting', color: '#8c564b', values: waiting },
          ]
        : [{ label: 'waiting', color: '#8c564b', values: waiting }],
      TOP + 2 * (PANEL_HEIGHT + GAP),
      minutes,
    ),
  ];
  const height = TOP + 3 * PANEL_HEIGHT + 2 * GAP + 40;
  const axisY = height - 18;
  const ticks: string[] = [];
  const plotWidth = WIDTH - LEFT - RIGHT;
  const tickEvery = minutes > 600 ? 120 : minutes > 120 ? 30 : 10;
  for (let m = 0; m < minutes; m += tickEvery) {
    const x = LEFT + (minutes <= 1 ? 0 : (m / (minutes - 1)) * plotWidth);
    ticks.push(
      `<text x="${x.toFixed(1)}" y="${axisY}" font-size="11" text-anchor="middle">${m >= 60 ? `${(m / 60).toFixed(m % 60 === 0 ? 0 : 1)} h` : `${m} min`}</text>`,
    );
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif">`,
    `<title>${escapeXml(title)}</title>`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${LEFT}" y="18" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...panels,
    ...ticks,
    '</svg>',
    '',
  ].join('\n');
}
