/**
 * `kvpa simulate`: replay a trace through the simulated fleet under one policy, or compare several.
 *
 *   kvpa simulate --trace FILE --policy NAME [options] --out DIR
 *     → DIR/summary.json, DIR/timeline-{prefill,decode}.svg
 *   kvpa simulate --trace FILE --compare a,b,c [options] --out DIR
 *     → DIR/compare.json, DIR/<policy>.json, DIR/<policy>-{prefill,decode}.svg
 *
 * Exit codes: 0 done, 1 failed, 2 usage or input error (the message names the flag or the file and line).
 */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DEFAULT_FLOWS_TOLERANCE } from '../api/podautoscaler.ts';
import type { RatioBand } from '../decide/coupling.ts';
import { loadCalibration } from '../sim/calibration.ts';
import { VICTIM_RULES, type VictimRule } from '../sim/fleet.ts';
import { type FrontierJob, formatFrontierTable, sweepJobs } from '../sim/frontier.ts';
import { frontierProgressBar, runFrontier } from '../sim/frontier-run.ts';
import { frontierSvg } from '../sim/frontier-svg.ts';
import { isPresetFile, policyNames } from '../sim/policies/index.ts';
import { knobbedFactory, parseKnobbedName } from '../sim/policies/knobs.ts';
import { loadPresetFile } from '../sim/policies/kvpa.ts';
import {
  type DecisionListener,
  defaultSettings,
  demandFor,
  type FlowsCoupling,
  runSimulation,
  type SimulationSettings,
  type SimulationSummary,
} from '../sim/run.ts';
import { timelineSvg } from '../sim/svg.ts';
import { parseShape, type RateShape, TraceError } from '../sim/trace.ts';
import {
  type Bounds,
  EXIT,
  numberFlag,
  type Output,
  parseFlags,
  prepareOutDir,
  stringFlag,
  UsageError,
} from './shell.ts';

/** The longest replay the lab runs: a month of simulated time is minutes of wall time at ×1. */
export const MAX_SIMULATED_DAYS = 31;
const MAX_SECONDS = MAX_SIMULATED_DAYS * 86400;
const LAB = 'keeps one run within minutes and memory';

/** Every numeric flag of `kvpa simulate`, with its range and cap. */
export const SIMULATE_BOUNDS = {
  'rate-multiplier': {
    min: 0,
    minExclusive: true,
    max: 100,
    cap: `arrivals grow with it; the cap ${LAB}`,
    example: 20,
  },
  'time-compression': { min: 0.01, max: 10_000, cap: 'beyond it a trace collapses into one bin', example: 1 },
  'output-scale': {
    min: 0,
    minExclusive: true,
    max: 100,
    cap: `decode work grows with it; the cap ${LAB}`,
    example: 10,
  },
  'input-scale': {
    min: 0,
    minExclusive: true,
    max: 100,
    cap: `prefill work grows with it; the cap ${LAB}`,
    example: 10,
  },
  'oracle-slo': { min: 0, minExclusive: true, max: 100, unit: '%', example: 99 },
  'startup-minutes': { min: 0, max: 1440, unit: 'minutes', cap: 'a day', example: 10 },
  seed: { min: -(2 ** 31), max: 2 ** 31 - 1, integer: true, example: 1 },
  'scrape-interval': { min: 0, max: 3600, integer: true, unit: 'seconds', cap: 'an hour', example: 15 },
  'from-seconds': { min: 0, max: 1e9, unit: 'seconds', cap: 'about 31 years of trace time', example: 0 },
  'until-seconds': {
    min: 0,
    minExclusive: true,
    max: 1e9,
    unit: 'seconds',
    cap: 'about 31 years of trace time',
    example: 3600,
  },
  'max-groups': {
    min: 1,
    max: 1024,
    integer: true,
    cap: `every group is simulated; the cap ${LAB}`,
    example: 64,
  },
  'ttft-slo': { min: 0, minExclusive: true, max: 3600, unit: 'seconds', example: 2 },
  'tpot-slo': { min: 0, minExclusive: true, max: 60, unit: 'seconds', example: 0.08 },
  'usd-per-gpu-hour': { min: 0, max: 1000, example: 2 },
  'frontier-points': { min: 1, max: 64, integer: true, cap: `runs grow with it; the cap ${LAB}`, example: 8 },
  workers: { min: 0, max: 64, integer: true, example: 2 },
} as const satisfies Readonly<Record<string, Bounds>>;

