/**
 * The PodAutoscaler API (kvpa.io/v1alpha1), defined once as zod schemas. The TypeScript types are
 * inferred from these schemas and the CRD in crds/ is generated from them (`npm run gen:crds`).
 *
 * Units: replica counts are whole groups (one leader plus its workers), never pods.
 * Pool behaviour fields are optional here on purpose: unset fields come from the policy preset
 * (policies/) and then from the built-in defaults; see resolve.ts for the precedence.
 */
import { z } from 'zod';
import { type CrossFieldRule, withRules } from './rules.ts';

export const API_GROUP = 'kvpa.io';
export const API_VERSION = 'v1alpha1';
export const KIND = 'PodAutoscaler';
export const PLURAL = 'podautoscalers';

/** Keeps CEL cost bounded and lists reviewable. */
export const MAX_POOLS = 8;
export const MAX_METRICS = 8;

const int32 = (description: string) => z.int32().describe(description);
const name253 = z.string().min(1).max(253);

export const SCALE_TARGET_KINDS = [
  'LeaderWorkerSet',
  'RayClusterFleet',
  'PodCliqueScalingGroup',
  'DynamoGraphDeploymentScalingAdapter',
  'DisaggregatedSetRoleScaler',
  'Deployment',
  'StatefulSet',
  'RayCluster',
  'StormService',
] as const;

/**
 * The API group each kind is served from; the version is the user's. The controller reads and writes
 * the target at `<group>/<version>`, so a ref whose apiVersion names another group can never work.
 */
export const SCALE_TARGET_GROUPS: Readonly<Record<(typeof SCALE_TARGET_KINDS)[number], string>> = {
  LeaderWorkerSet: 'leaderworkerset.x-k8s.io',
  RayClusterFleet: 'orchestration.aibrix.ai',
  PodCliqueScalingGroup: 'grove.io',
  DynamoGraphDeploymentScalingAdapter: 'nvidia.com',
  DisaggregatedSetRoleScaler: 'disaggregatedset.x-k8s.io',
  Deployment: 'apps',
  StatefulSet: 'apps',
  RayCluster: 'ray.io',
  StormService: 'orchestration.aibrix.ai',
};

/** A Kubernetes API version: v1, v1alpha1, v2beta3. */
const VERSION_PATTERN = 'v[0-9]+((alpha|beta)[0-9]+)?';

function apiVersionPattern(kind: (typeof SCALE_TARGET_KINDS)[number]): string {
  return `^${SCALE_TARGET_GROUPS[kind].replaceAll('.', '[.]')}/${VERSION_PATTERN}$`;
}

export const ScaleTargetRefSchema = z
  .strictObject({
    apiVersion: z
      .string()
      .min(1)
      .max(253)
      .describe('API version of the scale target, e.g. leaderworkerset.x-k8s.io/v1 or ray.io/v1.'),
    kind: z
      .enum(SCALE_TARGET_KINDS)
      .describe(
        'Kind of the workload that owns the replica groups. Kinds with a /scale subresource are scaled through it; RayCluster and StormService are patched at the named worker group or role.',
      ),
    name: name253.describe('Name of the scale target, in the PodAutoscaler namespace.'),
    workerGroupName: z
      .string()
      .min(1)
      .max(63)
      .optional()
      .describe('RayCluster only: the spec.workerGroupSpecs[].groupName whose replicas count the groups.'),
    roleName: z
      .string()
      .min(1)
      .max(63)
      .optional()
      .describe('StormService only: the spec.template.spec.roles[].name of the role to scale (pool mode).'),
  })
  .describe('The workload whose replica groups this pool scales. Groups are always scaled whole.');
export type ScaleTargetRef = z.infer<typeof ScaleTargetRefSchema>;

export const scaleTargetRules: readonly CrossFieldRule<ScaleTargetRef>[] = [
  {
    // One clause per kind, from SCALE_TARGET_GROUPS; the TypeScript twin runs the same pattern.
    cel: SCALE_TARGET_KINDS.map(
      (k) => `(self.kind == '${k}' && self.apiVersion.matches('${apiVersionPattern(k)}'))`,
    ).join(' || '),
    message: `scaleTargetRef.apiVersion must be <group>/<version> of its kind: ${SCALE_TARGET_KINDS.map(
      (k) => `${k} ${SCALE_TARGET_GROUPS[k]}/…`,
    ).join(', ')} (e.g. leaderworkerset.x-k8s.io/v1)`,
    fieldPath: '.apiVersion',
    check: (s) => new RegExp(apiVersionPattern(s.kind)).test(s.apiVersion),
  },
  {
    cel: "self.kind != 'RayCluster' || has(self.workerGroupName)",
    message: 'scaleTargetRef.workerGroupName is required for kind RayCluster: name the worker group to scale',
    fieldPath: '.workerGroupName',
    check: (s) => s.kind !== 'RayCluster' || s.workerGroupName !== undefined,
  },
  {
    cel: "self.kind != 'StormService' || has(self.roleName)",
    message:
      'scaleTargetRef.roleName is required for kind StormService: name the role (e.g. prefill) to scale',
    fieldPath: '.roleName',
    check: (s) => s.kind !== 'StormService' || s.roleName !== undefined,
  },
];

