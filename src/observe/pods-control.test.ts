import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, readMetricsFixture } from '../../test/observe/metric-fixtures.ts';
import { type PodsPoolRequest, PodsSignalSource, poolTotal } from './pods-control.ts';

/** The real vLLM capture with this pod's KV use and queue written into it. */
function vllmText(kv: number, waiting: number): string {
  return readMetricsFixture(FIXTURES.vllmEngineLabel)
    .replace(/^(vllm:kv_cache_usage_perc\{[^}]*\}) .*$/m, `$1 ${kv}`)
    .replace(/^(vllm:num_requests_waiting\{[^}]*\}) .*$/m, `$1 ${waiting}`);
}

const servers: Server[] = [];
async function engine(text: string): Promise<number> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(text);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

let ports: number[] = [];
beforeAll(async () => {
  ports = [await engine(vllmText(0.9, 3)), await engine(vllmText(0.5, 1)), await engine(vllmText(1.7, 0))];
});
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

function request(heads: { port: number; ready?: boolean; surge?: boolean }[], quorum = 50): PodsPoolRequest {
  return {
    poolKey: 'ns/pa/decode',
    namespace: 'ns',
    pool: {
      engine: 'auto',
      metrics: [
        { type: 'kvCacheUtilization', target: 0.7 },
        { type: 'queueDepth', target: 2 },
      ],
      missingData: { staleAfterSeconds: 60, minQuorumPercentage: quorum },
    },
    heads: heads.map((h, i) => ({
      name: `head-${i}`,
      groupKey: `g${i}`,
      groupReady: h.ready ?? true,
      surge: h.surge ?? false,
      podIP: '127.0.0.1',
    })),
    endpoint: { port: 0, timeoutSeconds: 1 },
  };
}

/** Each head has its own loopback address 127.0.0.N; route it to the N-th engine server. */
const toEngine: typeof fetch = (input, init) => {
  const n = Number(new URL(String(input)).hostname.split('.')[3]);
  return fetch(`http://127.0.0.1:${ports[n - 1] ?? 1}/metrics`, init);
};

