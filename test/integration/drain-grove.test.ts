// Drain before scale-down for a Grove PodCliqueScalingGroup pool, through the controller, against a real API
// server with Grove's upstream CRDs. No Grove operator or kubelet runs: the test writes the PodCliques, their
// status and the pods with the labels Grove gives them (a pod carries its PodClique's labels, the PCSG name and
// replica index among them), and the in-flight readings through the SignalSource interface.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { DRAIN_SETTLE_SECONDS } from '../../src/decide/drain.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, type Json, RawApi } from './actuate-fixtures.ts';
import { manualController, stepUntil } from './manual-controller.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const T0_MS = Date.parse('2026-11-23T10:00:00Z');
const DRAIN_TIMEOUT = 300;
const CLIQUES = ['decode-ldr', 'decode-wkr'];

let ns = '';
const pcsgBase = () => customPath('grove.io', 'v1alpha1', ns, 'podcliquescalinggroups');
const paBase = () => customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers');

/** A PCSG of `replicas` ready replicas, each a leader pod and one worker pod; `gated`: the pod spec lists kvpa's gate. */
async function groveWorkload(pcsg: string, replicas: number, gated: boolean): Promise<void> {
  await api.create(pcsgBase(), {
    apiVersion: 'grove.io/v1alpha1',
    kind: 'PodCliqueScalingGroup',
    metadata: { name: pcsg },
    spec: { replicas, cliqueNames: CLIQUES },
  });
  await api.setStatus(`${pcsgBase()}/${pcsg}`, { replicas, availableReplicas: replicas });
  const podSpec: Json = {
    containers: [{ name: 'engine', image: 'example.invalid/engine:1' }],
    ...(gated ? { readinessGates: [{ conditionType: 'kvpa.io/serving' }] } : {}),
  };
  const pclqBase = customPath('grove.io', 'v1alpha1', ns, 'podcliques');
  for (let j = 0; j < replicas; j++) {
    for (const clique of CLIQUES) {
      const pclq = `${pcsg}-${j}-${clique}`;
      const labels = {
        'grove.io/podcliquescalinggroup': pcsg,
        'grove.io/podcliquescalinggroup-replica-index': String(j),
      };
      await api.create(pclqBase, {
        apiVersion: 'grove.io/v1alpha1',
        kind: 'PodClique',
        metadata: { name: pclq, labels },
        spec: { replicas: 1, roleName: clique, podSpec },
      });
      await api.setStatus(`${pclqBase}/${pclq}`, { readyReplicas: 1, scheduledReplicas: 1 });
      // Grove's pod: the PodClique's labels and spec.podSpec, named `<pclq>-<podIndex>-<random>`.
      const podName = `${pclq}-0-abcde`;
      const pods = `/api/v1/namespaces/${ns}/pods`;
      await api.create(pods, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: podName,
          labels: { ...labels, 'grove.io/podclique': pclq, 'grove.io/podclique-pod-index': '0' },
        },
        spec: podSpec,
      });
      await api.setStatus(`${pods}/${podName}`, {
        phase: 'Running',
        podIP: `10.3.${j}.1`,
        conditions: [
          { type: 'ContainersReady', status: 'True' },
          { type: 'Ready', status: 'True' },
          ...(gated ? [{ type: 'kvpa.io/serving', status: 'True' }] : []),
        ],
      });
    }
  }
}

function podAutoscaler(name: string, pcsg: string): Json {
  return {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'grove.io/v1alpha1', kind: 'PodCliqueScalingGroup', name: pcsg },
          minReplicas: 1,
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          scaleDownDelaySeconds: 0,
          tickSeconds: 1,
          drainTimeoutSeconds: DRAIN_TIMEOUT,
        },
      ],
    },
  };
}

const replicasOf = async (pcsg: string) =>
  ((await api.get(`${pcsgBase()}/${pcsg}`)).spec as { replicas: number }).replicas;
const poolStatus = async (pa: string) =>
  ((await api.get(`${paBase()}/${pa}`)).status as PodAutoscalerStatus).pools?.[0];

/** The kvpa.io/serving condition of each pod of the PCSG, as `<replica>/<clique>: True|False`. */
async function servingByPod(pcsg: string): Promise<string[]> {
  const pods = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace: ns, labelSelector: `grove.io/podcliquescalinggroup=${pcsg}` });
  return pods.items
    .map((p) => {
      const labels = p.metadata?.labels ?? {};
      const clique = (labels['grove.io/podclique'] ?? '').slice(`${pcsg}-0-`.length);
      const serving = p.status?.conditions?.find((c) => c.type === 'kvpa.io/serving')?.status;
      return `${labels['grove.io/podcliquescalinggroup-replica-index']}/${clique}: ${serving}`;
    })
    .sort();
}

