/**
 * A policy's main knobs, as a competent user would tune them: `target` (a multiplier of the policy's default
 * per-group target or capacity; higher means fuller groups and fewer of them) and `delay` (seconds of the
 * policy's own scale-down hold: Knative's scale-down-delay, AIBrix's cooldown, the HPA's stabilisation window,
 * kvpa's scaleDownDelaySeconds, Dynamo's adjustment interval). A knobbed policy is named
 * `name@target=0.8+delay=300`, so `--policy` and `--compare` accept it too.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aibrixPolicyWith } from './aibrix.ts';
import {
  dynamoLoadDefaults,
  dynamoLoadPolicyWith,
  dynamoPolicyWith,
  type LoadPredictorName,
} from './dynamo.ts';
import { hpaPolicyWith } from './hpa.ts';
import { knativePolicyWith } from './knative.ts';
import { kthenaDefaults, kthenaPolicyWith } from './kthena.ts';
import { KVPA_PRESET, kvpaPresetFilePolicy, resolveKvpaPool } from './kvpa.ts';
import { llmdSloDefaults, llmdSloPolicyWith, llmdTokenDefaults, llmdTokenPolicyWith } from './llmd.ts';
import type { PolicyContext, PolicyFactory, ScalingPolicy } from './types.ts';

export interface Knobs {
  readonly target?: number;
  readonly delay?: number;
}

export const KNOB_NAMES = ['target', 'delay'] as const;

/** Splits `name@target=0.8+delay=300`; a bad knob is an error naming it and the fix. */
export function parseKnobbedName(spec: string): { readonly base: string; readonly knobs: Knobs } {
  const at = spec.indexOf('@');
  if (at < 0) return { base: spec, knobs: {} };
  const base = spec.slice(0, at);
  const knobs: Record<string, number> = {};
  for (const part of spec.slice(at + 1).split('+')) {
    const [key, value] = part.split('=');
    const v = Number(value);
    if (
      !(KNOB_NAMES as readonly string[]).includes(key ?? '') ||
      value === undefined ||
      !Number.isFinite(v) ||
      v < 0
    ) {
      throw new Error(
        `policy ${JSON.stringify(spec)}: bad knob ${JSON.stringify(part)}; write name@target=X+delay=S with target > 0 and delay ≥ 0 seconds`,
      );
    }
    knobs[key as string] = v;
  }
  if (knobs.target === 0) throw new Error(`policy ${JSON.stringify(spec)}: target must be > 0`);
  return { base, knobs };
}

/** The name of a knobbed policy, knobs in a fixed order (the inverse of parseKnobbedName). */
export function knobbedName(base: string, knobs: Knobs): string {
  const parts = KNOB_NAMES.filter((k) => knobs[k] !== undefined).map((k) => `${k}=${knobs[k]}`);
  return parts.length === 0 ? base : `${base}@${parts.join('+')}`;
}

/** Which knobs each built-in policy has (static and the oracle have none). */
export const POLICY_KNOBS: Readonly<Record<string, readonly (keyof Knobs)[]>> = {
  kvpa: ['target', 'delay'],
  knative: ['target', 'delay'],
  'aibrix-kpa': ['target', 'delay'],
  'aibrix-apa': ['target', 'delay'],
  hpa: ['target', 'delay'],
  dynamo: ['target', 'delay'],
  'dynamo-kalman': ['target', 'delay'],
  'dynamo-constant': ['target', 'delay'],
  'dynamo-load': ['target', 'delay'],
  'llmd-tokens': ['target', 'delay'],
  'llmd-slo': ['target', 'delay'],
  kthena: ['target', 'delay'],
};

