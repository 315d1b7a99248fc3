/**
 * The Prometheus client's bounds against local servers: PrometheusDriver (axios) under the same
 * deadline, cap, URL and redirect rules and the same failure texts as http.ts's boundedFetch.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoundedFetchError } from './http.ts';
import { PrometheusApiError, PrometheusClient, type PrometheusClientOptions } from './prometheus-client.ts';

let server: Server;
let other: Server;
let base = '';
let otherBase = '';
let stolen = 0;
const posts: { method: string; body: string }[] = [];
const MIB = 1024 * 1024;
const gzipBomb = gzipSync(Buffer.alloc(8 * MIB, 0x20));
const vector = JSON.stringify({
  status: 'success',
  data: { resultType: 'vector', result: [{ metric: { pod: 'p-0' }, value: [1000, '+Inf'] }] },
});

beforeAll(async () => {
  other = createServer((_req, res) => {
    stolen++;
    res.end(vector);
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => route(req.url ?? '', req.method ?? '', body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

function route(url: string, method: string, body: string, res: import('node:http').ServerResponse): void {
  const prefix = url.split('/')[1];
  if (prefix === 'drip') {
    // Headers at once, then one byte every 100 ms: axios's own timeout never fires.
    res.writeHead(200, { 'content-type': 'application/json' });
    const t = setInterval(() => res.write(' '), 100);
    res.on('close', () => clearInterval(t));
  } else if (prefix === 'huge') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.alloc(2 * MIB, 0x20));
  } else if (prefix === 'bomb') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipBomb);
  } else if (prefix === 'same') {
    res.writeHead(307, { location: `/ok${url.slice('/same'.length)}` }).end();
  } else if (prefix === 'loop') {
    res.writeHead(307, { location: url }).end();
  } else if (prefix === 'away') {
    res.writeHead(307, { location: `${otherBase}/api/v1/query` }).end();
  } else if (prefix === 'bad') {
    res
      .writeHead(400, { 'content-type': 'application/json' })
      .end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error: unexpected "("' }));
  } else if (prefix === 'html') {
    res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
  } else {
    posts.push({ method, body });
    res.writeHead(200, { 'content-type': 'application/json' }).end(vector);
  }
}

afterAll(async () => {
  server.closeAllConnections();
  other.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => other.close(() => r()));
});

const bounds = { deadlineMs: 2000, maxAnswerBytes: MIB };
const client = (path: string, extra: Partial<PrometheusClientOptions> = {}) =>
  new PrometheusClient({ address: `${base}/${path}`, ...bounds, ...extra });
const failure = (p: Promise<unknown>) => p.then(() => null).catch((e: unknown) => e as Error);

describe('PrometheusClient', () => {
  it('POSTs the query as a form and hands the vector through raw: "+Inf" stays the string Prometheus sent', async () => {
    const sent: string[] = [];
    const raw = await client('ok', { onRequest: (u) => sent.push(u) }).instant('up', 1000, '1s');
    expect(raw.resultType).toBe('vector');
    expect(raw.result[0]).toEqual({ metric: { pod: 'p-0' }, value: [1000, '+Inf'] });
    expect(sent).toEqual([`${base}/ok/api/v1/query`]);
    const post = posts.at(-1);
    expect(post?.method).toBe('POST');
    expect(new URLSearchParams(post?.body).get('query')).toBe('up');
    expect(new URLSearchParams(post?.body).get('timeout')).toBe('1s');
  });

  it('a byte-drip after the headers ends at the 300 ms deadline, not when the server stops', async () => {
    const started = performance.now();
    const err = await failure(client('drip', { deadlineMs: 300 }).instant('up', 1000, '1s'));
    expect(performance.now() - started).toBeLessThan(1500);
    expect(err).toBeInstanceOf(BoundedFetchError);
    expect((err as BoundedFetchError).failure).toBe('Timeout');
    expect(err?.message).toBe(`${base}: no complete response in time`);
    expect((err as BoundedFetchError).tenantReason).toMatch(/^unreachable/);
  });

  it('a 2 MiB answer over a 1 MiB cap is BodyTooLarge', async () => {
    const err = await failure(client('huge').instant('up', 1000, '1s'));
    expect((err as BoundedFetchError).failure).toBe('BodyTooLarge');
    expect(err?.message).toBe(`${base}: body exceeds 1048576 bytes`);
  });

  it('a gzip answer of 8 KiB that inflates to 8 MiB stops at the 1 MiB cap too', async () => {
    expect(gzipBomb.length).toBeLessThan(MIB);
    const err = await failure(client('bomb').instant('up', 1000, '1s'));
    expect((err as BoundedFetchError).failure).toBe('BodyTooLarge');
  });

  it('a same-origin redirect is followed', async () => {
    const raw = await client('same').instant('up', 1000, '1s');
    expect(raw.resultType).toBe('vector');
  });

  it('a redirect to another host is refused, and that host sees no request', async () => {
    const err = await failure(client('away').instant('up', 1000, '1s'));
    expect((err as BoundedFetchError).failure).toBe('RedirectRefused');
    expect(err?.message).toBe(
      `${base}: redirect to ${otherBase} refused (only same-origin redirects are followed)`,
    );
    expect(stolen).toBe(0);
  });

  it('a same-origin redirect loop stops after 3 redirects', async () => {
    const err = await failure(client('loop').instant('up', 1000, '1s'));
    expect((err as BoundedFetchError).failure).toBe('RedirectRefused');
  });

  it('Prometheus’s own error (HTTP 400 bad_data) keeps its text for the tenant', async () => {
    const err = await failure(client('bad').range('up{', 1000, 1010, 1, '1s'));
    expect(err).toBeInstanceOf(PrometheusApiError);
    expect(err?.message).toBe('bad_data: parse error: unexpected "(" (HTTP 400)');
  });

  it('an HTML 502 is no Prometheus answer: Unreachable', async () => {
    const err = await failure(client('html').instant('up', 1000, '1s'));
    expect((err as BoundedFetchError).failure).toBe('Unreachable');
    expect(err?.message).toBe(`HTTP 502 from ${base}/html/api/v1/query: not a Prometheus API answer`);
  });

  it('nothing listening: Unreachable with the code in the log text, only "unreachable" for the tenant', async () => {
    const err = await failure(
      new PrometheusClient({ address: 'http://127.0.0.1:1', ...bounds }).instant('up', 1000, '1s'),
    );
    expect((err as BoundedFetchError).failure).toBe('Unreachable');
    expect(err?.message).toContain('ECONNREFUSED');
    expect((err as BoundedFetchError).tenantReason).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
  });

  it('a file: or credentialed address is refused per query with the field named; construction never throws', async () => {
    const file = await failure(
      new PrometheusClient({ address: 'file:///etc/passwd', ...bounds }).instant('up', 1, '1s'),
    );
    expect(file?.message).toBe('metricsSource.prometheus.address must be http or https, got file:');
    const creds = new PrometheusClient({ address: 'http://u:p@127.0.0.1:1', ...bounds });
    expect((await failure(creds.range('up', 1, 2, 1, '1s')))?.message).toMatch(
      /must not contain credentials/,
    );
    expect(
      (await failure(new PrometheusClient({ address: '', ...bounds }).instant('up', 1, '1s')))?.message,
    ).toBe('metricsSource.prometheus.address is not a valid URL');
  });
});
