// Restart recovery with the real binary: `kvpa controller` against the real API server and a real
// Prometheus (Debian's 2.42, scraping a fixture exporter on 127.0.0.1 every second). The controller is
// killed mid-panic, the load drops, and a second process starts: its first decision must carry the
// killed one's stable window, read back from Prometheus history (query_range), not start young.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { repoRoot } from '../harness/cluster.ts';
import { type EngineExporter, type PodScript, startEngineExporter } from '../harness/engine-exporter.ts';
import { type PrometheusHarness, startPrometheus } from '../harness/prometheus.ts';
import { customPath, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const api = new RawApi(cluster);
const LWS = 'leaderworkerset.sigs.k8s.io';
const HEADS = ['bf-0', 'bf-1'];
/** Requests waiting per head pod while loaded: 2 × 20 against 4 per group wants 10 groups from 2. */
const LOADED_WAITING = 20;
const STABLE_WINDOW_SECONDS = 60;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const waiting = (n: number): PodScript => ({
  dialect: 'vllm',
  ranks: [{ kv: 0.1, waiting: n, running: 1, preemptionsTotal: 0 }],
});

let prom: PrometheusHarness;
let exporter: EngineExporter;
let ns = '';
const children: ChildProcess[] = [];

interface Run {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function startController(): Run {
  const child = spawn(
    process.execPath,
    [
      path.join(repoRoot, 'bin/kvpa.js'),
      'controller',
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--namespace',
      ns,
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d) => {
    output += String(d);
  });
  child.stderr?.on('data', (d) => {
    output += String(d);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function status(): Promise<PodAutoscalerStatus | undefined> {
  const pa = await api.get(`${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/bf`);
  return pa.status as PodAutoscalerStatus | undefined;
}

async function until<T>(what: string, read: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await read();
    if (v !== undefined) return v;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  ns = (
    (
      await api.create('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { generateName: 'kvpa-restart-' },
      })
    ).metadata as { name: string }
  ).name;
  prom = await startPrometheus({ scrapeIntervalSeconds: 1 });
  exporter = await startEngineExporter();
  for (const pod of HEADS) exporter.set(ns, pod, waiting(LOADED_WAITING));
  await prom.setTargets(
    HEADS.map((pod) => ({
      address: exporter.address,
      metricsPath: exporter.pathFor(ns, pod),
      namespace: ns,
      pod,
      podLabels: { [`${LWS}/worker-index`]: '0' },
    })),
    20_000,
  );
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name: 'bf' },
    spec: {
      replicas: 2,
      leaderWorkerTemplate: {
        size: 1,
        workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
      },
    },
  });
  for (const [g, pod] of HEADS.entries()) {
    await api.pod(
      ns,
      pod,
      {
        [`${LWS}/name`]: 'bf',
        [`${LWS}/group-index`]: String(g),
        [`${LWS}/worker-index`]: '0',
        [`${LWS}/group-key`]: `k-bf-${g}`,
      },
      true,
    );
  }
  await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name: 'bf' },
    spec: {
      // DryRun: the recommendation moves, the target (and so the ready count) stays at 2 groups.
      mode: 'DryRun',
      policyRef: { name: 'default' },
      metricsSource: { prometheus: { address: prom.url, queryTimeoutSeconds: 5 } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: 'bf' },
          maxReplicas: 16,
          metrics: [{ type: 'queueDepth', target: 4 }],
          stableWindowSeconds: STABLE_WINDOW_SECONDS,
          panicWindowPercentage: 10,
          tickSeconds: 1,
        },
      ],
    },
  });
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await prom?.stop();
  await exporter?.close();
}, 20_000);

describe('kvpa controller restart (the CLI) against a real Prometheus', () => {
  it('a controller killed mid-panic restarts with its stable window refilled from history', async () => {
    // Run 1: the load is high; the pool panics and recommends more groups.
    const first = startController();
    const panicked = await until(
      'the first controller to panic',
      async () => {
        const pool = (await status())?.pools?.[0];
        return pool?.mode === 'Panic' && (pool.recommendedReplicas ?? 0) > 2 ? pool : undefined;
      },
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${first.output()}`);
    });
    expect(panicked.lastDecision?.signals[0]?.state).toBe('ok');
    // Let the high load fill a good part of the stable window, then kill the process, mid-panic.
    await sleep(12_000);
    first.child.kill('SIGKILL');
    await first.exited;

    // The load is gone. Wait past one panic window (6 s), so the latest samples are all idle: a young
    // window would read 0 and recommend holding at 2; history still holds the loaded minute.
    for (const pod of HEADS) exporter.set(ns, pod, waiting(0));
    await sleep(8_000);
    const restartedAt = new Date();
    const second = startController();
    const decided = await until(
      'the restarted controller to decide',
      async () => {
        const pool = (await status())?.pools?.[0];
        const time = pool?.lastDecision?.time;
        // A new pool's very first tick samples before its head pods are listed (noData, held): the
        // first decision on a value is the one that shows whether the windows start young.
        const ok = pool?.lastDecision?.signals[0]?.state === 'ok';
        return ok && time !== undefined && new Date(time) >= restartedAt ? pool : undefined;
      },
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${second.output()}`);
    });
    const signal = decided.lastDecision?.signals[0];
    const log = second.output();
    // Within a few ticks of the restart, far inside the 60 s the stable window would take to refill.
    expect(new Date(decided.lastDecision?.time ?? 0).getTime() - restartedAt.getTime()).toBeLessThan(10_000);
    // The panic window has only the idle samples; the stable window has the loaded ones from history.
    expect(signal?.panicTotal ?? Number.NaN).toBeLessThan(5);
    expect(signal?.stableTotal ?? 0, JSON.stringify(decided)).toBeGreaterThan(10);
    // So the restarted pool keeps panicking and still recommends more than the 2 groups it has.
    expect(decided.mode).toBe('Panic');
    expect(decided.recommendedReplicas).toBeGreaterThan(2);
    const backfilled = log
      .split('\n')
      .filter((l) => l.includes('windows backfilled from history'))
      .map((l) => JSON.parse(l) as { recorded?: number });
    expect(backfilled.length, log).toBe(1);
    expect(backfilled[0]?.recorded ?? 0).toBeGreaterThan(10);

    second.child.kill('SIGTERM');
    expect(await Promise.race([second.exited, sleep(10_000).then(() => 'timeout' as const)])).toBe(0);
  }, 120_000);
});
