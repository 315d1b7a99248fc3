import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoundedFetchError, boundedFetch, checkOutboundUrl, HostAllowlist } from './http.ts';

let server: Server;
let other: Server;
let base = '';
let otherBase = '';
const drips: NodeJS.Timeout[] = [];

beforeAll(async () => {
  other = createServer((_req, res) => res.end('other host'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  server = createServer((req, res) => {
    if (req.url === '/drip') {
      // Headers at once, then one byte every 100 ms: an idle timeout never fires.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const t = setInterval(() => res.write('x'), 100);
      drips.push(t);
      res.on('close', () => clearInterval(t));
    } else if (req.url === '/huge') {
      res.writeHead(200);
      res.end(Buffer.alloc(2 * 1024 * 1024, 'a'));
    } else if (req.url === '/same') {
      res.writeHead(302, { location: '/ok' }).end();
    } else if (req.url === '/away') {
      res.writeHead(307, { location: `${otherBase}/steal` }).end();
    } else {
      res.end(`${req.method} ok`);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const t of drips) clearInterval(t);
  server.closeAllConnections();
  other.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => other.close(() => r()));
});

const bounds = { deadlineMs: 2000, maxBodyBytes: 1024 * 1024 };

describe('boundedFetch', () => {
  it('a byte-drip after the headers ends at the 300 ms deadline, not when the server stops', async () => {
    const started = performance.now();
    const err = await boundedFetch(`${base}/drip`, { ...bounds, deadlineMs: 300 }).catch((e: unknown) => e);
    const elapsedMs = performance.now() - started;
    expect(err).toBeInstanceOf(BoundedFetchError);
    expect((err as BoundedFetchError).failure).toBe('Timeout');
    expect(elapsedMs).toBeLessThan(1500);
    expect((err as BoundedFetchError).tenantReason).toMatch(/^unreachable/);
  });

  it('a 2 MiB body over a 1 MiB cap is BodyTooLarge', async () => {
    const err = await boundedFetch(`${base}/huge`, bounds).catch((e: unknown) => e);
    expect((err as BoundedFetchError).failure).toBe('BodyTooLarge');
  });

  it('follows a same-origin redirect, and refuses one to another host', async () => {
    const same = await boundedFetch(`${base}/same`, bounds);
    expect(same.text).toBe('GET ok');
    expect(same.url).toBe(`${base}/ok`);
    const err = await boundedFetch(`${base}/away`, { ...bounds, method: 'POST', body: 'q' }).catch(
      (e: unknown) => e,
    );
    expect((err as BoundedFetchError).failure).toBe('RedirectRefused');
    expect((err as BoundedFetchError).message).toContain(otherBase);
  });

  it('a refused connection is Unreachable, and the tenant text does not say "refused"', async () => {
    // fetch refuses port 1 itself ("bad port"); a port just closed refuses at the socket.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = (await boundedFetch(`http://127.0.0.1:${port}/`, bounds).catch(
      (e: unknown) => e,
    )) as BoundedFetchError;
    expect(err.failure).toBe('Unreachable');
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.tenantReason).not.toMatch(/refused|ECONN/);
  });

  it('only http(s) without credentials goes out', () => {
    expect(() => checkOutboundUrl('file:///etc/passwd', 'prometheus.address')).toThrow(
      'prometheus.address must be http or https, got file:',
    );
    expect(() => checkOutboundUrl('gopher://h:70/', 'x')).toThrow(/got gopher:/);
    expect(() => checkOutboundUrl('https://u:p@h/', 'grafana.url')).toThrow(/credentials/);
    expect(checkOutboundUrl('https://h/').host).toBe('h');
  });
});

describe('HostAllowlist', () => {
  const allow = new HostAllowlist(['grafana.example.com', '*.grafana.net', 'http://127.0.0.1:3000']);

  it('https to a listed host or a subdomain of a wildcard is allowed', () => {
    expect(allow.refusal(new URL('https://grafana.example.com/'))).toBeNull();
    expect(allow.refusal(new URL('https://team.grafana.net:443/g'))).toBeNull();
  });

  it('plain http to a listed https host is refused, naming https', () => {
    expect(allow.refusal(new URL('http://grafana.example.com/'))).toContain('over https only');
  });

  it('an unlisted host, or a listed host on another port, is refused', () => {
    expect(allow.refusal(new URL('https://evil.example/'))).toContain('--allowed-hosts');
    expect(allow.refusal(new URL('http://127.0.0.1:3001/'))).toContain('--allowed-hosts');
    expect(allow.refusal(new URL('http://127.0.0.1:3000/'))).toBeNull();
    expect(allow.refusal(new URL('https://grafana.net.evil/'))).toContain('--allowed-hosts');
    // an https-only entry on another port is no reason to talk of https: the host is simply unlisted
    const httpsOnly = new HostAllowlist(['127.0.0.1:3443']);
    expect(httpsOnly.refusal(new URL('http://127.0.0.1:3001/'))).toContain('--allowed-hosts');
    expect(httpsOnly.refusal(new URL('http://127.0.0.1:3443/'))).toContain('over https only');
  });

  it('an empty list allows nothing, and a bad entry names the flag', () => {
    expect(new HostAllowlist([]).refusal(new URL('https://grafana.example.com/'))).not.toBeNull();
    expect(() => new HostAllowlist(['http://no-port'])).toThrow(/--allowed-hosts.*needs a port/);
    expect(() => new HostAllowlist(['a b'])).toThrow(/--allowed-hosts/);
  });
});
