import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { lwsNamesOf, lwsObservation } from './dynamo.ts';
import { LWS_LABELS } from './lws.ts';

const NS = 'llm';

/**
 * Group i of LWS `lws` as Dynamo renders a DisaggregatedSet role's pods (its graph and component labels) and the
 * LWS controller labels them; `unready` lists worker indexes that are not Ready.
 */
function group(lws: string, i: number, size: number, unready: number[] = []): V1Pod[] {
  return Array.from({ length: size }, (_, w) => ({
    metadata: {
      name: w === 0 ? `${lws}-${i}` : `${lws}-${i}-${w}`,
      namespace: NS,
      labels: {
        'nvidia.com/dynamo-graph-deployment-name': 'dgd',
        'nvidia.com/dynamo-component': 'Decode',
        [LWS_LABELS.name]: lws,
        [LWS_LABELS.groupIndex]: String(i),
        [LWS_LABELS.workerIndex]: String(w),
        [LWS_LABELS.groupKey]: `k-${lws}-${i}`,
      },
    },
    spec: { containers: [{ name: 'e' }] },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: unready.includes(w) ? 'False' : 'True' }],
    },
  }));
}

describe('a DisaggregatedSet-backed component the DGD status does not name', () => {
  const lws = 'dgd-0-abcd1234-decode';
  // 3 groups of 2 pods; group 1 has its worker down. Dynamo's entry then has no componentNames.
  const pods = [...group(lws, 2, 2), ...group(lws, 0, 2), ...group(lws, 1, 2, [1])];

  it('finds the one child LWS from the pods the adapter selects, each name once', () => {
    expect(lwsNamesOf(pods)).toEqual([lws]);
    expect(lwsNamesOf([])).toEqual([]);
  });

  it('3 groups with one worker down: 2 ready whole groups (not 0), drained highest index first', () => {
    const seen = lwsObservation(
      NS,
      { metadata: { name: lws }, spec: { replicas: 3, leaderWorkerTemplate: { size: 2 } } },
      pods,
    );
    expect(seen.ready).toBe(2);
    expect(seen.groupSize).toBe(2);
    expect(seen.groups.map((g) => [g.key, g.ready])).toEqual([
      ['0', true],
      ['1', false],
      ['2', true],
    ]);
    expect(seen.drain?.order.map((g) => g.key)).toEqual(['2', '1', '0']);
    // Every pod is listed but none is bound to a node here: 3 requested groups not placed yet.
    expect(seen.placement?.unplacedGroups).toBe(3);
  });
});
