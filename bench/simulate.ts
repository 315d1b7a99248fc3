/**
 * Runs `kvpa simulate` without the CLI dispatcher (src/cli/main.ts wires the same function in):
 *
 *   npx tsx bench/simulate.ts --trace ../shared/traces/azure2023_conv.csv --compare kvpa,hpa,oracle --out out/conv
 */
import { runSimulateCommand } from '../src/sim/cli.ts';

process.exitCode = await runSimulateCommand(process.argv.slice(2));
