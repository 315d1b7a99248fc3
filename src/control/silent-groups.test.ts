/**
 * Missing is never "like the others": when the busy groups are the silent ones, the reporting mean
 * is the idle groups' load, and counting the silent ones at it shrank a pool 4 → 2 → 1. A silent
 * group now holds the pool from scaling down; growth on the reporting groups still works.
 */
import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../api/documents.ts';
import { poolRunnerFor, resolvePool } from '../api/resolve.ts';
import type { PoolRunner } from '../decide/pool-runner.ts';
import type { Decision } from '../decide/types.ts';
import { judgeSignal } from '../observe/quality.ts';
import type { PoolSample } from './signals.ts';

const T0 = 1_000_000;

function runner(): PoolRunner {
  const pool = resolvePool(
    {},
    {
      name: 'decode',
      scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: 'd' },
      minReplicas: 1,
      maxReplicas: 8,
      metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
      stableWindowSeconds: 6,
      scaleDownDelaySeconds: 0,
      maxScaleDownRate: 2,
      tickSeconds: 1,
    },
    0,
    loadPolicies().policies,
  );
  return poolRunnerFor(pool);
}

/** KV per group this second; undefined = the group's head pod sent nothing. */
function sample(kv: readonly (number | undefined)[], nowSeconds: number): PoolSample {
  const gate = judgeSignal({
    signal: 'kvCacheUtilization',
    range: 'fraction',
    rankRule: 'mean',
    nowSeconds,
    staleAfterSeconds: 60,
    minQuorumPercentage: 50,
    groups: kv.map((v, i) => ({
      groupKey: `g${i}`,
      ready: true,
      ...(v === undefined ? {} : { ranks: [{ rank: '', value: v, timestampSeconds: nowSeconds }] }),
    })),
  });
  expect(gate.state).toBe('ok');
  return {
    name: 'kvCacheUtilization',
    state: 'ok',
    ...(gate.poolTotal !== undefined ? { total: gate.poolTotal } : {}),
    ...(gate.estimatedGroups ? { silentGroups: gate.estimatedGroups } : {}),
  };
}

/** Runs 20 one-second ticks from 4 groups; `kv(groups)` gives each group's value (undefined = silent). */
function run(kv: (groups: number) => (number | undefined)[]): { seen: number[]; last: Decision | null } {
  const r = runner();
  let groups = 4;
  const seen: number[] = [];
  let last: Decision | null = null;
  for (let t = 0; t < 20; t++) {
    const s = sample(kv(groups), T0 + t);
    r.record([s], T0 + t);
    last = r.decide(T0 + t, groups, groups, [s]);
    groups = last.desiredGroups;
    seen.push(groups);
  }
  return { seen, last };
}

describe('a silent group holds the pool from scaling down', () => {
  it('2 idle groups report 0.05, the 2 busy ones are silent: 4 groups stay 4 for 20 ticks (not 4 → 2 → 1)', () => {
    const { seen, last } = run((groups) => [0.05, 0.05, undefined, undefined].slice(0, groups));
    expect(seen.every((g) => g === 4)).toBe(true);
    expect(last?.explanation.holdReason).toMatch(/silent group may be the busy one/);
  });

  it('the same idle load with all groups reporting shrinks 4 → 2 → 1 once panic ends (the hold is only for silence)', () => {
    const { seen } = run((groups) => Array.from({ length: groups }, () => 0.05));
    expect(seen.at(-1)).toBe(1);
  });

  it('reporting groups at 0.9 with one silent: it still grows, 4 → 6 (ceil(4 × 0.9 / 0.7))', () => {
    const { seen } = run((groups) => [
      0.9,
      0.9,
      0.9,
      undefined,
      ...Array.from({ length: groups - 4 }, () => 0.9),
    ]);
    expect(seen[0]).toBe(6);
  });
});
