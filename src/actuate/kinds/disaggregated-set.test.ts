import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { gateProblem, lwsDrainView } from '../routing.ts';
import { agreedGpus, roleRolloutDrainView } from './disaggregated-set.ts';
import { LWS_LABELS } from './lws.ts';

const NS = 'llm';

/** Group i of child LWS `lws`: a leader and size − 1 workers, gated, as the LWS controller labels them. */
function group(lws: string, i: number, size: number): V1Pod[] {
  return Array.from({ length: size }, (_, w) => ({
    metadata: {
      name: w === 0 ? `${lws}-${i}` : `${lws}-${i}-${w}`,
      namespace: NS,
      labels: {
        [LWS_LABELS.name]: lws,
        [LWS_LABELS.groupIndex]: String(i),
        [LWS_LABELS.workerIndex]: String(w),
        [LWS_LABELS.groupKey]: `k-${lws}-${i}`,
      },
    },
    spec: { containers: [{ name: 'e' }], readinessGates: [{ conditionType: 'kvpa.io/serving' }] },
    status: {
      phase: 'Running',
      conditions: [
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
      ],
    },
  }));
}

const gpuSpec = (gpus: number): V1PodSpec => ({
  containers: [{ name: 'e', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }],
});

describe('roleRolloutDrainView', () => {
  it('old and new child LWS of 2 groups each: no removal order, the reason, and all 8 pods under LWS-prefixed keys', () => {
    const names = ['ds-0-aaaa-decode', 'ds-0-bbbb-decode'];
    const views = names.map((n) => lwsDrainView(NS, [...group(n, 0, 2), ...group(n, 1, 2)]));
    const v = roleRolloutDrainView('ds', 'decode', names, views);
    expect(v.order).toEqual([]);
    expect(v.pods).toHaveLength(8);
    expect(new Set(v.pods.map((p) => p.groupKey))).toEqual(
      new Set(['ds-0-aaaa-decode/0', 'ds-0-aaaa-decode/1', 'ds-0-bbbb-decode/0', 'ds-0-bbbb-decode/1']),
    );
    expect(gateProblem(v)).toBe(
      'DisaggregatedSet ds role decode has 2 LeaderWorkerSets (ds-0-aaaa-decode, ds-0-bbbb-decode), a rollout ' +
        'in progress: which groups a scale-down removes is unknown',
    );
  });
});

describe('agreedGpus', () => {
  it('a leader of 8 and 3 workers of 8 GPUs: 32 per group, from one child or two that agree', () => {
    const t = { size: 4, leaderTemplate: { spec: gpuSpec(8) }, workerTemplate: { spec: gpuSpec(8) } };
    expect(agreedGpus([t])).toBe(32);
    expect(agreedGpus([t, { ...t }])).toBe(32);
  });

  it('old 16-GPU and new 32-GPU groups mid-rollout: unknown, so the ledger shows no GPU-hours', () => {
    const old = { size: 2, workerTemplate: { spec: gpuSpec(8) } };
    const next = { size: 4, workerTemplate: { spec: gpuSpec(8) } };
    expect(agreedGpus([old])).toBe(16);
    expect(agreedGpus([old, next])).toBeUndefined();
  });
});
