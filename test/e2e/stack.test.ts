/**
 * End to end, on the stack `kvpa up` starts: a real control plane with the LWS controller,
 * kube-controller-manager, kube-scheduler and kwok; emulated vLLM engines behind Ready leader pods;
 * Debian's Prometheus with Kubernetes service discovery; the Grafana contract server; and the real
 * `kvpa controller` process. Time is compressed (seconds-long windows, 4× engines) but nothing is mocked
 * between the metric on an engine's /metrics and the write to LeaderWorkerSet spec.replicas.
 *
 * One scenario, in order, because each phase starts from the state the previous one left:
 *   A. DryRun: a load step makes kvpa recommend more decode groups, and nothing is written.
 *   B. Apply: decode scales up, and panic starts.
 *   C. The load drops and the controller restarts: no scale-down inside the stable window.
 *   D. Prometheus is killed: the pools hold while signals are missing.
 *   E. Prometheus returns: decode scales back down, no sooner than the scale-down delay after the drop.
 *   Throughout: Grafana annotations arrive. After B, the real kubectl (the API server's version, from
 *   scripts/build-tools.sh) shows the PodAutoscaler: printer columns, field docs, conditions and Events.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCrd } from '../../src/api/crd.ts';
import type { PodAutoscaler } from '../../src/api/podautoscaler.ts';
import { lwsName } from '../../src/stack/demo.ts';
import { type Stack, startStack } from '../../src/stack/up.ts';
import { ensureTools, runTool, type Tools } from '../harness/tools.ts';
import { sleep, until } from './helpers.ts';

const STABLE_WINDOW_SECONDS = 12;
const SCALE_DOWN_DELAY_SECONDS = 20;
const LOW = { requestsPerSecond: 8, inputTokens: 2000, outputTokens: 800 };
const HIGH = { requestsPerSecond: 90, inputTokens: 2000, outputTokens: 1500 };

let stack: Stack;
let tools: Tools;
/** Wall-clock ms when the load dropped. */
let droppedAtMs = 0;

async function patchMode(mode: 'Apply' | 'DryRun') {
  await stack.editPodAutoscaler((pa) => ({ ...pa, spec: { ...pa.spec, mode } }));
}

async function decodeGeneration(): Promise<number> {
  const api = stack.kubeConfig.makeApiClient(CustomObjectsApi);
  const o = (await api.getNamespacedCustomObject({
    group: 'leaderworkerset.x-k8s.io',
    version: 'v1',
    namespace: stack.namespace,
    plural: 'leaderworkersets',
    name: lwsName('decode'),
  })) as { metadata: { generation: number } };
  return o.metadata.generation;
}

function poolStatus(pa: PodAutoscaler | null, pool: string) {
  return pa?.status?.pools?.find((p) => p.name === pool);
}

/** The part of an OpenAPI schema node the explain check walks. */
interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

/** Runs the real kubectl against the stack's API server; fails the test on a non-zero exit. */
async function kubectl(...args: string[]): Promise<string> {
  const r = await runTool(tools.kubectl, ['--kubeconfig', stack.cluster.kubeconfigPath, ...args]);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  tools = await ensureTools();
  stack = await startStack({
    workDir: mkdtempSync(path.join(tmpdir(), 'kvpa-e2e-')),
    podStartupSeconds: 4,
    scrapeIntervalSeconds: 1,
    accelerationFactor: 4,
    maxGroups: { prefill: 2, decode: 3 },
    initialMode: 'DryRun',
    autoscaler: {
      stableWindowSeconds: STABLE_WINDOW_SECONDS,
      panicWindowPercentage: 25,
      scaleDownDelaySeconds: SCALE_DOWN_DELAY_SECONDS,
      staleAfterSeconds: 5,
    },
    load: { kind: 'steps', steps: [{ atSeconds: 0, ...LOW }] },
    loadDurationSeconds: 24 * 3600,
    log: (m) => process.stderr.write(`[e2e] ${m}\n`),
  });
  stack.load.start();
}, 600_000);

afterAll(async () => {
  await stack?.stop();
}, 120_000);

