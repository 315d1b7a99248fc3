/**
 * Resolves the effective behaviour of each pool, field by field, in this order (later wins):
 *   1. built-in defaults (defaults.ts);
 *   2. the preset named by spec.policyRef.name (or `default`): its `behavior`, then its entry for
 *      the pool's name (which may itself start from another preset);
 *   3. spec.policyRef.overrides;
 *   4. the pool's own fields.
 * `metrics` is replaced whole; `missingData` is merged field by field. The result is turned into the
 * decision core's DeciderSpec, which knows nothing of presets or CRD field names.
 */
import { PoolRunner } from '../decide/pool-runner.ts';
import { KVPA_EXTENSIONS } from '../decide/spec.ts';
import type { DeciderSpec } from '../decide/types.ts';
import type { AggregationAlgorithm } from '../decide/window.ts';
import { DEFAULT_CAPACITY_SAMPLING } from '../decide/work.ts';
import { BUILTIN_BEHAVIOR, DEFAULT_MIN_REPLICAS, DEFAULT_PRESET } from './defaults.ts';
import {
  type Behavior,
  type EngineSetting,
  type MetricSpec,
  type PodAutoscalerSpec,
  type PoolSpec,
  PROMQL_SOURCE_FIX,
  PROMQL_SOURCE_PROBLEM,
  type RanksOn,
  type ScaleTargetRef,
  signalKindOfMetric,
  signalName,
} from './podautoscaler.ts';
import type { Policy } from './policy.ts';

export interface ResolvedPool {
  readonly name: string;
  readonly scaleTargetRef: ScaleTargetRef;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly engine: EngineSetting;
  /** Read every pod of a group (`all`) or its head only. */
  readonly ranksOn: RanksOn;
  /** DP ranks one group must report; null when not checked. */
  readonly expectedRanks: number | null;
  readonly metrics: readonly MetricSpec[];
  readonly stableWindowSeconds: number;
  readonly panicWindowPercentage: number;
  readonly panicThresholdPercentage: number;
  readonly maxScaleUpRate: number;
  readonly maxScaleDownRate: number;
  readonly scaleDownDelaySeconds: number;
  readonly activationScale: number;
  readonly aggregation: AggregationAlgorithm;
  readonly tickSeconds: number;
  readonly startupTimeoutSeconds: number;
  readonly headroomPercentage: number;
  readonly horizonSeconds: number;
  readonly horizonMaxGrowthPercentage: number;
  readonly seasonalLookbackSeconds: readonly number[];
  readonly slo: { readonly ttftSeconds?: number; readonly tpotSeconds?: number };
  readonly drainTimeoutSeconds: number;
  readonly capacityCheck: 'Enforce' | 'AskAnyway' | 'Off';
  readonly missingData: {
    readonly staleAfterSeconds: number;
    readonly minQuorumPercentage: number;
    readonly fallbackAfterSeconds: number;
    readonly fallbackMinReplicas: number;
  };
  /** Which layer set each field, for `kvpa validate --explain` and for humans reading status. */
  readonly sources: Readonly<Record<string, string>>;
}

