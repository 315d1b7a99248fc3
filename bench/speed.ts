/**
 * Speed of the simulator: simulated requests per second of wall time, one policy, one core.
 *
 *   npx tsx bench/speed.ts [--policy kvpa] [--rate-multiplier 20] [--trace FILE]
 *
 * The default is the 24-hour ServeGen development trace (github.com/alibaba/ServeGen, converted to
 * t_ms,input_tokens,output_tokens), which is not in the repository: it is read from $KVPA_TRACES, else
 * ../shared/traces. The demand pre-pass (which reads the trace once more, for the oracle, static
 * provisioning and the initial fleet) is timed separately.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCalibration } from '../src/sim/calibration.ts';
import { defaultSettings, demandFor, runSimulation } from '../src/sim/run.ts';

const { values } = parseArgs({
  options: {
    policy: { type: 'string', default: 'kvpa' },
    'rate-multiplier': { type: 'string', default: '20' },
    trace: {
      type: 'string',
      default: join(
        process.env.KVPA_TRACES ?? join(import.meta.dirname, '..', '..', 'shared', 'traces'),
        'servegen_mlarge_day09_scale0.04.csv',
      ),
    },
  },
});
if (!existsSync(values.trace)) {
  process.stderr.write(
    `bench/speed.ts: no trace at ${values.trace}. Pass --trace FILE (any trace src/sim/trace.ts reads, ` +
      'e.g. test/fixtures/traces/per-request-10min.csv), or set KVPA_TRACES to a directory holding ' +
      'servegen_mlarge_day09_scale0.04.csv.\n',
  );
  process.exit(2);
}
const settings = defaultSettings(values.trace, loadCalibration(), {
  trace: { rateMultiplier: Number(values['rate-multiplier']), seed: 1 },
});
const demandStarted = performance.now();
const demand = demandFor(settings);
const demandSeconds = (performance.now() - demandStarted) / 1000;
const summary = runSimulation(settings, values.policy, demand);
const result = {
  policy: summary.policy,
  trace: values.trace,
  rateMultiplier: Number(values['rate-multiplier']),
  requests: summary.requests.arrived,
  simulatedHours: summary.simulatedSeconds / 3600,
  wallSeconds: Number(summary.wallSeconds.toFixed(1)),
  requestsPerWallSecond: Math.round(summary.requestsPerWallSecond),
  demandPrepassSeconds: Number(demandSeconds.toFixed(1)),
  sloAttainment: summary.sloAttainment,
  gpuHours: summary.gpuHours,
  node: process.version,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
