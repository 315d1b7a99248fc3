import { describe, expect, it } from 'vitest';
import type { Decision } from '../decide/types.ts';
import { computeStatus, type PoolFacts } from './status.ts';

function decisionWith(stage: 'rateLimit' | 'placement', before: number, after: number): Decision {
  return {
    desiredGroups: after,
    valid: true,
    inPanic: false,
    explanation: {
      readyGroups: 2,
      requestedGroups: 2,
      signals: [],
      stableWinner: null,
      panicWinner: null,
      rawStableWant: before,
      rawPanicWant: before,
      maxScaleUp: null,
      maxScaleDown: null,
      panic: { inPanic: false, transition: 'none', ratio: null, threshold: 2 },
      stages: [{ stage, before, after, applied: before !== after, reason: 'test' }],
      holdReason: null,
      summary: '',
    },
  };
}

function pool(name: string, decision: Decision, shortfall: PoolFacts['shortfall'] = null): PoolFacts {
  return {
    name,
    specGroups: 2,
    readyGroups: 2,
    desiredGroups: decision.desiredGroups,
    recommendedGroups: decision.desiredGroups,
    decision,
    lastScaleTime: null,
    decisionTime: null,
    ledger: null,
    writeError: null,
    overriddenMessage: null,
    drain: null,
    drainUnavailable: null,
    shortfall,
  };
}

const NOW = '2026-12-03T12:00:00.000Z';

describe('ScalingLimited with a capacity shortfall', () => {
  it('InsufficientCapacity outranks a rate limit on another pool, with want 6, 3 can land, asked 3', () => {
    const status = computeStatus(
      {
        generation: 1,
        mode: 'Apply',
        invalidSpec: null,
        pools: [
          pool('prefill', decisionWith('rateLimit', 9, 4)),
          pool('decode', decisionWith('placement', 6, 3), {
            wantGroups: 6,
            landGroups: 3,
            askedGroups: 3,
            check: 'Enforce',
            detail: 'insufficient capacity',
          }),
        ],
      },
      undefined,
      NOW,
    );
    const limited = status.conditions?.find((c) => c.type === 'ScalingLimited');
    expect(limited).toMatchObject({ status: 'True', reason: 'InsufficientCapacity' });
    expect(limited?.message).toBe('decode: want 6, 3 can land, asked 3 (insufficient capacity)');
  });

  it('without a shortfall the placement stage that applied still reads InsufficientCapacity', () => {
    const status = computeStatus(
      {
        generation: 1,
        mode: 'Apply',
        invalidSpec: null,
        pools: [pool('decode', decisionWith('placement', 6, 3))],
      },
      undefined,
      NOW,
    );
    expect(status.conditions?.find((c) => c.type === 'ScalingLimited')?.reason).toBe('InsufficientCapacity');
  });
});
