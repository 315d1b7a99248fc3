import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replay, ScenarioSchema } from './decide.ts';
import { main } from './main.ts';

const repo = resolve(import.meta.dirname, '../..');
const at = (p: string) => resolve(repo, p);

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('kvpa validate', () => {
  it('passes every shipped policy and example', async () => {
    const files = ['default', 'deepseek-r1-prefill', 'deepseek-r1-decode', 'deepseek-r1-disaggregated']
      .map((p) => at(`policies/${p}.yaml`))
      .concat(
        ['kserve-deepseek-r1', 'dynamo-grove', 'aibrix', 'kuberay'].map((e) => at(`examples/${e}.yaml`)),
      );
    const r = await run('validate', ...files);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // One ok line per file, and the label rule of kuberay.yaml's promql metric.
    expect(r.out.split('\n')).toHaveLength(files.length + 1);
    expect(r.out).toContain(
      'deepseek-r1-ray/decode promql preemptionRate: a perGroup promql query must return one series per group head pod, keeping its namespace and pod labels',
    );
  });

  it('reports each schema error with file:line:column, the field path and a hint, and exits 1', async () => {
    const r = await run('validate', at('test/fixtures/invalid/broken-podautoscaler.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'broken-podautoscaler.yaml:6:3: error: spec.mode: "apply" is not one of Apply, DryRun',
    );
    expect(r.err).toContain('hint: did you mean "Apply"?');
    expect(r.err).toContain('broken-podautoscaler.yaml:16:7: error: spec.pools[0].maxReplicas');
    expect(r.err).toContain('(without quotes)');
    expect(r.err).toContain('spec.pools[0].scaleDownDelaySecond: unknown field');
    expect(r.err).toContain('did you mean "scaleDownDelaySeconds"?');
    expect(r.err).toContain(
      'spec.pools[0].metrics[0].target: target of a kvCacheUtilization metric is a fraction',
    );
    expect(r.err).toMatch(/4 errors in 1 file$/);
  });

  it('reports cross-field rules and bad presets', async () => {
    const r = await run(
      'validate',
      at('test/fixtures/invalid/semantic-podautoscaler.yaml'),
      at('test/fixtures/invalid/broken-policy.yaml'),
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'spec.pools[0].scaleTargetRef.workerGroupName: scaleTargetRef.workerGroupName is required for kind RayCluster',
    );
    expect(r.err).toContain(
      'semantic-podautoscaler.yaml:19:7: error: spec.pools[0].minReplicas: minReplicas must not exceed maxReplicas',
    );
    expect(r.err).toContain('broken-policy.yaml:8:5: error: spec.behavior.stableWindowSeconds');
    expect(r.err).toContain('did you mean "maxScaleDownRate"?');
  });

  it('resolves presets: an unknown preset gets a suggestion, and a pool without metrics is named', async () => {
    const r = await run('validate', at('test/fixtures/invalid/unknown-preset.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'unknown-preset.yaml:8:5: error: spec.policyRef.name: unknown policy preset "deepseek-r1-decod"',
    );
    expect(r.err).toContain('did you mean "deepseek-r1-decode"?');
    expect(r.err).toContain('pool "embed" has no metrics');
  });

  it('refuses a promql metric on the pods source, spelled out or from a preset, naming the fix', async () => {
    const r = await run('validate', at('test/fixtures/invalid/promql-on-pods.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'promql-on-pods.yaml:21:11: error: spec.pools[0].metrics[1]: type promql needs metricsSource.prometheus',
    );
    expect(r.err).toContain('set metricsSource.prometheus.address or use a built-in metric type');
    expect(r.err).toContain(
      'spec.pools[0].metrics: preset promql-preset gives pool "decode" a promql metric, metrics[0] (load): type promql needs metricsSource.prometheus',
    );
    expect(r.err).toMatch(/2 errors in 1 file$/);
  });

  it('coupling.ratio.fromFlows: refused beside min/max, above tolerance 0.9, and without a generationTokens metric on decode, each naming the field and fix', async () => {
    const r = await run('validate', at('test/fixtures/invalid/coupling-flows.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'coupling-flows.yaml:14:5: error: spec.coupling.ratio: coupling.ratio needs either min and max (e.g. {min: 0.5, max: 2}) or fromFlows (e.g. {fromFlows: {tolerance: 0.25}}), not both',
    );
    expect(r.err).toContain('coupling-flows.yaml:39:9: error: spec.coupling.ratio.fromFlows.tolerance');
    expect(r.err).toContain(
      `spec.coupling.ratio.fromFlows: coupling.ratio.fromFlows derives the band from the decode pool's generated tokens/s, but pool "decode" has no generationTokens metric`,
    );
    expect(r.err).toContain(
      'add {type: generationTokens, target: <generated tokens/s one group serves>} to spec.pools[1].metrics',
    );
    // The fourth document (flows-ok, the preset's promptTokens and generationTokens) has no error.
    expect(r.err).toMatch(/3 errors in 1 file$/);
  });

  it('explains where each effective setting comes from', async () => {
    const r = await run('validate', '--explain', at('examples/kserve-deepseek-r1.yaml'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('scaleDownDelaySeconds: 1200   (spec.pools[1])');
    expect(r.out).toContain('metrics: promptTokens target 112000   (preset deepseek-r1-prefill)');
    expect(r.out).toContain('headroomPercentage: 50   (preset deepseek-r1-prefill)');
    expect(r.out).toContain('slo.ttftSeconds: 2   (preset deepseek-r1-prefill)');
  });

  it('exits 2 naming the flag, and pointing at --help, on bad flags or no files', async () => {
    expect((await run('validate')).code).toBe(2);
    const r = await run('validate', '--no-such-flag', 'x.yaml');
    expect(r.code).toBe(2);
    expect(r.err).toContain("Unknown option '--no-such-flag'");
    expect(r.err).toContain('kvpa validate --help');
  });

  it('reports an unreadable file and YAML syntax errors without crashing', async () => {
    const r = await run('validate', at('test/fixtures/invalid/does-not-exist.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot read');
  });
});

describe('kvpa decide', () => {
  const scenarioPath = at('examples/scenario-decode-burst.json');
  const scenario = ScenarioSchema.parse(JSON.parse(readFileSync(scenarioPath, 'utf8')));

  it('gives the documented output on the shipped example', async () => {
    const r = await run('decide', '--scenario', scenarioPath, '--summary');
    expect(r.code).toBe(0);
    expect(`${r.out}\n`).toBe(readFileSync(at('examples/scenario-decode-burst.summary.jsonl'), 'utf8'));
  });

  it('follows the rules step by step (numbers worked by hand)', () => {
    const lines = replay(scenario);
    const byTime = new Map(lines.map((l) => [l.atSeconds, l]));
    // restart with 2 ready: starts in panic, holds 2 for a stable window
    expect(byTime.get(0)).toMatchObject({ desiredReplicas: 2, inPanic: true });
    expect(byTime.get(70)).toMatchObject({ desiredReplicas: 2, inPanic: false });
    // panic total 3.0 / 0.7 = 4.29 → 5 groups; 5 / 2 ready = 2.5 ≥ 2: panic
    expect(byTime.get(80)).toMatchObject({ desiredReplicas: 5, inPanic: true });
    // 4.2 / 0.7 = 6 wanted while 3 of 5 requested groups start: 6 < 2 × 5, so hold 5
    expect(byTime.get(100)?.desiredReplicas).toBe(5);
    // load falls to 1.2 / 0.7 → 2, but the 60 s delay still holds the 5 wanted at 170 s
    expect(byTime.get(220)?.desiredReplicas).toBe(5);
    expect(byTime.get(262)?.desiredReplicas).toBe(2);
    // a metric error is an invalid result that holds
    expect(byTime.get(264)).toMatchObject({ desiredReplicas: 2, valid: false });
  });

  it('writes the full explanation by default', async () => {
    const r = await run('decide', '--scenario', scenarioPath);
    const first = JSON.parse(r.out.split('\n')[0] ?? '{}');
    expect(Object.keys(first)).toEqual(['atSeconds', 'desiredReplicas', 'valid', 'inPanic', 'explanation']);
    expect(first.explanation.stages.map((s: { stage: string }) => s.stage)).toEqual([
      'compute',
      'horizon',
      'rateLimit',
      'activationScale',
      'panic',
      'scaleDownDelay',
      'sloGuard',
      'startup',
      'missingData',
      'bounds',
    ]);
  });

  it('records per-second samples into the windows before deciding', () => {
    const lines = replay(
      ScenarioSchema.parse({
        policy: { targetPerGroup: 1, stableWindowSeconds: 10, initialReadyGroups: 1 },
        steps: [
          {
            atSeconds: 1,
            readyGroups: 1,
            samples: [
              { atSeconds: 0, value: 2 },
              { atSeconds: 1, value: 4 },
            ],
          },
          { atSeconds: 30, readyGroups: 3, samples: [] },
        ],
      }),
    );
    // stable average (2 + 4) / 2 = 3 → 3 groups; panic window 1 s holds 4 → 4 / 1 ready ≥ 2: panic → 4
    expect(lines[0]).toMatchObject({ desiredReplicas: 4, inPanic: true });
    // nothing for longer than the stable window: no data, which holds rather than reading as zero
    expect(lines[1]).toMatchObject({ valid: false, desiredReplicas: 4 });
  });

  it('rejects a malformed scenario with the field path', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(resolve(tmpdir(), 'kvpa-'));
    const bad = resolve(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        policy: { targetPerGroup: -1 },
        steps: [
          { atSeconds: 5, readyGroups: 1, stableTotal: 1, panicTotal: 1 },
          { atSeconds: 1, readyGroups: 1, stableTotal: 1, panicTotal: 1 },
        ],
      }),
    );
    const r = await run('decide', '--scenario', bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain('policy.targetPerGroup');
    expect(r.err).toContain('steps[1].atSeconds');
    expect((await run('decide')).code).toBe(2);
  });
});
