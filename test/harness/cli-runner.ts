/**
 * Runs `kvpa` command lines through main() in this process, one after another, and prints one JSON line
 * per finished case: `{"name", "code", "out", "err", "ms"}`. The cases arrive as JSON on stdin
 * (`[{name, argv}]`). A test starts this in a child process with a deadline, so a command that hangs
 * (a busy loop the event loop never leaves) is killed and named, never left to stall the suite.
 *
 *   node --import tsx test/harness/cli-runner.ts < cases.json
 */
import { main } from '../../src/cli/main.ts';

interface Case {
  readonly name: string;
  readonly argv: readonly string[];
}

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Case[];
for (const c of cases) {
  const out: string[] = [];
  const err: string[] = [];
  const started = performance.now();
  let code: number;
  try {
    code = await main(c.argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  } catch (e) {
    // main() must never throw; report it as the stack trace the user would have seen.
    code = -1;
    err.push((e as Error).stack ?? String(e));
  }
  const ms = Math.round(performance.now() - started);
  process.stdout.write(
    `${JSON.stringify({ name: c.name, code, out: out.join('\n'), err: err.join('\n'), ms })}\n`,
  );
}
