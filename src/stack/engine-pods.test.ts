import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { annotationsToWrite, METRICS_PORT_ANNOTATION, servingLeaders, servingPool } from './engine-pods.ts';

function pod(
  name: string,
  options: { role?: string; index?: string; ready?: boolean; deleting?: boolean; port?: string } = {},
): V1Pod {
  const labels: Record<string, string> = { 'leaderworkerset.sigs.k8s.io/worker-index': options.index ?? '0' };
  if (options.role !== undefined) labels['llm-d.ai/role'] = options.role;
  return {
    metadata: {
      name,
      namespace: 'ns',
      labels,
      ...(options.deleting ? { deletionTimestamp: new Date() } : {}),
      ...(options.port !== undefined ? { annotations: { [METRICS_PORT_ANNOTATION]: options.port } } : {}),
    },
    status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] },
  };
}

describe('which pods are serving leaders', () => {
  it('a Ready leader with a pool role, not terminating', () => {
    expect(servingPool(pod('a', { role: 'decode' }))).toBe('decode');
    expect(servingPool(pod('a', { role: 'prefill' }))).toBe('prefill');
    expect(servingPool(pod('a', { role: 'both' }))).toBeUndefined();
    expect(servingPool(pod('a'))).toBeUndefined();
    expect(servingPool(pod('a', { role: 'decode', index: '1' }))).toBeUndefined();
    expect(servingPool(pod('a', { role: 'decode', ready: false }))).toBeUndefined();
    expect(servingPool(pod('a', { role: 'decode', deleting: true }))).toBeUndefined();
    expect(servingPool({ metadata: { labels: { 'leaderworkerset.sigs.k8s.io/worker-index': '0' } } })).toBe(
      undefined,
    );
  });

  it('grouped by pool, sorted by name', () => {
    const leaders = servingLeaders([
      pod('d-1', { role: 'decode' }),
      pod('p-0', { role: 'prefill' }),
      pod('d-0', { role: 'decode' }),
      pod('d-2', { role: 'decode', ready: false }),
    ]);
    expect(leaders).toEqual({
      prefill: [{ namespace: 'ns', pod: 'p-0', routable: true }],
      decode: [
        { namespace: 'ns', pod: 'd-0', routable: true },
        { namespace: 'ns', pod: 'd-1', routable: true },
      ],
    });
  });

  it('a gated leader runs but is routed only while kvpa.io/serving is True', () => {
    const gated = (serving: 'True' | 'False' | undefined): V1Pod => {
      const p = pod('d-0', { role: 'decode' });
      return {
        ...p,
        spec: { containers: [], readinessGates: [{ conditionType: 'kvpa.io/serving' }] },
        status: {
          conditions: [
            { type: 'Ready', status: 'True' },
            ...(serving !== undefined ? [{ type: 'kvpa.io/serving', status: serving }] : []),
          ],
        },
      };
    };
    expect(servingLeaders([gated('True')]).decode).toEqual([{ namespace: 'ns', pod: 'd-0', routable: true }]);
    expect(servingLeaders([gated('False')]).decode).toEqual([
      { namespace: 'ns', pod: 'd-0', routable: false },
    ]);
    expect(servingLeaders([gated(undefined)]).decode).toEqual([
      { namespace: 'ns', pod: 'd-0', routable: false },
    ]);
  });

  it('annotations are written where missing or stale, and removed from pods that stopped serving', () => {
    const ports: Record<string, number> = { 'ns/a': 4000, 'ns/b': 4001, 'ns/c': 4002 };
    const writes = annotationsToWrite(
      [
        pod('a', { role: 'decode', port: '4000' }),
        pod('b', { role: 'decode', port: '3999' }),
        pod('c', { role: 'prefill' }),
        pod('d', { role: 'prefill' }),
        pod('e', { role: 'prefill', ready: false }),
        pod('f', { role: 'prefill', ready: false, port: '4005' }),
        pod('g', { role: 'prefill', deleting: true, port: '4006' }),
      ],
      (ns, p) => ports[`${ns}/${p}`],
    );
    expect(writes).toEqual([
      { namespace: 'ns', pod: 'b', port: 4001 },
      { namespace: 'ns', pod: 'c', port: 4002 },
      { namespace: 'ns', pod: 'f', port: null },
    ]);
  });
});
