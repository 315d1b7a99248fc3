/**
 * `kvpa backtest`: replays the cluster's own history (Prometheus query_range) through a policy and
 * compares what kvpa would have asked for with what the cluster had. Writes backtest.json and
 * timeline.svg; reads nothing but Prometheus and the PodAutoscaler file.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { signalName } from '../control/signals.ts';
import { PrometheusSignalSource } from '../observe/prometheus-source.ts';
import { renderTimelineSvg, type TimelinePanel } from '../report/svg-timeline.ts';
import {
  type BacktestSummary,
  savingsPercent,
  summarizeBacktest,
  type TimelinePoint,
} from './backtest-summary.ts';
import {
  blameFlag,
  checkGroupPools,
  checkMatchers,
  checkQueries,
  discoverHeads,
  forPool,
  type GroupCounts,
  headSelector,
  isoTime,
  PromHttp,
  parseGroups,
  parsePerPool,
  poolsFromFile,
  registrationFor,
  replay,
  type ToolPool,
} from './history.ts';
import {
  type Bounds,
  checkUrl,
  EXIT,
  listFlag,
  type Output,
  parseDuration,
  parseFlags,
  parseNumber,
  parseTime,
  policiesFlag,
  prepareOutDir,
  stringFlag,
  UsageError,
} from './shell.ts';

export const BACKTEST_USAGE = `Usage: kvpa backtest --prometheus URL --from TIME --to TIME -f FILE [--step DURATION] [--out DIR]
                     [--actual-groups-query [POOL=]PROMQL]... [--groups [POOL=]N,...]
                     [--head-selector [POOL=]MATCHERS]... [--policies DIR]

Replays [--from, --to] of Prometheus history through each pool's policy, deciding every tickSeconds,
and compares the recommendation with the groups the cluster actually had.
  TIME                  RFC3339 (2026-11-23T10:00:00Z), unix seconds, now, or now-DURATION (now-1h)
  --step DURATION       query_range resolution (default 1s, at most 1h); a sample is held until the next step
  --out DIR             where backtest.json and timeline.svg go (default ./kvpa-backtest)
  --head-selector M     as for kvpa recommend: PromQL matchers that pick the pool's head pods

Actual groups, first rule that applies:
  1. --actual-groups-query PROMQL: its value at each step, summed over series (e.g. a
     kube-state-metrics custom-resource gauge such as kube_leaderworkerset_replicas{...});
  2. --groups N: a constant baseline;
  3. otherwise the number of head pods with an engine series at each step (one pod = one group).
The actual count is taken as both the spec and the ready count at that step (past readiness is not in
Prometheus). Head pods are every pod seen in the range; a pod missing for part of it counts as a
missing group there (so it can cost quorum: the pool then holds, it never scales down on it). The
decider starts fresh at --from, as a controller started then would (in panic at the actual count for
one stable window); the windows are filled from one stable window before --from. The range is at most
7 days (the replay decides every second of it); backtest a longer history in 7-day pieces. An actual
count that is NaN, infinite or negative at a step is out of range there: unknown, never a number.
`;

/** The longest --from/--to range: the replay walks every second of it (604,800 steps at 7 days). */
export const MAX_BACKTEST_RANGE_SECONDS = 7 * 86400;
const STEP_BOUNDS: Bounds = { min: 1, max: 3600, integer: true, unit: 'seconds', cap: 'an hour', example: 1 };

export interface PoolBacktest {
  readonly key: string;
  readonly scaleTarget: string;
  readonly headPods: readonly string[];
  readonly actualFrom: string;
  /** Steps where the actual count read NaN, infinite or negative (counted as unknown there). */
  readonly actualOutOfRangeSteps: number;
  readonly summary: BacktestSummary;
  readonly timeline: readonly (TimelinePoint & {
    readonly signals: Readonly<Record<string, number | null>>;
    readonly summary?: string;
  })[];
}