export const METRIC_TYPES = [
  'kvCacheUtilization',
  'queueDepth',
  'runningRequests',
  'promptTokens',
  'generationTokens',
  'promql',
] as const;
export type MetricType = (typeof METRIC_TYPES)[number];

/** Metric types that are a flow of tokens/s against a group's capacity (decide/work.ts). */
export const WORK_METRIC_TYPES: readonly MetricType[] = ['promptTokens', 'generationTokens'];

/** How a metric type behaves under overload, for the decision core (SignalKind). */
export function signalKindOfMetric(type: MetricType): 'level' | 'backlog' | 'work' {
  if (WORK_METRIC_TYPES.includes(type)) return 'work';
  return type === 'queueDepth' ? 'backlog' : 'level';
}

export const MetricSpecSchema = z
  .strictObject({
    type: z
      .enum(METRIC_TYPES)
      .describe(
        'kvCacheUtilization: KV-cache use of each group (0-1). queueDepth: waiting requests per group. runningRequests: running requests per group. promptTokens: prompt tokens/s demanded (served plus queue growth, plus a backlog to clear) against what a prefill group serves. generationTokens: the same for generated tokens on decode. promql: a raw query (escape hatch).',
      ),
    target: z
      .number()
      .gt(0)
      .max(1e9)
      .describe(
        'The value one group should carry. kvCacheUtilization: a fraction in (0, 1]. queueDepth/runningRequests: requests per group. promptTokens/generationTokens: the tokens/s one group serves within the SLO (its capacity; headroomPercentage keeps demand below it). promql: per group, or for the whole pool when kind is total.',
      ),
    measureCapacity: z
      .boolean()
      .optional()
      .describe(
        "promptTokens/generationTokens only: measure a group's capacity online (the tokens/s a group serves while its queue is non-empty) and use it once 30 samples exist, within 4x of target. false pins target. Default true.",
      ),
    query: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe(
        'promql only: an instant-vector PromQL query. With kind perGroup it must return one series per group head pod (keep the pod label).',
      ),
    name: z
      .string()
      .regex(/^[a-zA-Z][a-zA-Z0-9_]*$/)
      .max(63)
      .optional()
      .describe('promql only: a short name for the signal, used in status, events and annotations.'),
    kind: z
      .enum(['perGroup', 'total'])
      .optional()
      .describe(
        'promql only: perGroup sums the per-group values over ready groups; total is already the pool total.',
      ),
  })
  .describe('One scaling signal. With several signals the largest want wins.');
export type MetricSpec = z.infer<typeof MetricSpecSchema>;

/** The name a metric's signal goes by in status, events and windows: its type, or a promql metric's own name. */
export function signalName(metric: MetricSpec): string {
  return metric.type === 'promql' ? (metric.name ?? 'promql') : metric.type;
}

export const metricRules: readonly CrossFieldRule<MetricSpec>[] = [
  {
    cel: "self.type != 'kvCacheUtilization' || self.target <= 1.0",
    message: 'target of a kvCacheUtilization metric is a fraction: use a value in (0, 1], e.g. 0.7',
    fieldPath: '.target',
    check: (m) => m.type !== 'kvCacheUtilization' || m.target <= 1,
  },
  {
    cel: "self.type != 'promql' || (has(self.query) && has(self.name) && has(self.kind))",
    message: 'a promql metric needs query, name and kind (perGroup or total)',
    check: (m) =>
      m.type !== 'promql' || (m.query !== undefined && m.name !== undefined && m.kind !== undefined),
  },
  {
    cel: "self.type == 'promql' || (!has(self.query) && !has(self.kind))",
    message: 'query and kind apply only to type promql: remove them or set type: promql',
    check: (m) => m.type === 'promql' || (m.query === undefined && m.kind === undefined),
  },
  {
    // The pattern only: whether a perGroup query keeps `pod` depends on what PromQL aggregates, which
    // needs a PromQL parser; the source checks the answer against the label rule instead.
    cel: "!has(self.query) || self.query.matches(r'\\S')",
    message: 'query of a promql metric must not be blank: give an instant-vector PromQL query',
    fieldPath: '.query',
    check: (m) => m.query === undefined || /\S/.test(m.query),
  },
  {
    cel: "!has(self.measureCapacity) || self.type == 'promptTokens' || self.type == 'generationTokens'",
    message: 'measureCapacity applies only to types promptTokens and generationTokens: remove it',
    fieldPath: '.measureCapacity',
    check: (m) => m.measureCapacity === undefined || WORK_METRIC_TYPES.includes(m.type),
  },
];

/** The signal name of a metric in CEL, as signalName gives it (a promql metric without a name fails another rule). */
const CEL_SIGNAL_NAME = (v: string) => `(${v}.type == 'promql' && has(${v}.name) ? ${v}.name : ${v}.type)`;