const STRING_FLAGS = [
  'trace',
  'policy',
  'compare',
  'out',
  'calibration',
  'shape',
  'victims',
  'drain',
  'coupling',
] as const;

export const SIMULATE_USAGE = `Usage: kvpa simulate --trace FILE (--policy NAME|FILE | --compare A,B,…|all) --out DIR [options]
  (a FILE is a ScalingPolicy preset in YAML: kvpa runs with it, resolved per pool like policies/;
   NAME@target=X+delay=S sets a policy's knobs: target × its default, scale-down hold S seconds)

Options (caps in brackets keep one run within minutes and memory on a laptop):
  --rate-multiplier X     arrivals per source arrival (default 1) [≤ 100]
  --time-compression C    divide trace time by C (default 1) [0.01 to 10000]
  --output-scale K        multiply every output length by K (default 1; R1-like reasoning: 10) [≤ 100]
  --input-scale K         multiply every prompt length by K (default 1; long prompts: 10) [≤ 100]
  --shape SPEC            reshape the rate over time (after --rate-multiplier):
                            step:30m=2,90m=1 · ramp:0-60m=1-3 · diurnal:peak=2,mean=1,period=24h[,peakAt=14h]
  --startup-minutes M     group cold start, request to serving (default: the calibration's, 10) [≤ 1440]
  --seed N                seed for trace expansion and copies (default 1)
  --calibration NAME|FILE deepseek-r1-h200 (default) or deepseek-r1-h100, or a YAML file
  --scrape-interval S     deliver metrics at Prometheus scrapes every S seconds (default 0: direct) [≤ 3600]
  --from-seconds T        start the replay at trace time T (after compression)
  --until-seconds T       stop the replay at trace time T (after compression); after --from-seconds
  --max-groups N          per-pool cap on groups (default 64) [≤ 1024]
  --ttft-slo S            TTFT SLO in seconds (default 2)
  --tpot-slo S            TPOT SLO in seconds (default 0.08)
  --usd-per-gpu-hour P    price for the cost KPI (default 2)
  --oracle-slo P          the oracle's target SLO attainment in % (default: static's, at most 99)
  --victims RULE          which groups scale-down removes: highest-index (default; LeaderWorkerSet,
                          Grove, Dynamo), arbitrary (KubeRay without workersToDelete) or chosen
  --drain on|off          on (default): the pods carry kvpa's readiness gate, so kvpa drains before a
                          scale-down; off: groups are removed with what they hold (requests aborted)
  --coupling MIN:MAX|flows[:TOL]|off
                          keep prefill groups per decode group within [MIN, MAX] after both pools'
                          policies decide, for any policy (e.g. 0.5:2; default off): the short pool is
                          raised, the long one lowered only when the short one is at --max-groups;
                          flows: the band is ratio × [1 − TOL, 1 + TOL] (TOL default 0.25), the ratio
                          derived each second from the measured prompt and generated token flows
                          against the kvpa preset's capacities; no band while a flow is missing
  --frontier              sweep each policy over its knobs (target, scale-down hold) and report the
                          fewest GPU-hours reaching static's SLO, 99 % and 95 % (frontier.svg, compare.json)
  --frontier-points N     values per knob in the sweep (default 8) [≤ 64]
  --workers N             worker threads for --frontier (default: one per core; 0: in this process)
  --decisions             write each kvpa decision's explanation (wants, stages, reasons) to
                          DIR/decisions.log (--policy) or DIR/decisions-<policy>.log (--compare)
The replayed span is at most ${MAX_SIMULATED_DAYS} simulated days.

Writes DIR/summary.json and DIR/timeline-{prefill,decode}.svg (--policy), or DIR/compare.json,
DIR/<policy>.json and DIR/<policy>-{prefill,decode}.svg (--compare). Exit 0 done, 1 failed, 2 bad input.
Policies: ${policyNames.join(', ')}
`;

/**
 * A decision log: one line per explained decision, `t=<seconds> <pool> <summary>`, opened on the first line
 * (a policy that explains nothing writes no file) and written as the run goes, so a day's run stays off the heap.
 */
