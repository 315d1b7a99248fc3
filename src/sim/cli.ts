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
import { VICTIM_RULES, type VictimRule } from './fleet.ts';
import { isPresetFile, policyNames } from './policies/index.ts';
import { loadPresetFile } from './policies/kvpa.ts';
import {
  defaultSettings,
  demandFor,
  runSimulation,
  type SimulationSettings,
  type SimulationSummary,
} from './run.ts';
import { timelineSvg } from './svg.ts';
import { parseShape, type RateShape, TraceError } from './trace.ts';

const USAGE = `usage: kvpa simulate --trace FILE (--policy NAME|FILE | --compare A,B,…) --out DIR [options]
  (a FILE is a ScalingPolicy preset in YAML: kvpa runs with it, resolved per pool like policies/)

options:
  --rate-multiplier X     arrivals per source arrival (default 1)
  --time-compression C    divide trace time by C (default 1)
  --output-scale K        multiply every output length by K (default 1; R1-like reasoning: 10)
  --input-scale K         multiply every prompt length by K (default 1; long prompts: 10)
  --shape SPEC            reshape the rate over time (after --rate-multiplier):
                            step:30m=2,90m=1 · ramp:0-60m=1-3 · diurnal:peak=2,mean=1,period=24h[,peakAt=14h]
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
  --oracle-slo P          the oracle's target SLO attainment in % (default: static's, at most 99)
  --victims RULE          which groups scale-down removes: highest-index (default; LeaderWorkerSet,
                          Grove, Dynamo), arbitrary (KubeRay without workersToDelete) or chosen

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
        'input-scale': { type: 'string' },
        shape: { type: 'string' },
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
        victims: { type: 'string' },
        'oracle-slo': { type: 'string' },
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
  const policies = (v.compare ?? v.policy ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  for (const p of policies) {
    if (!policyNames.includes(p) && !isPresetFile(p)) {
      throw new UsageError(`unknown policy ${JSON.stringify(p)}; choose from ${policyNames.join(', ')}`);
    }
  }
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
  const inputScale = numberFlag(v, 'input-scale', positive, 'a number > 0');
  let shape: RateShape | undefined;
  try {
    shape = v.shape === undefined ? undefined : parseShape(v.shape);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
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
  const oracleSlo = numberFlag(v, 'oracle-slo', (x) => x > 0 && x <= 100, 'a percentage in (0, 100]');
  const victims = v.victims;
  if (victims !== undefined && !(VICTIM_RULES as readonly string[]).includes(victims)) {
    throw new UsageError(`--victims ${JSON.stringify(victims)}: choose one of ${VICTIM_RULES.join(', ')}`);
  }

  const calibration = loadCalibration(v.calibration ?? 'deepseek-r1-h200');
  const settings = defaultSettings(v.trace, calibration, {
    trace: {
      seed: seed ?? 1,
      ...(rateMultiplier !== undefined ? { rateMultiplier } : {}),
      ...(timeCompression !== undefined ? { timeCompression } : {}),
      ...(outputScale !== undefined ? { outputScale } : {}),
      ...(inputScale !== undefined ? { inputScale } : {}),
      ...(shape !== undefined ? { shape } : {}),
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
    ...(victims !== undefined ? { victimRule: victims as VictimRule } : {}),
    ...(oracleSlo !== undefined ? { oracleSloTarget: oracleSlo / 100 } : {}),
  });
  return { settings, policies, compare: v.compare !== undefined, outDirectory: v.out };
}

/** The settings as written into summary.json and compare.json. */
export function settingsRecord(settings: SimulationSettings) {
  return {
    calibration: settings.calibration.name,
    rateMultiplier: settings.trace.rateMultiplier ?? 1,
    timeCompression: settings.trace.timeCompression ?? 1,
    outputScale: settings.trace.outputScale ?? 1,
    inputScale: settings.trace.inputScale ?? 1,
    shape: settings.trace.shape?.spec ?? null,
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
    victimRule: settings.victimRule,
    oracleSloTarget: settings.oracleSloTarget ?? null,
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
    ...(summary.oracle !== undefined ? { oracle: oracleRecord(summary.oracle) } : {}),
  };
}

/** The oracle's search as compare.json and the printed line give it. */
function oracleRecord(o: NonNullable<SimulationSummary['oracle']>) {
  return {
    targetSloAttainment: o.targetSloAttainment,
    landed: o.landed,
    plan: o.plan,
    runs: o.evaluations.length,
  };
}

/** One line on how the oracle landed: its target, its attainment and the plan it found. */
export function oracleLine(summary: SimulationSummary): string | undefined {
  const o = summary.oracle;
  if (o === undefined) return undefined;
  const late = o.plan.lateSeconds !== undefined ? `, rises ${o.plan.lateSeconds} s late` : '';
  return `oracle: target ${(100 * o.targetSloAttainment).toFixed(2)} %, reached ${(100 * o.sloAttainment).toFixed(2)} % (${o.landed ? 'landed within 0.2 points' : 'NOT within 0.2 points'}; headroom ${o.plan.headroom}${late}; ${o.evaluations.length} runs)`;
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
    'aborted',
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
    String(s.requests.abortedByScaleDown),
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
  const { settings, policies, compare, outDirectory } = parsedArgs;
  try {
    mkdirSync(outDirectory, { recursive: true });
    process.stderr.write(`kvpa simulate: sizing the demand of ${basename(settings.tracePath)} …\n`);
    const demand = demandFor(settings);
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
    for (const s of summaries) {
      const line = oracleLine(s);
      if (line !== undefined) process.stdout.write(`${line}\n`);
    }
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