export const metricListRules: readonly CrossFieldRule<MetricSpec[]>[] = [
  {
    cel: `self.all(m, self.exists_one(n, ${CEL_SIGNAL_NAME('n')} == ${CEL_SIGNAL_NAME('m')}))`,
    message:
      "each metric of a pool needs its own signal name (its type, or a promql metric's name): two metrics of one name would share one window",
    check: (ms) => new Set(ms.map(signalName)).size === ms.length,
  },
];

export const SloSchema = z
  .strictObject({
    ttftSeconds: z
      .number()
      .gt(0)
      .max(3600)
      .optional()
      .describe('Time to first token, p90 over the panic window (prefill pools).'),
    tpotSeconds: z
      .number()
      .gt(0)
      .max(60)
      .optional()
      .describe('Time per output token, p90 over the panic window (decode pools).'),
  })
  .describe(
    "The latency SLO guard: above it the pool does not shrink and gets one more group when none is starting. Read from the engines' histograms; unknown latency leaves the guard off.",
  );

export const MissingDataSchema = z
  .strictObject({
    staleAfterSeconds: int32(
      'A sample older than this (by its own timestamp) counts as stale, not as a value.',
    )
      .min(1)
      .max(3600)
      .optional(),
    minQuorumPercentage: int32(
      'Share of ready groups that must report a signal for it to be used; below it the signal is NoQuorum.',
    )
      .min(1)
      .max(100)
      .optional(),
    fallbackAfterSeconds: int32(
      'After signals have been missing this long, raise the pool to at least fallbackMinReplicas. 0 disables the fallback. Missing data never scales down.',
    )
      .min(0)
      .max(86400)
      .optional(),
    fallbackMinReplicas: int32('The floor (in groups) used once fallbackAfterSeconds has passed.')
      .min(0)
      .optional(),
  })
  .describe(
    'How the pool behaves when a signal is missing, stale or short of quorum: it holds (no scale-down).',
  );

/** Fields shared by a pool and a policy preset: how a pool scales, not what it scales. */
export const behaviorShape = {
  metrics: withRules(
    z.array(withRules(MetricSpecSchema, metricRules)).min(1).max(MAX_METRICS),
    metricListRules,
  )
    .optional()
    .describe('Scaling signals; the largest want wins.'),
  stableWindowSeconds: int32(
    'Stable window: the averaging window of the stable signal, and how long panic lasts after the last tick over the threshold.',
  )
    .min(6)
    .max(3600)
    .optional(),
  panicWindowPercentage: int32('The panic window as a percentage of the stable window (10 % of 60 s = 6 s).')
    .min(1)
    .max(100)
    .optional(),
  panicThresholdPercentage: int32(
    'Panic starts when the panic-window want reaches this percentage of the ready groups (200 = twice).',
  )
    .min(110)
    .max(1000)
    .optional(),
  maxScaleUpRate: z
    .number()
    .gt(1)
    .max(1000)
    .optional()
    .describe('At most ceil(rate × ready groups) groups after one decision.'),
  maxScaleDownRate: z
    .number()
    .gt(1)
    .max(1000)
    .optional()
    .describe('At least floor(ready groups / rate) groups after one decision.'),
  scaleDownDelaySeconds: int32(
    'A scale-down waits until the want has stayed lower for this long (max over the window).',
  )
    .min(0)
    .max(7200)
    .optional(),
  activationScale: int32('The smallest non-zero group count to scale to once there is load.')
    .min(1)
    .optional(),
  aggregation: z
    .enum(['linear', 'weightedExponential'])
    .optional()
    .describe('Window averaging: linear (Knative default) or weightedExponential.'),
  tickSeconds: int32('How often the pool decides.').min(1).max(60).optional(),
  startupTimeoutSeconds: int32(
    'Requested groups that are not ready yet count as capacity on the way for up to this long; meanwhile further scale-up waits unless demand exceeds the request by the panic threshold. 0 disables.',
  )
    .min(0)
    .max(14400)
    .optional(),
  missingData: MissingDataSchema.optional(),
  headroomPercentage: int32(
    'The one knob: promptTokens/generationTokens demand × (1 + headroom) is what the groups must serve. More headroom buys SLO with GPUs.',
  )
    .min(0)
    .max(400)
    .optional(),
  horizonSeconds: int32(
    "Plan for the cold start: size work signals for the demand their trend expects this far ahead (the pool's startup time). 0 sizes for now.",
  )
    .min(0)
    .max(14400)
    .optional(),
  horizonMaxGrowthPercentage: int32(
    "The horizon plan adds at most this share of today's demand (50 = at most 1.5x).",
  )
    .min(0)
    .max(400)
    .optional(),
  seasonalLookbackSeconds: z
    .array(int32('One look-back, e.g. 86400 for a day.').min(600).max(2_592_000))
    .max(4)
    .optional()
    .describe(
      "The seasonal plan: size work signals for the rise the same hour brought this long ago (the pool's own demand, kept in memory and read back from kvpa's exported kvpa_pool_signal_stable_value in Prometheus after a restart). [] turns it off.",
    ),
  slo: SloSchema.optional(),
  drainTimeoutSeconds: int32(
    "Before a scale-down, the groups the workload will remove leave routing (the pod template's readiness gate kvpa.io/serving) and the lower count is written once their requests finish, or after this long. 0 scales down at once, aborting what they hold.",
  )
    .min(0)
    .max(14400)
    .optional(),
  capacityCheck: z
    .enum(['Enforce', 'AskAnyway', 'Off'])
    .optional()
    .describe(
      "Before a scale-up, count the whole groups the cluster's free GPUs (and the namespace's GPU ResourceQuota) can place. Enforce (default) asks for no more than fit; AskAnyway asks for the want and reports the shortfall (a cluster autoscaler or Karpenter adds nodes); Off skips the check.",
    ),
} as const;

