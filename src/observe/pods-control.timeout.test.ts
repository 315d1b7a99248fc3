/**
 * Each pool is scraped with its own per-pod timeout. The batch used the largest timeout of any
 * PodAutoscaler for every pod, so one tenant's timeoutSeconds: 30 made every other tenant's hung
 * pods cost 30 s too.
 */
import { describe, expect, it } from 'vitest';
import { type PodsPoolRequest, PodsSignalSource } from './pods-control.ts';

function pool(poolKey: string, port: number, timeoutSeconds: number): PodsPoolRequest {
  return {
    poolKey,
    namespace: 'ns',
    pool: {
      engine: 'auto',
      metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
      missingData: { staleAfterSeconds: 60, minQuorumPercentage: 50 },
    },
    heads: [{ name: `${poolKey}-0`, groupKey: 'g0', groupReady: true, surge: false, podIP: '127.0.0.1' }],
    endpoint: { port, timeoutSeconds },
  };
}

describe('pods source timeouts', () => {
  it('pool A (1 s) and pool B (3 s) both hang: A gives up after about 1 s, not after B’s 3 s', async () => {
    const startedMs = Date.now();
    const abortedAfterMs = new Map<string, number>();
    // Never answers; records when the scraper gives up on each port.
    const hang: typeof fetch = (input, init) =>
      new Promise((_, reject) => {
        init?.signal?.addEventListener('abort', () => {
          abortedAfterMs.set(new URL(String(input)).port, Date.now() - startedMs);
          reject(init.signal?.reason);
        });
      });
    const out = await new PodsSignalSource({ fetch: hang }).sample([
      pool('ns/a/decode', 1001, 1),
      pool('ns/b/decode', 1002, 3),
    ]);
    expect(abortedAfterMs.get('1001')).toBeLessThan(2_000);
    expect(abortedAfterMs.get('1002')).toBeGreaterThanOrEqual(2_900);
    expect(out.get('ns/a/decode')?.[0]?.state).toBe('noData');
    // Tenant-facing text says only "unreachable"; the cause goes to the controller log.
    expect(out.get('ns/a/decode')?.[0]?.detail).toContain('unreachable');
  });
});
