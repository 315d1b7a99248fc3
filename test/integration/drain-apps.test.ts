// Drain before scale-down for StatefulSet and Deployment pools, through the controller, against a real API
// server. No controller-manager or kubelet runs: the test writes the pods as the StatefulSet and ReplicaSet
// controllers name and own them, and the in-flight readings through the SignalSource interface.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DRAIN_SETTLE_SECONDS } from '../../src/decide/drain.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { RawApi } from './actuate-fixtures.ts';
import { appsWorkloads } from './apps-workloads.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-12-14T10:00:00Z');

let ns = '';
const w = appsWorkloads(api, kubeConfig, () => ns);

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-drain-apps-' },
  });
  ns = (created.metadata as { name: string }).name;
});

describe('drain before scale-down of apps/v1 pools', () => {
  const h = manualController(kubeConfig, ns, T0_MS);
  beforeAll(() => h.controller.start());
  afterAll(() => h.controller.stop());

  it('StatefulSet 3 → 2: web-2 (the highest ordinal) leaves routing, the count waits for its requests, then 2', async () => {
    await w.statefulSet('web', 3);
    await api.create(w.paBase(), w.podAutoscaler('sts', 'StatefulSet', 'web'));
    await h.waitFor('sts');
    const pool = `${ns}/sts/decode`;
    // 3 ready pods carrying 1.2 of KV at 0.7 per group: 1.71 → 2, once a new pool's panic hold ends.
    h.signals.set(pool, 'kvCacheUtilization', 1.2);
    const started = await stepUntil(h, async () => (await w.poolStatus('sts'))?.drain);
    expect(started).toMatchObject({ phase: 'Draining', victims: ['2'], fromReplicas: 3, toReplicas: 2 });
    expect(await w.servingByPod('web')).toEqual(['web-0: True', 'web-1: True', 'web-2: False']);
    expect(await w.replicasOf('StatefulSet', 'web')).toBe(3);

    // web-2 still holds 3 requests after the settle time: nothing is written.
    await h.step(DRAIN_SETTLE_SECONDS + 1);
    h.signals.setInFlight(pool, '2', { requests: 3, atSeconds: h.nowSeconds() });
    await h.step();
    expect(await w.replicasOf('StatefulSet', 'web')).toBe(3);
    expect((await w.poolStatus('sts'))?.drain).toMatchObject({ phase: 'Draining', inFlightRequests: 3 });

    // They finish: 2 is written through /scale; web-2 stays out of routing until the StatefulSet deletes it.
    h.signals.setInFlight(pool, '2', { requests: 0, atSeconds: h.nowSeconds() + 1 });
    await h.step();
    expect(await w.replicasOf('StatefulSet', 'web')).toBe(2);
    expect((await w.poolStatus('sts'))?.drain?.phase).toBe('Removing');
    expect(await w.servingByPod('web')).toEqual(['web-0: True', 'web-1: True', 'web-2: False']);
    await w.deletePod('web-2');
    await h.step();
    expect((await w.poolStatus('sts'))?.drain).toBeUndefined();
    expect(await w.servingByPod('web')).toEqual(['web-0: True', 'web-1: True']);
  });

  it('Deployment 3 → 2 with 5, 0, 2 requests in flight: pod b (the idle one) leaves routing, then 2 is written', async () => {
    const [a, b, c] = await w.deployment('decode', ['a', 'b', 'c']);
    await api.create(w.paBase(), w.podAutoscaler('dep', 'Deployment', 'decode'));
    await h.waitFor('dep');
    const pool = `${ns}/dep/decode`;
    const reads = (requests: readonly number[]) => {
      for (const [i, pod] of [a, b, c].entries())
        h.signals.setInFlight(pool, pod as string, { requests: requests[i] ?? 0, atSeconds: h.nowSeconds() });
    };
    reads([5, 0, 2]);
    h.signals.set(pool, 'kvCacheUtilization', 1.2);
    const started = await stepUntil(h, async () => (await w.poolStatus('dep'))?.drain);
    expect(started).toMatchObject({ phase: 'Draining', victims: [b], fromReplicas: 3, toReplicas: 2 });
    // b is not Ready now, so the ReplicaSet ranks it ahead of a and c (Ready) when the count drops.
    expect(await w.servingByPod('decode')).toEqual([`${a}: True`, `${b}: False`, `${c}: True`]);
    expect(await w.replicasOf('Deployment', 'decode')).toBe(3);

    await h.step(DRAIN_SETTLE_SECONDS + 1);
    reads([6, 0, 1]);
    await h.step();
    expect(await w.replicasOf('Deployment', 'decode')).toBe(2);
    expect((await w.poolStatus('dep'))?.drain).toMatchObject({ phase: 'Removing', victims: [b] });
    expect((await w.poolStatus('dep'))?.drainUnavailable).toBeUndefined();
    // The ReplicaSet deletes b (by hand here): the record closes, a and c stay routed.
    await w.deletePod(b as string);
    await h.step();
    expect((await w.poolStatus('dep'))?.drain).toBeUndefined();
    expect(await w.servingByPod('decode')).toEqual([`${a}: True`, `${c}: True`]);
  });
});
