// Raw-JSON access to the test API server and object builders shaped by the upstream CRDs, for
// test/integration/actuate.test.ts. No workload controller runs, so tests write status (and Pod status)
// themselves, as the workload's controller and the kubelet would.
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { ClusterInfo } from '../harness/cluster.ts';

export type Json = Record<string, unknown>;

export class RawApi {
  private caPromise: Promise<Buffer>;

  constructor(private readonly cluster: Pick<ClusterInfo, 'server' | 'caCertPath' | 'adminToken'>) {
    this.caPromise = readFile(cluster.caCertPath);
  }

  async request(
    method: string,
    urlPath: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; json: Json }> {
    const ca = await this.caPromise;
    const url = new URL(urlPath, this.cluster.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return await new Promise((resolve, reject) => {
      const headers: Record<string, string> = {
        Accept: 'application/json',
        Authorization: `Bearer ${this.cluster.adminToken}`,
      };
      if (payload !== undefined) headers['Content-Type'] = contentType;
      const req = https.request(url, { method, ca, headers, timeout: 10_000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          let json: Json = {};
          try {
            json = JSON.parse(text) as Json;
          } catch {
            json = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like request, but throws unless the status is 2xx (the message names method, path and body). */
  async ok(method: string, urlPath: string, body?: unknown, contentType?: string): Promise<Json> {
    const res = await this.request(method, urlPath, body, contentType);
    if (res.status < 200 || res.status >= 300) {
      throw new Error(`${method} ${urlPath} → HTTP ${res.status}: ${JSON.stringify(res.json).slice(0, 800)}`);
    }
    return res.json;
  }

  create(collectionPath: string, obj: Json): Promise<Json> {
    return this.ok('POST', collectionPath, obj);
  }

  get(objectPath: string): Promise<Json> {
    return this.ok('GET', objectPath);
  }

  mergePatch(objectPath: string, patch: unknown): Promise<Json> {
    return this.ok('PATCH', objectPath, patch, 'application/merge-patch+json');
  }

  /** Status as the workload's controller would write it (status subresource). */
  setStatus(objectPath: string, status: unknown): Promise<Json> {
    return this.mergePatch(`${objectPath}/status`, { status });
  }

  async delete(objectPath: string): Promise<void> {
    await this.ok('DELETE', objectPath);
  }

  /** A Pod with the given labels whose status says Running and Ready=ready (no kubelet runs here). */
  async pod(namespace: string, name: string, labels: Record<string, string>, ready: boolean): Promise<void> {
    const base = `/api/v1/namespaces/${namespace}/pods`;
    await this.create(base, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels },
      spec: { containers: [{ name: 'engine', image: 'example.invalid/engine:1' }] },
    });
    await this.setStatus(`${base}/${name}`, {
      phase: 'Running',
      podIP: '10.1.0.1',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    });
  }
}

export function customPath(group: string, version: string, namespace: string, plural: string): string {
  return `/apis/${group}/${version}/namespaces/${namespace}/${plural}`;
}

export const podSpec = { containers: [{ name: 'engine', image: 'example.invalid/engine:1' }] };
export const podTemplate = { spec: podSpec };

export function condition(type: string, status: 'True' | 'False'): Json {
  return {
    type,
    status,
    reason: 'Test',
    message: 'set by the test, as the workload controller would',
    lastTransitionTime: '2026-01-01T00:00:00Z',
  };
}

/** A copy without the fields every write changes, so "nothing else changed" is a deep equality. */
export function withoutWriteMetadata(obj: Json): Json {
  const copy = structuredClone(obj) as Json & { metadata?: Json };
  if (copy.metadata) {
    delete copy.metadata.resourceVersion;
    delete copy.metadata.generation;
    delete copy.metadata.managedFields;
  }
  return copy;
}

export function metadataOf(obj: Json): { resourceVersion: string; generation: number; managers: string[] } {
  const meta = obj.metadata as { resourceVersion: string; generation: number; managedFields?: Json[] };
  return {
    resourceVersion: meta.resourceVersion,
    generation: meta.generation,
    managers: (meta.managedFields ?? []).map(
      (f) => `${f.manager}${f.subresource ? `/${f.subresource}` : ''}`,
    ),
  };
}

/** Reads a JSON path like ['spec', 'workerGroupSpecs', 1, 'replicas']. */
export function at(obj: unknown, path: readonly (string | number)[]): unknown {
  let cur: unknown = obj;
  for (const key of path) cur = (cur as Record<string | number, unknown> | undefined)?.[key];
  return cur;
}

export function setAt(obj: unknown, path: readonly (string | number)[], value: unknown): void {
  let cur = obj as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) cur = cur[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (last !== undefined) cur[last] = value;
}

/**
 * A LeaderWorkerSet of `replicas` groups of `size` pods, with the first `readyGroups` groups' pods written Ready
 * under the labels the LWS controller sets (no LWS controller runs in these tests).
 */
export async function lwsWithReadyGroups(
  api: RawApi,
  namespace: string,
  name: string,
  replicas: number,
  readyGroups: number,
  size = 2,
  /** GPUs each pod's container requests (none when absent). */
  gpusPerPod?: number,
): Promise<void> {
  const lwsLabels = 'leaderworkerset.sigs.k8s.io';
  const container = {
    name: 'e',
    image: 'x',
    ...(gpusPerPod !== undefined ? { resources: { limits: { 'nvidia.com/gpu': String(gpusPerPod) } } } : {}),
  };
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', namespace, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name },
    spec: {
      replicas,
      leaderWorkerTemplate: { size, workerTemplate: { spec: { containers: [container] } } },
    },
  });
  for (let g = 0; g < readyGroups; g++) {
    for (let w = 0; w < size; w++) {
      await api.pod(
        namespace,
        w === 0 ? `${name}-${g}` : `${name}-${g}-${w}`,
        {
          [`${lwsLabels}/name`]: name,
          [`${lwsLabels}/group-index`]: String(g),
          [`${lwsLabels}/worker-index`]: String(w),
          [`${lwsLabels}/group-key`]: `k-${name}-${g}`,
        },
        true,
      );
    }
  }
}