describe('kvpa on the live stack', () => {
  it('A. in DryRun a load step raises the recommendation and nothing is written', async () => {
    await until('both pools serving one ready group', 180, async () => {
      const [p, d] = await Promise.all([stack.lws('prefill'), stack.lws('decode')]);
      return p.readyGroups === 1 && d.readyGroups === 1;
    });
    await until(
      'the first decision in status',
      60,
      async () => poolStatus(await stack.podAutoscaler(), 'decode')?.lastDecision,
    );
    const generation = await decodeGeneration();
    stack.setLoad([{ atSeconds: 0, ...HIGH }]);
    const recommended = await until('a dry-run recommendation above 1 decode group', 120, async () => {
      const r = poolStatus(await stack.podAutoscaler(), 'decode')?.recommendedReplicas ?? 0;
      return r > 1 ? r : undefined;
    });
    expect(recommended).toBeGreaterThan(1);
    expect(await decodeGeneration()).toBe(generation);
    expect((await stack.lws('decode')).specGroups).toBe(1);
  }, 400_000);

  it('B. in Apply decode scales up and panic starts', async () => {
    await patchMode('Apply');
    const spec = await until('decode asked for more than 1 group', 60, async () => {
      const s = (await stack.lws('decode')).specGroups ?? 0;
      return s > 1 ? s : undefined;
    });
    expect(spec).toBeGreaterThan(1);
    await until(
      'panic mode on decode',
      60,
      async () => poolStatus(await stack.podAutoscaler(), 'decode')?.mode === 'Panic',
    );
    await until('the new decode groups ready', 120, async () => {
      const l = await stack.lws('decode');
      return l.readyGroups !== null && l.readyGroups > 1;
    });
  }, 300_000);

  it('B2. kubectl get kvpa, explain and describe show the live PodAutoscaler', async () => {
    // Printer columns (src/api/crd.ts), found through the short name, with the values status holds:
    // status can move on a tick between reads, so the row must match the object just before or after.
    const columns = (o: PodAutoscaler | null) => [
      o?.metadata?.name ?? '',
      o?.status?.groups ?? '',
      o?.status?.mode ?? '',
      o?.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? '',
    ];
    const before = columns(await stack.podAutoscaler());
    const table = (await kubectl('get', 'kvpa', '-n', stack.namespace)).trim().split('\n');
    const after = columns(await stack.podAutoscaler());
    const name = before[0] ?? '';
    expect(table[0]?.split(/\s{2,}/)).toEqual(['NAME', 'GROUPS', 'MODE', 'READY', 'AGE']);
    const row =
      table
        .find((l) => l.startsWith(`${name} `))
        ?.split(/\s{2,}/)
        .slice(0, 4) ?? [];
    expect(before[1]).toMatch(/decode/);
    expect([before, after]).toContainEqual(row);
    expect(row[3]).toBe('True');
    // Field docs come from the CRD's schema, served by the API server's OpenAPI.
    const crd = buildCrd() as unknown as {
      spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: SchemaNode } } } }[] };
    };
    const spec = crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec;
    const metrics = spec?.properties?.pools?.items?.properties?.metrics;
    expect(metrics?.description).toBe('Scaling signals; the largest want wins.');
    const explain = await kubectl('explain', 'podautoscaler.spec.pools.metrics');
    expect(explain).toContain('GROUP:      kvpa.io');
    expect(explain).toContain(metrics?.description);
    for (const field of Object.keys(metrics?.items?.properties ?? {}))
      expect(explain).toMatch(new RegExp(`^  ${field}\\s`, 'm'));
    // Conditions and the controller's Events, as an operator reads them.
    const described = await kubectl('describe', 'kvpa', name, '-n', stack.namespace);
    expect(described).toMatch(/Conditions:[\s\S]*Type:\s+Ready/);
    expect(described).toMatch(/Type:\s+MetricsAvailable/);
    expect(described).toMatch(/Events:[\s\S]*SuccessfulRescale .*decode: 1 → \d+ groups/);
    expect(described).toMatch(/Events:[\s\S]*PanicStarted/);
  }, 120_000);

  it('C. when the load drops and the controller restarts, nothing scales down inside the stable window', async () => {
    const before = (await stack.lws('decode')).specGroups ?? 0;
    stack.setLoad([{ atSeconds: 0, ...LOW }]);
    droppedAtMs = Date.now();
    await stack.stopController();
    stack.startController();
    const restartedAtMs = Date.now();
    while (Date.now() - restartedAtMs < STABLE_WINDOW_SECONDS * 1000) {
      expect((await stack.lws('decode')).specGroups).toBeGreaterThanOrEqual(before);
      await sleep(1000);
    }
  }, 120_000);

  it('D. with Prometheus gone the pools hold: no scale-down while signals are missing', async () => {
    const held = {
      prefill: (await stack.lws('prefill')).specGroups ?? 0,
      decode: (await stack.lws('decode')).specGroups ?? 0,
    };
    await stack.killPrometheus();
    const killedAtMs = Date.now();
    // Longer than stable window + delay: with data it would have scaled down by now.
    const holdSeconds = STABLE_WINDOW_SECONDS + SCALE_DOWN_DELAY_SECONDS + 10;
    while (Date.now() - killedAtMs < holdSeconds * 1000) {
      for (const pool of ['prefill', 'decode'] as const) {
        expect((await stack.lws(pool)).specGroups).toBeGreaterThanOrEqual(held[pool]);
      }
      await sleep(1000);
    }
    const pa = await stack.podAutoscaler();
    const metrics = pa?.status?.conditions?.find((c) => c.type === 'MetricsAvailable');
    expect(metrics?.status).toBe('False');
  }, 180_000);

  it('E. with Prometheus back, decode scales down, and not before the scale-down delay', async () => {
    const held = (await stack.lws('decode')).specGroups ?? 0;
    expect(held).toBeGreaterThan(1);
    await stack.restartPrometheus();
    await until(
      'decode to scale down',
      240,
      async () => ((await stack.lws('decode')).specGroups ?? held) < held,
    );
    // D showed nothing went down before this point, so this is the first scale-down after the drop.
    expect((Date.now() - droppedAtMs) / 1000).toBeGreaterThanOrEqual(SCALE_DOWN_DELAY_SECONDS);
    await until('decode back to 1 group', 240, async () => (await stack.lws('decode')).specGroups === 1);
  }, 300_000);

  it('Grafana annotations arrived for the scaling events', async () => {
    const annotations = stack.grafana?.annotations() ?? [];
    expect(annotations.length).toBeGreaterThan(0);
    expect(annotations.some((a) => /decode/.test(a.text))).toBe(true);
  });
});
