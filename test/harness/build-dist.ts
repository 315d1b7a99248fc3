// vitest globalSetup: compiles src/ into dist/ before any test spawns bin/kvpa.js (the shipped bin runs
// dist/, so a test run must never see a stale one). tsc is incremental (dist/.tsbuildinfo): a no-op
// rebuild takes a few seconds.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const startedMs = Date.now();
  execFileSync(process.execPath, [tsc, '-p', path.join(repoRoot, 'tsconfig.build.json')], {
    cwd: repoRoot,
    stdio: 'inherit',
    timeout: 300_000,
  });
  process.stderr.write(`[kvpa-build] dist/ up to date in ${((Date.now() - startedMs) / 1000).toFixed(1)}s\n`);
}