describe('direct-scrape signal source', () => {
  it('sums per-group values over ready groups (real vLLM exposition text)', async () => {
    const r = request([{ port: 0 }, { port: 1 }]);
    const heads = r.heads.map((h, i) => ({ ...h, podIP: `127.0.0.${i + 1}` }));
    const out = await new PodsSignalSource({ fetch: toEngine }).sample([
      { ...r, heads, endpoint: { port: 80 } },
    ]);
    const samples = out.get('ns/pa/decode');
    expect(samples?.[0]).toMatchObject({ name: 'kvCacheUtilization', state: 'ok' });
    expect(samples?.[0]?.total).toBeCloseTo(1.4, 9); // 0.9 + 0.5
    expect(samples?.[1]).toMatchObject({ name: 'queueDepth', state: 'ok', total: 4 }); // 3 + 1
  });

  it('ranksOn all: one group of a head (KV 0.9, queue 3) and a worker (0.5, 1) reads KV 0.7 and queue 4; head-only reads 3', async () => {
    const r = request([{ port: 0 }]);
    const heads = r.heads.map((h) => ({
      ...h,
      podIP: '127.0.0.1',
      members: [{ name: 'w-1', podIP: '127.0.0.2' }],
    }));
    const source = new PodsSignalSource({ fetch: toEngine });
    const all = await source.sample([
      { ...r, pool: { ...r.pool, ranksOn: 'all' }, heads, endpoint: { port: 80 } },
    ]);
    const [kv, queue] = all.get('ns/pa/decode') ?? [];
    expect(kv?.total).toBeCloseTo(0.7, 9);
    expect(queue).toMatchObject({ state: 'ok', total: 4 });
    const head = await source.sample([{ ...r, heads, endpoint: { port: 80 } }]);
    expect(head.get('ns/pa/decode')?.[1]).toMatchObject({ state: 'ok', total: 3 });
    // expectedRanks 2 holds for the whole group, and head-only reads 1 of 2: missing, never the partial 3.
    const strict = { ...r.pool, ranksOn: 'all' as const, expectedRanks: 2 };
    const ok = await source.sample([{ ...r, pool: strict, heads, endpoint: { port: 80 } }]);
    expect(ok.get('ns/pa/decode')?.[1]).toMatchObject({ state: 'ok', total: 4 });
    const short = await source.sample([
      { ...r, pool: { ...strict, ranksOn: 'head' as const }, heads, endpoint: { port: 80 } },
    ]);
    expect(short.get('ns/pa/decode')?.[1]).toMatchObject({ state: 'noData' });
  });

  it('ranksOn all: a worker that does not answer leaves its group unknown, never the head’s share', async () => {
    const r = request([{ port: 0 }, { port: 1 }]);
    const heads = r.heads.map((h, i) => ({
      ...h,
      podIP: `127.0.0.${i + 1}`,
      // group 0's worker has no IP yet; group 1's is whole
      members: [i === 0 ? { name: 'w-0' } : { name: 'w-1', podIP: '127.0.0.1' }],
    }));
    const source = new PodsSignalSource({ fetch: toEngine });
    const out = await source.sample([
      { ...r, pool: { ...r.pool, ranksOn: 'all' }, heads, endpoint: { port: 80 } },
    ]);
    const queue = out.get('ns/pa/decode')?.[1];
    // group 1 = 1 + 3; group 0 is silent: counted at the mean and holding scale-down
    expect(queue).toMatchObject({ state: 'ok', total: 8, silentGroups: 1 });
    expect(queue?.detail).toContain('w-0: pod has no IP yet');
    const inFlight = await source.inFlight('auto', 'ns', heads, { port: 80 }, 'all');
    expect([...inFlight.keys()]).toEqual(['g1']);
  });

  it('skips surge and unready groups', async () => {
    const r = request([{ port: 0 }, { port: 1, surge: true }, { port: 1, ready: false }]);
    const heads = r.heads.map((h, i) => ({ ...h, podIP: `127.0.0.${Math.min(i + 1, 2)}` }));
    const out = await new PodsSignalSource({ fetch: toEngine }).sample([
      { ...r, heads, endpoint: { port: 80 } },
    ]);
    expect(out.get('ns/pa/decode')?.[0]).toMatchObject({ state: 'ok', total: 0.9 });
  });

  it('pods.scheme: https scrapes https://<pod IP>; a 1 s pool ends at 1 s beside a 3 s pool', async () => {
    const abortedAtMs = new Map<string, number>();
    const r = request([{ port: 0 }]);
    const heads = r.heads.map((h) => ({ ...h, podIP: '127.0.0.1' }));
    const slow = { ...r, poolKey: 'ns/slow/decode', heads: heads.map((h) => ({ ...h, name: 'slow-0' })) };
    const started = performance.now();
    const out = await new PodsSignalSource({
      // every pod hangs: each scrape ends only at its own pool's deadline
      fetch: (input, init) =>
        new Promise((_resolve, reject) =>
          init?.signal?.addEventListener('abort', () => {
            abortedAtMs.set(String(input), performance.now() - started);
            reject(init.signal?.reason);
          }),
        ),
    }).sample([
      { ...r, heads, endpoint: { port: 8443, scheme: 'https', timeoutSeconds: 1 } },
      { ...slow, endpoint: { port: 8080, timeoutSeconds: 3 } },
    ]);
    expect([...abortedAtMs.keys()].sort()).toEqual([
      'http://127.0.0.1:8080/metrics',
      'https://127.0.0.1:8443/metrics',
    ]);
    expect(abortedAtMs.get('https://127.0.0.1:8443/metrics')).toBeLessThan(2000);
    expect(abortedAtMs.get('http://127.0.0.1:8080/metrics')).toBeGreaterThan(2900);
    expect(out.get('ns/pa/decode')?.[0]?.state).toBe('noData');
  });

  it('rejects a KV value above 1 instead of clipping it or reading it as zero', async () => {
    const out = await new PodsSignalSource({
      fetch: (_input, init) => fetch(`http://127.0.0.1:${ports[2]}/metrics`, init),
    }).sample([{ ...request([{ port: 2 }]), endpoint: { port: 80 } }]);
    expect(out.get('ns/pa/decode')?.[0]).toMatchObject({ state: 'outOfRange' });
  });

  it('a dead head is missing data: with quorum it is counted at the mean, without quorum the signal is noQuorum', async () => {
    const fetchTo = (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      const url = new URL(String(input));
      const port = url.hostname === '127.0.0.1' ? ports[0] : 1; // 127.0.0.2 → a closed port
      return fetch(`http://127.0.0.1:${port}/metrics`, init);
    };
    const heads = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        name: `h${i}`,
        groupKey: `g${i}`,
        groupReady: true,
        surge: false,
        podIP: i === 0 ? '127.0.0.1' : '127.0.0.2',
      }));
    const base = request([]);
    const two = await new PodsSignalSource({ fetch: fetchTo }).sample([
      { ...base, heads: heads(2), endpoint: { port: 80 } },
    ]);
    expect(two.get('ns/pa/decode')?.[0]).toMatchObject({ state: 'ok', total: 1.8 });
    expect(two.get('ns/pa/decode')?.[0]?.detail).toContain('counted at the mean');
    const three = await new PodsSignalSource({ fetch: fetchTo }).sample([
      { ...base, heads: heads(3), endpoint: { port: 80 } },
    ]);
    expect(three.get('ns/pa/decode')?.[0]).toMatchObject({ state: 'noQuorum' });
  });

  it('a head whose port closes is logged once with its detail over 3 ticks, again after it answers and fails again; the tenant sees "unreachable"', async () => {
    const gone = createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const closedPort = (gone.address() as AddressInfo).port;
    await new Promise((r) => gone.close(r));
    let closed = true;
    const fetchTo = (_input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      fetch(`http://127.0.0.1:${closed ? closedPort : ports[0]}/metrics`, init);
    const logged: string[] = [];
    const source = new PodsSignalSource({
      fetch: fetchTo,
      onFailure: (pod, url, detail) => logged.push(`${pod} ${url} ${detail}`),
    });
    const r = { ...request([{ port: 0 }]), endpoint: { port: 80 } };
    const ticks: (string | undefined)[] = [];
    for (const open of [false, false, false, true, false]) {
      closed = !open;
      ticks.push((await source.sample([r])).get('ns/pa/decode')?.[0]?.detail);
    }
    expect(logged).toEqual([
      'ns/head-0 http://127.0.0.1:80/metrics ConnectionRefused: connection refused',
      'ns/head-0 http://127.0.0.1:80/metrics ConnectionRefused: connection refused',
    ]);
    expect(ticks[0]).toContain('0: unreachable');
    expect(ticks[0]).not.toContain('refused');
  });
});

describe('poolTotal', () => {
  const kv = { type: 'kvCacheUtilization' as const, target: 0.7 };
  const ok = (value: number) => ({ value: { state: 'ok' as const, value, metric: 'm', ranks: [] } });
  it('no ready group is noData, never zero', () => {
    expect(poolTotal(kv, new Map(), 50)).toMatchObject({ state: 'noData' });
  });
  it('promql cannot be served by direct scraping', () => {
    expect(
      poolTotal(
        { type: 'promql', target: 1, name: 'x', query: 'x', kind: 'total' },
        new Map([['g', ok(1)]]),
        50,
      ).state,
    ).toBe('error');
  });
  it('sums reporting groups', () => {
    expect(
      poolTotal(
        kv,
        new Map([
          ['a', ok(0.25)],
          ['b', ok(0.5)],
        ]),
        100,
      ),
    ).toMatchObject({ state: 'ok', total: 0.75 });
  });
});