export interface BacktestOptions {
  readonly prometheus: string;
  readonly fromSeconds: number;
  readonly toSeconds: number;
  readonly stepSeconds: number;
  readonly pools: readonly ToolPool[];
  readonly groups: ReadonlyMap<string, GroupCounts>;
  readonly actualQueries: ReadonlyMap<string, string>;
  readonly headSelectors: ReadonlyMap<string, string>;
}

const PROMETHEUS_LOOKBACK_SECONDS = 300;

/**
 * The value at the newest step at or before t (held like Prometheus's lookback); null before the first
 * and from an out-of-range step until the next good one.
 */
function heldAt(
  series: { sums: ReadonlyMap<number, number>; outOfRange: ReadonlySet<number> },
  fromSeconds: number,
  stepSeconds: number,
) {
  let lastKnown: number | null = null;
  let lastT = Number.NEGATIVE_INFINITY;
  return (t: number): number | null => {
    // Called with increasing t: walk the steps up to t once.
    for (let s = Math.max(fromSeconds, lastT + stepSeconds); s <= t; s += stepSeconds) {
      const v = series.sums.get(s);
      if (v !== undefined) lastKnown = v;
      else if (series.outOfRange.has(s)) lastKnown = null;
      lastT = s;
    }
    return lastKnown;
  };
}

export async function backtestPool(
  tp: ToolPool,
  options: BacktestOptions,
  source: PrometheusSignalSource,
  prom: PromHttp,
): Promise<PoolBacktest> {
  const p = tp.pool;
  const from = Math.ceil(options.fromSeconds);
  const to = Math.floor(options.toSeconds);
  const step = options.stepSeconds;
  const selector = headSelector(tp, forPool(options.headSelectors, p.name));
  const lookback =
    to - from + p.stableWindowSeconds + p.missingData.staleAfterSeconds + PROMETHEUS_LOOKBACK_SECONDS;
  const heads = await discoverHeads(prom, selector, to, lookback);
  if (heads.length === 0) {
    throw new Error(
      `no head pods in Prometheus for ${selector} between ${isoTime(to - lookback)} and ${isoTime(to)}: check --head-selector, the namespace and the time range`,
    );
  }
  const query = forPool(options.actualQueries, p.name);
  const constant = forPool(options.groups, p.name);
  let actualAt: (t: number) => number | null;
  let actualFrom: string;
  let actualOutOfRangeSteps = 0;
  if (query !== undefined) {
    const series = await blameFlag('--actual-groups-query', prom.rangeSum(query, from, to, step));
    actualOutOfRangeSteps = series.outOfRange.size;
    actualAt = heldAt(series, from, step);
    actualFrom = `--actual-groups-query ${query}`;
  } else if (constant !== undefined) {
    actualAt = () => constant.spec;
    actualFrom = `--groups ${constant.spec} (constant)`;
  } else {
    const q = `count(group by (namespace, pod) (${selector}))`;
    const series = await blameFlag('--head-selector', prom.rangeSum(q, from, to, step));
    actualOutOfRangeSteps = series.outOfRange.size;
    actualAt = heldAt(series, from, step);
    actualFrom = `head pods with an engine series: ${q}`;
  }
  const backfill = await source.backfill(registrationFor(tp, heads), from - p.stableWindowSeconds, to, step);
  // The actual count is both requested and ready; before the first known value, the head-pod count.
  const actualSeen = new Map<number, number | null>();
  const steps = replay(p, backfill, {
    startSeconds: from,
    endSeconds: to,
    groupsAt: (t) => {
      const actual = t >= from ? actualAt(t) : null;
      actualSeen.set(t, actual);
      const n = actual ?? heads.length;
      return { spec: n, ready: n };
    },
  });
  const timeline = steps.map((s) => {
    const e = s.decision.explanation;
    return {
      atSeconds: s.atSeconds,
      desiredGroups: s.decision.desiredGroups,
      actualGroups: actualSeen.get(s.atSeconds) ?? null,
      inPanic: s.decision.inPanic,
      missingData: e.signals.some((g) => g.state !== 'ok'),
      signals: s.totals,
      summary: e.summary,
    };
  });
  const ref = p.scaleTargetRef;
  return {
    key: tp.key,
    scaleTarget: `${ref.kind} ${ref.name}`,
    headPods: heads.map((h) => h.pod),
    actualFrom,
    actualOutOfRangeSteps,
    summary: summarizeBacktest(timeline, to),
    timeline,
  };
}

