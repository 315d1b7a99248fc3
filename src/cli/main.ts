/** kvpa's command line: one dispatcher, one module per subcommand. */
import { runSimulateCommand } from '../sim/cli.ts';
import { BACKTEST_USAGE, runBacktest } from './backtest.ts';
import { CONTROLLER_USAGE, runController } from './controller.ts';
import { DECIDE_USAGE, runDecide } from './decide.ts';
import { RECOMMEND_USAGE, runRecommend } from './recommend.ts';
import { runUp, UP_USAGE } from './up.ts';
import { type Output, runValidate, VALIDATE_USAGE } from './validate.ts';

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
${VALIDATE_USAGE}
${RECOMMEND_USAGE}
${BACKTEST_USAGE}`;

const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export async function main(argv: readonly string[], io: Output = processOutput): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return runUp(rest, io);
    case 'controller':
      return runController(rest, io);
    case 'simulate':
      return runSimulateCommand(rest);
    case 'decide':
      return runDecide(rest, io);
    case 'validate':
      return runValidate(rest, io);
    case 'recommend':
      return runRecommend(rest, io);
    case 'backtest':
      return runBacktest(rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      io.err(`kvpa: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}