/** The factory for a built-in policy with knobs, or undefined when the policy has none. */
export function knobbedFactory(base: string, knobs: Knobs): PolicyFactory | undefined {
  const t = knobs.target;
  const d = knobs.delay;
  const named =
    (factory: PolicyFactory): PolicyFactory =>
    (context) =>
      rename(factory(context), knobbedName(base, knobs));
  switch (base) {
    case 'knative':
      return named(knativePolicyWith({ targetScale: t, scaleDownDelaySeconds: d }));
    case 'aibrix-kpa':
    case 'aibrix-apa':
      return named(
        aibrixPolicyWith(base === 'aibrix-kpa' ? 'kpa' : 'apa', {
          targetScale: t,
          scaleDownCooldownSeconds: d,
        }),
      );
    case 'hpa':
      return named(hpaPolicyWith({ targetScale: t, scaleDownStabilizationSeconds: d }));
    case 'dynamo':
    case 'dynamo-kalman':
    case 'dynamo-constant': {
      const predictor = (base === 'dynamo' ? 'arima' : base.slice('dynamo-'.length)) as LoadPredictorName;
      return named(
        dynamoPolicyWith({
          predictor,
          ...(t === undefined ? {} : { capacityScale: t }),
          ...(d === undefined ? {} : { adjustmentIntervalSeconds: Math.max(1, Math.round(d)) }),
        }),
      );
    }
    case 'dynamo-load':
      return named(
        dynamoLoadPolicyWith({
          decodeUp: dynamoLoadDefaults.decodeUp * (t ?? 1),
          decodeDown: dynamoLoadDefaults.decodeDown * (t ?? 1),
          prefillUp: dynamoLoadDefaults.prefillUp * (t ?? 1),
          prefillDown: dynamoLoadDefaults.prefillDown * (t ?? 1),
          ...(d === undefined ? {} : { adjustmentIntervalSeconds: Math.max(1, Math.round(d)) }),
        }),
      );
    case 'llmd-tokens':
      return named(
        llmdTokenPolicyWith({
          prefillBacklogSecondsPerReplica: llmdTokenDefaults.prefillBacklogSecondsPerReplica * (t ?? 1),
          decodeKvPerReplica: llmdTokenDefaults.decodeKvPerReplica * (t ?? 1),
          ...(d === undefined ? {} : { scaleDownStabilizationSeconds: d }),
        }),
      );
    case 'llmd-slo':
      return named(
        llmdSloPolicyWith({
          scaleUpAbove: llmdSloDefaults.scaleUpAbove * (t ?? 1),
          scaleDownBelow: llmdSloDefaults.scaleDownBelow * (t ?? 1),
          ...(d === undefined ? {} : { scaleDownStabilizationSeconds: d }),
        }),
      );
    case 'kthena':
      return named((context: PolicyContext) =>
        kthenaPolicyWith({
          targetPerGroup: kthenaDefaults(context).targetPerGroup * (t ?? 1),
          ...(d === undefined ? {} : { scaleDownStabilizationSeconds: d }),
        })(context),
      );
    case 'kvpa':
      return named(kvpaPresetFilePolicy(kvpaKnobPresetFile(knobs)));
    default:
      return undefined;
  }
}

function rename(policy: ScalingPolicy, name: string): ScalingPolicy {
  return { name, decide: (o) => policy.decide(o) };
}

/**
 * kvpa's knobs as a ScalingPolicy file next to the bundled preset: every metric target of each pool × target
 * (a KV target stays ≤ 1) and `scaleDownDelaySeconds` = delay. Written once per knob set into the temp dir.
 */
function kvpaKnobPresetFile(knobs: Knobs): string {
  const name = `kvpa-knobs-t${knobs.target ?? 1}-d${knobs.delay ?? 'preset'}`.replace(/\./g, 'p');
  const pools: Record<string, unknown> = {};
  for (const pool of ['prefill', 'decode'] as const) {
    const resolved = resolveKvpaPool(pool, 1, 64, KVPA_PRESET);
    pools[pool] = {
      policy: `deepseek-r1-${pool}`,
      metrics: resolved.metrics.map((m) => ({
        type: m.type,
        target:
          m.type === 'kvCacheUtilization'
            ? Math.min(1, m.target * (knobs.target ?? 1))
            : m.target * (knobs.target ?? 1),
      })),
      ...(knobs.delay === undefined ? {} : { scaleDownDelaySeconds: Math.round(knobs.delay) }),
    };
  }
  const doc = {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'ScalingPolicy',
    metadata: { name },
    spec: {
      description: `kvpa's bundled ${KVPA_PRESET} with the lab's knobs ${knobbedName('', knobs)}`,
      pools,
    },
  };
  const dir = join(tmpdir(), `kvpa-knobs-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(doc, null, 2)); // JSON is YAML
  return file;
}