/** The SVG panel of one pool: every signal as groups-equivalent (total ÷ target), desired, actual. */
export function panelOf(tp: ToolPool, result: PoolBacktest): TimelinePanel {
  const series: TimelinePanel['series'][number][] = tp.pool.metrics.map((m) => {
    const name = signalName(m);
    return {
      name: `${name} ÷ ${m.target}`,
      kind: 'signal' as const,
      points: result.timeline.map((pt) => {
        const v = pt.signals[name];
        return { atSeconds: pt.atSeconds, value: v === null || v === undefined ? null : v / m.target };
      }),
    };
  });
  series.push(
    {
      name: 'desired (kvpa)',
      kind: 'desired',
      points: result.timeline.map((pt) => ({ atSeconds: pt.atSeconds, value: pt.desiredGroups })),
    },
    {
      name: 'actual',
      kind: 'actual',
      points: result.timeline.map((pt) => ({ atSeconds: pt.atSeconds, value: pt.actualGroups })),
    },
  );
  return {
    title: `${result.key} (${result.scaleTarget})`,
    fromSeconds: result.summary.fromSeconds,
    toSeconds: result.summary.toSeconds,
    series,
  };
}

function hours(h: number): string {
  return h >= 10 ? h.toFixed(1) : h.toPrecision(3);
}

const EVENTS_SHOWN = 20;

export function formatBacktest(r: PoolBacktest): string[] {
  const s = r.summary;
  const span = s.toSeconds - s.fromSeconds;
  const diff = savingsPercent(s.recommendedGroupHoursWhereActualKnown, s.actualGroupHours);
  const lines = [
    `${r.key}  (${r.scaleTarget}; head pods: ${r.headPods.join(', ')})`,
    `  range: ${isoTime(s.fromSeconds)} → ${isoTime(s.toSeconds)} (${span}s, ${s.decisions} decisions)`,
    `  actual groups from: ${r.actualFrom}`,
    ...(r.actualOutOfRangeSteps > 0
      ? [
          `  actual groups outOfRange (NaN, infinite or negative) at ${r.actualOutOfRangeSteps} steps: counted unknown there`,
        ]
      : []),
    `  scale events: ${s.scaleEvents.length} (${s.scaleUps} up, ${s.scaleDowns} down)`,
  ];
  for (const e of s.scaleEvents.slice(0, EVENTS_SHOWN)) {
    lines.push(`    ${isoTime(e.atSeconds)}  ${e.from} → ${e.to}${e.inPanic ? '  (panic)' : ''}`);
  }
  if (s.scaleEvents.length > EVENTS_SHOWN)
    lines.push(`    … ${s.scaleEvents.length - EVENTS_SHOWN} more in backtest.json`);
  lines.push(
    `  peak groups: recommended ${s.peakRecommendedGroups}, actual ${s.peakActualGroups ?? 'unknown'}`,
    `  group-hours: recommended ${hours(s.recommendedGroupHours)}, actual ${hours(s.actualGroupHours)}` +
      (diff === null
        ? ''
        : ` (recommended ${diff >= 0 ? '+' : ''}${diff.toFixed(1)} % over the seconds with a known actual)`) +
      (s.actualUnknownSeconds > 0 ? `; actual unknown for ${s.actualUnknownSeconds}s` : ''),
    `  time in panic: ${s.panicSeconds}s (${span > 0 ? ((100 * s.panicSeconds) / span).toFixed(1) : '0.0'} %)`,
    `  holds on missing data: ${s.missingDataDecisions} decisions (${s.missingDataSeconds}s)`,
  );
  return lines;
}