export const BehaviorSchema = z.strictObject(behaviorShape).describe('How a pool scales.');
export type Behavior = z.infer<typeof BehaviorSchema>;

/** Where a group's engine metrics are read: its head pod, or every pod of the group. */
export const RANKS_ON = ['head', 'all'] as const;
export type RanksOn = (typeof RANKS_ON)[number];

/**
 * Kinds whose adapter lists only each group's head (a RayClusterFleet replica is a RayCluster whose
 * head pod runs the API server), so `ranksOn: all` cannot be served.
 */
export const RANKS_HEAD_ONLY_KINDS: readonly (typeof SCALE_TARGET_KINDS)[number][] = ['RayClusterFleet'];

/** The pool's `engine` field: a metric dialect, or `auto` to detect it per pod. */
export const ENGINE_SETTINGS = ['auto', 'vllm', 'sglang', 'trtllm', 'dynamo'] as const;
export type EngineSetting = (typeof ENGINE_SETTINGS)[number];

export const PoolSpecSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .max(63)
      .describe('Pool name, usually prefill or decode. Matches the per-pool entries of the policy preset.'),
    scaleTargetRef: withRules(ScaleTargetRefSchema, scaleTargetRules),
    minReplicas: int32('Fewest groups. Defaults to 1.').min(0).optional(),
    maxReplicas: int32('Most groups. Required: every group is 16+ GPUs.').min(1),
    engine: z
      .enum(ENGINE_SETTINGS)
      .optional()
      .describe(
        "Metric dialect of the engine (vllm, sglang, trtllm for TensorRT-LLM, dynamo for Dynamo's own frontend and worker series); auto detects it from the metric names.",
      ),
    ranksOn: z
      .enum(RANKS_ON)
      .optional()
      .describe(
        "Which pods of a group serve requests and export engine metrics. head (default): the leader only. all: every pod of the group, as with vLLM's hybrid or external data-parallel load balancing, where each node's API server serves its local DP ranks; a group is then read only when all its pods answer, and its values are summed (queues, running, tokens/s) or averaged over ranks (KV use) across them.",
      ),
    expectedRanks: int32(
      'DP ranks one group reports, counted over the pods read (ranksOn). A group reporting fewer is missing (a partial sum would under-count its queue), more is out of range; both name the counts. Unset: not checked.',
    )
      .min(1)
      .max(4096)
      .optional(),
    ...behaviorShape,
  })
  .describe('One pool of replica groups (prefill or decode) and how it scales.');
export type PoolSpec = z.infer<typeof PoolSpecSchema>;

export const poolRules: readonly CrossFieldRule<PoolSpec>[] = [
  {
    cel: `!has(self.ranksOn) || self.ranksOn != 'all' || !(self.scaleTargetRef.kind in [${RANKS_HEAD_ONLY_KINDS.map((k) => `'${k}'`).join(', ')}])`,
    message: `ranksOn: all needs a kind whose group members kvpa lists; ${RANKS_HEAD_ONLY_KINDS.join(', ')} serve(s) from the head pod: use ranksOn: head`,
    fieldPath: '.ranksOn',
    check: (p) => p.ranksOn !== 'all' || !RANKS_HEAD_ONLY_KINDS.includes(p.scaleTargetRef.kind),
  },
  {
    cel: '!has(self.minReplicas) || self.minReplicas <= self.maxReplicas',
    message: 'minReplicas must not exceed maxReplicas',
    fieldPath: '.minReplicas',
    check: (p) => p.minReplicas === undefined || p.minReplicas <= p.maxReplicas,
  },
  {
    cel: '!has(self.missingData) || !has(self.missingData.fallbackMinReplicas) || self.missingData.fallbackMinReplicas <= self.maxReplicas',
    message: 'missingData.fallbackMinReplicas must not exceed maxReplicas',
    fieldPath: '.missingData.fallbackMinReplicas',
    check: (p) => (p.missingData?.fallbackMinReplicas ?? 0) <= p.maxReplicas,
  },
];

/**
 * An outbound URL: http or https, a host without user:pass@ (credentials come from Secrets, never from
 * a URL that is shown in status and logs), no whitespace or backslash (which URL parsers read
 * differently). The same pattern runs as CEL in the API server and as a RegExp in kvpa.
 */
