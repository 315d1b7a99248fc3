/**
 * Emulated engines behind real pods: LWS leader pods on the test API server (status written by the test, as
 * the kubelet would), `EnginePodWatch` turning Ready leaders into engine groups and annotating their metrics
 * port, and a real Prometheus (Debian 2.42) discovering them through Kubernetes SD (native, or the pod-watching
 * stand-in when the binary has none) and storing vLLM series that kvpa's Prometheus source joins to groups.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PoolRegistration } from '../../src/observe/prometheus-join.ts';
import { PrometheusSignalSource } from '../../src/observe/prometheus-source.ts';
import { loadCalibration } from '../../src/sim/calibration.ts';
import {
  EnginePodWatch,
  LEADER_LABEL,
  METRICS_PORT_ANNOTATION,
  ROLE_LABEL,
} from '../../src/stack/engine-pods.ts';
import { LiveEngines } from '../../src/stack/engines.ts';
import { LoadGenerator } from '../../src/stack/load.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { type PrometheusHarness, startPrometheus } from '../harness/prometheus.ts';
import { type Json, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);

let ns = '';
let engines: LiveEngines;
let watch: EnginePodWatch;
let load: LoadGenerator;
let prom: PrometheusHarness | undefined;
const watchErrors: unknown[] = [];

const podPath = (name: string) => `/api/v1/namespaces/${ns}/pods/${name}`;
const leader = (role: string) => ({ [LEADER_LABEL]: '0', [ROLE_LABEL]: role });

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns a value (not undefined) or the bound passes. */
async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until)
      throw new Error(`${what}: not within ${timeoutMs} ms (last error: ${String(last)})`);
    await sleep(200);
  }
}

interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(promql: string): Promise<Series[]> {
  if (prom === undefined) throw new Error('no prometheus');
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(promql)}`, {
    signal: AbortSignal.timeout(3000),
  });
  const body = (await res.json()) as { data: { result: Series[] } };
  return body.data.result;
}

const annotationOf = async (name: string) =>
  ((await api.get(podPath(name))).metadata as { annotations?: Record<string, string> }).annotations?.[
    METRICS_PORT_ANNOTATION
  ];

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-engines-' },
  });
  ns = (created.metadata as { name: string }).name;
  engines = new LiveEngines({ calibration: loadCalibration('deepseek-r1-h200'), accelerationFactor: 10 });
  watch = new EnginePodWatch({ kubeConfig, namespace: ns, engines, onError: (e) => watchErrors.push(e) });
  await watch.start();
  // Some load, so decode KV is not zero: 2 req/s of 2,000 → 1,000 tokens for 10 virtual minutes.
  load = new LoadGenerator(engines, {
    source: {
      kind: 'steps',
      steps: [{ atSeconds: 0, requestsPerSecond: 2, inputTokens: 2000, outputTokens: 1000 }],
    },
    durationSeconds: 600,
  }).start();
});

afterAll(async () => {
  load?.stop();
  await prom?.stop();
  await watch?.stop();
  await engines?.stop();
}, 30_000);

describe('emulated engines behind real pods', () => {
  it('Ready leaders with a pool role become engines, annotated with their port; workers and unready pods do not', async () => {
    await api.pod(ns, 'pf-0', leader('prefill'), true);
    await api.pod(ns, 'dc-0', leader('decode'), true);
    await api.pod(ns, 'dc-1', leader('decode'), true);
    await api.pod(ns, 'dc-2', leader('decode'), false);
    await api.pod(ns, 'dc-0-1', { [LEADER_LABEL]: '1', [ROLE_LABEL]: 'decode' }, true);
    for (const name of ['pf-0', 'dc-0', 'dc-1']) {
      const port = await eventually(`engine for ${name}`, 15_000, async () => engines.metricsPort(ns, name));
      await eventually(`annotation on ${name}`, 15_000, async () =>
        (await annotationOf(name)) === String(port) ? true : undefined,
      );
    }
    expect(engines.metricsPort(ns, 'dc-2')).toBeUndefined();
    expect(engines.metricsPort(ns, 'dc-0-1')).toBeUndefined();
    expect(await annotationOf('dc-2')).toBeUndefined();
    expect(engines.fleet.externalGroupIds('decode').sort()).toEqual([`${ns}/dc-0`, `${ns}/dc-1`]);
    expect(engines.fleet.externalGroupIds('prefill')).toEqual([`${ns}/pf-0`]);
  });

  it('Prometheus discovers them through Kubernetes SD and stores vLLM series by namespace and pod', async () => {
    prom = await startPrometheus({
      scrapeIntervalSeconds: 1,
      kubernetesSd: {
        apiServer: cluster.server,
        caFile: cluster.caCertPath,
        bearerToken: cluster.adminToken,
        namespaces: [ns],
        metricsPortAnnotation: METRICS_PORT_ANNOTATION,
      },
    });
    process.stderr.write(`[engines.test] prometheus kubernetes SD: ${prom.discovery}\n`);
    const started = Date.now();
    await prom.waitForTargets(
      ['pf-0', 'dc-0', 'dc-1'].map((pod) => ({ namespace: ns, pod })),
      30_000,
    );
    const series = await eventually('kv series of the three leaders', 15_000, async () => {
      const s = await query(`vllm:kv_cache_usage_perc{namespace="${ns}"}`);
      return s.length === 3 ? s : undefined;
    });
    process.stderr.write(`[engines.test] discovery to first series: ${Date.now() - started} ms\n`);
    expect(series.map((s) => s.metric.pod).sort()).toEqual(['dc-0', 'dc-1', 'pf-0']);
    for (const s of series) {
      expect(s.metric).toMatchObject({
        namespace: ns,
        engine: '0',
        model_name: 'deepseek-ai/DeepSeek-R1',
        leaderworkerset_sigs_k8s_io_worker_index: '0',
        job: 'engines',
      });
      expect(s.metric.instance).toBe(`127.0.0.1:${engines.metricsPort(ns, s.metric.pod ?? '')}`);
    }
    expect(series.find((s) => s.metric.pod === 'dc-0')?.metric.llm_d_ai_role).toBe('decode');
  }, 90_000);

  it('an override step on /metrics reaches Prometheus and kvpa’s Prometheus source joins it to its group', async () => {
    const pool: PoolRegistration = {
      poolKey: `${ns}/pa/decode`,
      namespace: ns,
      heads: [
        { pod: 'dc-0', groupKey: 'dc-0', ready: true },
        { pod: 'dc-1', groupKey: 'dc-1', ready: true },
      ],
      engine: 'auto',
      signals: ['kvCacheUtilization', 'queueDepth'],
    };
    const source = new PrometheusSignalSource({ address: prom?.url ?? '', queryTimeoutSeconds: 5 });
    const stepAt = Date.now();
    engines.setOverride(ns, 'dc-0', { kvCacheUsage: 0.93, waiting: 17 });
    await eventually('override in Prometheus', 15_000, async () => {
      const s = await query(`vllm:kv_cache_usage_perc{namespace="${ns}",pod="dc-0"}`);
      return s[0]?.value[1] === '0.93' ? true : undefined;
    });
    process.stderr.write(`[engines.test] override step to Prometheus: ${Date.now() - stepAt} ms\n`);
    const tick = await source.tick([pool]);
    const signals = tick.pools.get(pool.poolKey)?.signals;
    const kv = signals?.get('kvCacheUtilization');
    expect(kv?.state).toBe('ok');
    // Both groups answered (none estimated) and dc-0's forced values are in the pool totals.
    expect(kv?.estimatedGroups ?? 0).toBe(0);
    expect(kv?.poolTotal).toBeGreaterThanOrEqual(0.93);
    expect(kv?.poolTotal).toBeLessThan(0.93 + 0.5); // plus dc-1's modest real usage
    expect(signals?.get('queueDepth')?.state).toBe('ok');
    expect(signals?.get('queueDepth')?.poolTotal).toBeGreaterThanOrEqual(17);
    engines.clearOverride(ns, 'dc-0');
  }, 40_000);

  it('a leader that turns unready or is deleted leaves the engines, loses its annotation and its target', async () => {
    await api.setStatus(podPath('dc-1'), {
      phase: 'Running',
      podIP: '10.1.0.1',
      conditions: [{ type: 'Ready', status: 'False' }],
    } satisfies Json);
    await api.delete(podPath('pf-0'));
    await eventually('groups removed', 15_000, async () =>
      engines.metricsPort(ns, 'dc-1') === undefined && engines.metricsPort(ns, 'pf-0') === undefined
        ? true
        : undefined,
    );
    await eventually('annotation removed from the unready pod', 15_000, async () =>
      (await annotationOf('dc-1')) === undefined ? true : undefined,
    );
    expect(engines.fleet.externalGroupIds('decode')).toEqual([`${ns}/dc-0`]);
    await prom?.waitForTargets([{ namespace: ns, pod: 'dc-0' }], 30_000);
    // Ready again: a new group, a new port, a new annotation.
    await api.setStatus(podPath('dc-1'), { conditions: [{ type: 'Ready', status: 'True' }] });
    const port = await eventually('dc-1 back', 15_000, async () => engines.metricsPort(ns, 'dc-1'));
    await eventually('annotation back', 15_000, async () =>
      (await annotationOf('dc-1')) === String(port) ? true : undefined,
    );
    expect(load.delivered).toBeGreaterThan(0);
    const snap = engines.snapshot();
    expect(snap.pools.decode.readyGroups).toBe(2);
    expect(snap.requests.arrived).toBe(load.delivered);
    expect(watchErrors).toEqual([]);
  }, 60_000);
});
