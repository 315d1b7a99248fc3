import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedApiClient } from './kube.ts';

// An "API server" that sends headers and then one byte every 100 ms, forever: undici's idle timers
// (300 s) never fire, so only a total deadline ends the call.
const drips: NodeJS.Timeout[] = [];
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  drips.push(setInterval(() => res.write(' '), 100));
});
let kc: KubeConfig;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      // client-node refuses plain http unless told to skip TLS verification
      {
        name: 'c',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
});

afterAll(async () => {
  for (const t of drips) clearInterval(t);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('boundedApiClient', () => {
  it('a byte-dripping API server: the call fails at its 400 ms deadline, body read included', async () => {
    const core = boundedApiClient(kc, CoreV1Api, 400);
    const started = performance.now();
    await expect(core.listNamespacedPod({ namespace: 'default' })).rejects.toThrow();
    const elapsedMs = performance.now() - started;
    expect(elapsedMs).toBeGreaterThan(350);
    expect(elapsedMs).toBeLessThan(2000);
  });

  it('a kubeconfig without a current cluster is a clear error', () => {
    expect(() => boundedApiClient(new KubeConfig(), CoreV1Api)).toThrow(/no current cluster/);
  });
});
