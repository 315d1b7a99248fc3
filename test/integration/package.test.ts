// The npm package as a user gets it: `npm pack`, `npm install -g` of the tarball into an empty prefix, then
// the installed `kvpa` run from an empty directory, with no tsx anywhere in the installed tree. The
// install is --offline: the tarball bundles its dependency tree (package.json bundleDependencies), so
// the `undici` override that lets @kubernetes/client-node run on Node 20 holds for installs too.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/cluster.ts';

const run = promisify(execFile);
const NPM_TIMEOUT_MS = 240_000;

let work = '';
let prefix = '';
let packed: string[] = [];
let installed = '';
/** PATH with the temp prefix's bin first and this node beside it, nothing from the clone. */
let env: NodeJS.ProcessEnv = {};

async function kvpa(cwd: string, ...argv: string[]) {
  return run('kvpa', argv, { cwd, env, timeout: 60_000, maxBuffer: 16 << 20 });
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'kvpa-pack-'));
  prefix = path.join(work, 'prefix');
  // The integration globalSetup has just compiled dist/ (test/harness/build-dist.ts), so the pack skips
  // the `prepare` rebuild; the tarball holds exactly that dist/.
  const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], {
    cwd: repoRoot,
    timeout: NPM_TIMEOUT_MS,
    maxBuffer: 16 << 20,
  });
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  if (info === undefined) throw new Error(`npm pack printed no package: ${pack.stdout}`);
  packed = info.files.map((f) => f.path);
  const empty = path.join(work, 'empty');
  await mkdir(empty);
  await run(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--no-audit',
      '--no-fund',
      '--offline',
      path.join(work, info.filename),
    ],
    { cwd: empty, timeout: NPM_TIMEOUT_MS, maxBuffer: 16 << 20 },
  );
  installed = path.join(prefix, 'lib', 'node_modules', 'kvpa');
  env = {
    HOME: process.env.HOME,
    PATH: [path.join(prefix, 'bin'), path.dirname(process.execPath), '/usr/bin', '/bin'].join(path.delimiter),
  };
}, 2 * NPM_TIMEOUT_MS);

afterAll(async () => {
  if (work !== '') await rm(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('ships dist, crds, policies, the calibration, examples and the build scripts; not src, test, bench, .ci or the build info', () => {
    expect(packed).toContain('dist/cli/main.js');
    expect(packed).toContain('bin/kvpa.js');
    expect(packed).toContain('crds/podautoscalers.kvpa.io.yaml');
    expect(packed).toContain('policies/default.yaml');
    expect(packed).toContain('examples/scenario-decode-burst.json');
    expect(packed.some((f) => f.startsWith('calibration/') && f.endsWith('.yaml'))).toBe(true);
    expect(packed).toContain('README.md');
    // `kvpa up` builds its binaries with these, relative to the package root as in the clone.
    expect(packed).toContain('scripts/build-k8s.sh');
    expect(packed).toContain('scripts/lib.sh');
    const unwanted = packed.filter(
      (f) =>
        /^(src|test|bench|\.ci|deploy)\//.test(f) ||
        /^scripts\/.*\.ts$/.test(f) ||
        f.endsWith('.tsbuildinfo'),
    );
    expect(unwanted).toEqual([]);
    expect(packed.filter((f) => f.startsWith('dist/') && f.endsWith('.test.js'))).toEqual([]);
  });

  it('installs without tsx: no tsx in the installed tree', () => {
    expect(existsSync(path.join(installed, 'dist', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(path.join(installed, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(path.join(prefix, 'lib', 'node_modules', 'tsx'))).toBe(false);
  });

  it('runs kvpa --help from an empty directory', async () => {
    const r = await kvpa(work, '--help');
    expect(r.stdout).toContain('kvpa: the KV-cache Pod Autoscaler');
    expect(r.stdout).toContain('kvpa controller [flags]');
  });

  it('validates a shipped example against the shipped policies (policyRef resolves from the package)', async () => {
    const r = await kvpa(work, 'validate', path.join(installed, 'examples', 'kserve-deepseek-r1.yaml'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('ok  ');
    expect(r.stdout).toContain('PodAutoscaler deepseek-r1');
  });

  it('replays the shipped scenario from the package directory: 10 decisions, the first at 0 s', async () => {
    const r = await kvpa(
      installed,
      'decide',
      '--scenario',
      'examples/scenario-decode-burst.json',
      '--summary',
    );
    const lines = r.stdout.trim().split('\n');
    const first = JSON.parse(lines[0] ?? '{}') as { atSeconds?: number; valid?: boolean };
    expect(first.atSeconds).toBe(0);
    expect(first.valid).toBe(true);
    expect(lines).toHaveLength(10);
  });

  it('simulates the shipped trace with the shipped calibration and writes summary.json', async () => {
    const out = path.join(work, 'sim-out');
    await kvpa(
      work,
      'simulate',
      '--trace',
      path.join(installed, 'examples', 'traces', 'r1-step-40min.csv'),
      '--policy',
      'kvpa',
      '--out',
      out,
    );
    expect(existsSync(path.join(out, 'summary.json'))).toBe(true);
  });
});
