/** KubeRay pods as the API server returns them, for the Ray kinds' unit tests. */
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { RAY_LABELS } from './kuberay.ts';

export const gpuSpec = (gpus: number, extra: Partial<V1PodSpec> = {}): V1PodSpec => ({
  containers: [
    {
      name: 'ray',
      image: 'rayproject/ray:2.49.0',
      resources: { limits: { 'nvidia.com/gpu': String(gpus) } },
    },
  ],
  ...extra,
});

export interface PodOptions {
  cluster?: string;
  replica?: string;
  node?: string;
  unschedulable?: boolean;
  deleting?: boolean;
  head?: boolean;
}

export function rayPod(name: string, o: PodOptions = {}): V1Pod {
  return {
    metadata: {
      name,
      labels: {
        [RAY_LABELS.cluster]: o.cluster ?? 'rc',
        [RAY_LABELS.nodeType]: o.head ? 'head' : 'worker',
        ...(o.head ? {} : { [RAY_LABELS.group]: 'gpu' }),
        ...(o.replica !== undefined ? { [RAY_LABELS.replicaName]: o.replica } : {}),
      },
      ...(o.deleting ? { deletionTimestamp: new Date('2026-12-07T10:00:00Z') } : {}),
    },
    spec: { ...gpuSpec(8), ...(o.node !== undefined ? { nodeName: o.node } : {}) },
    status: {
      phase: o.node !== undefined ? 'Running' : 'Pending',
      ...(o.unschedulable
        ? { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }] }
        : {}),
    },
  };
}
