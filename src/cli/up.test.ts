import { describe, expect, it } from 'vitest';
import { runUp } from './up.ts';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
}

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
    expect(o.err.join('')).toContain('--time-compression must be a number > 0, got "fast"');
  });

  it('an unknown flag exits 2 with the usage', async () => {
    const o = io();
    expect(await runUp(['--bogus'], o.io)).toBe(2);
    expect(o.err.join('')).toContain('Usage: kvpa up');
  });

  it('an unreadable trace exits 2 naming the file', async () => {
    const o = io();
    expect(await runUp(['--trace', '/nonexistent/trace.csv'], o.io)).toBe(2);
    expect(o.err.join('')).toContain('/nonexistent/trace.csv');
  });
});
