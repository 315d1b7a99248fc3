/**
 * The plain YAML in deploy/ as the chart in deploy/chart renders it: `helm template` with
 * PLAIN_VALUES, one file per template (the `# Source:` line helm writes names it), plus the chart's
 * copy of the kvpa CRD. scripts/gen-deploy.ts writes these files; test/integration/chart.test.ts
 * checks that the committed ones equal them.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CRD_PATH } from '../src/api/crd-file.ts';

const run = promisify(execFile);

export const repoRoot = path.resolve(import.meta.dirname, '..');
export const CHART_DIR = 'deploy/chart';
/** The plain install: release `kvpa` in kvpa-system, which the manifests create. */
export const PLAIN_NAMESPACE = 'kvpa-system';
export const PLAIN_VALUES = ['--set', 'namespace.create=true'];

const HEADER =
  '# Generated from deploy/chart by `npm run gen:deploy` (helm template); edit the chart, not this file.\n';

/** Renders the chart with `helm template` and the given flags; stdout is the multi-document YAML. */
export async function helmTemplate(
  helm: string,
  namespace: string,
  flags: readonly string[],
): Promise<string> {
  const { stdout } = await run(
    helm,
    ['template', 'kvpa', path.join(repoRoot, CHART_DIR), '--namespace', namespace, ...flags],
    { timeout: 60_000, maxBuffer: 16 << 20 },
  );
  return stdout;
}

/** Splits helm's output into repo-relative file → text, one deploy/<template name> per template. */
export function splitBySource(rendered: string): Map<string, string> {
  const byFile = new Map<string, string[]>();
  for (const part of rendered.split(/^---\n/m)) {
    const source = /^# Source: [^/]+\/templates\/(.+)$/m.exec(part)?.[1];
    if (source === undefined) continue;
    const body = part.replace(/^# Source: .*\n/m, '').trim();
    if (body === '') continue;
    const docs = byFile.get(source) ?? [];
    docs.push(body);
    byFile.set(source, docs);
  }
  const files = new Map<string, string>();
  for (const [source, docs] of byFile) files.set(`deploy/${source}`, `${HEADER}${docs.join('\n---\n')}\n`);
  return files;
}

/** Every generated file (repo-relative path → wanted contents). */
export async function plainDeployFiles(helm: string): Promise<Map<string, string>> {
  const files = splitBySource(await helmTemplate(helm, PLAIN_NAMESPACE, PLAIN_VALUES));
  files.set(
    `${CHART_DIR}/crds/${path.basename(CRD_PATH)}`,
    readFileSync(path.join(repoRoot, CRD_PATH), 'utf8'),
  );
  return files;
}
