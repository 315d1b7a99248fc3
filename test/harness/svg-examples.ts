/**
 * One SVG of each kind kvpa writes, made by the code that writes it: `kvpa simulate`'s pool timeline
 * and `kvpa simulate --frontier`'s frontiers (real lab runs of the bundled 40-minute trace),
 * `kvpa backtest`'s timeline and `kvpa up`'s report timeline (both from generated histories of the same
 * shape: a load step that scales a pool up and back down). Used by the rendering test and by
 * bench/pictures.ts, which renders the README's PNGs.
 */
import path from 'node:path';
import { type PoolBacktest, panelOf } from '../../src/cli/backtest.ts';
import { summarizeBacktest } from '../../src/cli/backtest-summary.ts';
import { poolsFromFile } from '../../src/cli/history.ts';
import { signalName } from '../../src/control/signals.ts';
import { renderTimelineSvg } from '../../src/report/svg-timeline.ts';
import { loadCalibration } from '../../src/sim/calibration.ts';
import { type FrontierPoint, sweepJobs } from '../../src/sim/frontier.ts';
import { frontierSvg as renderFrontierSvg } from '../../src/sim/frontier-svg.ts';
import { defaultSettings, demandFor, runSimulation } from '../../src/sim/run.ts';
import { timelineSvg } from '../../src/sim/svg.ts';
import { type StackSample, timelinePanels } from '../../src/stack/report.ts';

const repo = path.resolve(import.meta.dirname, '../..');

export type SvgKind = 'simulate' | 'frontier' | 'backtest' | 'up';

/** Load of the generated histories at second t of `seconds`: 1 group, a step to 4, back to 1. */
function stepLoad(t: number, seconds: number): number {
  return t < seconds * 0.2 ? 1 : t < seconds * 0.55 ? 3.6 : 0.9;
}

/** `kvpa simulate --policy kvpa` on examples/traces/r1-step-40min.csv: the decode pool's timeline. */
export function simulateSvg(untilSeconds = 2400): string {
  const trace = path.join(repo, 'examples/traces/r1-step-40min.csv');
  const settings = defaultSettings(trace, loadCalibration('deepseek-r1-h200'), {
    trace: { seed: 1, untilSeconds, rateMultiplier: 8 },
    startupSeconds: 120,
  });
  const summary = runSimulation(settings, 'kvpa');
  return timelineSvg(summary.timeline, 'decode', 'kvpa · decode · r1-step-40min.csv ×8, startup 2 min');
}

/**
 * `kvpa simulate --frontier --frontier-points 2 --compare kvpa,knative,hpa,static` on the same trace: each
 * sweep run one after another in this thread (as `--workers 0` does), drawn with the command's title.
 */
export function frontierSvg(untilSeconds = 2400): string {
  const trace = path.join(repo, 'examples/traces/r1-step-40min.csv');
  const settings = defaultSettings(trace, loadCalibration('deepseek-r1-h200'), {
    trace: { seed: 1, untilSeconds, rateMultiplier: 8 },
    startupSeconds: 120,
  });
  const demand = demandFor(settings);
  const points: FrontierPoint[] = ['kvpa', 'knative', 'hpa', 'static']
    .flatMap((policy) => sweepJobs(policy, 2))
    .map((job) => {
      const s = runSimulation(settings, job.runName, demand);
      return { policy: job.policy, knobs: job.knobs, sloAttainment: s.sloAttainment, gpuHours: s.gpuHours };
    });
  return renderFrontierSvg(points, 'Frontiers · r1-step-40min.csv ×8, startup 2 min');
}

