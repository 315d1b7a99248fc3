// The Kueue quota behind a workload's LocalQueue, read from a real API server with Kueue's own CRDs
// (sigs.k8s.io/kueue, pinned in scripts/fetch-crds.tsv): the paths and versions kvpa reads are the ones
// Kueue serves, and a ClusterQueue's GPU quota less its usage is what a scale-up may still take.
import type { KubeConfig } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeClients } from '../../src/actuate/kube.ts';
import { groupsThatFit, observePlacement } from '../../src/decide/placement.ts';
import { readKueueRoom } from '../../src/observe/cluster-room.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const kubeConfig: KubeConfig = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const KUEUE = '/apis/kueue.x-k8s.io/v1beta2';
let ns = '';

beforeAll(async () => {
  const created = await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: 'kvpa-kueue-' },
  });
  ns = (created.metadata as { name: string }).name;
  await api.create(`${KUEUE}/clusterqueues`, {
    apiVersion: 'kueue.x-k8s.io/v1beta2',
    kind: 'ClusterQueue',
    metadata: { name: `${ns}-gpus` },
    spec: {
      namespaceSelector: {},
      resourceGroups: [
        {
          coveredResources: ['cpu', 'nvidia.com/gpu'],
          flavors: [
            {
              name: 'h200',
              resources: [
                { name: 'cpu', nominalQuota: '512' },
                { name: 'nvidia.com/gpu', nominalQuota: 64 },
              ],
            },
            {
              name: 'h100',
              resources: [
                { name: 'cpu', nominalQuota: '512' },
                { name: 'nvidia.com/gpu', nominalQuota: '32' },
              ],
            },
          ],
        },
      ],
    },
  });
  await api.setStatus(`${KUEUE}/clusterqueues/${ns}-gpus`, {
    flavorsUsage: [
      { name: 'h200', resources: [{ name: 'nvidia.com/gpu', total: '48', borrowed: '0' }] },
      { name: 'h100', resources: [{ name: 'nvidia.com/gpu', total: '16', borrowed: '0' }] },
    ],
  });
  await api.create(`${KUEUE}/namespaces/${ns}/localqueues`, {
    apiVersion: 'kueue.x-k8s.io/v1beta2',
    kind: 'LocalQueue',
    metadata: { name: 'serving' },
    spec: { clusterQueue: `${ns}-gpus` },
  });
});

describe('Kueue quota', () => {
  it('64 + 32 nominal GPUs with 48 + 16 in use leave 32: of 4 node-fitting 16-GPU groups, 2 may land', async () => {
    const room = await readKueueRoom(kubeClients(kubeConfig), ns, 'serving', 'nvidia.com/gpu');
    expect(room).toEqual({ kind: 'ClusterQueue', name: `${ns}-gpus`, freeGpus: 32 });
    const group = { gpuResource: 'nvidia.com/gpu', pods: [{ gpus: 8 }, { gpus: 8 }] };
    const nodes = Array.from({ length: 8 }, (_, i) => ({
      name: `n${i}`,
      labels: {},
      taints: [],
      freeGpus: 8,
      schedulable: true,
    }));
    expect(groupsThatFit(group, nodes, 16)).toBe(4);
    const seen = observePlacement(
      group,
      nodes,
      room === null ? [] : [room],
      { unplacedGroups: 0, unschedulableGroups: 0 },
      16,
    );
    expect(seen).toMatchObject({ fitGroups: 2, limitedBy: 'quota' });
    expect(seen.detail).toContain(`ClusterQueue ${ns}-gpus leaves 32 nvidia.com/gpu`);
  });

  it('a queue whose ClusterQueue does not cover the GPU resource limits nothing (null)', async () => {
    await api.create(`${KUEUE}/clusterqueues`, {
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'ClusterQueue',
      metadata: { name: `${ns}-cpu` },
      spec: {
        namespaceSelector: {},
        resourceGroups: [
          {
            coveredResources: ['cpu'],
            flavors: [{ name: 'std', resources: [{ name: 'cpu', nominalQuota: '64' }] }],
          },
        ],
      },
    });
    await api.create(`${KUEUE}/namespaces/${ns}/localqueues`, {
      apiVersion: 'kueue.x-k8s.io/v1beta2',
      kind: 'LocalQueue',
      metadata: { name: 'cpu-only' },
      spec: { clusterQueue: `${ns}-cpu` },
    });
    expect(await readKueueRoom(kubeClients(kubeConfig), ns, 'cpu-only', 'nvidia.com/gpu')).toBeNull();
  });

  it('a LocalQueue that does not exist is an error that names it (the check then limits nothing)', async () => {
    await expect(readKueueRoom(kubeClients(kubeConfig), ns, 'missing', 'nvidia.com/gpu')).rejects.toThrow(
      `reading the Kueue LocalQueue ${ns}/missing failed`,
    );
  });
});
