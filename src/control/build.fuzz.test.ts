/**
 * Validation equals runtime: a PodAutoscaler that `kvpa validate` accepts (the zod schema with its
 * cross-field rules, then the preset resolution) is built by the controller's production wiring
 * (createController: scale targets per kind, a Grafana annotator) without an error. Generated specs
 * are mostly plausible, with hostile values mixed in (wrong apiVersion groups, file: and user:pass@
 * URLs, 1e308, NaN, negative and fractional counts). Runs: KVPA_FUZZ_RUNS (default 2,000, CI-sized;
 * the acceptance run uses KVPA_FUZZ_RUNS=10000 or more).
 */
import { KubeConfig } from '@kubernetes/client-node';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { checkPodAutoscaler, loadPolicies, parseDocuments } from '../api/documents.ts';
import { SCALE_TARGET_GROUPS, SCALE_TARGET_KINDS } from '../api/podautoscaler.ts';
import { createController } from '../cli/controller.ts';
import type { RawPodAutoscaler } from './kube.ts';

const RUNS = Number(process.env.KVPA_FUZZ_RUNS ?? 2_000);

const weighted = <T>(usual: fc.Arbitrary<T>, hostile: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 40, arbitrary: usual as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: hostile });
const hostileNumber = fc.oneof(
  fc.constantFrom(1e308, -1e308, Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 0.5, 2 ** 31, 2 ** 53 + 2, -0),
  fc.double(),
  fc.string({ maxLength: 4 }),
);
const int = (min: number, max: number) => weighted(fc.integer({ min, max }), hostileNumber);
const num = (min: number, max: number) =>
  weighted(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), hostileNumber);

const url = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.constantFrom('http://prometheus.monitoring:9090', 'https://grafana.example.com/g/'),
  },
  { weight: 2, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'http://user:pass@grafana.example.com',
      'https://token@grafana.example.com',
      'file:///etc/passwd',
      'gopher://prometheus:70/',
      'ftp://x',
      'http://h\\@evil.example',
      'http://exa mple.com',
      'javascript:alert(1)',
      'http://[::1]:9090',
      'http://127.0.0.1:1/',
      '',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((t) => `http://${t}`) },
);

