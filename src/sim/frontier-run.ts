/**
 * Runs a frontier sweep: every job of every policy, in parallel worker threads (one per core by default), with
 * one progress bar on stderr. The demand profile is computed once by the caller and shared with every worker.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { compareRow } from '../cli/simulate.ts';
import type { DemandProfile } from './demand.ts';
import type { FrontierJob, FrontierPoint } from './frontier.ts';
import type { WorkerReply } from './frontier-worker.ts';
import { runSimulation, type SimulationSettings } from './run.ts';

export interface FrontierRunOptions {
  /** Worker threads; 0 runs the jobs one after another in this thread (tests). Default: one per core. */
  readonly workers?: number;
  /** Called with (finished jobs, total, fraction of the running jobs done) for a progress display. */
  readonly onProgress?: (done: number, total: number, runningFraction: number) => void;
}

export interface FrontierResult extends FrontierPoint {
  readonly runName: string;
  readonly wallSeconds: number;
  /** The run's compare.json row. */
  readonly row: ReturnType<typeof compareRow>;
}

/** Runs the jobs and returns one result per job, in job order. */
export async function runFrontier(
  settings: SimulationSettings,
  demand: DemandProfile,
  jobs: readonly FrontierJob[],
  options: FrontierRunOptions = {},
): Promise<FrontierResult[]> {
  const workers = Math.min(jobs.length, options.workers ?? availableParallelism());
  const results: (FrontierResult | undefined)[] = jobs.map(() => undefined);
  const totalSeconds = demand.prefillGroups.length * demand.binSeconds;
  if (workers <= 0) {
    const { compareRow: rowOf } = await import('../cli/simulate.ts');
    for (const [id, job] of jobs.entries()) {
      const s = runSimulation(settings, job.runName, demand);
      results[id] = {
        ...job,
        sloAttainment: s.sloAttainment,
        gpuHours: s.gpuHours,
        wallSeconds: s.wallSeconds,
        row: rowOf(s),
      };
      options.onProgress?.(id + 1, jobs.length, 0);
    }
    return results as FrontierResult[];
  }
  const running = new Map<number, number>(); // job id → fraction done
  let next = 0;
  let done = 0;
  const report = () => {
    let fraction = 0;
    for (const f of running.values()) fraction += f;
    options.onProgress?.(done, jobs.length, fraction);
  };
  const pool = Array.from({ length: workers }, () => spawnWorker(settings, demand));
  try {
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            const take = () => {
              if (next >= jobs.length) {
                resolve();
                return;
              }
              const id = next++;
              running.set(id, 0);
              worker.postMessage({ id, runName: (jobs[id] as FrontierJob).runName });
            };
            worker.on('message', (reply: WorkerReply) => {
              if (reply.kind === 'progress') {
                running.set(
                  reply.id,
                  totalSeconds > 0 ? Math.min(1, reply.simulatedSeconds / totalSeconds) : 0,
                );
                report();
                return;
              }
              running.delete(reply.id);
              if (reply.kind === 'failed') {
                reject(new Error(`${(jobs[reply.id] as FrontierJob).runName}: ${reply.message}`));
                return;
              }
              const job = jobs[reply.id] as FrontierJob;
              results[reply.id] = {
                ...job,
                sloAttainment: reply.sloAttainment,
                gpuHours: reply.gpuHours,
                wallSeconds: reply.wallSeconds,
                row: reply.row,
              };
              done++;
              report();
              take();
            });
            worker.on('error', reject);
            take();
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results as FrontierResult[];
}

/**
 * A worker running frontier-worker: the compiled .js beside this module in the package (dist/), or the
 * .ts source through tsx's loader when this module itself runs from source (tests, tsx scripts).
 */
function spawnWorker(settings: SimulationSettings, demand: DemandProfile): Worker {
  if (import.meta.url.endsWith('.js')) {
    return new Worker(new URL('./frontier-worker.js', import.meta.url), { workerData: { settings, demand } });
  }
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./frontier-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: { settings, demand } });
}

/** A one-line bar on a terminal: runs done of the total, the running ones counted by their progress. */
export function frontierProgressBar():
  | ((done: number, total: number, runningFraction: number) => void)
  | undefined {
  if (!process.stderr.isTTY) return undefined;
  let shown = -1;
  return (done, total, runningFraction) => {
    const percent = Math.min(100, Math.floor((100 * (done + runningFraction)) / Math.max(1, total)));
    if (percent === shown && done < total) return;
    shown = percent;
    const filled = Math.round(percent / 5);
    process.stderr.write(
      `\rkvpa simulate --frontier [${'#'.repeat(filled)}${' '.repeat(20 - filled)}] ${percent}% (${done}/${total} runs)`,
    );
    if (done === total) process.stderr.write('\n');
  };
}