export async function runBacktest(
  argv: readonly string[],
  io: Output,
  nowMs: () => number = Date.now,
): Promise<number> {
  const { values } = parseFlags(argv, {
    prometheus: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    file: { type: 'string', short: 'f' },
    step: { type: 'string' },
    out: { type: 'string' },
    groups: { type: 'string' },
    'actual-groups-query': { type: 'string', multiple: true },
    'head-selector': { type: 'string', multiple: true },
    policies: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(BACKTEST_USAGE);
    return EXIT.ok;
  }
  const str = (k: string) => stringFlag(values, k);
  const prometheus = checkUrl(str('prometheus'), '--prometheus');
  const now = nowMs() / 1000;
  for (const flag of ['from', 'to', 'file'] as const) {
    if (str(flag) === undefined) {
      throw new UsageError(
        `--${flag} is required${flag === 'file' ? ' (-f FILE: a PodAutoscaler YAML)' : ' (RFC3339, unix seconds, now, or now-DURATION such as now-1h)'}`,
      );
    }
  }
  const fromSeconds = parseTime(str('from') ?? '', '--from', now);
  const toSeconds = parseTime(str('to') ?? '', '--to', now);
  if (!(toSeconds > fromSeconds)) {
    throw new UsageError(`--to (${isoTime(toSeconds)}) must be after --from (${isoTime(fromSeconds)})`);
  }
  if (toSeconds - fromSeconds > MAX_BACKTEST_RANGE_SECONDS) {
    throw new UsageError(
      `--from/--to: the range is ${Math.round(toSeconds - fromSeconds)} s; the cap is 7 days (${MAX_BACKTEST_RANGE_SECONDS} s) because the replay decides every second: split it into 7-day backtests`,
    );
  }
  const stepText = str('step');
  const stepSeconds =
    stepText === undefined
      ? 1
      : parseNumber(String(parseDuration(stepText, '--step')), '--step', STEP_BOUNDS);
  const groups =
    str('groups') === undefined ? new Map<string, GroupCounts>() : parseGroups(str('groups') ?? '');
  const loaded = poolsFromFile(str('file') ?? '', policiesFlag(values), 'default');
  if (loaded.errors.length > 0) {
    for (const e of loaded.errors) io.err(e);
    return EXIT.failed;
  }
  const outDir = prepareOutDir(str('out') ?? 'kvpa-backtest');
  const names = loaded.pools.map((p) => p.pool.name);
  checkGroupPools(groups, names);
  const actualQueries = parsePerPool(listFlag(values, 'actual-groups-query'), names);
  checkQueries(actualQueries);
  const headSelectors = parsePerPool(listFlag(values, 'head-selector'), names);
  checkMatchers(headSelectors, names);
  const options: BacktestOptions = {
    prometheus,
    fromSeconds,
    toSeconds,
    stepSeconds,
    pools: loaded.pools,
    groups,
    actualQueries,
    headSelectors,
  };
  const source = new PrometheusSignalSource({ address: options.prometheus });
  const prom = new PromHttp(options.prometheus);
  const results: PoolBacktest[] = [];
  const panels: TimelinePanel[] = [];
  let failed = 0;
  for (const tp of options.pools) {
    try {
      const r = await backtestPool(tp, options, source, prom);
      results.push(r);
      panels.push(panelOf(tp, r));
      if (results.length > 1) io.out('');
      for (const line of formatBacktest(r)) io.out(line);
    } catch (e) {
      failed++;
      io.err(`kvpa backtest: ${tp.key}: ${(e as Error).message}`);
    }
  }
  if (results.length > 0) {
    const json = path.join(outDir, 'backtest.json');
    const svg = path.join(outDir, 'timeline.svg');
    writeFileSync(
      json,
      `${JSON.stringify(
        {
          from: isoTime(options.fromSeconds),
          to: isoTime(options.toSeconds),
          stepSeconds: options.stepSeconds,
          pools: results,
        },
        null,
        1,
      )}\n`,
    );
    writeFileSync(svg, renderTimelineSvg(panels));
    io.out('');
    io.out(`wrote ${json} and ${svg}`);
  }
  return failed > 0 ? EXIT.failed : EXIT.ok;
}