function decisionLog(path: string): { write: DecisionListener; close: () => void } {
  let fd: number | undefined;
  return {
    write: (pool, nowSeconds, explanation) => {
      fd ??= openSync(path, 'w');
      writeSync(fd, `t=${nowSeconds} ${pool} ${explanation}\n`);
    },
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** Parses argv (after `simulate`) into settings and the policies to run. */
export function parseSimulateArgs(argv: readonly string[]): {
  settings: SimulationSettings;
  policies: string[];
  compare: boolean;
  outDirectory: string;
  frontier: { readonly points: number; readonly workers: number | undefined } | undefined;
  /** `--decisions`: write each explained decision to DIR/decisions(-<policy>).log. */
  decisions: boolean;
} {
  const options = Object.fromEntries(
    [...STRING_FLAGS, ...Object.keys(SIMULATE_BOUNDS)].map((k) => [k, { type: 'string' as const }]),
  );
  const { values } = parseFlags(argv, {
    ...options,
    frontier: { type: 'boolean' },
    decisions: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const v: Record<string, string | undefined> = Object.fromEntries(
    STRING_FLAGS.map((k) => [k, stringFlag(values, k)]),
  );
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
  const n = (name: keyof typeof SIMULATE_BOUNDS) => numberFlag(values, name, SIMULATE_BOUNDS[name]);
  const rateMultiplier = n('rate-multiplier');
  const timeCompression = n('time-compression');
  const outputScale = n('output-scale');
  const inputScale = n('input-scale');
  const oracleSlo = n('oracle-slo');
  let shape: RateShape | undefined;
  try {
    shape = v.shape === undefined ? undefined : parseShape(v.shape);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // The shape multiplies the rate: its peak is under --rate-multiplier's cap too, or a step of 1e9 runs for ever.
  const peakRate = (rateMultiplier ?? 1) * (shape?.maxFactor ?? 1);
  const rateCap = SIMULATE_BOUNDS['rate-multiplier'].max;
  if (shape !== undefined && peakRate > rateCap) {
    throw new UsageError(
      `--shape ${JSON.stringify(shape.spec)}: the rate peaks at ${peakRate}× the trace's (factor ${shape.maxFactor} × --rate-multiplier ${rateMultiplier ?? 1}); ${rateCap}× is the cap (${SIMULATE_BOUNDS['rate-multiplier'].cap}); give a smaller factor`,
    );
  }
  const victims = v.victims;
  if (victims !== undefined && !(VICTIM_RULES as readonly string[]).includes(victims)) {
    throw new UsageError(`--victims ${JSON.stringify(victims)}: choose one of ${VICTIM_RULES.join(', ')}`);
  }
  if (v.drain !== undefined && v.drain !== 'on' && v.drain !== 'off') {
    throw new UsageError(`--drain ${JSON.stringify(v.drain)}: choose on or off`);
  }
  const coupling = v.coupling === undefined ? null : parseCouplingFlag(v.coupling);
  const startupMinutes = n('startup-minutes');
  const seed = n('seed');
  const scrapeInterval = n('scrape-interval');
  const fromSeconds = n('from-seconds');
  const untilSeconds = n('until-seconds');
  const maxGroups = n('max-groups');
  const ttftSlo = n('ttft-slo');
  const tpotSlo = n('tpot-slo');
  const price = n('usd-per-gpu-hour');
  const frontierPoints = n('frontier-points');
  const workers = n('workers');
  if (values.frontier !== true && (frontierPoints !== undefined || workers !== undefined)) {
    throw new UsageError('--frontier-points and --workers apply only with --frontier');
  }
  const frontier = values.frontier === true ? { points: frontierPoints ?? 8, workers } : undefined;
  if (untilSeconds !== undefined && !(untilSeconds > (fromSeconds ?? 0))) {
    throw new UsageError(
      `--until-seconds ${untilSeconds} must be after --from-seconds ${fromSeconds ?? 0}: the replay would be empty; swap them or raise --until-seconds`,
    );
  }
  if (untilSeconds !== undefined && untilSeconds - (fromSeconds ?? 0) > MAX_SECONDS) {
    throw new UsageError(
      `--from-seconds/--until-seconds: the replay spans ${untilSeconds - (fromSeconds ?? 0)} s; the cap is ${MAX_SIMULATED_DAYS} days (${MAX_SECONDS} s): narrow the range`,
    );
  }

  let calibration: ReturnType<typeof loadCalibration>;
  try {
    calibration = loadCalibration(v.calibration ?? 'deepseek-r1-h200');
  } catch (error) {
    throw new UsageError(
      `--calibration ${v.calibration ?? 'deepseek-r1-h200'}: ${(error as Error).message}; give deepseek-r1-h200, deepseek-r1-h100 or a calibration YAML file`,
    );
  }
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
    ...(v.drain !== undefined ? { drain: v.drain === 'on' } : {}),
    ...(coupling !== null ? { coupling } : {}),
    ...(oracleSlo !== undefined ? { oracleSloTarget: oracleSlo / 100 } : {}),
  });
  if (values.decisions === true && frontier !== undefined) {
    throw new UsageError('--decisions logs one run per policy; drop it with --frontier');
  }
  return {
    settings,
    policies,
    compare: v.compare !== undefined,
    outDirectory: v.out,
    frontier,
    decisions: values.decisions === true,
  };
}

/** The most prefill groups per decode group a band may name: a pool holds at most --max-groups' cap. */
export const MAX_COUPLING_RATIO = SIMULATE_BOUNDS['max-groups'].max;

/**
 * `--coupling MIN:MAX` (prefill groups per decode group), `flows[:TOL]` (a band derived from the token flows,
 * ratio × [1 − TOL, 1 + TOL], TOL in [0.1, 0.9] as spec.coupling.ratio.fromFlows.tolerance) or `off`. MIN may
 * be 0 (no floor); MAX must be positive, at least MIN and at most MAX_COUPLING_RATIO.
 */
export function parseCouplingFlag(text: string): RatioBand | FlowsCoupling | null {
  const t = text.trim();
  if (t === 'off') return null;
  if (t === 'flows') return { fromFlows: { tolerance: DEFAULT_FLOWS_TOLERANCE } };
  if (t.startsWith('flows:')) return parseFlowsCoupling(text, t.slice('flows:'.length));
  const fix =
    'give MIN:MAX prefill groups per decode group, e.g. --coupling 0.5:2, or --coupling off, or a band from the token flows, --coupling flows[:TOL]';
  const parts = t.split(':');
  const [min, max] = parts.map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  if (
    parts.length !== 2 ||
    min === undefined ||
    max === undefined ||
    !Number.isFinite(min) ||
    !Number.isFinite(max)
  ) {
    throw new UsageError(`--coupling ${JSON.stringify(text)}: not two numbers MIN:MAX; ${fix}`);
  }
  if (min < 0 || !(max > 0)) {
    throw new UsageError(`--coupling ${JSON.stringify(text)}: MIN must be ≥ 0 and MAX > 0; ${fix}`);
  }
  if (min > max) {
    throw new UsageError(
      `--coupling ${JSON.stringify(text)}: MIN ${min} is above MAX ${max}; swap them (--coupling ${max}:${min})`,
    );
  }
  if (max > MAX_COUPLING_RATIO) {
    throw new UsageError(
      `--coupling ${JSON.stringify(text)}: ${MAX_COUPLING_RATIO} prefill groups per decode group is the cap (a pool holds at most ${MAX_COUPLING_RATIO} groups); ${fix}`,
    );
  }
  return { min, max };
}

function parseFlowsCoupling(text: string, tolerance: string): FlowsCoupling {
  const tol = tolerance.trim() === '' ? Number.NaN : Number(tolerance);
  if (!(tol >= 0.1 && tol <= 0.9)) {
    throw new UsageError(
      `--coupling ${JSON.stringify(text)}: the tolerance must be a number from 0.1 to 0.9 (the band is the derived ratio × [1 − TOL, 1 + TOL]); e.g. --coupling flows:0.25`,
    );
  }
  return { fromFlows: { tolerance: tol } };
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
    inputScale: settings.trace.inputScale ?? 1,
    shape: settings.trace.shape?.spec ?? null,
    victimRule: settings.victimRule,
    drain: settings.drain,
    coupling: settings.coupling ?? 'off',
    oracleSloTarget: settings.oracleSloTarget ?? null,
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
    coupling: summary.coupling,
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
    evaluations: o.evaluations,
  };
}

/** One line on how the oracle landed: its target, its attainment and the plan it found. */
export function oracleLine(summary: SimulationSummary): string | undefined {
  const o = summary.oracle;
  if (o === undefined) return undefined;
  const { lateSeconds, poolLate, switchTo } = o.plan;
  const late =
    (lateSeconds !== undefined ? `, rises ${lateSeconds} s late` : '') +
    (poolLate !== undefined ? `, ${poolLate.pool} rises ${poolLate.lateSeconds} s late` : '') +
    (switchTo !== undefined
      ? `, from ${switchTo.atSeconds} s the plan at headroom ${switchTo.plan.headroom}` +
        (switchTo.plan.lateSeconds !== undefined ? ` rising ${switchTo.plan.lateSeconds} s late` : '')
      : '');
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
    'drain GPU-h',
  ];
  // The band's repairs, only when a run had one (the table is unchanged without --coupling).
  const coupled = summaries.some((s) => s.coupling !== null);
  if (coupled) header.push('repairs');
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
    s.drainGpuHours.toFixed(1),
    ...(coupled ? [String(s.coupling?.repairs ?? 0)] : []),
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
function progressBar(
  io: Output,
  policy: string,
  totalSeconds: number,
): ((simulatedSeconds: number) => void) | undefined {
  const show = io.progress;
  if (show === undefined || !(totalSeconds > 0)) return undefined;
  let shown = -1;
  return (simulatedSeconds) => {
    const percent = Math.min(100, Math.floor((100 * simulatedSeconds) / totalSeconds));
    if (percent === shown) return;
    shown = percent;
    const filled = Math.round(percent / 5);
    show(`kvpa simulate: ${policy} [${'#'.repeat(filled)}${' '.repeat(20 - filled)}] ${percent}%`);
  };
}

/** Input errors found only once the trace is read: they name the file (and line), so they are usage errors. */
function asInputError(error: unknown): unknown {
  if (error instanceof TraceError) return new UsageError(error.message);
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && ['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EROFS'].includes(code)) {
    return new UsageError(`${(error as Error).message}; check --trace and --out`);
  }
  return error;
}

export async function runSimulate(argv: readonly string[], io: Output): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(SIMULATE_USAGE);
    return EXIT.ok;
  }
  const { settings, policies, compare, outDirectory, frontier, decisions } = parseSimulateArgs(argv);
  prepareOutDir(outDirectory);
  try {
    io.err(`kvpa simulate: sizing the demand of ${basename(settings.tracePath)} …`);
    const demand = demandFor(settings);
    const spanSeconds = demand.prefillGroups.length * demand.binSeconds;
    if (spanSeconds > MAX_SECONDS) {
      throw new UsageError(
        `--trace ${settings.tracePath}: the replay spans ${(spanSeconds / 86400).toFixed(1)} simulated days; the cap is ${MAX_SIMULATED_DAYS} days: narrow it with --until-seconds or raise --time-compression`,
      );
    }
    if (frontier !== undefined) {
      return await runFrontierCommand(io, settings, demand, policies, outDirectory, frontier);
    }
    const summaries: SimulationSummary[] = [];
    for (const policy of policies) {
      const log = decisions
        ? decisionLog(join(outDirectory, compare ? `decisions-${fileLabel(policy)}.log` : 'decisions.log'))
        : undefined;
      let summary: SimulationSummary;
      try {
        summary = runSimulation(settings, policy, demand, progressBar(io, policy, spanSeconds), log?.write);
      } finally {
        log?.close();
      }
      io.progress?.(`${' '.repeat(60)}\r`);
      io.err(
        `kvpa simulate: ${policy}: ${summary.requests.arrived.toLocaleString('en-US')} requests in ${summary.wallSeconds.toFixed(1)} s (${Math.round(summary.requestsPerWallSecond).toLocaleString('en-US')}/s)`,
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
    io.out(formatTable(summaries));
    for (const s of summaries) {
      const line = oracleLine(s);
      if (line !== undefined) io.out(line);
    }
    return EXIT.ok;
  } catch (error) {
    throw asInputError(error);
  }
}

/** `--frontier`: every policy's sweep in worker threads, then compare.json, frontier.svg and the table. */
async function runFrontierCommand(
  io: Output,
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
  io.err(`kvpa simulate --frontier: ${jobs.length} runs of ${policies.length} policies …`);
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
    io.err(`kvpa simulate --frontier: ${(error as Error).message}`);
    return EXIT.failed;
  }
  const wallSeconds = (performance.now() - started) / 1000;
  io.err(`kvpa simulate --frontier: ${jobs.length} runs in ${wallSeconds.toFixed(0)} s`);
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
  io.out(formatFrontierTable(points));
  return EXIT.ok;
}
