/** The policy registry: names accepted by `kvpa simulate --policy` and `--compare`. */
import { aibrixApaPolicy, aibrixKpaPolicy } from './aibrix.ts';
import { hpaPolicy } from './hpa.ts';
import { knativePolicy } from './knative.ts';
import { kvpaPolicy, kvpaRunningPolicy } from './kvpa.ts';
import { oraclePolicy } from './oracle.ts';
import { staticPolicy } from './static.ts';
import type { PolicyContext, PolicyFactory, ScalingPolicy } from './types.ts';

export const policyFactories: Readonly<Record<string, PolicyFactory>> = {
  kvpa: kvpaPolicy,
  'kvpa-running': kvpaRunningPolicy,
  knative: knativePolicy,
  'aibrix-kpa': aibrixKpaPolicy,
  'aibrix-apa': aibrixApaPolicy,
  hpa: hpaPolicy,
  static: staticPolicy,
  oracle: oraclePolicy,
};

export const policyNames: readonly string[] = Object.keys(policyFactories);

export function createPolicy(name: string, context: PolicyContext): ScalingPolicy {
  const factory = policyFactories[name];
  if (factory === undefined) {
    throw new Error(`unknown policy ${JSON.stringify(name)}; choose one of ${policyNames.join(', ')}`);
  }
  return factory(context);
}
