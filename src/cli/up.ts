/**
 * `kvpa up` (also `npm start`): the whole stack on loopback, a live view while the load plays, and a
 * report at the end. Ctrl-C stops everything and still writes the report.
 */
import path from 'node:path';
import { traceStats } from '../sim/trace.ts';
import type { StackSample } from '../stack/report.ts';
import { writeReport } from '../stack/report.ts';
import { DEFAULT_TRACE, type Stack, startStack } from '../stack/up.ts';
import { renderLine, renderView } from '../stack/view.ts';
import {
  type Bounds,
  EXIT,
  numberFlag,
  type Output,
  parseFlags,
  prepareOutDir,
  stringFlag,
  UsageError,
} from './shell.ts';

export const UP_USAGE = `Usage: kvpa up [--trace FILE] [--time-compression C] [--rate-multiplier X]
               [--duration-seconds S] [--pod-startup-seconds S] [--scrape-interval S] [--out DIR]

Starts kvpa against a local control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, the LeaderWorkerSet controller, kwok), emulated vLLM engines, Prometheus and a load
generator, all on 127.0.0.1, and shows each pool scaling live. First use builds the Kubernetes
binaries from the Go module proxy (about 20-30 minutes on 2 cores); later runs start in about a minute.

  --trace FILE             request trace to replay (default examples/traces/r1-step-40min.csv)
  --time-compression C     play the trace C times faster (default 10) [0.1 to 100]
  --rate-multiplier X      arrivals per trace arrival (default 1) [≤ 100]
  --duration-seconds S     stop after S wall seconds (default: the trace's length plus 60 s) [≤ 86400]
  --pod-startup-seconds S  pod start-up delay (kwok), standing in for a 10-80 min cold start (default 20) [≤ 3600]
  --scrape-interval S      Prometheus scrape interval (default 1) [≤ 60]
  --out DIR                report directory (default out/kvpa-up-<time>)

Grafana annotations go to a local contract server (its log is in the report directory), or to a real
Grafana when GRAFANA_URL and GRAFANA_TOKEN are set.
`;

/** Caps of `kvpa up`: one laptop runs the whole stack, so load and time stay within what 2 cores carry. */
export const UP_BOUNDS = {
  'time-compression': {
    min: 0.1,
    max: 100,
    cap: 'faster than that, 1 s scrapes miss the load',
    example: 10,
  },
  'rate-multiplier': {
    min: 0,
    minExclusive: true,
    max: 100,
    cap: 'the load generator and engines share this machine',
    example: 1,
  },
  'duration-seconds': {
    min: 0,
    minExclusive: true,
    max: 86_400,
    unit: 'seconds',
    cap: 'a day',
    example: 600,
  },
  'pod-startup-seconds': {
    min: 0,
    minExclusive: true,
    max: 3600,
    unit: 'seconds',
    cap: 'an hour',
    example: 20,
  },
  'scrape-interval': {
    min: 0,
    minExclusive: true,
    max: 60,
    unit: 'seconds',
    cap: 'a minute, the longest a window can wait for',
    example: 1,
  },
} as const satisfies Readonly<Record<string, Bounds>>;

export async function runUp(argv: readonly string[], io: Output): Promise<number> {
  const { values } = parseFlags(argv, {
    trace: { type: 'string' },
    ...Object.fromEntries(Object.keys(UP_BOUNDS).map((k) => [k, { type: 'string' as const }])),
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(UP_USAGE);
    return EXIT.ok;
  }
  const n = (name: keyof typeof UP_BOUNDS) => numberFlag(values, name, UP_BOUNDS[name]);
  const compression = n('time-compression') ?? 10;
  const multiplier = n('rate-multiplier') ?? 1;
  const podStartup = n('pod-startup-seconds') ?? 20;
  const scrape = n('scrape-interval') ?? 1;
  const durationFlag = n('duration-seconds');
  const trace = stringFlag(values, 'trace') ?? DEFAULT_TRACE;
  // Read the whole trace once before anything starts: a bad row fails here, naming file, line and fix,
  // not minutes later inside a running stack.
  let traceEndSeconds: number;
  try {
    const stats = traceStats(trace, { timeCompression: compression, rateMultiplier: multiplier });
    traceEndSeconds = Number.isFinite(stats.lastSeconds) ? stats.lastSeconds : 0;
  } catch (e) {
    io.err(
      `kvpa up: --trace ${trace}: ${(e as Error).message}; check --trace (a trace CSV such as ${DEFAULT_TRACE})`,
    );
    return EXIT.usage;
  }
  const duration = durationFlag ?? Math.ceil(traceEndSeconds) + 60;
  const maxDuration = UP_BOUNDS['duration-seconds'].max;
  if (duration > maxDuration) {
    throw new UsageError(
      `--trace ${trace} at --time-compression ${compression} plays for ${duration} s; the cap is ${maxDuration} s (a day): raise --time-compression or give --duration-seconds`,
    );
  }
  const outDir = prepareOutDir(
    stringFlag(values, 'out') ??
      path.join('out', `kvpa-up-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`),
  );
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
    return EXIT.failed;
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
  return EXIT.ok;
}