const HTTP_URL_PATTERN = String.raw`^https?://[^@/?#\s\\]+([/?#]\S*)?$`;
const MAX_URL_LENGTH = 2048;

export const httpUrlRules: readonly CrossFieldRule<string>[] = [
  {
    cel: `self.matches(r'${HTTP_URL_PATTERN}')`,
    message:
      'must be an http:// or https:// URL with no user:pass@ (credentials go in a Secret), e.g. https://host.example:9090',
    check: (url) => new RegExp(HTTP_URL_PATTERN).test(url),
  },
];

const httpUrl = (description: string) =>
  withRules(z.url().max(MAX_URL_LENGTH).describe(description), httpUrlRules);

export const PrometheusSourceSchema = z
  .strictObject({
    address: httpUrl('Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.'),
    queryTimeoutSeconds: int32('Timeout of one query.').min(1).max(120).optional(),
  })
  .describe('Read signals from Prometheus (batched queries for all pools).');

export const PodsSourceSchema = z
  .strictObject({
    port: int32('Port of the engine metrics endpoint on each head pod.').min(1).max(65535),
    path: z
      .string()
      .startsWith('/')
      .max(1024)
      .optional()
      .describe('Path of the metrics endpoint. Defaults to /metrics.'),
    scheme: z.enum(['http', 'https']).optional().describe('Defaults to http.'),
    timeoutSeconds: int32('Per-pod scrape timeout.').min(1).max(30).optional(),
  })
  .describe('Scrape head pods directly every second (sub-scrape-interval reaction, as Knative does).');

export const MetricsSourceSchema = z
  .strictObject({
    prometheus: PrometheusSourceSchema.optional(),
    pods: PodsSourceSchema.optional(),
  })
  .describe('Where signals come from: exactly one of prometheus or pods.');
export type MetricsSource = z.infer<typeof MetricsSourceSchema>;

export const metricsSourceRules: readonly CrossFieldRule<MetricsSource>[] = [
  {
    cel: 'has(self.prometheus) != has(self.pods)',
    message: 'set exactly one of metricsSource.prometheus or metricsSource.pods',
    check: (m) => (m.prometheus !== undefined) !== (m.pods !== undefined),
  },
];

export const GrafanaSchema = z
  .strictObject({
    url: httpUrl('Base URL of Grafana, e.g. https://grafana.example.com.'),
    tokenSecretRef: z
      .strictObject({
        name: name253.describe('Secret in the PodAutoscaler namespace.'),
        key: z.string().min(1).max(253).describe('Key in the Secret that holds a service-account token.'),
      })
      .describe('The Grafana API token; read from the Secret, never logged.'),
    dashboardUID: z.string().min(1).max(253).optional().describe('Attach annotations to this dashboard.'),
    panelId: int32('Attach annotations to this panel of the dashboard.').min(1).optional(),
    tags: z.array(z.string().min(1).max(100)).max(16).optional().describe('Extra tags on every annotation.'),
  })
  .describe('Post a Grafana annotation for every scaling event, recommendation and panic period.');

export const PolicyRefSchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(253)
      .describe(
        'A preset from policies/, e.g. deepseek-r1-disaggregated. Its per-pool entries match pools by name.',
      ),
    overrides: BehaviorSchema.optional().describe('Fields that override the preset for every pool.'),
  })
  .describe('A reusable policy preset, with per-field overrides.');

/** The tolerance of a band derived from the token flows when coupling.ratio.fromFlows does not set one. */
export const DEFAULT_FLOWS_TOLERANCE = 0.25;

export const RatioSchema = z
  .strictObject({
    min: z.number().gt(0).max(1000).optional().describe('Fewest prefill groups per decode group, e.g. 0.5.'),
    max: z.number().gt(0).max(1000).optional().describe('Most prefill groups per decode group, e.g. 2.'),
    fromFlows: z
      .strictObject({
        tolerance: z
          .number()
          .min(0.1)
          .max(0.9)
          .optional()
          .describe(
            `The band is the derived ratio × [1 − tolerance, 1 + tolerance]. Default ${DEFAULT_FLOWS_TOLERANCE}.`,
          ),
      })
      .optional()
      .describe(
        "In place of min and max: derive the ratio from the pools' measured flows, (prompt tokens/s × (1 + headroom) ÷ one prefill group's capacity) ÷ (generated tokens/s × (1 + headroom) ÷ one decode group's capacity), from the prefill pool's promptTokens and the decode pool's generationTokens metrics. While either flow or capacity is missing, stale, or under one group of work, there is no band.",
      ),
  })
  .describe(
    'The band, in groups (not GPUs): with 16-GPU prefill and 32-GPU decode groups, 2 is equal GPUs. Either min and max, or fromFlows.',
  );
export type Ratio = z.infer<typeof RatioSchema>;