const apiVersionFor = (kind: (typeof SCALE_TARGET_KINDS)[number]) =>
  fc.oneof(
    {
      weight: 40,
      arbitrary: fc.constantFrom(`${SCALE_TARGET_GROUPS[kind]}/v1`, `${SCALE_TARGET_GROUPS[kind]}/v1alpha1`),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'apps/v1',
        'leaderworkerset.x-k8s.io/v1',
        'ray.io/v1',
        `${SCALE_TARGET_GROUPS[kind]}/`,
        `${SCALE_TARGET_GROUPS[kind]}`,
        'v1',
        '/v1',
        `${SCALE_TARGET_GROUPS[kind]}/v1/extra`,
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  );

const scaleTargetRef = fc.constantFrom(...SCALE_TARGET_KINDS).chain((kind) =>
  fc.record(
    {
      apiVersion: apiVersionFor(kind),
      kind: weighted(fc.constant(kind), fc.constantFrom('Pod', 'ReplicaSet', '')),
      name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'),
      workerGroupName: fc.constantFrom('workers', 'w-2'),
      roleName: fc.constantFrom('prefill', 'decode'),
    },
    { requiredKeys: ['apiVersion', 'kind', 'name'] },
  ),
);

const metric = fc.oneof(
  fc.record({
    type: fc.constantFrom('kvCacheUtilization', 'queueDepth', 'runningRequests'),
    target: weighted(fc.constantFrom(0.5, 0.7, 0.9, 1), hostileNumber),
  }),
  fc.record({
    type: fc.constant('promql'),
    target: num(0.001, 1e6),
    query: fc.constant('sum(x)'),
    name: fc.constantFrom('tps', 'x_1'),
    kind: fc.constantFrom('perGroup', 'total'),
  }),
);

const behavior = {
  metrics: fc.array(metric, { minLength: 1, maxLength: 3 }),
  stableWindowSeconds: int(6, 3600),
  panicWindowPercentage: int(1, 100),
  panicThresholdPercentage: int(110, 1000),
  maxScaleUpRate: num(1.01, 1000),
  maxScaleDownRate: num(1.01, 1000),
  scaleDownDelaySeconds: int(0, 7200),
  activationScale: int(1, 10),
  aggregation: fc.constantFrom('linear', 'weightedExponential'),
  tickSeconds: int(1, 60),
  startupTimeoutSeconds: int(0, 14400),
  missingData: fc.record(
    {
      staleAfterSeconds: int(1, 3600),
      minQuorumPercentage: int(1, 100),
      fallbackAfterSeconds: int(0, 86400),
      fallbackMinReplicas: int(0, 2),
    },
    { requiredKeys: [] },
  ),
};

const pool = fc.record(
  {
    name: fc.constantFrom('prefill', 'decode', 'p3'),
    scaleTargetRef,
    minReplicas: int(0, 2),
    maxReplicas: int(1, 16),
    engine: fc.constantFrom('auto', 'vllm', 'sglang'),
    ...behavior,
  },
  { requiredKeys: ['name', 'scaleTargetRef', 'maxReplicas'] },
);

const metricsSource = fc.oneof(
  fc.record({
    prometheus: fc.record({ address: url, queryTimeoutSeconds: int(1, 120) }, { requiredKeys: ['address'] }),
  }),
  fc.record({
    pods: fc.record(
      {
        port: int(1, 65535),
        path: weighted(fc.constantFrom('/metrics', '/m'), fc.constant('metrics')),
        scheme: fc.constantFrom('http', 'https'),
        timeoutSeconds: int(1, 30),
      },
      { requiredKeys: ['port'] },
    ),
  }),
);

const spec = fc.record(
  {
    mode: fc.constantFrom('Apply', 'DryRun'),
    policyRef: fc.record(
      {
        name: weighted(
          fc.constantFrom('default', 'deepseek-r1-disaggregated', 'deepseek-r1-decode'),
          fc.constant('nope'),
        ),
        overrides: fc.record(behavior, { requiredKeys: [] }),
      },
      { requiredKeys: ['name'] },
    ),
    metricsSource,
    grafana: fc.record(
      {
        url,
        tokenSecretRef: fc.constant({ name: 'grafana', key: 'token' }),
        dashboardUID: fc.constantFrom('abc', 'x'),
        panelId: int(1, 100),
        tags: fc.constant(['kvpa']),
      },
      { requiredKeys: ['url', 'tokenSecretRef'] },
    ),
    // Unique names and targets mostly (both are rules), with a duplicate now and then.
    pools: fc.oneof(
      { weight: 9, arbitrary: fc.uniqueArray(pool, { selector: (p) => p.name, minLength: 1, maxLength: 3 }) },
      { weight: 1, arbitrary: fc.array(pool, { minLength: 1, maxLength: 3 }) },
    ),
  },
  { requiredKeys: ['metricsSource', 'pools'] },
);

describe(`${RUNS} generated PodAutoscalers: what kvpa validate accepts, the controller builds`, () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u', token: 'x' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  const { policies } = loadPolicies();
  const controller = createController(kc, { policies, logger: pino({ level: 'silent' }), identity: 'fuzz' });
  afterAll(() => controller.stop());

  it('no spec that validates is InvalidSpec (or throws) at build time; both outcomes occur', {
    timeout: Math.max(30_000, RUNS * 20),
  }, () => {
    let accepted = 0;
    let rejected = 0;
    let generation = 0;
    fc.assert(
      fc.property(spec, (s) => {
        const text = stringify({
          apiVersion: 'kvpa.io/v1alpha1',
          kind: 'PodAutoscaler',
          metadata: { name: 'fuzz', namespace: 'team-a' },
          spec: s,
        });
        const { documents, errors } = parseDocuments('fuzz.yaml', text);
        const doc = documents[0];
        if (errors.length > 0 || doc === undefined || doc.kind !== 'PodAutoscaler') {
          rejected++;
          return;
        }
        if (checkPodAutoscaler(doc, policies).length > 0) {
          rejected++;
          return;
        }
        accepted++;
        const raw = { ...doc.value, metadata: { ...doc.value.metadata, generation: ++generation } };
        controller.sync([raw as RawPodAutoscaler]);
        expect(controller.invalidReason('team-a/fuzz'), text).toBeNull();
      }),
      { numRuns: RUNS },
    );
    console.log(`kvpa validate accepted ${accepted} and rejected ${rejected} of ${RUNS} generated specs`);
    // The generator must exercise both sides, or the property proves little.
    expect(accepted).toBeGreaterThan(RUNS / 10);
    expect(rejected).toBeGreaterThan(RUNS / 10);
  });
});
