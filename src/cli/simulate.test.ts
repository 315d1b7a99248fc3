import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SimulationSummary } from '../sim/run.ts';
import type { Output } from './shell.ts';
import { runCommand } from './shell.ts';
import { oracleLine, parseCouplingFlag, runSimulate } from './simulate.ts';

/**
 * A per-request trace of 15 minutes, generated: 3 requests/s for 5 min, 12/s for 5 min, then 3/s,
 * 1,000-token prompts and 300-token outputs (the lab's `t_ms,input_tokens,output_tokens` format).
 */
function generatedTrace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvpa-trace-'));
  const rows = ['t_ms,input_tokens,output_tokens'];
  for (let second = 0; second < 900; second++) {
    const perSecond = second >= 300 && second < 600 ? 12 : 3;
    for (let i = 0; i < perSecond; i++)
      rows.push(`${second * 1000 + Math.floor((1000 * i) / perSecond)},1000,300`);
  }
  const file = join(dir, 'step.csv');
  writeFileSync(file, `${rows.join('\n')}\n`);
  return file;
}

const conv = generatedTrace();

/** Runs `kvpa simulate` in the shell as main() does, capturing both streams. */
async function runSimulateCommand(argv: readonly string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = await runCommand('simulate', io, () => runSimulate(argv, io));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('kvpa simulate', () => {
  it('--decisions logs each kvpa decision per pool with its want, and none for a policy that explains nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kvpa-decisions-'));
    const { code } = await runSimulateCommand([
      '--trace',
      conv,
      '--compare',
      'kvpa,static',
      '--rate-multiplier',
      '5',
      '--until-seconds',
      '600',
      '--startup-minutes',
      '5',
      '--decisions',
      '--out',
      out,
    ]);
    expect(code).toBe(0);
    const lines = readFileSync(join(out, 'decisions-kvpa.log'), 'utf8').trim().split('\n');
    // Both pools decide at the first tick, then every tickSeconds, over the 600 s replay (and its tail).
    for (const pool of ['prefill', 'decode']) {
      const mine = lines.filter((l) => l.split(' ')[1] === pool);
      expect(mine.length).toBeGreaterThan(100);
      expect(mine[0]).toMatch(new RegExp(`^t=0 ${pool} \\d+ → \\d+ groups \\((stable|panic), \\d+ ready`));
    }
    const times = lines.map((l) => Number(/^t=(\d+)/.exec(l)?.[1]));
    expect(times.every((t, i) => i === 0 || t >= (times[i - 1] as number))).toBe(true);
    expect(existsSync(join(out, 'decisions-static.log'))).toBe(false);
  });

  it('--decisions with --frontier is refused, naming both flags', async () => {
    const r = await runSimulateCommand([
      '--trace',
      conv,
      '--compare',
      'kvpa',
      '--frontier',
      '--decisions',
      '--out',
      '/tmp/x',
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--decisions.*--frontier/);
  });

  it('--compare writes compare.json with the documented keys, one row per policy, and SVG timelines', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kvpa-simulate-'));
    const { code } = await runSimulateCommand([
      '--trace',
      conv,
      '--compare',
      'kvpa,hpa,static,oracle',
      '--rate-multiplier',
      '5',
      '--until-seconds',
      '900',
      '--startup-minutes',
      '5',
      '--seed',
      '3',
      '--out',
      out,
    ]);
    expect(code).toBe(0);
    const compare = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    expect(compare.trace).toBe(conv);
    expect(compare.settings).toMatchObject({
      rateMultiplier: 5,
      startupMinutes: 5,
      seed: 3,
      untilSeconds: 900,
    });
    expect(compare.policies.map((p: { name: string }) => p.name)).toEqual([
      'kvpa',
      'hpa',
      'static',
      'oracle',
    ]);
    for (const p of compare.policies) {
      for (const key of [
        'sloAttainment',
        'gpuHours',
        'ttftP99Seconds',
        'tpotP99Seconds',
        'costPerMillionOutputTokens',
        'scaleEvents',
        'flaps',
      ]) {
        expect(typeof p[key]).toBe('number');
      }
      expect(p.sloAttainment).toBeGreaterThanOrEqual(0);
      expect(p.sloAttainment).toBeLessThanOrEqual(1);
      expect(p.gpuHours).toBeGreaterThan(0);
    }
    expect(readFileSync(join(out, 'kvpa-decode.svg'), 'utf8')).toMatch(/^<svg/);
    expect(existsSync(join(out, 'oracle-prefill.svg'))).toBe(true);
  });

  it('--policy FILE runs kvpa with a ScalingPolicy preset from that file, starting from the bundled ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvpa-preset-'));
    const preset = join(dir, 'my-preset.yaml');
    writeFileSync(
      preset,
      [
        'apiVersion: kvpa.io/v1alpha1',
        'kind: ScalingPolicy',
        'metadata:',
        '  name: lab-running',
        'spec:',
        '  description: the lab proposal, running-request signals on prefill',
        '  pools:',
        '    prefill:',
        '      policy: deepseek-r1-prefill',
        '      metrics: [{type: runningRequests, target: 11}, {type: queueDepth, target: 12}]',
        '    decode:',
        '      policy: deepseek-r1-decode',
        '',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const { code } = await runSimulateCommand([
      '--trace',
      conv,
      '--compare',
      `kvpa,${preset}`,
      '--rate-multiplier',
      '5',
      '--until-seconds',
      '600',
      '--out',
      out,
    ]);
    expect(code).toBe(0);
    const compare = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    expect(compare.policies.map((p: { name: string }) => p.name)).toEqual(['kvpa', 'kvpa:lab-running']);
    expect(existsSync(join(out, 'kvpa-my-preset.json'))).toBe(true);

    const broken = join(dir, 'broken.yaml');
    writeFileSync(
      broken,
      'apiVersion: kvpa.io/v1alpha1\nkind: ScalingPolicy\nmetadata:\n  name: x\nspec:\n  description: d\n  behavior:\n    stableWindowSecond: 60\n',
    );
    const failed = await runSimulateCommand(['--trace', conv, '--policy', broken, '--out', out]);
    expect(failed.code).toBe(2);
    expect(failed.err).toContain(`${broken}:8:`);
  });

  it('usage errors exit 2 and name the flag', async () => {
    const unknown = await runSimulateCommand(['--trace', conv, '--policy', 'nope', '--out', '/tmp/x']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown policy "nope"');
    const lots = await runSimulateCommand([
      '--trace',
      conv,
      '--policy',
      'kvpa',
      '--out',
      '/tmp/x',
      '--rate-multiplier',
      'lots',
    ]);
    expect(lots.code).toBe(2);
    expect(lots.err).toContain(
      '--rate-multiplier "lots": must be a number > 0 and ≤ 100; give e.g. --rate-multiplier 20',
    );
    expect((await runSimulateCommand(['--trace', conv, '--out', '/tmp/x'])).code).toBe(2);
  });

  it('--help prints the usage and exits 0; an unreadable trace exits 2 naming the file, without a stack trace', async () => {
    const help = await runSimulateCommand(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: kvpa simulate');
    const missing = '/nonexistent/kvpa-trace.csv';
    const r = await runSimulateCommand([
      '--trace',
      missing,
      '--policy',
      'kvpa',
      '--out',
      mkdtempSync(join(tmpdir(), 'kvpa-sim-')),
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(missing);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('--coupling 0.5:2 records the band in settings and its repairs in summary.json; the table gains a repairs column', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kvpa-simulate-coupling-'));
    const r = await runSimulateCommand([
      '--trace',
      conv,
      '--policy',
      'kvpa',
      '--rate-multiplier',
      '5',
      '--until-seconds',
      '900',
      '--startup-minutes',
      '5',
      '--coupling',
      '0.5:2',
      '--out',
      out,
    ]);
    expect(r.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.settings.coupling).toEqual({ min: 0.5, max: 2 });
    expect(summary.coupling).toMatchObject({ band: { min: 0.5, max: 2 }, outOfBand: 0 });
    expect(typeof summary.coupling.repairs).toBe('number');
    expect(r.out.split('\n')[0]).toMatch(/\| repairs \|$/);
  });

  it('--coupling flows:0.3 records the tolerance in settings; summary.json has no fixed band, and on flows under one group no derived one and no repair', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kvpa-simulate-flows-'));
    const r = await runSimulateCommand([
      '--trace',
      conv,
      '--policy',
      'kvpa',
      '--rate-multiplier',
      '5',
      '--until-seconds',
      '900',
      '--startup-minutes',
      '5',
      '--coupling',
      'flows:0.3',
      '--out',
      out,
    ]);
    expect(r.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.settings.coupling).toEqual({ fromFlows: { tolerance: 0.3 } });
    expect(summary.coupling).toMatchObject({ band: null, fromFlows: { tolerance: 0.3 }, outOfBand: 0 });
    const f = summary.coupling.fromFlows;
    // 15 minutes of the conversation trace ×5 is under one group of work on a side: no band, so no repair.
    expect(f).toMatchObject({ decisionsWithBand: 0, ratioMin: null, ratioMax: null });
    expect(f.decisionsWithout).toBeGreaterThan(0);
    expect(summary.coupling.repairs).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/\| repairs \|$/);
  });

  it('--coupling flows is tolerance 0.25, flows:0.4 is 0.4; a tolerance outside [0.1, 0.9] or not a number names the flag and the fix', () => {
    expect(parseCouplingFlag('flows')).toEqual({ fromFlows: { tolerance: 0.25 } });
    expect(parseCouplingFlag(' flows:0.4 ')).toEqual({ fromFlows: { tolerance: 0.4 } });
    for (const bad of ['flows:0.05', 'flows:1', 'flows:x', 'flows:']) {
      expect(() => parseCouplingFlag(bad)).toThrow(
        `--coupling ${JSON.stringify(bad)}: the tolerance must be a number from 0.1 to 0.9`,
      );
    }
    expect(() => parseCouplingFlag('flow')).toThrow('or a band from the token flows, --coupling flows[:TOL]');
  });

  it('--coupling: off is null, 0.5:2 and 0:1 are bands, and bad values name the flag and the fix', () => {
    expect(parseCouplingFlag('off')).toBeNull();
    expect(parseCouplingFlag('0.5:2')).toEqual({ min: 0.5, max: 2 });
    expect(parseCouplingFlag(' 0:1 ')).toEqual({ min: 0, max: 1 });
    expect(() => parseCouplingFlag('2')).toThrow('--coupling "2": not two numbers MIN:MAX; give MIN:MAX');
    expect(() => parseCouplingFlag('a:b')).toThrow('e.g. --coupling 0.5:2, or --coupling off');
    expect(() => parseCouplingFlag('1:2:3')).toThrow('not two numbers');
    expect(() => parseCouplingFlag('2:0.5')).toThrow('MIN 2 is above MAX 0.5; swap them (--coupling 0.5:2)');
    expect(() => parseCouplingFlag('-1:2')).toThrow('MIN must be ≥ 0 and MAX > 0');
    expect(() => parseCouplingFlag('0:0')).toThrow('MIN must be ≥ 0 and MAX > 0');
    expect(() => parseCouplingFlag('1:1e9')).toThrow('1024 prefill groups per decode group is the cap');
    expect(() => parseCouplingFlag('1:Infinity')).toThrow('not two numbers');
  });
});

describe('the oracle line', () => {
  it('names each stage of the plan it landed on: lateness for both pools, one pool, and the switch', () => {
    const summary = {
      oracle: {
        targetSloAttainment: 0.99,
        sloAttainment: 0.9907,
        landed: true,
        plan: {
          headroom: -0.109375,
          lateSeconds: 19,
          poolLate: { pool: 'prefill', lateSeconds: 314 },
          switchTo: { atSeconds: 5010, plan: { headroom: -0.109375, lateSeconds: 20 } },
        },
        evaluations: new Array(23).fill({ plan: { headroom: 0 }, sloAttainment: 1 }),
      },
    } as unknown as SimulationSummary;
    expect(oracleLine(summary)).toBe(
      'oracle: target 99.00 %, reached 99.07 % (landed within 0.2 points; headroom -0.109375, rises 19 s late, ' +
        'prefill rises 314 s late, from 5010 s the plan at headroom -0.109375 rising 20 s late; 23 runs)',
    );
  });
});