export class ResolveError extends Error {
  constructor(
    readonly path: string,
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

const BEHAVIOR_FIELDS = [
  'metrics',
  'stableWindowSeconds',
  'panicWindowPercentage',
  'panicThresholdPercentage',
  'maxScaleUpRate',
  'maxScaleDownRate',
  'scaleDownDelaySeconds',
  'activationScale',
  'aggregation',
  'tickSeconds',
  'startupTimeoutSeconds',
  'headroomPercentage',
  'horizonSeconds',
  'horizonMaxGrowthPercentage',
  'seasonalLookbackSeconds',
  'slo',
  'drainTimeoutSeconds',
  'capacityCheck',
  'missingData',
] as const satisfies readonly (keyof Behavior)[];

type Layer = { readonly label: string; readonly behavior: Behavior };

/** The preset's layers for one pool, following `policy:` references (cycles are an error). */
function presetLayers(
  presetName: string,
  poolName: string,
  policies: ReadonlyMap<string, Policy>,
  path: string,
  seen: readonly string[] = [],
): Layer[] {
  if (seen.includes(presetName)) {
    throw new ResolveError(
      path,
      `policy presets refer to each other in a cycle: ${[...seen, presetName].join(' → ')}`,
      'break the cycle in policies/',
    );
  }
  const preset = policies.get(presetName);
  if (preset === undefined) {
    const known = [...policies.keys()].sort();
    const close = closest(presetName, known);
    throw new ResolveError(
      path,
      seen.length > 0
        ? `unknown policy preset "${presetName}" (named by preset ${seen[seen.length - 1]}, pools.${poolName}.policy)`
        : `unknown policy preset "${presetName}"`,
      close !== null
        ? `did you mean "${close}"? Known presets: ${known.join(', ')}`
        : `known presets: ${known.join(', ')}`,
    );
  }
  const layers: Layer[] = [];
  if (preset.spec.behavior) layers.push({ label: `preset ${presetName}`, behavior: preset.spec.behavior });
  const poolEntry = preset.spec.pools?.[poolName];
  if (poolEntry !== undefined) {
    const { policy, ...behavior } = poolEntry;
    if (policy !== undefined) {
      layers.push(...presetLayers(policy, poolName, policies, path, [...seen, presetName]));
    }
    layers.push({ label: `preset ${presetName} pools.${poolName}`, behavior });
  }
  return layers;
}

export function resolvePool(
  spec: Pick<PodAutoscalerSpec, 'policyRef'>,
  pool: PoolSpec,
  poolIndex: number,
  policies: ReadonlyMap<string, Policy>,
): ResolvedPool {
  const presetName = spec.policyRef?.name ?? DEFAULT_PRESET;
  const layers: Layer[] = [
    { label: 'built-in default', behavior: BUILTIN_BEHAVIOR as unknown as Behavior },
    ...presetLayers(presetName, pool.name, policies, spec.policyRef ? 'spec.policyRef.name' : 'spec'),
  ];
  if (spec.policyRef?.overrides)
    layers.push({ label: 'spec.policyRef.overrides', behavior: spec.policyRef.overrides });
  const {
    name: _n,
    scaleTargetRef: _s,
    minReplicas: _mi,
    maxReplicas: _ma,
    engine: _e,
    ranksOn: _r,
    expectedRanks: _x,
    ...poolBehavior
  } = pool;
  layers.push({ label: `spec.pools[${poolIndex}]`, behavior: poolBehavior });

  const merged: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const layer of layers) {
    for (const field of BEHAVIOR_FIELDS) {
      const value = layer.behavior[field];
      if (value === undefined) continue;
      if (field === 'missingData' || field === 'slo') {
        merged[field] = { ...(merged[field] as object | undefined), ...(value as object) };
        for (const k of Object.keys(value as object)) sources[`${field}.${k}`] = layer.label;
      } else {
        merged[field] = value;
        sources[field] = layer.label;
      }
    }
  }
  const metrics = merged.metrics as MetricSpec[] | undefined;
  if (metrics === undefined || metrics.length === 0) {
    throw new ResolveError(
      `spec.pools[${poolIndex}].metrics`,
      `pool "${pool.name}" has no metrics: neither the pool nor preset "${presetName}" defines any for it`,
      `set spec.pools[${poolIndex}].metrics (e.g. [{type: kvCacheUtilization, target: 0.7}]) or use a preset with an entry for "${pool.name}"`,
    );
  }
  const minReplicas = pool.minReplicas ?? DEFAULT_MIN_REPLICAS;
  if (minReplicas > pool.maxReplicas) {
    throw new ResolveError(
      `spec.pools[${poolIndex}].minReplicas`,
      `minReplicas ${minReplicas} exceeds maxReplicas ${pool.maxReplicas}`,
      'lower minReplicas or raise maxReplicas',
    );
  }
  return {
    ...(merged as Omit<
      ResolvedPool,
      | 'name'
      | 'scaleTargetRef'
      | 'minReplicas'
      | 'maxReplicas'
      | 'engine'
      | 'ranksOn'
      | 'expectedRanks'
      | 'sources'
    >),
    name: pool.name,
    scaleTargetRef: pool.scaleTargetRef,
    minReplicas,
    maxReplicas: pool.maxReplicas,
    engine: pool.engine ?? 'auto',
    ranksOn: pool.ranksOn ?? 'head',
    expectedRanks: pool.expectedRanks ?? null,
    sources,
  };
}

/** Resolves every pool; collects all errors instead of stopping at the first. */
export function resolveAll(
  spec: PodAutoscalerSpec,
  policies: ReadonlyMap<string, Policy>,
): { pools: ResolvedPool[]; errors: ResolveError[] } {
  const pools: ResolvedPool[] = [];
  const errors: ResolveError[] = [];
  spec.pools.forEach((pool, i) => {
    try {
      const resolved = resolvePool(spec, pool, i, policies);
      checkMetricsSource(spec, resolved, i);
      pools.push(resolved);
    } catch (e) {
      if (e instanceof ResolveError) errors.push(e);
      else throw e;
    }
  });
  errors.push(...flowCouplingErrors(spec, pools));
  return { pools, errors };
}

/**
 * A band derived from the flows (coupling.ratio.fromFlows) reads the prefill pool's promptTokens and the decode
 * pool's generationTokens signals, their demand and one group's capacity: without them it would never exist.
 * Checked on the resolved metrics, so a preset's count. A pool that did not resolve has its own error already.
 */
function flowCouplingErrors(spec: PodAutoscalerSpec, pools: readonly ResolvedPool[]): ResolveError[] {
  const c = spec.coupling;
  if (c?.ratio.fromFlows === undefined) return [];
  const needs = [
    { role: 'prefill', name: c.prefillPool ?? 'prefill', type: 'promptTokens', flow: 'prompt' },
    { role: 'decode', name: c.decodePool ?? 'decode', type: 'generationTokens', flow: 'generated' },
  ] as const;
  return needs.flatMap(({ role, name, type, flow }) => {
    const pool = pools.find((p) => p.name === name);
    if (pool === undefined || pool.metrics.some((m) => m.type === type)) return [];
    const i = spec.pools.findIndex((p) => p.name === name);
    return [
      new ResolveError(
        'spec.coupling.ratio.fromFlows',
        `coupling.ratio.fromFlows derives the band from the ${role} pool's ${flow} tokens/s, but pool "${name}" has no ${type} metric`,
        `add {type: ${type}, target: <${flow} tokens/s one group serves>} to spec.pools[${i}].metrics, or set coupling.ratio.min and max in place of fromFlows`,
      ),
    ];
  });
}

/**
 * A promql metric runs only on the Prometheus source; on the pods source it would be noData on every
 * tick. The schema rule (promqlSourceRule) sees the metrics the object spells out; this sees the
 * resolved ones, so a preset's promql metric on a pods-source PodAutoscaler is refused too.
 */
function checkMetricsSource(spec: PodAutoscalerSpec, pool: ResolvedPool, poolIndex: number): void {
  if (spec.metricsSource.prometheus !== undefined) return;
  const j = pool.metrics.findIndex((m) => m.type === 'promql');
  const metric = pool.metrics[j];
  if (metric === undefined) return;
  const from = pool.sources.metrics ?? '';
  if (from === `spec.pools[${poolIndex}]`) {
    throw new ResolveError(
      `spec.pools[${poolIndex}].metrics[${j}]`,
      PROMQL_SOURCE_PROBLEM,
      PROMQL_SOURCE_FIX,
    );
  }
  if (from === 'spec.policyRef.overrides') {
    throw new ResolveError(
      `spec.policyRef.overrides.metrics[${j}]`,
      PROMQL_SOURCE_PROBLEM,
      PROMQL_SOURCE_FIX,
    );
  }
  throw new ResolveError(
    `spec.pools[${poolIndex}].metrics`,
    `${from} gives pool "${pool.name}" a promql metric, metrics[${j}] (${signalName(metric)}): ${PROMQL_SOURCE_PROBLEM}`,
    `set metricsSource.prometheus.address, or set spec.pools[${poolIndex}].metrics to built-in metric types in place of the preset's`,
  );
}

/** The decision core's view of a resolved pool. */
export function toDeciderSpec(pool: ResolvedPool): DeciderSpec {
  return {
    stableWindowSeconds: pool.stableWindowSeconds,
    panicThreshold: pool.panicThresholdPercentage / 100,
    maxScaleUpRate: pool.maxScaleUpRate,
    maxScaleDownRate: pool.maxScaleDownRate,
    scaleDownDelaySeconds: pool.scaleDownDelaySeconds,
    activationScale: pool.activationScale,
    reachable: true,
    minReplicas: pool.minReplicas,
    maxReplicas: pool.maxReplicas,
    tickSeconds: pool.tickSeconds,
    extensions: {
      ...KVPA_EXTENSIONS,
      horizonSeconds: pool.horizonSeconds,
      horizonMaxGrowth: pool.horizonMaxGrowthPercentage / 100,
      slo: pool.slo ?? {},
      startupTimeoutSeconds: pool.startupTimeoutSeconds,
      missingFallbackAfterSeconds: pool.missingData.fallbackAfterSeconds,
      fallbackMinReplicas: pool.missingData.fallbackMinReplicas,
    },
  };
}

/** The one pool runner of a resolved pool: its decider spec and one signal window per metric. */
export function poolRunnerFor(pool: ResolvedPool): PoolRunner {
  return new PoolRunner(
    toDeciderSpec(pool),
    pool.metrics.map((m) => {
      const kind = signalKindOfMetric(m.type);
      return {
        name: signalName(m),
        targetPerGroup: m.target,
        stableWindowSeconds: pool.stableWindowSeconds,
        panicWindowPercentage: pool.panicWindowPercentage,
        aggregation: pool.aggregation,
        kind,
        ...(kind === 'work'
          ? {
              work: {
                capacity: {
                  ...DEFAULT_CAPACITY_SAMPLING,
                  configuredPerSecond: m.target,
                  measure: m.measureCapacity ?? true,
                },
                headroom: pool.headroomPercentage / 100,
                trendWindowSeconds: trendWindowSeconds(pool),
                seasonalLookbacksSeconds: pool.seasonalLookbackSeconds,
              },
            }
          : {}),
        // A group's KV use cannot pass all of its cache (vLLM's kv_cache_usage_perc is a fraction of it).
        ...(m.type === 'kvCacheUtilization'
          ? { exhaustion: { ceilingPerGroup: 1, trendWindowSeconds: trendWindowSeconds(pool) } }
          : {}),
      };
    }),
  );
}

/**
 * A trend is read over half the horizon it projects across, at least 5 minutes: a line fitted over the
 * whole horizon lags a rise by half of it, and the significance test (src/decide/work.ts) keeps the
 * shorter window's noise out of the plan.
 */
export function trendWindowSeconds(pool: Pick<ResolvedPool, 'horizonSeconds'>): number {
  return Math.max(300, pool.horizonSeconds / 2);
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

/** The closest candidate within a third of the word's length, or null. */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.ceil(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
