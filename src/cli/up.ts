/**
 * `kvpa up` (also `npm start`): the whole stack on loopback, a live view while the load plays, and a
 * report at the end. Ctrl-C stops everything and still writes the report.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { traceStats } from '../sim/trace.ts';
import type { StackSample } from '../stack/report.ts';
import { writeReport } from '../stack/report.ts';
import { DEFAULT_TRACE, type Stack, startStack } from '../stack/up.ts';
import { renderLine, renderView } from '../stack/view.ts';
import type { Output } from './validate.ts';

export const UP_USAGE = `Usage: kvpa up [--trace FILE] [--time-compression C] [--rate-multiplier X]
               [--duration-seconds S] [--pod-startup-seconds S] [--scrape-interval S] [--out DIR]

Starts kvpa against a local control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, the LeaderWorkerSet controller, kwok), emulated vLLM engines, Prometheus and a load
generator, all on 127.0.0.1, and shows each pool scaling live. First use builds the Kubernetes
binaries from the Go module proxy (about 20-30 minutes on 2 cores); later runs start in about a minute.

  --trace FILE             request trace to replay (default examples/traces/r1-step-40min.csv)
  --time-compression C     play the trace C times faster (default 10)
  --rate-multiplier X      arrivals per trace arrival (default 1)
  --duration-seconds S     stop after S wall seconds (default: the trace's length plus 60 s)
  --pod-startup-seconds S  pod start-up delay (kwok), standing in for a 10-80 min cold start (default 20)
  --scrape-interval S      Prometheus scrape interval (default 1)
  --out DIR                report directory (default out/kvpa-up-<time>)

Grafana annotations go to a local contract server (its log is in the report directory), or to a real
Grafana when GRAFANA_URL and GRAFANA_TOKEN are set.
`;

function positive(
  values: Record<string, unknown>,
  flag: string,
  fallback: number,
  io: Output,
): number | null {
  const raw = values[flag];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n > 0)) {
    io.err(`kvpa up: --${flag} must be a number > 0, got ${JSON.stringify(raw)}`);
    return null;
  }
  return n;
}

export async function runUp(argv: readonly string[], io: Output): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        trace: { type: 'string' },
        'time-compression': { type: 'string' },
        'rate-multiplier': { type: 'string' },
        'duration-seconds': { type: 'string' },
        'pod-startup-seconds': { type: 'string' },
        'scrape-interval': { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.err(`kvpa up: ${(e as Error).message}\n\n${UP_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(UP_USAGE);
    return 0;
  }
  const compression = positive(values, 'time-compression', 10, io);
  const multiplier = positive(values, 'rate-multiplier', 1, io);
  const podStartup = positive(values, 'pod-startup-seconds', 20, io);
  const scrape = positive(values, 'scrape-interval', 1, io);
  if (compression === null || multiplier === null || podStartup === null || scrape === null) return 2;
  const trace = typeof values.trace === 'string' ? values.trace : DEFAULT_TRACE;
  // Read the whole trace once before anything starts: a bad row fails here, naming file, line and fix,
  // not minutes later inside a running stack.
  let traceEndSeconds: number;
  try {
    const stats = traceStats(trace, { timeCompression: compression, rateMultiplier: multiplier });
    traceEndSeconds = Number.isFinite(stats.lastSeconds) ? stats.lastSeconds : 0;
  } catch (e) {
    io.err(`kvpa up: --trace ${trace}: ${(e as Error).message}`);
    return 2;
  }
  const duration = positive(values, 'duration-seconds', Math.ceil(traceEndSeconds) + 60, io);
  if (duration === null) return 2;
  const outDir =
    typeof values.out === 'string'
      ? values.out
      : path.join('out', `kvpa-up-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
  const grafanaUrl = process.env.GRAFANA_URL;
  const grafanaToken = process.env.GRAFANA_TOKEN;

  let stack: Stack;
  try {
    stack = await startStack({
      workDir: path.resolve(outDir),
      load: { kind: 'trace', path: trace, timeCompression: compression, rateMultiplier: multiplier },
      podStartupSeconds: podStartup,
      scrapeIntervalSeconds: scrape,
      ...(grafanaUrl !== undefined && grafanaToken !== undefined
        ? { grafana: { url: grafanaUrl, token: grafanaToken } }
        : {}),
      log: (m) => io.err(`[kvpa up] ${m}`),
    });
  } catch (e) {
    io.err(`kvpa up: the stack did not come up: ${(e as Error).message}`);
    return 1;
  }

  const samples: StackSample[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const tty = process.stdout.isTTY === true;
  try {
    stack.load.start();
    const endAt = Date.now() + duration * 1000;
    let lastLineAt = 0;
    let shownEvents = 0;
    while (!interrupted && Date.now() < endAt) {
      const { view, sample } = await stack.sample();
      samples.push(sample);
      const footer = `${Math.max(0, Math.round((endAt - Date.now()) / 1000))} s left · Ctrl-C stops and writes the report to ${outDir}`;
      if (tty) {
        process.stdout.write(
          `\x1b[2J\x1b[H${renderView({ ...view, footer }, process.stdout.columns ?? 120)}`,
        );
      } else {
        for (const e of stack.events.slice(shownEvents)) io.out(`  ${e}`);
        shownEvents = stack.events.length;
        if (Date.now() - lastLineAt >= 5000) {
          io.out(`${renderLine(view)}`);
          lastLineAt = Date.now();
        }
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    const snapshot = stack.engines.snapshot();
    const { report, timeline } = writeReport(outDir, {
      samples,
      kpis: {
        arrived: snapshot.requests.arrived,
        completed: snapshot.requests.completed,
        dropped: snapshot.requests.dropped,
        ttftSeconds: snapshot.ttftSeconds,
        tpotSeconds: snapshot.tpotSeconds,
        sloAttainment: snapshot.sloAttainment,
      },
      events: stack.events,
      gpusPerGroup: { prefill: 16, decode: 32 },
      settings: {
        trace,
        'time compression': String(compression),
        'rate multiplier': String(multiplier),
        'pod start-up (s)': String(podStartup),
        'scrape interval (s)': String(scrape),
      },
    });
    io.err('[kvpa up] stopping every process …');
    await stack.stop();
    io.out(`\nreport: ${report}\ntimeline: ${timeline}`);
  }
  return 0;
}
