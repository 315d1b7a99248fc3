/**
 * The live view of `kvpa up`: each pool's groups, load and mode, and the decisions as they happen.
 * Pure rendering (a snapshot in, text out); the stack decides where the text goes (a redrawn terminal
 * screen, or appended lines when stdout is not a TTY).
 */

export interface PoolView {
  readonly name: string;
  /** LWS spec.replicas: the groups asked for. */
  readonly specGroups: number | null;
  /** LWS status.readyReplicas: groups whose every pod is ready. */
  readonly readyGroups: number | null;
  /** From the PodAutoscaler status; null until the first decision. */
  readonly mode: 'Stable' | 'Panic' | null;
  readonly recommendedGroups: number | null;
  /** Mean over the pool's ready engines; null when no engine serves. */
  readonly kvCacheUsage: number | null;
  readonly requestsWaiting: number | null;
  readonly requestsRunning: number | null;
  readonly decisionSummary: string | null;
}

export interface StackView {
  readonly elapsedSeconds: number;
  readonly loadRequestsPerSecond: number;
  readonly pools: readonly PoolView[];
  /** Newest last: "12:03:04 decode ScaledUp 1 → 2 groups (panic) …". */
  readonly recentEvents: readonly string[];
  readonly footer?: string;
}

const dash = '—';

function num(x: number | null, digits = 0): string {
  return x === null ? dash : x.toFixed(digits);
}

function pct(x: number | null): string {
  return x === null ? dash : `${Math.round(x * 100)} %`;
}

function pad(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

function mmss(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** A fixed-width screen: header, one row per pool, each pool's last decision, recent events. */
export function renderView(view: StackView, width = 120): string {
  const lines: string[] = [];
  lines.push(
    `kvpa up · ${mmss(view.elapsedSeconds)} elapsed · load ${view.loadRequestsPerSecond.toFixed(1)} req/s`,
  );
  lines.push('');
  const header = ['pool', 'ready/asked', 'kvpa wants', 'mode', 'KV use', 'waiting', 'running'];
  const widths = [10, 13, 12, 8, 8, 9, 9];
  lines.push(header.map((h, i) => pad(h, widths[i] ?? 8)).join(''));
  for (const p of view.pools) {
    const cells = [
      p.name,
      `${num(p.readyGroups)}/${num(p.specGroups)}`,
      num(p.recommendedGroups),
      p.mode ?? dash,
      pct(p.kvCacheUsage),
      num(p.requestsWaiting),
      num(p.requestsRunning),
    ];
    lines.push(cells.map((c, i) => pad(c, widths[i] ?? 8)).join(''));
  }
  lines.push('');
  for (const p of view.pools) {
    lines.push(clip(`${p.name}: ${p.decisionSummary ?? 'no decision yet'}`, width));
  }
  lines.push('', 'recent decisions:');
  const events = view.recentEvents.slice(-8);
  if (events.length === 0) lines.push('  (none yet)');
  for (const e of events) lines.push(clip(`  ${e}`, width));
  if (view.footer !== undefined) lines.push('', view.footer);
  return `${lines.join('\n')}\n`;
}

function clip(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}

/** One line per pool for logs (non-TTY output): no redraw, so it must read well appended. */
export function renderLine(view: StackView): string {
  const pools = view.pools
    .map(
      (p) =>
        `${p.name} ${num(p.readyGroups)}/${num(p.specGroups)} ${p.mode ?? dash} kv ${pct(p.kvCacheUsage)} q ${num(p.requestsWaiting)}`,
    )
    .join(' | ');
  return `[${mmss(view.elapsedSeconds)}] load ${view.loadRequestsPerSecond.toFixed(1)}/s | ${pools}`;
}
