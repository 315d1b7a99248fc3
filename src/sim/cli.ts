/**
 * `kvpa simulate`: replay a trace through the simulated fleet under one policy, or compare several.
 *
 *   kvpa simulate --trace FILE --policy NAME [options] --out DIR
 *     → DIR/summary.json, DIR/timeline-{prefill,decode}.svg
 *   kvpa simulate --trace FILE --compare a,b,c [options] --out DIR
 *     → DIR/compare.json, DIR/<policy>.json, DIR/<policy>-{prefill,decode}.svg
 *
 * Exit codes: 0 done, 2 usage or input error (the message names the flag or the file and line).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCalibration } from './calibration.ts';
import { type FrontierJob, formatFrontierTable, sweepJobs } from './frontier.ts';
import { frontierProgressBar, runFrontier } from './frontier-run.ts';
import { frontierSvg } from './frontier-svg.ts';
import { isPresetFile, policyNames } from './policies/index.ts';
import { knobbedFactory, parseKnobbedName } from './policies/knobs.ts';
import { loadPresetFile } from './policies/kvpa.ts';
import {
  defaultSettings,
  demandFor,
  runSimulation,
  type SimulationSettings,
  type SimulationSummary,
} from './run.ts';
import { timelineSvg } from './svg.ts';
import { TraceError } from './trace.ts';

const USAGE = `usage: kvpa simulate --trace FILE (--policy NAME|FILE | --compare A,B,…|all) --out DIR [options]
  (a FILE is a ScalingPolicy preset in YAML: kvpa runs with it, resolved per pool like policies/;
   NAME@target=X+delay=S sets a policy's knobs: target × its default, scale-down hold S seconds)

options:
  --rate-multiplier X     arrivals per source arrival (default 1)
  --time-compression C    divide trace time by C (default 1)
  --output-scale K        multiply every output length by K (default 1; R1-like reasoning: 10)
  --startup-minutes M     group cold start, request to serving (default: the calibration's, 10)
  --seed N                seed for trace expansion and copies (default 1)
  --calibration NAME|FILE deepseek-r1-h200 (default) or deepseek-r1-h100, or a YAML file
  --scrape-interval S     deliver metrics at Prometheus scrapes every S seconds (default 0: direct)
  --from-seconds T        start the replay at trace time T (after compression)
  --until-seconds T       stop the replay at trace time T (after compression)
  --max-groups N          per-pool cap on groups (default 64)
  --ttft-slo S            TTFT SLO in seconds (default 2)
  --tpot-slo S            TPOT SLO in seconds (default 0.08)
  --usd-per-gpu-hour P    price for the cost KPI (default 2)
  --frontier              sweep each policy over its knobs (target, scale-down hold) and report the
                          fewest GPU-hours reaching static's SLO, 99 % and 95 % (frontier.svg, compare.json)
  --frontier-points N     values per knob in the sweep (default 8)
  --workers N             worker threads for --frontier (default: one per core)

policies: ${policyNames.join(', ')}`;

class UsageError extends Error {}

function numberFlag(
  values: Record<string, unknown>,
  name: string,
  check: (x: number) => boolean,
  rule: string,
) {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const x = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(x) || !check(x)) {
    throw new UsageError(`--${name} ${JSON.stringify(raw)}: must be ${rule}`);
  }
  return x;
}

/** Parses argv (after `simulate`) into settings and the policies to run. */
export function parseSimulateArgs(argv: readonly string[]): {
  settings: SimulationSettings;
  policies: string[];
  compare: boolean;
  outDirectory: string;
  frontier: { readonly points: number; readonly workers: number | undefined } | undefined;
} {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: false,
      options: {
        trace: { type: 'string' },
        policy: { type: 'string' },
        compare: { type: 'string' },
        out: { type: 'string' },
        'rate-multiplier': { type: 'string' },
        'time-compression': { type: 'string' },
        'output-scale': { type: 'string' },
        'startup-minutes': { type: 'string' },
        seed: { type: 'string' },
        calibration: { type: 'string' },
        'scrape-interval': { type: 'string' },
        'from-seconds': { type: 'string' },
        'until-seconds': { type: 'string' },
        'max-groups': { type: 'string' },
        'ttft-slo': { type: 'string' },
        'tpot-slo': { type: 'string' },
        'usd-per-gpu-hour': { type: 'string' },
        frontier: { type: 'boolean' },
        'frontier-points': { type: 'string' },
        workers: { type: 'string' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values as Record<string, string | undefined>;
  if (v.trace === undefined) throw new UsageError('--trace FILE is required');
  if (v.out === undefined) throw new UsageError('--out DIR is required');
  if ((v.policy === undefined) === (v.compare === undefined)) {
    throw new UsageError('give exactly one of --policy NAME or --compare A,B,…');
  }
  const named = v.compare === 'all' ? policyNames.join(',') : (v.compare ?? v.policy ?? '');
  const policies = named
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  for (const p of policies) checkPolicyName(p);
  if (policies.length === 0) throw new UsageError('no policy named');
  for (const p of policies) {
    if (!isPresetFile(p)) continue;
    try {
      loadPresetFile(p); // fail before the run, naming the file, line and field
    } catch (error) {
      throw new UsageError(`--policy ${p}: ${(error as Error).message}`);
    }
  }
  const positive = (x: number) => x > 0;
  const nonNegative = (x: number) => x >= 0;
  const rateMultiplier = numberFlag(v, 'rate-multiplier', positive, 'a number > 0');
  const timeCompression = numberFlag(v, 'time-compression', positive, 'a number > 0');
  const outputScale = numberFlag(v, 'output-scale', positive, 'a number > 0');
  const startupMinutes = numberFlag(v, 'startup-minutes', nonNegative, 'a number of minutes ≥ 0');
  const seed = numberFlag(v, 'seed', Number.isInteger, 'an integer');
  const scrapeInterval = numberFlag(
    v,
    'scrape-interval',
    (x) => Number.isInteger(x) && x >= 0,
    'whole seconds ≥ 0',
  );
  const fromSeconds = numberFlag(v, 'from-seconds', nonNegative, 'seconds ≥ 0');
  const untilSeconds = numberFlag(v, 'until-seconds', positive, 'seconds > 0');
  const maxGroups = numberFlag(v, 'max-groups', (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1');
  const ttftSlo = numberFlag(v, 'ttft-slo', positive, 'seconds > 0');
  const tpotSlo = numberFlag(v, 'tpot-slo', positive, 'seconds > 0');
  const price = numberFlag(v, 'usd-per-gpu-hour', nonNegative, 'a price ≥ 0');
  const frontierPoints = numberFlag(
    v,
    'frontier-points',
    (x) => Number.isInteger(x) && x >= 1,
    'an integer ≥ 1',
  );
  const workers = numberFlag(v, 'workers', (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0');
  const flags = parsed.values as Record<string, unknown>;
  if (flags.frontier !== true && (frontierPoints !== undefined || workers !== undefined)) {
    throw new UsageError('--frontier-points and --workers apply only with --frontier');
  }

  const calibration = loadCalibration(v.calibration ?? 'deepseek-r1-h200');
  const settings = defaultSettings(v.trace, calibration, {
    trace: {
      seed: seed ?? 1,
      ...(rateMultiplier !== undefined ? { rateMultiplier } : {}),
      ...(timeCompression !== undefined ? { timeCompression } : {}),
      ...(outputScale !== undefined ? { outputScale } : {}),
      ...(fromSeconds !== undefined ? { fromSeconds } : {}),
      ...(untilSeconds !== undefined ? { untilSeconds } : {}),
    },
    ...(startupMinutes !== undefined ? { startupSeconds: startupMinutes * 60 } : {}),
    ...(scrapeInterval !== undefined && scrapeInterval > 0
      ? { metricsDelivery: { kind: 'scrape' as const, intervalSeconds: scrapeInterval } }
      : {}),
    ...(maxGroups !== undefined ? { maxGroups } : {}),
    ...(ttftSlo !== undefined ? { ttftSloSeconds: ttftSlo } : {}),
    ...(tpotSlo !== undefined ? { tpotSloSeconds: tpotSlo } : {}),
    ...(price !== undefined ? { usdPerGpuHour: price } : {}),
  });
  const frontier = flags.frontier === true ? { points: frontierPoints ?? 8, workers } : undefined;
  return { settings, policies, compare: v.compare !== undefined, outDirectory: v.out, frontier };
}

/** A policy argument must be a built-in, a built-in with knobs, or a preset file. */
function checkPolicyName(p: string): void {
  if (isPresetFile(p) || policyNames.includes(p)) return;
  if (p.includes('@')) {
    let base: string;
    let knobs: ReturnType<typeof parseKnobbedName>['knobs'];
    try {
      ({ base, knobs } = parseKnobbedName(p));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (policyNames.includes(base) && knobbedFactory(base, knobs) !== undefined) return;
    throw new UsageError(
      `policy ${JSON.stringify(p)}: ${JSON.stringify(base)} is not a built-in policy with knobs`,
    );
  }
  throw new UsageError(`unknown policy ${JSON.stringify(p)}; choose from ${policyNames.join(', ')} (or all)`);
}

/** The settings as written into summary.json and compare.json. */
export function settingsRecord(settings: SimulationSettings) {
  return {
    calibration: settings.calibration.name,
    rateMultiplier: settings.trace.rateMultiplier ?? 1,
    timeCompression: settings.trace.timeCompression ?? 1,
    outputScale: settings.trace.outputScale ?? 1,
    seed: settings.trace.seed ?? 1,
    fromSeconds: settings.trace.fromSeconds ?? 0,
    untilSeconds: settings.trace.untilSeconds ?? null,
    startupMinutes: settings.startupSeconds / 60,
    metricsDelivery: settings.metricsDelivery,
    requestTimeoutSeconds: settings.requestTimeoutSeconds,
    minGroups: settings.minGroups,
    maxGroups: settings.maxGroups,
    ttftSloSeconds: settings.ttftSloSeconds,
    tpotSloSeconds: settings.tpotSloSeconds,
    flapWindowSeconds: settings.flapWindowSeconds,
    usdPerGpuHour: settings.usdPerGpuHour,
  };
}

/** One compare.json row. */
export function compareRow(summary: SimulationSummary) {
  return {
    name: summary.policy,
    sloAttainment: summary.sloAttainment,
    gpuHours: summary.gpuHours,
    ttftP99Seconds: summary.ttftSeconds.p99,
    tpotP99Seconds: summary.tpotSeconds.p99,
    costPerMillionOutputTokens: summary.costPerMillionOutputTokens,
    scaleEvents: summary.scaleEvents,
    flaps: summary.flaps,
    requests: summary.requests,
    pools: summary.pools,
  };
}

/** A fixed-width table, one row per policy. */
export function formatTable(summaries: readonly SimulationSummary[]): string {
  const header = [
    'policy',
    'SLO %',
    'GPU-h',
    'TTFT p99 s',
    'TPOT p99 ms',
    '$/M out',
    'events',
    'flaps',
    'dropped',
  ];
  const rows = summaries.map((s) => [
    s.policy,
    (100 * s.sloAttainment).toFixed(2),
    s.gpuHours.toFixed(1),
    s.ttftSeconds.p99.toFixed(2),
    (1000 * s.tpotSeconds.p99).toFixed(1),
    s.costPerMillionOutputTokens.toFixed(2),
    String(s.scaleEvents),
    String(s.flaps),
    String(s.requests.dropped),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

/** A file-name-safe label for a policy argument (a preset file becomes kvpa-<file name>). */
function fileLabel(policy: string): string {
  return isPresetFile(policy) ? `kvpa-${basename(policy).replace(/\.ya?ml$/, '')}` : policy;
}

/** A one-line progress bar on a terminal (nothing when stderr is a file or a pipe). */
function progressBar(policy: string, totalSeconds: number): ((simulatedSeconds: number) => void) | undefined {
  if (!process.stderr.isTTY || !(totalSeconds > 0)) return undefined;
  let shown = -1;
  return (simulatedSeconds) => {
    const percent = Math.min(100, Math.floor((100 * simulatedSeconds) / totalSeconds));
    if (percent === shown) return;
    shown = percent;
    const filled = Math.round(percent / 5);
    process.stderr.write(
      `\rkvpa simulate: ${policy} [${'#'.repeat(filled)}${' '.repeat(20 - filled)}] ${percent}%`,
    );
  };
}

export async function runSimulateCommand(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let parsedArgs: ReturnType<typeof parseSimulateArgs>;
  try {
    parsedArgs = parseSimulateArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`kvpa simulate: ${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`kvpa simulate: ${(error as Error).message}\n`);
    return 2;
  }
  const { settings, policies, compare, outDirectory, frontier } = parsedArgs;
  try {
    mkdirSync(outDirectory, { recursive: true });
    process.stderr.write(`kvpa simulate: sizing the demand of ${basename(settings.tracePath)} …\n`);
    const demand = demandFor(settings);
    if (frontier !== undefined) {
      return await runFrontierCommand(settings, demand, policies, outDirectory, frontier);
    }
    const summaries: SimulationSummary[] = [];
    for (const policy of policies) {
      process.stderr.write(`kvpa simulate: ${policy} …`);
      const summary = runSimulation(
        settings,
        policy,
        demand,
        progressBar(policy, demand.prefillGroups.length * demand.binSeconds),
      );
      process.stderr.write(
        ` ${summary.requests.arrived.toLocaleString('en-US')} requests in ${summary.wallSeconds.toFixed(1)} s (${Math.round(summary.requestsPerWallSecond).toLocaleString('en-US')}/s)\n`,
      );
      summaries.push(summary);
      const record = { trace: settings.tracePath, settings: settingsRecord(settings), ...summary };
      writeFileSync(
        join(outDirectory, compare ? `${fileLabel(policy)}.json` : 'summary.json'),
        `${JSON.stringify(record, null, 2)}\n`,
      );
      for (const pool of ['prefill', 'decode'] as const) {
        const title = `${summary.policy} · ${pool} · ${basename(settings.tracePath)} ×${settings.trace.rateMultiplier ?? 1}, startup ${settings.startupSeconds / 60} min`;
        const name = compare ? `${fileLabel(policy)}-${pool}.svg` : `timeline-${pool}.svg`;
        writeFileSync(join(outDirectory, name), timelineSvg(summary.timeline, pool, title));
      }
    }
    if (compare) {
      const comparison = {
        trace: settings.tracePath,
        settings: settingsRecord(settings),
        policies: summaries.map(compareRow),
      };
      writeFileSync(join(outDirectory, 'compare.json'), `${JSON.stringify(comparison, null, 2)}\n`);
    }
    process.stdout.write(`${formatTable(summaries)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof TraceError) {
      process.stderr.write(`kvpa simulate: ${error.message}\n`);
      return 2;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && ['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EROFS'].includes(code)) {
      // An unreadable --trace or an unwritable --out: name the path, no stack trace.
      process.stderr.write(`kvpa simulate: ${(error as Error).message}; check --trace and --out\n`);
      return 2;
    }
    throw error;
  }
}

/** `--frontier`: every policy's sweep in worker threads, then compare.json, frontier.svg and the table. */
async function runFrontierCommand(
  settings: SimulationSettings,
  demand: ReturnType<typeof demandFor>,
  policies: readonly string[],
  outDirectory: string,
  frontier: { readonly points: number; readonly workers: number | undefined },
): Promise<number> {
  const jobs: FrontierJob[] = policies.flatMap((p) =>
    isPresetFile(p) || p.includes('@')
      ? [{ policy: p, knobs: {}, runName: p }]
      : sweepJobs(p, frontier.points),
  );
  process.stderr.write(`kvpa simulate --frontier: ${jobs.length} runs of ${policies.length} policies …\n`);
  const started = performance.now();
  const bar = frontierProgressBar();
  let results: Awaited<ReturnType<typeof runFrontier>>;
  try {
    results = await runFrontier(settings, demand, jobs, {
      ...(frontier.workers !== undefined ? { workers: frontier.workers } : {}),
      ...(bar !== undefined ? { onProgress: bar } : {}),
    });
  } catch (error) {
    // One failed run stops the sweep; say which, without a worker's stack trace.
    process.stderr.write(`\nkvpa simulate --frontier: ${(error as Error).message}\n`);
    return 1;
  }
  const wallSeconds = (performance.now() - started) / 1000;
  process.stderr.write(`kvpa simulate --frontier: ${jobs.length} runs in ${wallSeconds.toFixed(0)} s\n`);
  const points = results.map((r) => ({
    policy: r.policy,
    knobs: r.knobs,
    sloAttainment: r.sloAttainment,
    gpuHours: r.gpuHours,
  }));
  const comparison = {
    trace: settings.tracePath,
    settings: settingsRecord(settings),
    // The policies' default points (knobs unset), as a plain --compare would give them.
    policies: results.filter((r) => r.runName === r.policy).map((r) => r.row),
    frontier: points,
    frontierWallSeconds: wallSeconds,
  };
  writeFileSync(join(outDirectory, 'compare.json'), `${JSON.stringify(comparison, null, 2)}\n`);
  const outputs = (settings.trace.outputScale ?? 1) === 1 ? '' : `, outputs ×${settings.trace.outputScale}`;
  const title = `Frontiers · ${basename(settings.tracePath)} ×${settings.trace.rateMultiplier ?? 1}${outputs}, startup ${settings.startupSeconds / 60} min`;
  writeFileSync(join(outDirectory, 'frontier.svg'), frontierSvg(points, title));
  process.stdout.write(`${formatFrontierTable(points)}\n`);
  return 0;
}