export const ratioRules: readonly CrossFieldRule<Ratio>[] = [
  {
    cel: 'has(self.fromFlows) ? !has(self.min) && !has(self.max) : has(self.min) && has(self.max)',
    message:
      'coupling.ratio needs either min and max (e.g. {min: 0.5, max: 2}) or fromFlows (e.g. {fromFlows: {tolerance: 0.25}}), not both: fromFlows derives the band that min and max would fix',
    check: (r) =>
      r.fromFlows !== undefined
        ? r.min === undefined && r.max === undefined
        : r.min !== undefined && r.max !== undefined,
  },
  {
    cel: '!has(self.min) || !has(self.max) || self.min <= self.max',
    message: 'coupling.ratio.min must not exceed coupling.ratio.max',
    fieldPath: '.min',
    check: (r) => r.min === undefined || r.max === undefined || r.min <= r.max,
  },
];

export const CouplingSchema = z
  .strictObject({
    prefillPool: z
      .string()
      .max(63)
      .optional()
      .describe('The pool whose groups are the numerator. Defaults to prefill.'),
    decodePool: z
      .string()
      .max(63)
      .optional()
      .describe('The pool whose groups are the denominator. Defaults to decode.'),
    ratio: withRules(RatioSchema, ratioRules),
  })
  .describe(
    'Keep the two pools in a ratio band: after both decide, the short side is raised into the band, and the two writes are ordered so the band holds at every observed state.',
  );
export type Coupling = z.infer<typeof CouplingSchema>;

export const couplingRules: readonly CrossFieldRule<Coupling>[] = [
  {
    cel: "(has(self.prefillPool) ? self.prefillPool : 'prefill') != (has(self.decodePool) ? self.decodePool : 'decode')",
    message: 'coupling.prefillPool and coupling.decodePool must name two different pools',
    fieldPath: '.decodePool',
    check: (c) => (c.prefillPool ?? 'prefill') !== (c.decodePool ?? 'decode'),
  },
];

const PodAutoscalerSpecBase = z
  .strictObject({
    mode: z
      .enum(['Apply', 'DryRun'])
      .default('DryRun')
      .describe(
        'DryRun (default) only recommends: status, events and annotations, never a write. Apply scales.',
      ),
    policyRef: PolicyRefSchema.optional(),
    metricsSource: withRules(MetricsSourceSchema, metricsSourceRules),
    grafana: GrafanaSchema.optional(),
    pools: z
      .array(withRules(PoolSpecSchema, poolRules))
      .min(1)
      .max(MAX_POOLS)
      .describe('One entry per pool, usually prefill and decode. Each pool scales on its own.'),
    coupling: withRules(CouplingSchema, couplingRules).optional(),
  })
  .describe('PodAutoscaler scales the replica groups of LLM serving pools on KV-cache and queue signals.');
export type PodAutoscalerSpec = z.infer<typeof PodAutoscalerSpecBase>;

/** Why a promql metric cannot run on the pods source, and the fix; shared by the rule and resolve.ts. */
export const PROMQL_SOURCE_PROBLEM =
  'type promql needs metricsSource.prometheus (the pods source scrapes engine metrics and cannot run PromQL)';
export const PROMQL_SOURCE_FIX = 'set metricsSource.prometheus.address or use a built-in metric type';

/**
 * A promql metric is served by the Prometheus source only: on the pods source it would be noData on
 * every tick. A pool's metrics are its own, else spec.policyRef.overrides' (resolve.ts); both are
 * checked here. Metrics a preset supplies are not in the object, so resolveAll checks those.
 */
export const promqlSourceRule: CrossFieldRule<PodAutoscalerSpec> = {
  cel: "has(self.metricsSource.prometheus) || self.pools.all(p, has(p.metrics) ? p.metrics.all(m, m.type != 'promql') : (!has(self.policyRef) || !has(self.policyRef.overrides) || !has(self.policyRef.overrides.metrics) || self.policyRef.overrides.metrics.all(m, m.type != 'promql')))",
  message: `${PROMQL_SOURCE_PROBLEM}: ${PROMQL_SOURCE_FIX}`,
  fieldPath: '.pools',
  check: (s) =>
    s.metricsSource.prometheus !== undefined ||
    s.pools.every((p) =>
      (p.metrics ?? s.policyRef?.overrides?.metrics ?? []).every((m) => m.type !== 'promql'),
    ),
  locate: (s) => {
    const promqlAt = (metrics: readonly MetricSpec[], at: readonly (string | number)[]) =>
      metrics.flatMap((m, j) => (m.type === 'promql' ? [[...at, j]] : []));
    const own = s.pools.flatMap((p, i) => promqlAt(p.metrics ?? [], ['pools', i, 'metrics']));
    const overrides = s.pools.some((p) => p.metrics === undefined)
      ? promqlAt(s.policyRef?.overrides?.metrics ?? [], ['policyRef', 'overrides', 'metrics'])
      : [];
    return [...own, ...overrides];
  },
};

