/**
 * `kvpa decide --scenario FILE`: replays observations through the decision core and prints one JSON
 * line per step. For debugging a policy and for checking the rules by hand (format: README "kvpa decide").
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { formatPath } from '../api/documents.ts';
import { PoolRunner, type PoolSample } from '../decide/pool-runner.ts';
import { KNATIVE_EXTENSIONS, KVPA_EXTENSIONS } from '../decide/spec.ts';
import type { DeciderSpec, Decision } from '../decide/types.ts';
import { EXIT, MAX_TIME_SECONDS, type Output, parseFlags, stringFlag, UsageError } from './shell.ts';

export const DECIDE_USAGE = `Usage: kvpa decide --scenario FILE [--summary]

Replays a scenario (JSON) through the decision core; writes one JSON line per step:
  {"atSeconds", "desiredReplicas", "valid", "inPanic", "explanation"}
  --summary   write {"atSeconds", "desiredReplicas", "valid", "inPanic", "summary"} instead
`;

/** Caps of a scenario: the API's own bounds where it has them, so a scenario replays in seconds. */
const MAX_GROUPS = 10_000;
const MAX_VALUE = 1e12;
const MAX_STEPS = 100_000;
const MAX_SCENARIO_BYTES = 64 * 1024 * 1024;
const groups = () => z.number().int().min(0).max(MAX_GROUPS);
/** Seconds since any origin, up to 2100-01-01 in unix seconds: past 2^53 a second step is lost. */
const seconds = () => z.number().min(0).max(MAX_TIME_SECONDS);
const value = () => z.number().min(0).max(MAX_VALUE);

const ScenarioPolicySchema = z.strictObject({
  targetPerGroup: z.number().gt(0).max(MAX_VALUE),
  stableWindowSeconds: z.number().int().min(1).max(3600).default(60),
  panicWindowPercentage: z.number().min(1).max(100).default(10),
  panicThresholdPercent: z.number().gt(100).max(100_000).default(200),
  maxScaleUpRate: z.number().gt(1).max(MAX_GROUPS).default(1000),
  maxScaleDownRate: z.number().gt(1).max(MAX_GROUPS).default(2),
  scaleDownDelaySeconds: z.number().min(0).max(7200).default(0),
  activationScale: z.number().int().min(1).max(MAX_GROUPS).default(1),
  reachable: z.boolean().default(true),
  minReplicas: groups().default(0),
  maxReplicas: groups().default(0),
  initialReadyGroups: groups().default(1),
  tickSeconds: z.number().int().min(1).max(60).default(2),
  aggregation: z.enum(['linear', 'weightedExponential']).default('linear'),
  startupTimeoutSeconds: z.number().int().min(0).max(86_400).optional(),
  /** kvpa (default) adds kvpa's extensions; knative reproduces Knative's KPA exactly. */
  extensions: z.enum(['kvpa', 'knative']).default('kvpa'),
});

const StepBase = {
  atSeconds: seconds(),
  readyGroups: groups(),
  requestedGroups: groups().optional(),
  metricError: z.boolean().optional(),
};
const AggregatedStepSchema = z.strictObject({
  ...StepBase,
  stableTotal: value(),
  panicTotal: value(),
});
const SamplesStepSchema = z.strictObject({
  ...StepBase,
  samples: z.array(z.strictObject({ atSeconds: seconds(), value: value() })).max(MAX_STEPS),
});

export const ScenarioSchema = z.strictObject({
  description: z.string().optional(),
  policy: ScenarioPolicySchema,
  steps: z
    .array(z.union([AggregatedStepSchema, SamplesStepSchema]))
    .min(1)
    .max(MAX_STEPS)
    .superRefine((steps, ctx) => {
      for (let i = 1; i < steps.length; i++) {
        if ((steps[i]?.atSeconds ?? 0) < (steps[i - 1]?.atSeconds ?? 0)) {
          ctx.addIssue({
            code: 'custom',
            path: [i, 'atSeconds'],
            message: 'steps must be in time order: atSeconds went backwards',
          });
        }
      }
    }),
});
export type Scenario = z.infer<typeof ScenarioSchema>;

