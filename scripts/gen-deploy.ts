/**
 * Writes deploy/*.yaml and the chart's CRD copy from deploy/chart (scripts/deploy-manifests.ts).
 * `--check` fails when a committed file differs. helm comes from scripts/build-tools.sh.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureBuiltBinaries } from '../src/stack/cluster.ts';
import { plainDeployFiles, repoRoot } from './deploy-manifests.ts';

const binDir = await ensureBuiltBinaries('scripts/build-tools.sh', 'KVPA_TOOLS_BIN_DIR', ['helm', 'kubectl']);
const wanted = await plainDeployFiles(path.join(binDir, 'helm'));
// A deploy/*.yaml that no template renders any more is stale too.
const stale = readdirSync(path.join(repoRoot, 'deploy'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => `deploy/${f}`)
  .filter((f) => !wanted.has(f));
if (process.argv.includes('--check')) {
  const differ = [...wanted].filter(
    ([file, text]) =>
      !existsSync(path.join(repoRoot, file)) || readFileSync(path.join(repoRoot, file), 'utf8') !== text,
  );
  for (const f of [...differ.map(([f]) => f), ...stale])
    process.stderr.write(`${f} is stale: run npm run gen:deploy\n`);
  if (differ.length > 0 || stale.length > 0) process.exit(1);
} else {
  for (const f of stale) rmSync(path.join(repoRoot, f));
  for (const [file, text] of wanted) writeFileSync(path.join(repoRoot, file), text);
  process.stdout.write(`wrote ${[...wanted.keys()].join(', ')}\n`);
}
