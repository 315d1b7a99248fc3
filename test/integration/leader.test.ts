// High availability: two controllers compete for one Lease on a real API server. Exactly one leads
// and writes; when the leader dies without releasing, the other takes over after the lease expires,
// and its fresh decider does not scale down inside the stable window.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import { Controller } from '../../src/control/controller.ts';
import { LeaderElector } from '../../src/control/leader.ts';
import { ManualSignalSource } from '../../src/control/signals.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const LWS = 'leaderworkerset.sigs.k8s.io';
let ns = '';
const signals = new ManualSignalSource();
const writes: string[] = [];

function replica(identity: string) {
  const controller = new Controller({
    kubeConfig,
    signals,
    policies: loadPolicies().policies,
    targetFor: (namespace, ref) => {
      const t = scaleTargetFor(kubeConfig, namespace, ref);
      return {
        ...t,
        namespace: t.namespace,
        ref: t.ref,
        read: () => t.read(),
        heads: () => t.heads(),
        write: async (g, rv) => {
          writes.push(`${identity}:${g}`);
          await t.write(g, rv);
        },
      };
    },
    logger: pino({ level: process.env.KVPA_TEST_LOG ?? 'silent' }),
    namespace: ns,
    sampleIntervalMs: 250,
    hostname: identity,
  });
  const elector = new LeaderElector({
    kubeConfig,
    namespace: ns,
    name: 'kvpa-controller',
    identity,
    leaseDurationSeconds: 3,
    renewDeadlineSeconds: 2,
    retryPeriodSeconds: 0.25,
    logger: pino({ level: process.env.KVPA_TEST_LOG ?? 'silent' }),
  });
  elector.start({ onStartedLeading: () => controller.start(), onStoppedLeading: () => controller.stop() });
  return { identity, controller, elector };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
const replicas = async () =>
  (
    (await api.ok('GET', `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/ha`))
      .spec as { replicas: number }
  ).replicas;

let a: ReturnType<typeof replica>;
let b: ReturnType<typeof replica>;

beforeAll(async () => {
  ns = (
    (
      await api.create('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { generateName: 'kvpa-ha-' },
      })
    ).metadata as { name: string }
  ).name;
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name: 'ha' },
    spec: {
      replicas: 2,
      leaderWorkerTemplate: {
        size: 1,
        workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
      },
    },
  });
  for (const g of [0, 1]) {
    await api.pod(
      ns,
      `ha-${g}`,
      {
        [`${LWS}/name`]: 'ha',
        [`${LWS}/group-index`]: String(g),
        [`${LWS}/worker-index`]: '0',
        [`${LWS}/group-key`]: `k${g}`,
      },
      true,
    );
  }
  await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name: 'ha' },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: 'ha' },
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          tickSeconds: 1,
          scaleDownDelaySeconds: 0,
        },
      ],
    },
  });
  signals.set(`${ns}/ha/decode`, 'kvCacheUtilization', 1.9); // → 3 groups
  a = replica('replica-a');
  await until('replica-a to lead', () => a.elector.isLeader);
  b = replica('replica-b');
});

afterAll(async () => {
  await Promise.all([a?.elector.stop(), b?.elector.stop()]);
});

describe('leader election', () => {
  it('exactly one replica leads and writes', async () => {
    await until('the scale-up to 3', async () => (await replicas()) === 3);
    for (let i = 0; i < 10; i++) {
      expect([a.elector.isLeader, b.elector.isLeader].filter(Boolean)).toHaveLength(1);
      await sleep(100);
    }
    expect(writes).toEqual(['replica-a:3']);
  });

  it('when the leader dies the other takes over, and does not scale down inside the stable window', async () => {
    signals.set(`${ns}/ha/decode`, 'kvCacheUtilization', 0.5); // now wants 1 group
    await a.elector.stop(false); // a crash: the lease is not released
    await until('replica-b to lead', () => b.elector.isLeader);
    const lease = await kubeConfig
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'kvpa-controller', namespace: ns });
    expect(lease.spec?.holderIdentity).toBe('replica-b');
    // b's fresh decider starts in panic at the 3 requested groups: no scale-down for a stable window (6 s)
    const tookOverAt = Date.now();
    while (Date.now() - tookOverAt < 4000) {
      expect(await replicas()).toBe(3);
      await sleep(250);
    }
    // after the window it acts on the low load: proof that b is really running the pool
    await until('replica-b to scale down', async () => (await replicas()) < 3, 15_000);
    expect(writes.slice(1).every((w) => w.startsWith('replica-b:'))).toBe(true);
  });
});
