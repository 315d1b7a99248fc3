/** The policy registry: names accepted by `kvpa simulate --policy` and `--compare`. */
import { aibrixApaPolicy, aibrixKpaPolicy } from './aibrix.ts';
import { dynamoLoadPolicy, dynamoPolicy, dynamoPolicyWith } from './dynamo.ts';
import { hpaPolicy } from './hpa.ts';
import { knativePolicy } from './knative.ts';
import { knobbedFactory, parseKnobbedName } from './knobs.ts';
import { kthenaPolicy } from './kthena.ts';
import { kvpaPolicy, kvpaPresetFilePolicy } from './kvpa.ts';
import { llmdSloPolicy, llmdTokenPolicy } from './llmd.ts';
import { oraclePolicy } from './oracle.ts';
import { staticPolicy } from './static.ts';
import type { PolicyContext, PolicyFactory, ScalingPolicy } from './types.ts';

export const policyFactories: Readonly<Record<string, PolicyFactory>> = {
  kvpa: kvpaPolicy,
  knative: knativePolicy,
  'aibrix-kpa': aibrixKpaPolicy,
  'aibrix-apa': aibrixApaPolicy,
  hpa: hpaPolicy,
  dynamo: dynamoPolicy,
  'dynamo-kalman': dynamoPolicyWith({ predictor: 'kalman' }),
  'dynamo-constant': dynamoPolicyWith({ predictor: 'constant' }),
  'dynamo-load': dynamoLoadPolicy,
  'llmd-tokens': llmdTokenPolicy,
  'llmd-slo': llmdSloPolicy,
  kthena: kthenaPolicy,
  static: staticPolicy,
  oracle: (context) => oraclePolicy(context), // the bare plan; `kvpa simulate` searches its headroom (run.ts)
};

export const policyNames: readonly string[] = Object.keys(policyFactories);

/** True when a policy argument names a ScalingPolicy file rather than a built-in policy. */
export function isPresetFile(name: string): boolean {
  return name.endsWith('.yaml') || name.endsWith('.yml');
}

export function createPolicy(name: string, context: PolicyContext): ScalingPolicy {
  // A ScalingPolicy file: kvpa with that preset (`kvpa simulate --policy my-preset.yaml`).
  if (isPresetFile(name)) return kvpaPresetFilePolicy(name)(context);
  if (name.includes('@')) {
    // A built-in policy with its knobs set: `knative@target=0.8+delay=300`.
    const { base, knobs } = parseKnobbedName(name);
    const knobbed = knobbedFactory(base, knobs);
    if (knobbed === undefined) {
      throw new Error(
        `policy ${JSON.stringify(base)} has no knobs; knobs apply to ${policyNames.filter((n) => knobbedFactory(n, {}) !== undefined).join(', ')}`,
      );
    }
    return knobbed(context);
  }
  const factory = policyFactories[name];
  if (factory === undefined) {
    throw new Error(`unknown policy ${JSON.stringify(name)}; choose one of ${policyNames.join(', ')}`);
  }
  return factory(context);
}
