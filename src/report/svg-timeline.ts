/**
 * A hand-written SVG timeline for `kvpa backtest`: one panel per pool, all series in groups on one
 * axis. Signals are drawn as groups-equivalent (pool total ÷ target per group), so a signal line
 * above the desired line means the policy wanted more than it got (rate limit, bounds, delay).
 * Pure: data in, a string out.
 */

export interface SeriesPoint {
  readonly atSeconds: number;
  /** null: no usable value at this second (drawn as a gap, never as zero). */
  readonly value: number | null;
}

export interface TimelineSeries {
  readonly name: string;
  readonly kind: 'signal' | 'desired' | 'actual';
  readonly points: readonly SeriesPoint[];
}

export interface TimelinePanel {
  readonly title: string;
  readonly fromSeconds: number;
  readonly toSeconds: number;
  readonly series: readonly TimelineSeries[];
  /**
   * How the time axis reads: `utc` for unix seconds (backtest: wall-clock history), `minutes` for
   * seconds since the start of a run (kvpa up), labelled as minutes since `fromSeconds`.
   */
  readonly timeAxis?: 'utc' | 'minutes';
}

const WIDTH = 960;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 56, right: 180, top: 34, bottom: 34 };
const MAX_SIGNAL_POINTS = 2000;
const SIGNAL_COLOURS = ['#1f77b4', '#9467bd', '#17becf', '#8c564b'];
const COLOUR = { desired: '#d62728', actual: '#2ca02c' } as const;

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** Every k-th point, so a day at 1 s stays a drawable path; gaps (null) are always kept. */
export function thin(points: readonly SeriesPoint[], max: number): SeriesPoint[] {
  if (points.length <= max) return [...points];
  const stride = Math.ceil(points.length / max);
  return points.filter((p, i) => p.value === null || i % stride === 0 || i === points.length - 1);
}

/** Keeps only the points where a step series changes value (and the last one). */
export function changes(points: readonly SeriesPoint[]): SeriesPoint[] {
  return points.filter((p, i) => i === 0 || i === points.length - 1 || p.value !== points[i - 1]?.value);
}