/** `kvpa backtest`'s timeline for the decode pool of examples/kserve-deepseek-r1.yaml over an hour. */
export function backtestSvg(seconds = 3600): string {
  const { pools } = poolsFromFile(path.join(repo, 'examples/kserve-deepseek-r1.yaml'), undefined, 'default');
  const tp = pools.find((p) => p.pool.name === 'decode') ?? pools[0];
  if (tp === undefined) throw new Error('examples/kserve-deepseek-r1.yaml has no pool');
  const from = Date.parse('2026-11-23T10:00:00Z') / 1000;
  const timeline: PoolBacktest['timeline'][number][] = [];
  let desired = 1;
  for (let t = 0; t <= seconds; t += 10) {
    const load = stepLoad(t, seconds);
    const want = Math.ceil(load);
    desired = want > desired ? want : t % 600 === 0 ? want : desired;
    const signals: Record<string, number | null> = {};
    tp.pool.metrics.forEach((m, i) => {
      const name = signalName(m);
      // A gap of two minutes in the second signal: drawn as a gap, never as zero.
      signals[name] =
        i === 1 && t > seconds * 0.7 && t < seconds * 0.75 ? null : load * m.target * (1 - 0.1 * i);
    });
    timeline.push({
      atSeconds: from + t,
      desiredGroups: desired,
      actualGroups: t < 300 ? 1 : Math.max(1, desired - (t % 900 < 120 ? 1 : 0)),
      inPanic: load > 3 && t < seconds * 0.3,
      missingData: false,
      signals,
    });
  }
  const ref = tp.pool.scaleTargetRef;
  const result: PoolBacktest = {
    key: tp.key,
    scaleTarget: `${ref.kind} ${ref.name}`,
    headPods: ['decode-0'],
    actualFrom: 'generated',
    actualOutOfRangeSteps: 0,
    summary: summarizeBacktest(timeline, from + seconds),
    timeline,
  };
  return renderTimelineSvg([panelOf(tp, result)]);
}

/** `kvpa up`'s report timeline: samples once a second since the start, two pools. */
export function upSvg(seconds = 900): string {
  const samples: StackSample[] = [];
  // kvpa asks every 20 s; a group it asks for becomes ready 40 s later (kwok's start-up delay).
  const asked = { prefill: [{ at: 0, groups: 1 }], decode: [{ at: 0, groups: 1 }] };
  const latest = (pool: 'prefill' | 'decode', at: number) =>
    asked[pool].filter((a) => a.at <= at).at(-1)?.groups ?? 1;
  for (let t = 0; t <= seconds; t++) {
    const load = stepLoad(t, seconds);
    if (t % 20 === 0 && t > 0) {
      asked.prefill.push({ at: t, groups: Math.min(4, Math.ceil(load)) });
      asked.decode.push({ at: t, groups: Math.min(3, Math.ceil(load * 0.7)) });
    }
    const prefill = latest('prefill', t);
    const decode = latest('decode', t);
    // Scale-ups become ready after 40 s; scale-downs at once.
    const ready = (pool: 'prefill' | 'decode', spec: number) => Math.min(spec, latest(pool, t - 40));
    samples.push({
      atSeconds: t + 0.21,
      loadRequestsPerSecond: 20 * load,
      pools: {
        prefill: {
          specGroups: prefill,
          readyGroups: ready('prefill', prefill),
          recommendedGroups: prefill,
          mode: load > 3 && t < seconds * 0.3 ? 'Panic' : 'Stable',
          kvCacheUsage: 0.02,
          requestsWaiting: 10 * load,
          signalWants: { runningRequests: load * 1.1, queueDepth: load },
        },
        decode: {
          specGroups: decode,
          readyGroups: ready('decode', decode),
          recommendedGroups: decode,
          mode: 'Stable',
          kvCacheUsage: 0.2 * load,
          requestsWaiting: 0,
          signalWants: { kvCacheUtilization: load * 0.7 },
        },
      },
    });
  }
  return renderTimelineSvg(timelinePanels(samples, 'kvpa up'));
}

export function svgOf(kind: SvgKind): string {
  switch (kind) {
    case 'simulate':
      return simulateSvg();
    case 'frontier':
      return frontierSvg();
    case 'backtest':
      return backtestSvg();
    case 'up':
      return upSvg();
  }
}
