// A drain outlives the controller that started it: a controller stopped mid-drain (the victim out of routing,
// requests still in flight) and a new one started from the PodAutoscaler's status, against a real API server.
// The workload is a StatefulSet whose pods the test writes (no controller-manager or kubelet runs).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DRAIN_SETTLE_SECONDS } from '../../src/decide/drain.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { RawApi } from './actuate-fixtures.ts';
import { appsWorkloads } from './apps-workloads.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-12-21T10:00:00Z');

let ns = '';
const w = appsWorkloads(api, kubeConfig, () => ns);

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-drain-restart-' },
  });
  ns = (created.metadata as { name: string }).name;
});

async function eventReasons(pa: string): Promise<string[]> {
  const list = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${pa}` });
  return list.items.map((e) => e.reason ?? '');
}

/**
 * A first controller starts draining web-2 of StatefulSet `set` (3 → 2 on 1.2 of KV at 0.7), the StatefulSet
 * reports web-2 not Ready (its gate is False), web-2 still holds 4 requests, and the controller stops there.
 * Returns the drain's status and the clock (ms) where the first controller stopped.
 */
async function drainThenStop(pa: string, set: string): Promise<{ startedAt: string; stoppedAtMs: number }> {
  await w.statefulSet(set, 3);
  await api.create(w.paBase(), w.podAutoscaler(pa, 'StatefulSet', set));
  const first = manualController(kubeConfig, ns, T0_MS);
  await first.controller.start();
  try {
    await first.waitFor(pa);
    const pool = `${ns}/${pa}/decode`;
    first.signals.set(pool, 'kvCacheUtilization', 1.2);
    const started = await stepUntil(first, async () => (await w.poolStatus(pa))?.drain);
    expect(started).toMatchObject({ phase: 'Draining', victims: ['2'], fromReplicas: 3, toReplicas: 2 });
    await w.setReady('StatefulSet', set, 2);
    await first.step(DRAIN_SETTLE_SECONDS + 1);
    first.signals.setInFlight(pool, '2', { requests: 4, atSeconds: first.nowSeconds() });
    await first.step();
    expect((await w.poolStatus(pa))?.drain).toMatchObject({ phase: 'Draining', inFlightRequests: 4 });
    return { startedAt: started.startedAt, stoppedAtMs: first.nowSeconds() * 1000 };
  } finally {
    await first.controller.stop();
  }
}

describe('a controller restart during a drain', () => {
  it('resumes it: web-2 stays out of routing through the restart, 4 then 1 requests hold the count, at 0 it writes 2', async () => {
    const { startedAt, stoppedAtMs } = await drainThenStop('resume', 'web');
    // Between the controllers: web-2 is still out of routing, and the status carries the drain.
    expect(await w.servingByPod('web')).toEqual(['web-0: True', 'web-1: True', 'web-2: False']);

    // The new controller comes up 30 s later, reading the same load and web-2's requests.
    const second = manualController(kubeConfig, ns, stoppedAtMs + 30_000);
    await second.controller.start();
    try {
      await second.waitFor('resume');
      const pool = `${ns}/resume/decode`;
      second.signals.set(pool, 'kvCacheUtilization', 1.2);
      for (const requests of [4, 1]) {
        second.signals.setInFlight(pool, '2', { requests, atSeconds: second.nowSeconds() });
        await second.step();
        // The same drain (its start and victim), not a new one; web-2 never went back into routing.
        expect((await w.poolStatus('resume'))?.drain).toMatchObject({
          phase: 'Draining',
          victims: ['2'],
          startedAt,
          inFlightRequests: requests,
        });
        expect(await w.servingByPod('web')).toEqual(['web-0: True', 'web-1: True', 'web-2: False']);
        expect(await w.replicasOf('StatefulSet', 'web')).toBe(3);
      }
      second.signals.setInFlight(pool, '2', { requests: 0, atSeconds: second.nowSeconds() + 1 });
      await second.step();
      expect(await w.replicasOf('StatefulSet', 'web')).toBe(2);
      expect((await w.poolStatus('resume'))?.drain).toMatchObject({ phase: 'Removing', startedAt });
      expect(await eventReasons('resume')).not.toContain('DrainCancelled');
    } finally {
      await second.controller.stop();
    }
  });

  it('undoes it when the decision changed back: 1.9 of KV (3 groups) restores web-2 and writes nothing', async () => {
    const { stoppedAtMs } = await drainThenStop('undo', 'api');
    expect(await w.servingByPod('api')).toEqual(['api-0: True', 'api-1: True', 'api-2: False']);

    const second = manualController(kubeConfig, ns, stoppedAtMs + 30_000);
    await second.controller.start();
    try {
      await second.waitFor('undo');
      const pool = `${ns}/undo/decode`;
      // 1.9 of KV at 0.7 per group is 2.71 → 3 groups: the scale-down is no longer wanted.
      second.signals.set(pool, 'kvCacheUtilization', 1.9);
      second.signals.setInFlight(pool, '2', { requests: 4, atSeconds: second.nowSeconds() });
      await stepUntil(second, async () =>
        (await w.poolStatus('undo'))?.drain === undefined ? true : undefined,
      );
      expect(await w.servingByPod('api')).toEqual(['api-0: True', 'api-1: True', 'api-2: True']);
      expect(await w.replicasOf('StatefulSet', 'api')).toBe(3);
      expect(await eventReasons('undo')).toContain('DrainCancelled');
    } finally {
      await second.controller.stop();
    }
  });
});
