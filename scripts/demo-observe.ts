/**
 * Reproduces the README's `kvpa recommend` and `kvpa backtest` output against a real Prometheus:
 *
 *   npx tsx scripts/demo-observe.ts
 *
 * Starts the test Prometheus (Debian's binary, 1 s scrapes) and the test exporter (the real vLLM
 * fixture text with scripted values), plays ~50 s of history on three LWS head pods (plus a worker
 * pod that the head selector leaves out): quiet, a queue burst, quiet again. Then runs both
 * commands through the real CLI entry point and prints what they print.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../src/cli/main.ts';
import { startEngineExporter } from '../test/harness/engine-exporter.ts';
import { startPrometheus } from '../test/harness/prometheus.ts';

const NS = 'llm';
const HEADS = ['decode-0', 'decode-1', 'decode-2'];
const PHASE_SECONDS = 16;
// Waiting requests per head pod in each phase: quiet, burst, quiet.
const PHASES = [2, 12, 2];

export const DEMO_PODAUTOSCALER = `apiVersion: kvpa.io/v1alpha1
kind: PodAutoscaler
metadata:
  name: deepseek
  namespace: ${NS}
spec:
  mode: DryRun
  metricsSource:
    prometheus:
      address: http://prometheus.monitoring:9090
  pools:
    - name: decode
      engine: vllm
      scaleTargetRef:
        apiVersion: leaderworkerset.x-k8s.io/v1
        kind: LeaderWorkerSet
        name: decode
      minReplicas: 1
      maxReplicas: 8
      metrics:
        - type: kvCacheUtilization
          target: 0.7
        - type: queueDepth
          target: 5
      stableWindowSeconds: 12
      panicWindowPercentage: 25
      scaleDownDelaySeconds: 0
      tickSeconds: 1
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(argv: string[]): Promise<void> {
  const shown = argv.map((a) => (/[\s"=]/.test(a) && a.startsWith('--') === false ? `'${a}'` : a)).join(' ');
  process.stdout.write(`$ kvpa ${shown}\n`);
  const code = await main(argv, {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(`(exit ${code})\n\n`);
}

async function demo(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kvpa-demo-'));
  const file = path.join(dir, 'podautoscaler.yaml');
  await writeFile(file, DEMO_PODAUTOSCALER);
  const prom = await startPrometheus({ scrapeIntervalSeconds: 1 });
  const exporter = await startEngineExporter();
  try {
    const setQueue = (waiting: number) => {
      HEADS.forEach((pod, i) => {
        exporter.set(NS, pod, {
          dialect: 'vllm',
          ranks: [{ kv: 0.2 + 0.05 * i, waiting, running: 8, preemptionsTotal: 0 }],
        });
      });
      // A worker pod of group 0: it exports engine series too, and must not count as a group.
      exporter.set(NS, 'decode-0-1', { dialect: 'vllm', ranks: [{ kv: 0.9, waiting: 40, running: 8 }] });
    };
    setQueue(PHASES[0] ?? 0);
    await prom.setTargets(
      [...HEADS, 'decode-0-1'].map((pod) => ({
        address: exporter.address,
        metricsPath: exporter.pathFor(NS, pod),
        namespace: NS,
        pod,
        podLabels: {
          'leaderworkerset.sigs.k8s.io/name': 'decode',
          'leaderworkerset.sigs.k8s.io/worker-index': pod === 'decode-0-1' ? '1' : '0',
        },
      })),
      20_000,
    );
    const fromSeconds = Math.ceil(Date.now() / 1000);
    for (const waiting of PHASES) {
      setQueue(waiting);
      process.stderr.write(`demo: ${waiting} waiting per head pod for ${PHASE_SECONDS}s\n`);
      await sleep(PHASE_SECONDS * 1000);
    }
    const toSeconds = Math.floor(Date.now() / 1000) - 1;
    const selector = 'leaderworkerset_sigs_k8s_io_worker_index="0"';
    const common = ['--prometheus', prom.url, '-f', file, '--head-selector', selector];
    await run(['recommend', ...common]);
    // The same pool as if it ran 8 groups: the data says 2 are enough, and the rate limit halves at most.
    await run(['recommend', ...common, '--groups', 'decode=8/8', '--output', 'json']);
    const out = path.join(dir, 'out');
    await run([
      'backtest',
      ...common,
      '--from',
      String(fromSeconds),
      '--to',
      String(toSeconds),
      '--groups',
      'decode=3',
      '--out',
      out,
    ]);
    const svg = await readFile(path.join(out, 'timeline.svg'), 'utf8');
    if (process.env.KVPA_DEMO_SVG) await writeFile(process.env.KVPA_DEMO_SVG, svg);
    process.stdout.write(
      `timeline.svg: ${svg.length} bytes, ${svg.match(/class="series /g)?.length ?? 0} series\n`,
    );
  } finally {
    await prom.stop();
    await exporter.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await demo();
