/** kvpa's command line: one dispatcher, one module per subcommand. */
import { BACKTEST_USAGE, runBacktest } from './backtest.ts';
import { CONTROLLER_USAGE, runController } from './controller.ts';
import { DECIDE_USAGE, runDecide } from './decide.ts';
import { RECOMMEND_USAGE, runRecommend } from './recommend.ts';
import { EXIT, type Output, processOutput, runCommand } from './shell.ts';
import { runSimulate, SIMULATE_USAGE } from './simulate.ts';
import { runUp, UP_USAGE } from './up.ts';
import { runValidate, VALIDATE_USAGE } from './validate.ts';

const USAGE = `kvpa: the KV-cache Pod Autoscaler

Commands:
  kvpa up [flags]                 the whole stack on this machine: control plane, LWS, emulated GPUs, Prometheus, load
  kvpa controller [flags]         run the controller against a cluster
  kvpa decide --scenario FILE     replay observations through the decision core (JSON lines out)
  kvpa simulate --trace FILE ...  replay a request trace through a simulated DeepSeek-R1 fleet (kvpa simulate --help)
  kvpa validate FILE...           check PodAutoscaler and ScalingPolicy files
  kvpa recommend --prometheus URL (-f FILE | --namespace NS)
                                  one-shot, read-only: what each pool should have now, and why
  kvpa backtest --prometheus URL --from T --to T -f FILE
                                  replay Prometheus history through a policy: summary, SVG, JSON
  kvpa help                       this text

${UP_USAGE}
${CONTROLLER_USAGE}
${DECIDE_USAGE}
${SIMULATE_USAGE}
${VALIDATE_USAGE}
${RECOMMEND_USAGE}
${BACKTEST_USAGE}`;

const COMMANDS: Readonly<Record<string, (argv: readonly string[], io: Output) => Promise<number>>> = {
  up: runUp,
  controller: runController,
  simulate: runSimulate,
  decide: runDecide,
  validate: runValidate,
  recommend: runRecommend,
  backtest: runBacktest,
};

/** Dispatches to a subcommand inside the shell: exit 0 ok, 1 failed, 2 bad usage; never a stack trace. */
export async function main(argv: readonly string[], io: Output = processOutput): Promise<number> {
  const [command, ...rest] = argv;
  const run = command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (run !== undefined && command !== undefined) return runCommand(command, io, () => run(rest, io));
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  io.err(
    `kvpa: unknown command ${JSON.stringify(command)}; the commands are ${Object.keys(COMMANDS).join(', ')} (run kvpa help for usage)`,
  );
  return EXIT.usage;
}
