/**
 * Reaction latency on the live stack: from a step in a KV-cache metric on an engine's /metrics to the
 * LeaderWorkerSet spec.replicas write, in direct-scrape mode and through Prometheus at several scrape
 * intervals. Target: at most one scrape interval plus one tick.
 *
 *   npx tsx bench/latency.ts [--modes direct,prometheus-1,prometheus-5,prometheus-15] [--runs 7]
 *
 * Each mode gets a fresh stack (src/stack/up.ts) with one decode group and almost no load, and the kvpa
 * controller in this process, wired as `kvpa controller` wires it (createController). A run sets
 * kv_cache_usage_perc of the decode leader to 1.0 (target 0.7 per group, so the want becomes 2) and polls
 * the LWS every 20 ms until spec.replicas changes. The windows are at their minimum (stable 6 s, panic
 * 1 s, one decision per second) so the figure is the pipeline's, not the averaging's.
 *
 * Direct mode needs one adjustment: kwok's pod IPs are not routable, so the scraper's fetch maps a pod
 * IP to the loopback port of that pod's emulated engine. The scrape itself is the real one.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { BUNDLED_POLICY_DIR, loadPolicies } from '../src/api/documents.ts';
import { createController } from '../src/cli/controller.ts';
import { RoutingSignalSource } from '../src/control/sources.ts';
import { allowEntryFor, HostAllowlist } from '../src/observe/http.ts';
import { PodsSignalSource } from '../src/observe/pods-control.ts';
import { lwsName } from '../src/stack/demo.ts';
import { type Stack, startStack } from '../src/stack/up.ts';

const { values } = parseArgs({
  options: { modes: { type: 'string' }, runs: { type: 'string' } },
});
const modes = (values.modes ?? 'direct,prometheus-1,prometheus-5,prometheus-15').split(',');
const runs = Number(values.runs ?? 7);
for (const m of modes) {
  if (m !== 'direct' && !/^prometheus-\d+$/.test(m)) {
    process.stderr.write(`--modes: unknown mode ${JSON.stringify(m)}; use direct or prometheus-<seconds>\n`);
    process.exit(2);
  }
}
if (!(Number.isInteger(runs) && runs > 0)) {
  process.stderr.write(`--runs must be a positive integer, got ${JSON.stringify(values.runs)}\n`);
  process.exit(2);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (m: string) => process.stderr.write(`[latency] ${m}\n`);

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

/** fetch for the direct scraper: http://<kwok pod IP>:<port>/metrics → that pod's engine on loopback. */
function loopbackFetch(stack: Stack): typeof fetch {
  const core = stack.kubeConfig.makeApiClient(CoreV1Api);
  let byIp = new Map<string, string>();
  let refreshedAt = 0;
  return async (input, init) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    if (Date.now() - refreshedAt > 500 || !byIp.has(url.hostname)) {
      const pods = await core.listNamespacedPod({ namespace: stack.namespace });
      byIp = new Map(
        pods.items.flatMap((p) => (p.status?.podIP ? [[p.status.podIP, p.metadata?.name ?? '']] : [])),
      );
      refreshedAt = Date.now();
    }
    const pod = byIp.get(url.hostname);
    const port = pod === undefined ? undefined : stack.engines.metricsPort(stack.namespace, pod);
    if (port === undefined) throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    return fetch(`http://127.0.0.1:${port}${url.pathname}`, init);
  };
}

async function measureMode(mode: string): Promise<number[]> {
  const scrapeSeconds = mode === 'direct' ? 1 : Number(mode.split('-')[1]);
  const stack = await startStack({
    workDir: mkdtempSync(path.join(tmpdir(), `kvpa-latency-${mode}-`)),
    startController: false,
    podStartupSeconds: 2,
    scrapeIntervalSeconds: scrapeSeconds,
    maxGroups: { prefill: 1, decode: 2 },
    load: {
      kind: 'steps',
      steps: [{ atSeconds: 0, requestsPerSecond: 1, inputTokens: 1000, outputTokens: 100 }],
    },
    loadDurationSeconds: 24 * 3600,
    autoscaler: {
      stableWindowSeconds: 6,
      panicWindowPercentage: 17, // ≈ 1 s: one sample
      scaleDownDelaySeconds: 0,
      staleAfterSeconds: 3 * scrapeSeconds + 2,
    },
    log,
  });
  const samples: number[] = [];
  const logger = pino({ level: 'warn' });
  const controller = createController(stack.kubeConfig, {
    policies: loadPolicies(BUNDLED_POLICY_DIR).policies,
    logger,
    identity: 'bench-latency',
    namespace: stack.namespace,
    // as `kvpa up` runs the controller: its own Grafana is the one host a token may go to
    ...(stack.grafana !== null
      ? { allowedHosts: new HostAllowlist([allowEntryFor(stack.grafana.url)]) }
      : {}),
    ...(mode === 'direct'
      ? { signals: new RoutingSignalSource(new PodsSignalSource({ fetch: loopbackFetch(stack) })) }
      : {}),
  });
  try {
    stack.load.start();
    if (mode === 'direct') {
      await stack.editPodAutoscaler((pa) => ({
        ...pa,
        spec: { ...pa.spec, metricsSource: { pods: { port: 8000 } } },
      }));
    }
    await controller.start();
    const leader = `${lwsName('decode')}-0`;
    for (let run = 0; run < runs; run++) {
      stack.engines.clearOverride(stack.namespace, leader);
      await until('decode at 1 ready group with a decision', 180_000, async () => {
        const [l, pa] = await Promise.all([stack.lws('decode'), stack.podAutoscaler()]);
        const decode = pa?.status?.pools?.find((p) => p.name === 'decode');
        return (
          l.specGroups === 1 &&
          l.readyGroups === 1 &&
          decode?.mode === 'Stable' &&
          decode.lastDecision !== undefined
        );
      });
      // Let every window fill with the calm value, then step at a random phase of the scrape interval:
      // runs of near-equal length would otherwise all hit the same phase and bias the figure.
      await sleep(8_000 + scrapeSeconds * 1000 + Math.random() * scrapeSeconds * 1000);
      const t0 = performance.now();
      stack.engines.setOverride(stack.namespace, leader, { kvCacheUsage: 1 });
      for (;;) {
        const l = await stack.lws('decode');
        if ((l.specGroups ?? 0) > 1) break;
        if (performance.now() - t0 > 120_000) throw new Error('no scale write within 120 s');
        await sleep(20);
      }
      const seconds = (performance.now() - t0) / 1000;
      samples.push(seconds);
      log(`${mode} run ${run + 1}/${runs}: ${seconds.toFixed(2)} s`);
    }
  } finally {
    await controller.stop();
    await stack.stop();
  }
  return samples;
}

const rows: string[] = [];
for (const mode of modes) {
  const s = (await measureMode(mode)).sort((a, b) => a - b);
  const scrape = mode === 'direct' ? 0 : Number(mode.split('-')[1]);
  rows.push(
    `| ${mode === 'direct' ? 'direct scrape (1 s samples)' : `Prometheus, scrape ${scrape} s`} | ${s.length} | ${quantile(s, 0.5).toFixed(2)} | ${quantile(s, 0.9).toFixed(2)} | ${s[s.length - 1]?.toFixed(2)} | ${(mode === 'direct' ? 1 : scrape) + 1} |`,
  );
}
process.stdout.write(
  [
    '| mode | runs | median (s) | p90 (s) | max (s) | target: one scrape interval + one tick (s) |',
    '|:--|--:|--:|--:|--:|--:|',
    ...rows,
    '',
  ].join('\n'),
);
