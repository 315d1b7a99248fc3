import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { policyNames } from '../sim/policies/index.ts';
import { parseSimulateArgs, runSimulate } from './simulate.ts';

// A trace in the repository: the tests need no ../shared.
const step = join(import.meta.dirname, '..', '..', 'examples', 'traces', 'r1-step-40min.csv');

describe('kvpa simulate --frontier and --compare all', () => {
  it('--compare all names every built-in policy; knobbed names pass; --workers needs --frontier', () => {
    const base = ['--trace', step, '--out', '/tmp/unused'];
    expect(parseSimulateArgs([...base, '--compare', 'all']).policies).toEqual([...policyNames]);
    expect(parseSimulateArgs([...base, '--policy', 'hpa@target=1.2+delay=60']).policies).toEqual([
      'hpa@target=1.2+delay=60',
    ]);
    expect(() => parseSimulateArgs([...base, '--policy', 'static@target=2'])).toThrow(
      /not a built-in policy with knobs/,
    );
    expect(() => parseSimulateArgs([...base, '--policy', 'hpa@speed=2'])).toThrow(/bad knob/);
    expect(() => parseSimulateArgs([...base, '--policy', 'hpa', '--workers', '2'])).toThrow(
      /only with --frontier/,
    );
    expect(
      parseSimulateArgs([...base, '--policy', 'hpa', '--frontier', '--frontier-points', '3']).frontier,
    ).toEqual({
      points: 3,
      workers: undefined,
    });
  });

  it('a 10-minute frontier of knative (2 points per knob) and static writes frontier rows, the SVG and the table', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kvpa-frontier-'));
    let printed = '';
    const io = { out: (l: string) => (printed += `${l}\n`), err: () => {} };
    const code = await runSimulate(
      [
        '--trace',
        step,
        '--compare',
        'knative,static',
        '--until-seconds',
        '600',
        '--frontier',
        '--frontier-points',
        '2',
        '--workers',
        '0',
        '--out',
        out,
      ],
      io,
    );
    expect(code).toBe(0);
    const compare = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    // knative: targets 0.5, 1 (its defaults) and 2, delays 0 and 1800; static: one point.
    expect(compare.frontier).toHaveLength(6);
    expect(compare.frontier[0]).toEqual({
      policy: 'knative',
      knobs: { target: 0.5 },
      sloAttainment: expect.any(Number),
      gpuHours: expect.any(Number),
    });
    expect(compare.policies.map((p: { name: string }) => p.name)).toEqual(['knative', 'static']);
    expect(existsSync(join(out, 'frontier.svg'))).toBe(true);
    expect(printed).toContain("GPU-h at static's");
  }, 60_000);
});