function linePath(
  points: readonly SeriesPoint[],
  x: (t: number) => number,
  y: (v: number) => number,
): string {
  let d = '';
  let pen = false;
  for (const p of points) {
    if (p.value === null) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${fmt(x(p.atSeconds))} ${fmt(y(p.value))} `;
    pen = true;
  }
  return d.trim();
}

function stepPath(
  points: readonly SeriesPoint[],
  x: (t: number) => number,
  y: (v: number) => number,
  endSeconds: number,
): string {
  let d = '';
  let last: number | null = null;
  for (const p of points) {
    if (p.value === null) {
      if (last !== null) d += `H${fmt(x(p.atSeconds))} `;
      last = null;
      continue;
    }
    d +=
      last === null
        ? `M${fmt(x(p.atSeconds))} ${fmt(y(p.value))} `
        : `H${fmt(x(p.atSeconds))} V${fmt(y(p.value))} `;
    last = p.value;
  }
  if (last !== null) d += `H${fmt(x(endSeconds))}`;
  return d.trim();
}

function clock(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** Tick spacings, in seconds, from which the axis picks the first giving at most 8 ticks. */
const TICK_STEPS_SECONDS = [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];

/**
 * Time-axis ticks at a round spacing: `minutes` labels offsets from the start (`0`, `5`, `10` min);
 * `utc` labels wall-clock times of day (`10:05`), with the full RFC3339 time under both ends.
 */
export function timeTicks(
  fromSeconds: number,
  toSeconds: number,
  axis: 'utc' | 'minutes',
): { atSeconds: number; label: string }[] {
  const span = Math.max(1, toSeconds - fromSeconds);
  const step = TICK_STEPS_SECONDS.find((s) => span / s <= 8) ?? Math.ceil(span / 8 / 86400) * 86400;
  const ticks: { atSeconds: number; label: string }[] = [];
  if (axis === 'minutes') {
    for (let t = 0; t <= span + 1e-9; t += step) {
      const m = t / 60;
      ticks.push({ atSeconds: fromSeconds + t, label: Number.isInteger(m) ? String(m) : m.toFixed(1) });
    }
    return ticks;
  }
  for (let t = Math.ceil(fromSeconds / step) * step; t <= toSeconds; t += step) {
    const iso = new Date(t * 1000).toISOString();
    ticks.push({ atSeconds: t, label: step < 60 ? iso.slice(11, 19) : iso.slice(11, 16) });
  }
  return ticks;
}

function panel(p: TimelinePanel, top: number): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const span = Math.max(1, p.toSeconds - p.fromSeconds);
  let maxValue = 1;
  for (const s of p.series)
    for (const pt of s.points) if (pt.value !== null && pt.value > maxValue) maxValue = pt.value;
  // Whole-group gridlines: at most 6 of them, on a multiple of the tick step.
  const tickStep = Math.max(1, Math.ceil((maxValue * 1.1) / 5));
  const yMax = tickStep * Math.ceil((maxValue * 1.1) / tickStep);
  const x = (t: number) => MARGIN.left + ((t - p.fromSeconds) / span) * plotW;
  const y = (v: number) => top + MARGIN.top + plotH - (v / yMax) * plotH;
  const out: string[] = [];
  out.push(`<g class="panel" data-title="${escapeXml(p.title)}">`);
  out.push(
    `<text x="${MARGIN.left}" y="${top + 20}" font-size="14" font-weight="bold">${escapeXml(p.title)}</text>`,
  );
  for (let v = 0; v <= yMax; v += tickStep) {
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${fmt(y(v))}" y2="${fmt(y(v))}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${fmt(y(v) + 4)}" font-size="11" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  const bottom = top + MARGIN.top + plotH;
  const axis = p.timeAxis ?? 'utc';
  for (const tick of timeTicks(p.fromSeconds, p.toSeconds, axis)) {
    out.push(
      `<line x1="${fmt(x(tick.atSeconds))}" x2="${fmt(x(tick.atSeconds))}" y1="${bottom}" y2="${bottom + 4}" stroke="#888"/>`,
      `<text x="${fmt(x(tick.atSeconds))}" y="${bottom + 15}" font-size="10" text-anchor="middle">${tick.label}</text>`,
    );
  }
  const caption =
    axis === 'minutes'
      ? `<text x="${MARGIN.left + plotW / 2}" y="${bottom + 29}" font-size="11" text-anchor="middle">minutes since the start</text>`
      : `<text x="${MARGIN.left}" y="${bottom + 29}" font-size="11">${clock(p.fromSeconds)}</text><text x="${MARGIN.left + plotW}" y="${bottom + 29}" font-size="11" text-anchor="end">${clock(p.toSeconds)} (UTC)</text>`;
  out.push(
    caption,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${bottom}" y2="${bottom}" stroke="#888"/>`,
    `<text x="14" y="${top + MARGIN.top + plotH / 2}" font-size="11" transform="rotate(-90 14 ${top + MARGIN.top + plotH / 2})" text-anchor="middle">groups</text>`,
  );
  let legendY = top + MARGIN.top + 6;
  let signalIndex = 0;
  for (const s of p.series) {
    const colour =
      s.kind === 'signal'
        ? (SIGNAL_COLOURS[signalIndex++ % SIGNAL_COLOURS.length] ?? '#1f77b4')
        : COLOUR[s.kind];
    const d =
      s.kind === 'signal'
        ? linePath(thin(s.points, MAX_SIGNAL_POINTS), x, y)
        : stepPath(changes(s.points), x, y, p.toSeconds);
    const style =
      s.kind === 'signal'
        ? `stroke="${colour}" stroke-width="1.2" stroke-opacity="0.8"`
        : `stroke="${colour}" stroke-width="2.2"${s.kind === 'actual' ? ' stroke-dasharray="6 3"' : ''}`;
    out.push(
      `<path class="series series-${s.kind}" data-name="${escapeXml(s.name)}" fill="none" ${style} d="${d}"/>`,
      `<line x1="${WIDTH - MARGIN.right + 12}" x2="${WIDTH - MARGIN.right + 32}" y1="${legendY}" y2="${legendY}" ${style}/>`,
      `<text x="${WIDTH - MARGIN.right + 38}" y="${legendY + 4}" font-size="11">${escapeXml(s.name)}</text>`,
    );
    legendY += 18;
  }
  out.push('</g>');
  return out.join('\n');
}

export function renderTimelineSvg(panels: readonly TimelinePanel[]): string {
  const height = Math.max(1, panels.length) * PANEL_HEIGHT;
  const body = panels.map((p, i) => panel(p, i * PANEL_HEIGHT)).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">
<title>${escapeXml(panels.map((p) => p.title).join('; ') || 'timeline')}</title>
<rect width="${WIDTH}" height="${height}" fill="white"/>
${body}
</svg>
`;
}
