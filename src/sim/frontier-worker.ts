/**
 * A frontier worker thread: takes `{id, runName}` jobs, runs each with the shared settings and demand, and
 * answers with the run's result (without its per-minute timeline) and throttled progress.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compareRow } from '../cli/simulate.ts';
import type { DemandProfile } from './demand.ts';
import { runSimulation, type SimulationSettings } from './run.ts';

export interface WorkerInput {
  readonly settings: SimulationSettings;
  readonly demand: DemandProfile;
}

export type WorkerReply =
  | { readonly kind: 'progress'; readonly id: number; readonly simulatedSeconds: number }
  | {
      readonly kind: 'done';
      readonly id: number;
      readonly sloAttainment: number;
      readonly gpuHours: number;
      readonly policy: string;
      readonly wallSeconds: number;
      readonly row: ReturnType<typeof compareRow>;
    }
  | { readonly kind: 'failed'; readonly id: number; readonly message: string };

const { settings, demand } = workerData as WorkerInput;
const port = parentPort;
if (port === null) throw new Error('frontier-worker.ts runs only as a worker thread');
port.on('message', (job: { id: number; runName: string }) => {
  let lastPost = 0;
  try {
    const summary = runSimulation(settings, job.runName, demand, (simulatedSeconds) => {
      const now = performance.now();
      if (now - lastPost < 250) return;
      lastPost = now;
      port.postMessage({ kind: 'progress', id: job.id, simulatedSeconds } satisfies WorkerReply);
    });
    port.postMessage({
      kind: 'done',
      id: job.id,
      sloAttainment: summary.sloAttainment,
      gpuHours: summary.gpuHours,
      policy: summary.policy,
      wallSeconds: summary.wallSeconds,
      row: compareRow(summary),
    } satisfies WorkerReply);
  } catch (error) {
    port.postMessage({ kind: 'failed', id: job.id, message: (error as Error).message } satisfies WorkerReply);
  }
});