async function eventsOf(pa: string): Promise<{ reason: string; message: string }[]> {
  const list = await kubeConfig
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${pa}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '' }));
}

/** A controller whose clock and ticks the test drives. */
const harness = () => manualController(kubeConfig, ns, T0_MS);

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-drain-grove-' },
  });
  ns = (created.metadata as { name: string }).name;
});

describe('drain before scale-down of a Grove PodCliqueScalingGroup', () => {
  const h = harness();
  beforeAll(() => h.controller.start());
  afterAll(() => h.controller.stop());

  it('3 → 2: replica 2 leaves routing, the count waits while it holds requests, then 2 is written', async () => {
    await groveWorkload('pcs-0-dec', 3, true);
    await api.create(paBase(), podAutoscaler('grove', 'pcs-0-dec'));
    await h.waitFor('grove');
    const pool = `${ns}/grove/decode`;
    // 3 ready replicas carrying 1.2 of KV at 0.7 per group: 1.71 → 2 groups, once a new pool's panic hold ends.
    h.signals.set(pool, 'kvCacheUtilization', 1.2);
    const started = await stepUntil(h, async () => (await poolStatus('grove'))?.drain);
    expect(started).toMatchObject({ phase: 'Draining', victims: ['2'], fromReplicas: 3, toReplicas: 2 });
    expect(await replicasOf('pcs-0-dec')).toBe(3);
    // Every pod of replica 2 (leader and worker) is out of routing; replicas 0 and 1 stay in.
    expect(await servingByPod('pcs-0-dec')).toEqual([
      '0/decode-ldr: True',
      '0/decode-wkr: True',
      '1/decode-ldr: True',
      '1/decode-wkr: True',
      '2/decode-ldr: False',
      '2/decode-wkr: False',
    ]);
    expect((await eventsOf('grove')).map((e) => e.reason)).toContain('DrainStarted');

    // Replica 2 still reports 4 requests in flight after the settle time: nothing is written.
    await h.step(DRAIN_SETTLE_SECONDS + 1);
    h.signals.setInFlight(pool, '2', { requests: 4, atSeconds: h.nowSeconds() });
    await h.step();
    expect(await replicasOf('pcs-0-dec')).toBe(3);
    expect((await poolStatus('grove'))?.drain).toMatchObject({ phase: 'Draining', inFlightRequests: 4 });

    // Its requests finish: the lower count is written through /scale, and replica 2 stays out of routing.
    await h.step();
    h.signals.setInFlight(pool, '2', { requests: 0, atSeconds: h.nowSeconds() });
    await h.step();
    expect(await replicasOf('pcs-0-dec')).toBe(2);
    expect((await poolStatus('grove'))?.drain?.phase).toBe('Removing');
    expect((await servingByPod('pcs-0-dec')).filter((s) => s.startsWith('2/'))).toEqual([
      '2/decode-ldr: False',
      '2/decode-wkr: False',
    ]);
    const drained = (await eventsOf('grove')).find((e) => e.reason === 'Drained');
    expect(drained?.message).toMatch(/^decode: 2 drained after \d+s: writing 3 → 2$/);

    // Grove deletes replica 2's PodCliques and pods (done by hand here): the drain record closes.
    for (const clique of CLIQUES) {
      await api.delete(`/api/v1/namespaces/${ns}/pods/pcs-0-dec-2-${clique}-0-abcde?gracePeriodSeconds=0`);
      await api.delete(`${customPath('grove.io', 'v1alpha1', ns, 'podcliques')}/pcs-0-dec-2-${clique}`);
    }
    await h.step();
    expect((await poolStatus('grove'))?.drain).toBeUndefined();
  });

  it('without the gate on the pod template: DrainUnavailable names the fix, and 3 → 2 is written at once', async () => {
    await groveWorkload('pcs-1-dec', 3, false);
    await api.create(paBase(), podAutoscaler('ungated', 'pcs-1-dec'));
    await h.waitFor('ungated');
    h.signals.set(`${ns}/ungated/decode`, 'kvCacheUtilization', 1.2);
    await stepUntil(h, async () => (await replicasOf('pcs-1-dec')) === 2 || undefined);
    const status = await poolStatus('ungated');
    expect(status?.drain).toBeUndefined();
    expect(status?.drainUnavailable).toContain('have no readiness gate kvpa.io/serving');
    expect(status?.drainUnavailable).toContain('spec.template.cliques[].spec.podSpec');
    const unavailable = (await eventsOf('ungated')).find((e) => e.reason === 'DrainUnavailable');
    expect(unavailable?.message).toContain('decode: cannot drain before scale-down: pod(s) pcs-1-dec-');
    // No pod was touched: ungated pods never get kvpa's condition.
    expect((await servingByPod('pcs-1-dec')).every((s) => s.endsWith(': undefined'))).toBe(true);
  });
});
