/**
 * Failure paths of the source that need no Prometheus: nothing listening, and an endpoint that
 * answers with something other than the Prometheus API. Neither may throw out of a tick.
 * (Behaviour against a real Prometheus is in test/integration/prometheus-source.test.ts.)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolRegistration } from './prometheus-join.ts';
import { PrometheusSignalSource } from './prometheus-source.ts';

const pool: PoolRegistration = {
  poolKey: 'ns/pa/decode',
  namespace: 'ns',
  heads: [{ pod: 'lws-0', groupKey: 'lws-0', ready: true }],
  engine: 'auto',
  signals: ['kvCacheUtilization', 'queueDepth'],
};

let server: Server;
let url: string;
const bodies = ['not json', '{"status":"success","data":{"resultType":"vector","result":"nope"}}', '{}'];
let next = 0;

beforeAll(async () => {
  server = createServer((_req, res) => {
    const body = bodies[next++ % bodies.length] ?? '';
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('PrometheusSignalSource failure paths', () => {
  it('nothing listening: every signal is error with the reason, and tick resolves', async () => {
    const source = new PrometheusSignalSource({ address: 'http://127.0.0.1:1', queryTimeoutSeconds: 2 });
    const tick = await source.tick([pool]);
    const kv = tick.pools.get(pool.poolKey)?.signals.get('kvCacheUtilization');
    expect(kv?.state).toBe('error');
    expect(kv?.detail).toContain('Prometheus query failed');
    // Refused, filtered or open is the controller log's business, not the tenant's.
    expect(kv?.detail).toContain('unreachable');
    expect(kv?.detail).not.toMatch(/ECONNREFUSED|refused|127\.0\.0\.1/);
    expect(kv?.poolTotal).toBeUndefined();
    const backfill = await source.backfill(pool, 1000, 1010);
    expect(backfill.signals.get('queueDepth')?.error).toBeDefined();
  });

  it('garbage answers: error, never an exception and never a zero', async () => {
    const source = new PrometheusSignalSource({ address: url, queryTimeoutSeconds: 2 });
    for (let i = 0; i < bodies.length; i++) {
      const tick = await source.tick([pool]);
      for (const gate of tick.pools.get(pool.poolKey)?.signals.values() ?? []) {
        expect(gate.state).toBe('error');
        expect(gate.poolTotal).toBeUndefined();
      }
    }
  });

  it('an empty pool list sends no query', async () => {
    const source = new PrometheusSignalSource({ address: url });
    const tick = await source.tick([]);
    expect(tick.queries).toBe(0);
    expect(source.requestsSent).toBe(0);
  });
});