export const specRules: readonly CrossFieldRule<PodAutoscalerSpec>[] = [
  {
    cel: 'self.pools.all(p, self.pools.exists_one(q, q.name == p.name))',
    message: 'pool names must be unique',
    fieldPath: '.pools',
    check: (s) => new Set(s.pools.map((p) => p.name)).size === s.pools.length,
  },
  {
    cel: "self.pools.all(p, self.pools.exists_one(q, q.scaleTargetRef.kind == p.scaleTargetRef.kind && q.scaleTargetRef.name == p.scaleTargetRef.name && (has(q.scaleTargetRef.workerGroupName) ? q.scaleTargetRef.workerGroupName : '') == (has(p.scaleTargetRef.workerGroupName) ? p.scaleTargetRef.workerGroupName : '') && (has(q.scaleTargetRef.roleName) ? q.scaleTargetRef.roleName : '') == (has(p.scaleTargetRef.roleName) ? p.scaleTargetRef.roleName : '')))",
    message:
      'each pool needs its own scale target: two pools must not scale the same target (and worker group or role)',
    fieldPath: '.pools',
    check: (s) => {
      const keys = s.pools.map((p) =>
        [
          p.scaleTargetRef.kind,
          p.scaleTargetRef.name,
          p.scaleTargetRef.workerGroupName ?? '',
          p.scaleTargetRef.roleName ?? '',
        ].join('/'),
      );
      return new Set(keys).size === keys.length;
    },
  },
  {
    cel: "!has(self.coupling) || (self.pools.exists(p, p.name == (has(self.coupling.prefillPool) ? self.coupling.prefillPool : 'prefill')) && self.pools.exists(p, p.name == (has(self.coupling.decodePool) ? self.coupling.decodePool : 'decode')))",
    message:
      'coupling names a pool that spec.pools does not have: set coupling.prefillPool and coupling.decodePool to two pool names',
    fieldPath: '.coupling',
    check: (s) =>
      s.coupling === undefined ||
      (s.pools.some((p) => p.name === (s.coupling?.prefillPool ?? 'prefill')) &&
        s.pools.some((p) => p.name === (s.coupling?.decodePool ?? 'decode'))),
  },
  promqlSourceRule,
];

export const PodAutoscalerSpecSchema = withRules(PodAutoscalerSpecBase, specRules);

// ---- status ---------------------------------------------------------------------------------

export const CONDITION_TYPES = [
  'Ready',
  'MetricsAvailable',
  'ScalingActive',
  'ScalingLimited',
  'DryRun',
  'Overridden',
] as const;

export const ConditionSchema = z
  .strictObject({
    type: z
      .string()
      .min(1)
      .max(316)
      .describe(`One of ${CONDITION_TYPES.join(', ')}.`),
    status: z.enum(['True', 'False', 'Unknown']),
    reason: z.string().max(1024).describe('CamelCase, machine-readable reason.'),
    message: z.string().max(32768).describe('What happened and what a user can do about it.'),
    lastTransitionTime: z.iso.datetime().describe('When the status last changed.'),
    observedGeneration: z.int().min(0).optional(),
  })
  .describe('A condition, following the Kubernetes API conventions.');
export type Condition = z.infer<typeof ConditionSchema>;

export const SignalStatusSchema = z.strictObject({
  name: z.string(),
  state: z.enum(['ok', 'noData', 'stale', 'noQuorum', 'outOfRange', 'error']),
  targetPerGroup: z.number(),
  stableTotal: z.number().optional().describe('Sum over ready groups, averaged over the stable window.'),
  panicTotal: z.number().optional().describe('Sum over ready groups, averaged over the panic window.'),
  stableWant: z.int().optional(),
  panicWant: z.int().optional(),
  detail: z.string().optional(),
  backlogTotal: z.number().optional().describe('Work signals: tokens waiting over ready groups.'),
  clearancePerSecond: z
    .number()
    .optional()
    .describe('Work signals: tokens/s added to clear the backlog (at most one group).'),
  projectedTotal: z
    .number()
    .optional()
    .describe(
      'The total the trend expects one horizon ahead: a work signal rising, or a level that reaches its ceiling sooner than a group can start.',
    ),
  horizonWant: z.int().optional(),
  exhaustionSeconds: z
    .number()
    .min(0)
    .optional()
    .describe(
      'With a rising trend: seconds until the requested groups run out (KV at its ceiling, a flow at their capacity).',
    ),
  seasonalRatio: z
    .number()
    .optional()
    .describe(
      'Work signals with history: the mean rise the same hour brought one look-back ago (seasonalLookbackSeconds).',
    ),
  plannedBy: z
    .enum(['seasonal'])
    .optional()
    .describe('Set when the seasonal plan, not the trend, gave projectedTotal.'),
  capacity: z
    .strictObject({
      configuredPerSecond: z.number(),
      measuredPerSecond: z.number().optional(),
      samples: z.int().min(0).describe('Saturated group samples seen so far.'),
      usedPerSecond: z.number(),
      source: z.enum(['configured', 'measured', 'pinned']),
    })
    .optional()
    .describe("Work signals: one group's capacity (tokens/s), configured or measured online."),
});