export interface DecideLine {
  atSeconds: number;
  desiredReplicas: number;
  valid: boolean;
  inPanic: boolean;
  explanation?: unknown;
  summary?: string;
}

/** Pure replay of a parsed scenario. */
export function replay(scenario: Scenario, summaryOnly = false): DecideLine[] {
  const p = scenario.policy;
  const base = p.extensions === 'knative' ? KNATIVE_EXTENSIONS : KVPA_EXTENSIONS;
  const spec: DeciderSpec = {
    stableWindowSeconds: p.stableWindowSeconds,
    panicThreshold: p.panicThresholdPercent / 100,
    maxScaleUpRate: p.maxScaleUpRate,
    maxScaleDownRate: p.maxScaleDownRate,
    scaleDownDelaySeconds: p.scaleDownDelaySeconds,
    activationScale: p.activationScale,
    reachable: p.reachable,
    minReplicas: p.minReplicas,
    maxReplicas: p.maxReplicas,
    tickSeconds: p.tickSeconds,
    extensions: { ...base, startupTimeoutSeconds: p.startupTimeoutSeconds ?? base.startupTimeoutSeconds },
  };
  const runner = new PoolRunner(spec, [
    {
      name: 'signal',
      targetPerGroup: p.targetPerGroup,
      stableWindowSeconds: p.stableWindowSeconds,
      panicWindowPercentage: p.panicWindowPercentage,
      aggregation: p.aggregation,
    },
  ]);
  runner.start(scenario.steps[0]?.atSeconds ?? 0, p.initialReadyGroups);
  const metricError: PoolSample = { name: 'signal', state: 'error', detail: 'metricError in scenario' };
  const lines: DecideLine[] = [];
  for (const step of scenario.steps) {
    let d: Decision;
    if ('samples' in step) {
      for (const s of step.samples)
        runner.record([{ name: 'signal', state: 'ok', total: s.value }], s.atSeconds);
      d = runner.decide(
        step.atSeconds,
        step.readyGroups,
        step.requestedGroups,
        step.metricError ? [metricError] : [],
      );
    } else {
      d = runner.decideReadings(step.atSeconds, step.readyGroups, step.requestedGroups, [
        step.metricError
          ? {
              name: 'signal',
              targetPerGroup: p.targetPerGroup,
              state: 'error',
              detail: 'metricError in scenario',
            }
          : {
              name: 'signal',
              targetPerGroup: p.targetPerGroup,
              state: 'ok',
              stableTotal: step.stableTotal,
              panicTotal: step.panicTotal,
            },
      ]);
    }
    lines.push({
      atSeconds: step.atSeconds,
      desiredReplicas: d.desiredGroups,
      valid: d.valid,
      inPanic: d.inPanic,
      ...(summaryOnly ? { summary: d.explanation.summary } : { explanation: d.explanation }),
    });
  }
  return lines;
}

export async function runDecide(argv: readonly string[], io: Output): Promise<number> {
  const { values } = parseFlags(argv, {
    scenario: { type: 'string' },
    summary: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(DECIDE_USAGE);
    return EXIT.ok;
  }
  const file = stringFlag(values, 'scenario');
  if (file === undefined)
    throw new UsageError('--scenario FILE is required (e.g. examples/scenario-decode-burst.json)');
  let raw: unknown;
  try {
    const bytes = statSync(file).size;
    if (bytes > MAX_SCENARIO_BYTES) {
      throw new Error(`${bytes} bytes is over the cap of ${MAX_SCENARIO_BYTES} bytes; split the scenario`);
    }
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    io.err(`${file}: error: cannot read the scenario as JSON: ${(e as Error).message}`);
    io.err('    hint: see README "kvpa decide" for the scenario format, and examples/ for a working file');
    return EXIT.failed;
  }
  const parsed = ScenarioSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      io.err(`${file}: error: ${formatPath(issue.path) || '(top level)'}: ${issue.message}`);
    }
    io.err('    hint: see README "kvpa decide" for the scenario format, and examples/ for a working file');
    return EXIT.failed;
  }
  for (const line of replay(parsed.data, values.summary === true)) io.out(JSON.stringify(line));
  return EXIT.ok;
}
