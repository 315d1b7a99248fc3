// The generated PodAutoscaler CRD in a real API server: the shipped examples are accepted, and each
// cross-field rule rejects a bad object with a message that names the field.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { describeApiError, kubeConfigWithToken, repoRoot } from '../harness/cluster.ts';

const cluster = inject('cluster');
const kc = kubeConfigWithToken(cluster, cluster.adminToken);
const objects = kc.makeApiClient(CustomObjectsApi);
const group = { group: 'kvpa.io', version: 'v1alpha1', plural: 'podautoscalers' };
let namespace = '';

type Obj = Record<string, unknown> & { metadata: Record<string, unknown>; spec: Record<string, unknown> };
const example = (file: string): Obj =>
  parse(readFileSync(path.join(repoRoot, 'examples', file), 'utf8')) as Obj;

async function create(body: Obj) {
  return objects.createNamespacedCustomObject({
    ...group,
    namespace,
    body: { ...body, metadata: { ...body.metadata, namespace } },
  });
}

async function rejection(body: Obj): Promise<string> {
  try {
    await create(body);
  } catch (e) {
    return describeApiError(e);
  }
  throw new Error('the API server accepted an invalid PodAutoscaler');
}

function withPool(body: Obj, name: string, patch: Record<string, unknown>): Obj {
  const pools = (body.spec.pools as Record<string, unknown>[]).map((p) => ({ ...p, ...patch }));
  return { ...body, metadata: { name }, spec: { ...body.spec, pools } };
}

beforeAll(async () => {
  const ns = await kc
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { generateName: 'kvpa-crd-' } } });
  namespace = ns.metadata?.name ?? '';
});

describe('PodAutoscaler CRD in a real API server', () => {
  it.each(['kserve-deepseek-r1.yaml', 'dynamo-grove.yaml', 'aibrix.yaml', 'kuberay.yaml'])(
    'accepts examples/%s',
    async (file) => {
      const created = (await create(example(file))) as Obj;
      expect(created.metadata.name).toBe(example(file).metadata.name);
    },
  );

  it('defaults mode to DryRun', async () => {
    const body = example('kserve-deepseek-r1.yaml');
    const { mode: _m, ...spec } = body.spec;
    const created = (await create({ ...body, metadata: { name: 'no-mode' }, spec })) as Obj;
    expect(created.spec.mode).toBe('DryRun');
  });

  it('rejects minReplicas > maxReplicas, naming the field', async () => {
    const msg = await rejection(
      withPool(example('kuberay.yaml'), 'bad-minmax', { minReplicas: 9, maxReplicas: 2 }),
    );
    expect(msg).toContain('spec.pools[0].minReplicas');
    expect(msg).toContain('minReplicas must not exceed maxReplicas');
  });

  it('rejects maxReplicas past int32, as kvpa validate does, naming the field', async () => {
    const msg = await rejection(withPool(example('kuberay.yaml'), 'bad-max', { maxReplicas: 3000000000 }));
    expect(msg).toContain('spec.pools[0].maxReplicas');
    expect(msg).toContain('2147483647');
  });

  it('rejects a RayCluster pool without workerGroupName', async () => {
    const body = example('kuberay.yaml');
    const pool = (body.spec.pools as Record<string, unknown>[])[0] ?? {};
    const { workerGroupName: _w, ...ref } = pool.scaleTargetRef as Record<string, unknown>;
    const msg = await rejection(withPool(body, 'bad-ray', { scaleTargetRef: ref }));
    expect(msg).toContain('spec.pools[0].scaleTargetRef.workerGroupName');
  });

  it('rejects a KV-cache target above 1', async () => {
    const msg = await rejection(
      withPool(example('kuberay.yaml'), 'bad-kv', { metrics: [{ type: 'kvCacheUtilization', target: 70 }] }),
    );
    expect(msg).toContain('spec.pools[0].metrics[0].target');
  });

  it('rejects a blank promql query, and two metrics of one signal name', async () => {
    const promql = { type: 'promql', name: 'load', kind: 'perGroup', target: 1 };
    const blank = await rejection(
      withPool(example('kuberay.yaml'), 'bad-blank-query', { metrics: [{ ...promql, query: '  ' }] }),
    );
    expect(blank).toContain('spec.pools[0].metrics[0].query');
    expect(blank).toContain('must not be blank');
    const twice = await rejection(
      withPool(example('kuberay.yaml'), 'bad-same-name', {
        metrics: [
          { ...promql, query: 'x' },
          { ...promql, query: 'y' },
        ],
      }),
    );
    expect(twice).toContain('its own signal name');
  });

  it('rejects a promql metric on the pods source, naming the fix', async () => {
    const body = example('kuberay.yaml');
    const pods = { ...body, spec: { ...body.spec, metricsSource: { pods: { port: 8000 } } } };
    const msg = await rejection({ ...pods, metadata: { name: 'bad-promql-pods' } });
    expect(msg).toContain('spec.pools');
    expect(msg).toContain(
      'type promql needs metricsSource.prometheus (the pods source scrapes engine metrics and cannot run PromQL): set metricsSource.prometheus.address or use a built-in metric type',
    );
    // The same from policyRef.overrides, for a pool without metrics of its own.
    const pool = (body.spec.pools as Record<string, unknown>[])[0] ?? {};
    const { metrics, ...ownless } = pool;
    const overridden = await rejection({
      ...pods,
      metadata: { name: 'bad-promql-overrides' },
      spec: { ...pods.spec, policyRef: { name: 'default', overrides: { metrics } }, pools: [ownless] },
    });
    expect(overridden).toContain('type promql needs metricsSource.prometheus');
    // (On the Prometheus source the same pool is accepted: examples/kuberay.yaml above.)
  });

  it('rejects two pools scaling the same target', async () => {
    const body = example('kserve-deepseek-r1.yaml');
    const pools = body.spec.pools as Record<string, unknown>[];
    const msg = await rejection({
      ...body,
      metadata: { name: 'bad-same-target' },
      spec: {
        ...body.spec,
        pools: [pools[0], { ...pools[1], scaleTargetRef: pools[0]?.scaleTargetRef }],
      },
    });
    expect(msg).toContain('each pool needs its own scale target');
  });

  it('rejects both metrics sources at once, and a wrong type', async () => {
    const body = example('kuberay.yaml');
    expect(
      await rejection({
        ...body,
        metadata: { name: 'bad-src' },
        spec: {
          ...body.spec,
          metricsSource: { prometheus: { address: 'http://p:9090' }, pods: { port: 1 } },
        },
      }),
    ).toContain('set exactly one of metricsSource.prometheus or metricsSource.pods');
    expect(await rejection(withPool(body, 'bad-type', { maxReplicas: 'eight' }))).toContain(
      'spec.pools[0].maxReplicas',
    );
  });
});
