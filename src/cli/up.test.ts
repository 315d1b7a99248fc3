import { describe, expect, it } from 'vitest';
import { runCommand } from './shell.ts';
import { runUp as runUpBare } from './up.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

/** `kvpa up` inside the shell, as main() runs it. */
const runUp = (argv: string[], o: ReturnType<typeof io>['io']) =>
  runCommand('up', o, () => runUpBare(argv, o));

// Flag errors are caught before anything starts: no cluster, no process.
describe('kvpa up flags', () => {
  it('--help prints the usage and exits 0', async () => {
    const o = io();
    expect(await runUp(['--help'], o.io)).toBe(0);
    expect(o.out.join('')).toContain('Usage: kvpa up');
  });

  it('a bad number names the flag and what it must be, and exits 2', async () => {
    const o = io();
    expect(await runUp(['--time-compression', 'fast'], o.io)).toBe(2);
    expect(o.err.join('')).toContain(
      '--time-compression "fast": must be a number ≥ 0.1 and ≤ 100; give e.g. --time-compression 10',
    );
  });

  it('an unknown flag exits 2 naming it and pointing at --help', async () => {
    const o = io();
    expect(await runUp(['--bogus'], o.io)).toBe(2);
    expect(o.err.join('')).toContain("Unknown option '--bogus'");
    expect(o.err.join('')).toContain('kvpa up --help');
  });

  it('an unreadable trace exits 2 naming the file', async () => {
    const o = io();
    expect(await runUp(['--trace', '/nonexistent/trace.csv'], o.io)).toBe(2);
    expect(o.err.join('')).toContain('/nonexistent/trace.csv');
  });
});
