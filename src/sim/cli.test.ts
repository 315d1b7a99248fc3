import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runSimulateCommand } from './cli.ts';

const conv = join(import.meta.dirname, '..', '..', '..', 'shared', 'traces', 'azure2023_conv.csv');

describe('kvpa simulate', () => {
  it('--compare writes compare.json with the issue keys, one row per policy, and SVG timelines', async () => {
    const out = mkdtempSync(join(tmpdir(), 'kvpa-simulate-'));
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await runSimulateCommand([
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
    stdout.mockRestore();
    stderr.mockRestore();
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
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await runSimulateCommand([
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
    stdout.mockRestore();
    stderr.mockRestore();
    expect(code).toBe(0);
    const compare = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8'));
    expect(compare.policies.map((p: { name: string }) => p.name)).toEqual(['kvpa', 'kvpa:lab-running']);
    expect(existsSync(join(out, 'kvpa-my-preset.json'))).toBe(true);

    const broken = join(dir, 'broken.yaml');
    writeFileSync(
      broken,
      'apiVersion: kvpa.io/v1alpha1\nkind: ScalingPolicy\nmetadata:\n  name: x\nspec:\n  description: d\n  behavior:\n    stableWindowSecond: 60\n',
    );
    const errors = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await runSimulateCommand(['--trace', conv, '--policy', broken, '--out', out])).toBe(2);
    expect(errors.mock.calls.map((c) => String(c[0])).join('')).toContain(`${broken}:8:`);
    errors.mockRestore();
  });

  it('usage errors exit 2 and name the flag', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await runSimulateCommand(['--trace', conv, '--policy', 'nope', '--out', '/tmp/x'])).toBe(2);
    expect(String(stderr.mock.calls[0]?.[0])).toContain('unknown policy "nope"');
    expect(
      await runSimulateCommand([
        '--trace',
        conv,
        '--policy',
        'kvpa',
        '--out',
        '/tmp/x',
        '--rate-multiplier',
        'lots',
      ]),
    ).toBe(2);
    expect(String(stderr.mock.calls[1]?.[0])).toContain('--rate-multiplier "lots": must be a number > 0');
    expect(await runSimulateCommand(['--trace', conv, '--out', '/tmp/x'])).toBe(2);
    stderr.mockRestore();
  });

  it('--help prints the usage and exits 0; an unreadable trace exits 2 naming the file, without a stack trace', async () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await runSimulateCommand(['--help'])).toBe(0);
    expect(String(stdout.mock.calls[0]?.[0])).toContain('usage: kvpa simulate');
    const missing = '/nonexistent/kvpa-trace.csv';
    expect(
      await runSimulateCommand(['--trace', missing, '--policy', 'kvpa', '--out', '/tmp/kvpa-sim-x']),
    ).toBe(2);
    const said = stderr.mock.calls.map((c) => String(c[0])).join('');
    expect(said).toContain(missing);
    expect(said).not.toMatch(/\n\s+at /);
    stdout.mockRestore();
    stderr.mockRestore();
  });
});
