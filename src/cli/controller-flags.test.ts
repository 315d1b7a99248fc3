import { describe, expect, it } from 'vitest';
import { runController } from './controller.ts';
import { main } from './main.ts';

async function run(...argv: string[]) {
  const err: string[] = [];
  const code = await main(['controller', ...argv], { out: () => {}, err: (l) => err.push(l) });
  return { code, err: err.join('\n') };
}

describe('kvpa controller flags', () => {
  it('--metrics-address must be an IP address, named with the fix', async () => {
    const r = await run('--metrics-address', 'everywhere');
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      '--metrics-address "everywhere": not an IP address; use 127.0.0.1, 0.0.0.0 or ::',
    );
  });

  it('--allowed-hosts refuses an entry it cannot read, and plain http without a port', async () => {
    const bad = await run('--allowed-hosts', 'grafana.example.com,not a host');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('"not a host" is not host, host:port, *.domain or http://host:port');
    const noPort = await run('--allowed-hosts', 'http://grafana.internal');
    expect(noPort.code).toBe(2);
    expect(noPort.err).toContain('plain http needs a port');
  });

  it('the usage names both flags', async () => {
    const out: string[] = [];
    expect(await runController(['--help'], { out: (l) => out.push(l), err: () => {} })).toBe(0);
    expect(out.join('')).toMatch(/--metrics-address[\s\S]*--allowed-hosts/);
  });
});
