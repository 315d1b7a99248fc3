// kubectl and helm for tests, built from the Go module proxy by scripts/build-tools.sh (cached in
// ~/.cache/kvpa; KVPA_TOOLS_BIN_DIR points at a directory that already holds both).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureBuiltBinaries } from '../../src/stack/cluster.ts';

const execFileAsync = promisify(execFile);

export interface Tools {
  kubectl: string;
  helm: string;
}

/** Builds kubectl and helm if needed (minutes the first time, instant once cached). */
export async function ensureTools(): Promise<Tools> {
  const bin = await ensureBuiltBinaries('scripts/build-tools.sh', 'KVPA_TOOLS_BIN_DIR', ['kubectl', 'helm']);
  return { kubectl: path.join(bin, 'kubectl'), helm: path.join(bin, 'helm') };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion (bounded), feeding `input` on stdin; a non-zero exit is returned, not thrown. */
export async function runTool(
  bin: string,
  args: readonly string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = execFileAsync(bin, [...args], {
    timeout: options.timeoutMs ?? 60_000,
    maxBuffer: 16 << 20,
    env: { ...process.env, ...options.env },
  });
  if (options.input !== undefined) child.child.stdin?.end(options.input);
  else child.child.stdin?.end();
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? err.message };
  }
}
