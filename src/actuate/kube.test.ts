import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boundedApiClient, DEFAULT_KUBE_MAX_BODY_BYTES, KubeBodyTooLargeError } from './kube.ts';

const MiB = 1024 * 1024;
const drips: NodeJS.Timeout[] = [];
/** Bytes the endless-body route wrote before the client went away. */
let endlessWritten = 0;

/** Writes filler until the client hangs up, pausing on backpressure: an API server that never stops. */
function endless(res: ServerResponse): void {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = () => {
    while (!res.destroyed) {
      endlessWritten += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

// One fake "API server", a behaviour per namespace:
//  drip      headers, then one byte every 100 ms forever: undici's idle timers (300 s) never fire,
//            so only a total deadline ends the call;
//  endless   a chunked body (no content-length) that never ends, as fast as the client reads;
//  declared  a content-length of 3 MiB (the body is never sent);
//  small     a real, small PodList.
const server = createServer((req, res) => {
  const namespace = /\/namespaces\/([^/]+)\//.exec(req.url ?? '')?.[1];
  if (namespace === 'endless') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"kind":"PodList","items":[');
    endless(res);
  } else if (namespace === 'declared') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(3 * MiB) });
    res.write('{');
  } else if (namespace === 'small') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: {},
        items: [{ metadata: { name: 'p' } }],
      }),
    );
  } else {
    res.writeHead(200, { 'content-type': 'application/json' });
    drips.push(setInterval(() => res.write(' '), 100));
  }
});
let kc: KubeConfig;
let origin: string;

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  kc = new KubeConfig();
  kc.loadFromOptions({
    // client-node refuses plain http unless told to skip TLS verification
    clusters: [{ name: 'c', server: origin, skipTLSVerify: true }],
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

  it('a body that never ends: the call fails at the cap, long before the deadline, naming the cap', async () => {
    const core = boundedApiClient(kc, CoreV1Api, 20_000, 2 * MiB);
    endlessWritten = 0;
    const started = performance.now();
    const err = await core.listNamespacedPod({ namespace: 'endless' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeBodyTooLargeError);
    expect((err as Error).message).toBe(
      `Kubernetes API ${origin}/api/v1/namespaces/endless/pods: response body exceeds the cap of 2 MiB (2097152 bytes)`,
    );
    expect(performance.now() - started).toBeLessThan(10_000);
    // The connection was dropped at the cap: the server stopped writing soon after (socket buffers).
    await new Promise((r) => setTimeout(r, 200));
    expect(endlessWritten).toBeLessThan(32 * MiB);
  });

  it('a content-length over the cap fails before the body is read', async () => {
    const core = boundedApiClient(kc, CoreV1Api, 20_000, 2 * MiB);
    const started = performance.now();
    await expect(core.listNamespacedPod({ namespace: 'declared' })).rejects.toThrow(
      `response body of ${3 * MiB} bytes (content-length) exceeds the cap of 2 MiB (2097152 bytes)`,
    );
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a body under the cap reads as before', async () => {
    const core = boundedApiClient(kc, CoreV1Api, 5_000, 1024);
    const list = await core.listNamespacedPod({ namespace: 'small' });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['p']);
  });

  it('the default cap is 64 MiB', () => {
    expect(DEFAULT_KUBE_MAX_BODY_BYTES).toBe(64 * MiB);
  });

  it('a kubeconfig without a current cluster is a clear error', () => {
    expect(() => boundedApiClient(new KubeConfig(), CoreV1Api)).toThrow(/no current cluster/);
  });
});
