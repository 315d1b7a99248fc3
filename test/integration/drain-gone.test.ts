// A drain whose pool goes away never leaves its victim out of routing: the PodAutoscaler deleted (with the
// controller running, or while none ran), turned invalid, or its pool pointed at another workload mid-drain.
// Against a real API server, over StatefulSets whose pods the test writes (no controller-manager or kubelet).
import type { KubeConfig } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { RawApi } from './actuate-fixtures.ts';
import { appsWorkloads } from './apps-workloads.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-12-28T10:00:00Z');

let ns = '';
const w = appsWorkloads(api, kubeConfig, () => ns);

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-drain-gone-' },
  });
  ns = (created.metadata as { name: string }).name;
});

type Harness = ReturnType<typeof manualController>;

/** StatefulSet `set` of 3, PodAutoscaler `pa` over it; ticks until 1.2 of KV (2 groups) drains `<set>-2`. */
async function draining(h: Harness, pa: string, set: string): Promise<void> {
  await w.statefulSet(set, 3);
  await api.create(w.paBase(), w.podAutoscaler(pa, 'StatefulSet', set));
  await h.waitFor(pa);
  h.signals.set(`${ns}/${pa}/decode`, 'kvCacheUtilization', 1.2);
  const started = await stepUntil(h, async () => (await w.poolStatus(pa))?.drain);
  expect(started).toMatchObject({ phase: 'Draining', victims: ['2'] });
  expect(await w.servingByPod(set)).toEqual([`${set}-0: True`, `${set}-1: True`, `${set}-2: False`]);
}

/** Waits until the controller's watch no longer holds `pa`. */
async function watchLost(h: Harness, pa: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (!h.controller.watched().some((key) => key.endsWith(`/${pa}`))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the watch still holds ${pa}`);
}

const routedAgain = (set: string) => async () =>
  (await w.servingByPod(set)).every((s) => s.endsWith(': True')) ? true : undefined;

describe('a drain whose pool goes away', () => {
  it('PodAutoscaler deleted mid-drain: the next tick routes web-2 again, and the count stays 3', async () => {
    const h = manualController(kubeConfig, ns, T0_MS);
    await h.controller.start();
    try {
      await draining(h, 'deleted', 'web');
      await api.delete(`${w.paBase()}/deleted`);
      await watchLost(h, 'deleted');
      await h.step();
      expect(await w.servingByPod('web')).toEqual(['web-0: True', 'web-1: True', 'web-2: True']);
      expect(await w.replicasOf('StatefulSet', 'web')).toBe(3);
    } finally {
      await h.controller.stop();
    }
  });

  it('PodAutoscaler deleted while no controller ran: the next controller routes db-2 again at its first tick', async () => {
    const first = manualController(kubeConfig, ns, T0_MS);
    await first.controller.start();
    try {
      await draining(first, 'orphan', 'db');
    } finally {
      await first.controller.stop();
    }
    await api.delete(`${w.paBase()}/orphan`);
    const second = manualController(kubeConfig, ns, T0_MS + 60_000);
    await second.controller.start();
    try {
      await second.step();
      expect(await w.servingByPod('db')).toEqual(['db-0: True', 'db-1: True', 'db-2: True']);
    } finally {
      await second.controller.stop();
    }
  });

  it('PodAutoscaler turned invalid mid-drain (an unknown preset): api-2 is routed again, nothing written', async () => {
    const h = manualController(kubeConfig, ns, T0_MS);
    await h.controller.start();
    try {
      await draining(h, 'broken', 'api');
      await api.mergePatch(`${w.paBase()}/broken`, { spec: { policyRef: { name: 'no-such-preset' } } });
      await stepUntil(h, routedAgain('api'));
      expect(h.controller.invalidReason(`${ns}/broken`)).toContain('unknown policy preset "no-such-preset"');
      expect(await w.replicasOf('StatefulSet', 'api')).toBe(3);
    } finally {
      await h.controller.stop();
    }
  });

  it('pool pointed at another StatefulSet mid-drain: gpu-2 of the old one is routed again', async () => {
    const h = manualController(kubeConfig, ns, T0_MS);
    await h.controller.start();
    try {
      await draining(h, 'moved', 'gpu');
      await w.statefulSet('cpu', 3);
      const spec = w.podAutoscaler('moved', 'StatefulSet', 'cpu').spec;
      await api.mergePatch(`${w.paBase()}/moved`, { spec });
      // Hold the load the new target needs (3 groups) so that it drains nothing of its own meanwhile.
      h.signals.set(`${ns}/moved/decode`, 'kvCacheUtilization', 1.9);
      await stepUntil(h, routedAgain('gpu'));
      expect(await w.servingByPod('cpu')).toEqual(['cpu-0: True', 'cpu-1: True', 'cpu-2: True']);
      expect(await w.replicasOf('StatefulSet', 'gpu')).toBe(3);
    } finally {
      await h.controller.stop();
    }
  });
});
