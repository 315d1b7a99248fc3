import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, readMetricsFixture } from '../../test/observe/metric-fixtures.ts';
import { extractEngineSignals } from './engine-metrics.ts';
import {
  metricsUrl,
  type PodScrapeResult,
  podSignals,
  type ScrapeOptions,
  type ScrapeTarget,
  scrapePods,
} from './pod-scraper.ts';

const capture = readMetricsFixture(FIXTURES.vllmEngineLabel);
const sglang = readMetricsFixture(FIXTURES.sglangDocs);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface TestServer {
  server: Server;
  base: string;
}

const servers: Server[] = [];

async function serve(handler: Handler): Promise<TestServer> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}` };
}

/** A port that was bound and released: connecting to it is refused. */
async function refusedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const text =
  (body: string): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(body);
  };

const realClock = () => performance.now();
const options = (over: Partial<ScrapeOptions> = {}): ScrapeOptions => ({
  maxConcurrency: 16,
  timeoutMs: 1000,
  clock: realClock,
  ...over,
});

let vllmPod: TestServer;
let sglangPod: TestServer;
let hangPod: TestServer;
let stallBodyPod: TestServer;
let refused: string;

beforeAll(async () => {
  vllmPod = await serve(text(capture));
  sglangPod = await serve(text(sglang));
  // Accepts the connection, never answers: the aibrix#1032 failure.
  hangPod = await serve(() => undefined);
  // Sends headers and half a page, then stalls.
  stallBodyPod = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(capture.slice(0, 200));
  });
  refused = await refusedPort();
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

function byPod(results: PodScrapeResult[], pod: string): PodScrapeResult {
  const r = results.find((x) => x.target.pod === pod);
  if (!r) throw new Error(`no result for ${pod}`);
  return r;
}

describe('scrapePods against real HTTP servers on 127.0.0.1', () => {
  it('a hanging pod and a refusing pod do not delay healthy pods beyond the timeout', async () => {
    const timeoutMs = 1500;
    const targets: ScrapeTarget[] = [
      { pod: 'hang', url: `${hangPod.base}/metrics` },
      { pod: 'refused', url: `${refused}/metrics` },
      { pod: 'stall', url: `${stallBodyPod.base}/metrics` },
      { pod: 'vllm-0', url: `${vllmPod.base}/metrics` },
      { pod: 'sglang-0', url: `${sglangPod.base}/metrics` },
      { pod: 'vllm-1', url: `${vllmPod.base}/metrics?pod=1` },
    ];
    const batchStart = realClock();
    const results = await scrapePods(targets, options({ timeoutMs, maxConcurrency: 16 }));
    const batchMs = realClock() - batchStart;

    expect(results.map((r) => r.target.pod)).toEqual(targets.map((t) => t.pod));
    for (const pod of ['vllm-0', 'sglang-0', 'vllm-1']) {
      const r = byPod(results, pod);
      expect(r.ok, pod).toBe(true);
      // Healthy pods finish long before the slow ones time out.
      expect(r.timing.finishedAtMs - batchStart, pod).toBeLessThan(timeoutMs / 2);
    }
    const hang = byPod(results, 'hang');
    expect(hang.ok === false && hang.error.kind).toBe('Timeout');
    expect(hang.timing.durationMs).toBeGreaterThanOrEqual(timeoutMs - 50);
    const stall = byPod(results, 'stall');
    expect(stall.ok === false && stall.error.kind).toBe('Timeout');
    const ref = byPod(results, 'refused');
    expect(ref.ok === false && ref.error).toEqual({
      kind: 'ConnectionRefused',
      reason: 'connection refused',
    });
    expect(ref.timing.durationMs).toBeLessThan(timeoutMs / 2);
    // The batch ends at about one timeout, not the sum of the slow pods' timeouts.
    expect(batchMs).toBeLessThan(timeoutMs + 1000);

    const v = byPod(results, 'vllm-0');
    if (!v.ok) throw new Error('unreachable');
    expect(extractEngineSignals(v.parsed, { dialect: 'auto' }).kvCacheUsageFraction).toMatchObject({
      state: 'ok',
      value: 0,
    });
    const s = byPod(results, 'sglang-0');
    if (!s.ok) throw new Error('unreachable');
    expect(extractEngineSignals(s.parsed, { dialect: 'auto' }).requestsWaiting).toMatchObject({
      state: 'ok',
      value: 2826,
    });
  });

  it('with 2 slots and one hanging pod, healthy pods are served by the free slot without waiting for the timeout', async () => {
    const timeoutMs = 800;
    const targets: ScrapeTarget[] = [
      { pod: 'hang', url: `${hangPod.base}/metrics` },
      { pod: 'refused', url: `${refused}/metrics` },
      ...Array.from({ length: 4 }, (_, i) => ({ pod: `vllm-${i}`, url: `${vllmPod.base}/metrics?pod=${i}` })),
    ];
    const batchStart = realClock();
    const results = await scrapePods(targets, options({ timeoutMs, maxConcurrency: 2 }));
    // One slot is stuck on the hang; the other serves everything else right away.
    for (let i = 0; i < 4; i++) {
      const r = byPod(results, `vllm-${i}`);
      expect(r.ok).toBe(true);
      expect(r.timing.finishedAtMs - batchStart).toBeLessThan(timeoutMs / 2);
    }
    expect(byPod(results, 'hang').timing.durationMs).toBeGreaterThanOrEqual(timeoutMs - 50);
  });

  it('never has more requests in flight at the server than maxConcurrency', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let served = 0;
    const counting = await serve((_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        served++;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(capture);
      }, 40);
    });
    const targets = Array.from({ length: 20 }, (_, i) => ({
      pod: `p${i}`,
      url: `${counting.base}/metrics?pod=${i}`,
    }));
    const results = await scrapePods(targets, options({ maxConcurrency: 4, timeoutMs: 5000 }));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(served).toBe(20);
    expect(maxInFlight).toBeLessThanOrEqual(4);
    // The bound is reached, so the test would notice a serial (or broken) pool.
    expect(maxInFlight).toBe(4);
  });

  it('classifies HTTP status, non-exposition bodies and oversized bodies', async () => {
    const status = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('engine not ready');
    });
    const html = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>\n<body>Login required</body>\n</html>\n');
    });
    const big = await serve(text(capture.repeat(4)));
    const partial = await serve(text(`garbage line !\n${capture}`));
    const results = await scrapePods(
      [
        { pod: 'status', url: `${status.base}/metrics` },
        { pod: 'html', url: `${html.base}/metrics` },
        { pod: 'big', url: `${big.base}/metrics` },
        { pod: 'partial', url: `${partial.base}/metrics` },
      ],
      options({ maxBodyBytes: capture.length * 2 }),
    );
    const [st, ht, bg, pt] = results;
    expect(st?.ok === false && st.error).toEqual({
      kind: 'HttpStatus',
      reason: 'HTTP 503 Service Unavailable',
      httpStatus: 503,
    });
    expect(ht?.ok === false && ht.error.kind).toBe('ParseError');
    expect(ht?.ok === false && ht.error.reason).toMatch(/no valid sample; 3 bad line\(s\), first at line 1/);
    expect(bg?.ok === false && bg.error.kind).toBe('BodyTooLarge');
    // Some bad lines next to good ones: the scrape is ok and the errors travel with it.
    expect(pt?.ok).toBe(true);
    expect(pt?.ok === true && pt.parsed.errorCount).toBe(1);
    expect(pt?.ok === true && pt.bodyBytes).toBe(Buffer.byteLength(`garbage line !\n${capture}`));
  });

  it('a 130,001-line page not parsed within its 1 s timeout is BodyTooLarge, naming the line count and the fix', async () => {
    const lines = Array.from({ length: 130_000 }, (_, i) => `vllm:kv_cache_usage_perc{engine="${i}"} 0.5`);
    const huge = await serve(text(`${lines.join('\n')}\nvllm:num_requests_waiting 0\n`));
    // Each clock read is 100 ms later: the fetch takes a few reads, the parse's first yield is past 1 s.
    let now = 0;
    const clock = () => (now += 100);
    const [r] = await scrapePods([{ pod: 'huge', url: `${huge.base}/metrics` }], options({ clock }));
    if (!r || r.ok) throw new Error('expected a failed scrape');
    expect(r.error).toEqual({
      kind: 'BodyTooLarge',
      reason:
        'a page of 130001 lines is not parsed within the 1s timeout; an engine page has a few thousand (export fewer series, or raise pods.timeoutSeconds)',
    });
    expect(podSignals(r, { dialect: 'vllm' }).kvCacheUsageFraction.state).toBe('missing');
    // The same page with the time to parse it is read whole.
    const [ok] = await scrapePods(
      [{ pod: 'huge', url: `${huge.base}/metrics` }],
      options({ timeoutMs: 60_000 }),
    );
    expect(ok?.ok === true && ok.parsed.families[0]?.samples.length).toBe(130_000);
  });

  it('a connection dropped mid-body is a NetworkError, and its signals are missing, not 0', async () => {
    const dropping = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(capture.slice(0, 300), () => req.socket.destroy());
    });
    const [r] = await scrapePods([{ pod: 'drop', url: `${dropping.base}/metrics` }], options());
    if (!r || r.ok) throw new Error('expected a failed scrape');
    expect(r.error.kind).toBe('NetworkError');
    expect(r.error.reason.length).toBeGreaterThan(0);
    const s = podSignals(r, { dialect: 'vllm' });
    expect(s.requestsWaiting).toEqual({
      state: 'missing',
      reason: 'scrape failed: unreachable',
    });
    expect(s.kvCacheUsageFraction.state).toBe('missing');
  });

  it('takes all timing from the injected clock', async () => {
    let now = 1_000;
    const clock = () => {
      now += 5;
      return now;
    };
    const results = await scrapePods(
      [
        { pod: 'a', url: `${vllmPod.base}/metrics` },
        { pod: 'b', url: `${refused}/metrics` },
      ],
      options({ clock, maxConcurrency: 1 }),
    );
    for (const r of results) {
      expect(r.timing.startedAtMs % 5).toBe(0);
      expect(r.timing.startedAtMs).toBeGreaterThan(1_000);
      expect(r.timing.durationMs).toBe(r.timing.finishedAtMs - r.timing.startedAtMs);
      expect(r.timing.durationMs).toBeGreaterThan(0);
    }
    // With one slot, b queued while a ran.
    const [a, b] = results;
    expect(b?.timing.queuedMs).toBeGreaterThan(a?.timing.queuedMs ?? Number.POSITIVE_INFINITY);
    expect(b?.timing.startedAtMs).toBeGreaterThanOrEqual(a?.timing.finishedAtMs ?? Number.POSITIVE_INFINITY);
  });

  it('an aborted batch ends every pod as Aborted without waiting for timeouts', async () => {
    const controller = new AbortController();
    const started = realClock();
    const pending = scrapePods(
      [
        { pod: 'hang', url: `${hangPod.base}/metrics` },
        { pod: 'hang2', url: `${hangPod.base}/metrics?2` },
        { pod: 'queued', url: `${vllmPod.base}/metrics` },
      ],
      options({ timeoutMs: 10_000, maxConcurrency: 2, signal: controller.signal }),
    );
    setTimeout(() => controller.abort(), 100);
    const results = await pending;
    expect(realClock() - started).toBeLessThan(3_000);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.kind))).toEqual(['Aborted', 'Aborted', 'Aborted']);
  });

  it('builds metrics URLs for IPv4 and IPv6 pod IPs', () => {
    expect(metricsUrl('10.0.3.7', 8000)).toBe('http://10.0.3.7:8000/metrics');
    expect(metricsUrl('fd00::7', 8000)).toBe('http://[fd00::7]:8000/metrics');
    // pods.scheme: https is honoured, not silently dropped
    expect(metricsUrl('10.0.3.7', 8443, '/metrics', 'https')).toBe('https://10.0.3.7:8443/metrics');
    expect(metricsUrl('10.0.3.7', 8000, 'prometheus/metrics')).toBe(
      'http://10.0.3.7:8000/prometheus/metrics',
    );
  });

  it('returns an empty list for no targets', async () => {
    expect(await scrapePods([], options())).toEqual([]);
  });
});
