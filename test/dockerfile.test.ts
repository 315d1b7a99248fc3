// The Dockerfile, checked without a Docker engine (none runs on the development machines): what it
// copies exists and passes .dockerignore, the runtime carries what the npm package ships, and it runs
// `kvpa controller` as the non-root uid the chart's pod asks for.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const repoRoot = path.resolve(import.meta.dirname, '..');
const read = (f: string) => readFileSync(path.join(repoRoot, f), 'utf8');

interface Instruction {
  op: string;
  args: string;
}

/** Instructions per stage (comments dropped; no line continuations are used in this Dockerfile). */
function stages(text: string): Instruction[][] {
  const out: Instruction[][] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (m === null) continue;
    const [, op = '', args = ''] = m;
    if (op === 'FROM') out.push([]);
    out.at(-1)?.push({ op, args });
  }
  return out;
}

/** Whether .dockerignore keeps `file` in the build context: the last matching rule wins. */
function inContext(file: string, rules: string[]): boolean {
  let kept = true;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = negated ? rule.slice(1) : rule;
    const glob = pattern
      .split('**/')
      .map((piece) => piece.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
      .join('(.*/)?');
    const re = new RegExp(`^${glob}(/.*)?$`);
    if (re.test(file)) kept = negated;
  }
  return kept;
}

const dockerfile = stages(read('Dockerfile'));
const runtime = dockerfile.at(-1) ?? [];
const ignoreRules = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
/** `COPY src dest` from the build context (not --from=stage), in every stage. */
const contextCopies = dockerfile
  .flat()
  .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))
  .flatMap((i) => i.args.split(/\s+/).slice(0, -1));

describe('the Dockerfile', () => {
  it('copies only paths that exist and that .dockerignore keeps (9 sources)', () => {
    expect(contextCopies).toHaveLength(9);
    for (const src of contextCopies) {
      expect(existsSync(path.join(repoRoot, src)), `${src} does not exist`).toBe(true);
      expect(inContext(src, ignoreRules), `${src} is excluded by .dockerignore`).toBe(true);
    }
    // The allowlist keeps tests and build output out of the context.
    expect(inContext('src/decide/kpa.test.ts', ignoreRules)).toBe(false);
    expect(inContext('node_modules/yaml/package.json', ignoreRules)).toBe(false);
    expect(inContext('dist/cli/main.js', ignoreRules)).toBe(false);
  });

  it('is multi-stage: npm ci and the build in the first, dist and production node_modules copied out', () => {
    expect(dockerfile.length).toBe(2);
    const build = (dockerfile[0] ?? []).filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(build.some((r) => r.startsWith('npm ci'))).toBe(true);
    expect(build.some((r) => r.includes('npm run build') && r.includes('npm prune --omit=dev'))).toBe(true);
    const fromBuild = runtime.filter((i) => i.op === 'COPY' && i.args.startsWith('--from=build'));
    expect(fromBuild.map((i) => i.args.split(/\s+/)[1])).toEqual([
      '/src/package.json',
      '/src/node_modules',
      '/src/dist',
    ]);
  });

  it('ships in the runtime every data folder the npm package ships', () => {
    const files = (JSON.parse(read('package.json')) as { files: string[] }).files;
    // The image runs only the controller: no examples, and no build scripts (those serve `kvpa up`).
    const notInImage = ['dist', 'examples', 'README.md'];
    const data = files.filter(
      (f) => !f.startsWith('!') && !f.startsWith('scripts/') && !notInImage.includes(f),
    );
    expect(data).toEqual(['crds', 'policies', 'calibration']);
    const copied = runtime.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/)[0]);
    for (const f of [...data, 'bin']) expect(copied).toContain(f);
  });

  it('runs `kvpa controller` as uid 65532, the runAsUser of the chart (deploy/30-deployment.yaml)', () => {
    const user = runtime.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBe('65532:65532');
    const deployment = YAML.parse(read('deploy/30-deployment.yaml')) as {
      spec: { template: { spec: { securityContext: { runAsUser: number; runAsGroup: number } } } };
    };
    const pod = deployment.spec.template.spec.securityContext;
    expect(`${pod.runAsUser}:${pod.runAsGroup}`).toBe(user);
    const entrypoint = JSON.parse(runtime.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]') as string[];
    const workdir = runtime.find((i) => i.op === 'WORKDIR')?.args;
    expect(entrypoint.slice(1)).toEqual([`${workdir}/bin/kvpa.js`, 'controller']);
  });
});
