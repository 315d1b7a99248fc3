// The live stack's workload half: real kube-controller-manager, kube-scheduler and upstream LWS
// controller, with kwok as the kubelet on fake GPU nodes, turn a LeaderWorkerSet into Pods that turn
// Ready after the configured startup delay.
//
// This file starts its own control plane instead of using inject('cluster'): the other integration
// files share that cluster and write LWS/StatefulSet/Pod status themselves ("no workload controller
// runs"), so real controllers there would fight them (the LWS controller rewriting status, the
// scheduler and kwok taking over their Pods).
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, ensureThirdPartyCrds, installCrdDir, startCluster } from '../../src/stack/cluster.ts';
import {
  processGroupAlive,
  startWorkloadControllers,
  type WorkloadControllers,
} from '../../src/stack/workloads.ts';
import { customPath, type Json, RawApi } from './actuate-fixtures.ts';

const LWS = 'leaderworkerset.sigs.k8s.io';
const STARTUP_SECONDS = 3;
const ns = 'kvpa-workloads';
const name = 'serve';

let cluster: Cluster | undefined;
let stack: WorkloadControllers | undefined;
let api: RawApi;

interface Pod {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status?: { conditions?: { type: string; status: string; lastTransitionTime?: string }[] };
}

const lwsPath = () => `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/${name}`;

async function pods(): Promise<Pod[]> {
  const sel = encodeURIComponent(`${LWS}/name=${name}`);
  const list = await api.get(`/api/v1/namespaces/${ns}/pods?labelSelector=${sel}`);
  return (list.items as Pod[]).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

const condition = (p: Pod, type: string) => p.status?.conditions?.find((c) => c.type === type);
const isReady = (p: Pod) => condition(p, 'Ready')?.status === 'True' && !p.metadata.deletionTimestamp;

async function readyReplicas(): Promise<number> {
  const lws = await api.get(lwsPath());
  return ((lws.status as Json | undefined)?.readyReplicas as number | undefined) ?? 0;
}

/** Polls until check() returns true; the message carries the last observed state. */
async function until(
  what: string,
  timeoutSeconds: number,
  check: () => Promise<boolean>,
  state: () => Promise<unknown>,
) {
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `timed out after ${timeoutSeconds}s waiting for ${what}; last state: ${JSON.stringify(await state())}`,
  );
}

const podSummary = async () =>
  (await pods()).map((p) => ({ name: p.metadata.name, node: p.spec.nodeName, ready: isReady(p) }));

describe('workload controllers (KCM, scheduler, LWS, kwok)', () => {
  beforeAll(async () => {
    cluster = await startCluster({ installCrds: false });
    await installCrdDir(cluster.kubeConfig(), path.join(await ensureThirdPartyCrds(), 'lws'), 60, true);
    stack = await startWorkloadControllers({
      cluster,
      fakeNodes: 4,
      gpusPerNode: 8,
      podStartupSeconds: STARTUP_SECONDS,
    });
    api = new RawApi(cluster);
    await api.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
  }, 60_000);

  it('starts four processes and Ready fake GPU nodes', async () => {
    expect(stack?.processes.map((p) => p.name).sort()).toEqual([
      'kube-controller-manager',
      'kube-scheduler',
      'kwok',
      'lws-controller',
    ]);
    const node = await api.get(`/api/v1/nodes/${stack?.nodeNames[0]}`);
    expect(((node.status as Json).allocatable as Json)['nvidia.com/gpu']).toBe('8');
  });

  it('an LWS of size 2 becomes 2 Ready Pods after the startup delay, readyReplicas 1', async () => {
    await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      metadata: { name },
      spec: {
        replicas: 1,
        leaderWorkerTemplate: {
          size: 2,
          workerTemplate: {
            spec: {
              containers: [
                {
                  name: 'engine',
                  image: 'example.invalid/engine:1',
                  // 4 GPUs a Pod: 6 Pods need 6 half nodes of the 4 x 8 GPUs.
                  resources: { limits: { 'nvidia.com/gpu': '4' }, requests: { 'nvidia.com/gpu': '4' } },
                },
              ],
            },
          },
        },
      },
    });
    await until('2 Ready pods', 60, async () => (await pods()).filter(isReady).length === 2, podSummary);
    await until('readyReplicas 1', 30, async () => (await readyReplicas()) === 1, readyReplicas);
    const all = await pods();
    expect(all.map((p) => p.metadata.name)).toEqual([`${name}-0`, `${name}-0-1`]);
    for (const p of all) {
      expect(stack?.nodeNames).toContain(p.spec.nodeName);
      // Ready only after the startup delay (kwok stage), measured from container start.
      const started = Date.parse(condition(p, 'Initialized')?.lastTransitionTime ?? '');
      const ready = Date.parse(condition(p, 'Ready')?.lastTransitionTime ?? '');
      expect(ready - started).toBeGreaterThanOrEqual((STARTUP_SECONDS - 1) * 1000);
    }
  });

  it('Pods carry the LWS labels set by the real controller and its Pod webhook', async () => {
    const [leader, worker] = await pods();
    expect(leader?.metadata.labels).toMatchObject({
      [`${LWS}/name`]: name,
      [`${LWS}/group-index`]: '0',
      [`${LWS}/worker-index`]: '0',
    });
    const groupKey = leader?.metadata.labels?.[`${LWS}/group-key`];
    expect(groupKey).toMatch(/^[0-9a-f]{40}$/);
    expect(worker?.metadata.labels).toMatchObject({
      [`${LWS}/name`]: name,
      [`${LWS}/group-index`]: '0',
      [`${LWS}/worker-index`]: '1',
      [`${LWS}/group-key`]: groupKey,
    });
  });

  it('scaling to 3 through /scale yields 6 Ready Pods and readyReplicas 3', async () => {
    await api.mergePatch(`${lwsPath()}/scale`, { spec: { replicas: 3 } });
    await until('6 Ready pods', 90, async () => (await pods()).filter(isReady).length === 6, podSummary);
    await until('readyReplicas 3', 30, async () => (await readyReplicas()) === 3, readyReplicas);
    const groups = new Set((await pods()).map((p) => p.metadata.labels?.[`${LWS}/group-index`]));
    expect([...groups].sort()).toEqual(['0', '1', '2']);
  });

  it('scaling back to 1 deletes the extra groups’ Pods', async () => {
    await api.mergePatch(`${lwsPath()}/scale`, { spec: { replicas: 1 } });
    await until(
      'only group 0 left',
      90,
      async () => {
        const names = (await pods()).map((p) => p.metadata.name);
        return names.length === 2 && names[0] === `${name}-0` && names[1] === `${name}-0-1`;
      },
      podSummary,
    );
    await until('readyReplicas 1', 30, async () => (await readyReplicas()) === 1, readyReplicas);
    // The removed groups' worker StatefulSets (owned by their leader Pods) go too.
    const stsNames = async () =>
      ((await api.get(`/apis/apps/v1/namespaces/${ns}/statefulsets`)).items as Pod[])
        .map((s) => s.metadata.name)
        .sort();
    await until(
      'worker StatefulSets of groups 1 and 2 deleted',
      30,
      async () => (await stsNames()).length === 2,
      stsNames,
    );
    expect(await stsNames()).toEqual([name, `${name}-0`]);
  });

  it('stop() leaves no process behind', async () => {
    const procs = stack?.processes ?? [];
    expect(procs.length).toBe(4);
    await stack?.stop();
    for (const p of procs) {
      expect(processGroupAlive(p.pid), `${p.name} (pgid ${p.pid})`).toBe(false);
    }
  });
});