export const DecisionStatusSchema = z
  .strictObject({
    time: z.iso.datetime(),
    summary: z.string().describe('One line: the want, the signals and every clamp that applied.'),
    signals: z.array(SignalStatusSchema).max(MAX_METRICS),
    stableWinner: z.string().optional(),
    panicWinner: z.string().optional(),
    limitedBy: z
      .array(z.string())
      .describe('Pipeline stages that changed the want (rateLimit, scaleDownDelay, bounds, …).'),
    holdReason: z.string().optional().describe('Why the pool held instead of following the signals.'),
    latency: z
      .strictObject({ ttftSeconds: z.number().optional(), tpotSeconds: z.number().optional() })
      .optional()
      .describe('p90 latencies the SLO guard read; absent when unknown.'),
    sloTrim: z.number().optional().describe('Work targets were divided by this (SLO feedback); absent is 1.'),
  })
  .describe('The last decision and its explanation.');

export const PoolStatusSchema = z.strictObject({
  name: z.string(),
  replicas: z.int().min(0).describe('Groups the scale target asks for (spec).'),
  readyReplicas: z.int().min(0).describe('Groups whose leader and every worker are ready.'),
  desiredReplicas: z.int().min(0).describe('Groups kvpa applied (Apply mode).'),
  recommendedReplicas: z
    .int()
    .min(0)
    .describe('Groups kvpa recommends; equals desiredReplicas in Apply mode.'),
  mode: z.enum(['Stable', 'Panic']).describe('Decision mode of this pool.'),
  lastScaleTime: z.iso.datetime().optional(),
  lastDecision: DecisionStatusSchema.optional(),
  drain: z
    .strictObject({
      phase: z
        .enum(['Draining', 'Removing'])
        .describe("Draining: waiting for the victims' requests; Removing: the lower count is written."),
      victims: z
        .array(z.string())
        .max(1024)
        .describe('Keys of the groups out of routing (LWS group index), first removed first.'),
      fromReplicas: z.int().min(0),
      toReplicas: z.int().min(0),
      startedAt: z.iso.datetime(),
      deadline: z.iso.datetime().describe('When the lower count is written even with requests left.'),
      writtenAt: z.iso.datetime().optional(),
      inFlightRequests: z
        .int()
        .min(0)
        .optional()
        .describe('Requests running or waiting on the victims at the last read.'),
      unreadGroups: z
        .int()
        .min(0)
        .optional()
        .describe('Victims without a reading since they left routing (unknown, never 0).'),
    })
    .optional()
    .describe('A drain in progress: a restarted controller resumes it from here.'),
  drainUnavailable: z
    .string()
    .optional()
    .describe(
      'Why this pool scales down without draining (no readiness gate, a kind without a known victim).',
    ),
  ownerConflict: z
    .string()
    .max(2000)
    .optional()
    .describe(
      "Set when another writer kept reverting kvpa's writes: who, and the fix. kvpa does not write this pool until the PodAutoscaler's spec changes.",
    ),
  dryRunLedger: z
    .strictObject({
      since: z.iso.datetime().describe('When dry-run began; the ledger survives controller restarts.'),
      recommendedGroupHours: z.number().min(0).describe('Group-hours the recommendation would have held.'),
      actualGroupHours: z.number().min(0).describe("Group-hours the target's spec actually held."),
      gpusPerGroup: z
        .int()
        .min(0)
        .optional()
        .describe("GPUs one group requests, from the target's pod templates (absent when it does not say)."),
      recommendedGpuHours: z
        .number()
        .min(0)
        .optional()
        .describe(
          'GPU-hours the recommendation would have held; absent unless GPUs per group were known throughout.',
        ),
      actualGpuHours: z
        .number()
        .min(0)
        .optional()
        .describe('GPU-hours the target actually held; absent unless GPUs per group were known throughout.'),
    })
    .optional()
    .describe(
      'What the recommendation would have spent against what the target held since dry-run began (time with no controller running is left out of both).',
    ),
});

export const PodAutoscalerStatusSchema = z
  .strictObject({
    observedGeneration: z.int().min(0).optional(),
    mode: z
      .enum(['Stable', 'Panic', 'DryRun'])
      .optional()
      .describe('DryRun, else Panic if any pool panics, else Stable.'),
    groups: z.string().optional().describe('Ready/desired groups per pool, e.g. "prefill 2/3 decode 4/4".'),
    conditions: z.array(ConditionSchema).max(16).optional(),
    pools: z.array(PoolStatusSchema).max(MAX_POOLS).optional(),
  })
  .describe('Observed state, written by the controller.');
export type PodAutoscalerStatus = z.infer<typeof PodAutoscalerStatusSchema>;

export const ObjectMetaSchema = z.looseObject({
  name: z.string().min(1).max(253),
  namespace: z.string().min(1).max(63).optional(),
  generation: z.int().optional(),
});

export const PodAutoscalerSchema = z.strictObject({
  apiVersion: z.literal(`${API_GROUP}/${API_VERSION}`),
  kind: z.literal(KIND),
  metadata: ObjectMetaSchema,
  spec: PodAutoscalerSpecSchema,
  status: PodAutoscalerStatusSchema.optional(),
});
export type PodAutoscaler = z.infer<typeof PodAutoscalerSchema>;
