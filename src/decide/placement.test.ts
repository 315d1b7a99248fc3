import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, initialState } from './kpa.ts';
import {
  applyPlacement,
  feasible,
  type GroupShape,
  groupsThatFit,
  type NodeRoom,
  observePlacement,
  type PlacementObservation,
} from './placement.ts';
import { KVPA_EXTENSIONS } from './spec.ts';
import type { DeciderSpec, Decision } from './types.ts';

const GPU = 'nvidia.com/gpu';
/** A DeepSeek-R1 group of two 8-GPU pods (leader + one worker). */
const group16: GroupShape = { gpuResource: GPU, pods: [{ gpus: 8 }, { gpus: 8 }] };

function node(name: string, freeGpus: number, extra: Partial<NodeRoom> = {}): NodeRoom {
  return { name, labels: {}, taints: [], freeGpus, schedulable: true, ...extra };
}

function decisionOf(desiredGroups: number): Decision {
  return {
    desiredGroups,
    valid: true,
    inPanic: false,
    explanation: {
      readyGroups: 2,
      requestedGroups: 2,
      signals: [],
      stableWinner: null,
      panicWinner: null,
      rawStableWant: desiredGroups,
      rawPanicWant: desiredGroups,
      maxScaleUp: null,
      maxScaleDown: null,
      panic: { inPanic: false, transition: 'none', ratio: null, threshold: 2 },
      stages: [],
      holdReason: null,
      summary: '',
    },
  };
}

function seen(fitGroups: number, unplacedGroups = 0, unschedulableGroups = 0): PlacementObservation {
  return { fitGroups, unplacedGroups, unschedulableGroups, limitedBy: 'nodes', detail: 'test' };
}

describe('groupsThatFit', () => {
  it('five 8-GPU nodes fit two 16-GPU groups, not 2.5', () => {
    const nodes = [1, 2, 3, 4, 5].map((i) => node(`n${i}`, 8));
    expect(groupsThatFit(group16, nodes, 10)).toBe(2);
  });

  it('a 16-GPU node fits a whole 2×8 group on its own; 12 free GPUs spread as 6+6 fit none', () => {
    expect(groupsThatFit(group16, [node('big', 16)], 10)).toBe(1);
    expect(groupsThatFit(group16, [node('a', 6), node('b', 6)], 10)).toBe(0);
  });

  it('best fit keeps the big node for the big pod: a 4+8 group fits nodes of 4 and 8 free', () => {
    const mixed: GroupShape = { gpuResource: GPU, pods: [{ gpus: 4 }, { gpus: 8 }] };
    expect(groupsThatFit(mixed, [node('eight', 8), node('four', 4)], 10)).toBe(1);
  });

  it('the limit bounds the search: 100 free nodes and a limit of 3 give 3', () => {
    const nodes = Array.from({ length: 100 }, (_, i) => node(`n${i}`, 8));
    expect(groupsThatFit(group16, nodes, 3)).toBe(3);
  });

  it('cordoned, tainted and mislabelled nodes hold no room for the group', () => {
    const pod = { gpus: 8, nodeSelector: { pool: 'gpu' } };
    const shape: GroupShape = { gpuResource: GPU, pods: [pod, pod] };
    const nodes = [
      node('cordoned', 8, { labels: { pool: 'gpu' }, schedulable: false }),
      node('tainted', 8, { labels: { pool: 'gpu' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }] }),
      node('other', 8, { labels: { pool: 'cpu' } }),
      node('ok', 8, { labels: { pool: 'gpu' } }),
    ];
    expect(groupsThatFit(shape, nodes, 10)).toBe(0);
    const tolerant: GroupShape = {
      gpuResource: GPU,
      pods: [pod, { ...pod, tolerations: [{ key: 'gpu', operator: 'Exists' }] }],
    };
    expect(groupsThatFit(tolerant, nodes, 10)).toBe(1);
  });
});

describe('feasible', () => {
  const labelled = node('n', 8, { labels: { zone: 'a', 'gpu.count': '8' } });
  it('required node affinity: any term may match, all its expressions must', () => {
    const pod = {
      gpus: 8,
      requiredTerms: [
        [{ key: 'zone', operator: 'In' as const, values: ['b'] }],
        [
          { key: 'zone', operator: 'In' as const, values: ['a'] },
          { key: 'gpu.count', operator: 'Gt' as const, values: ['4'] },
        ],
      ],
    };
    expect(feasible(pod, labelled)).toBe(true);
    expect(
      feasible({ gpus: 8, requiredTerms: [[{ key: 'zone', operator: 'NotIn', values: ['a'] }]] }, labelled),
    ).toBe(false);
    expect(
      feasible({ gpus: 8, requiredTerms: [[{ key: 'spot', operator: 'DoesNotExist' }]] }, labelled),
    ).toBe(true);
  });

  it('a PreferNoSchedule taint does not filter; a NoExecute one needs its toleration, value and all', () => {
    const soft = node('soft', 8, { taints: [{ key: 'x', effect: 'PreferNoSchedule' }] });
    const hard = node('hard', 8, { taints: [{ key: 'x', value: 'y', effect: 'NoExecute' }] });
    expect(feasible({ gpus: 8 }, soft)).toBe(true);
    expect(feasible({ gpus: 8, tolerations: [{ key: 'x', value: 'z' }] }, hard)).toBe(false);
    expect(feasible({ gpus: 8, tolerations: [{ key: 'x', value: 'y', effect: 'NoExecute' }] }, hard)).toBe(
      true,
    );
  });
});

describe('observePlacement', () => {
  it('a quota of 40 free GPUs caps 4 node-fitting 16-GPU groups at 2, and says the quota limited it', () => {
    const nodes = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => node(`n${i}`, 8));
    const p = observePlacement(
      group16,
      nodes,
      [{ kind: 'ResourceQuota', name: 'gpu-quota', freeGpus: 40 }],
      { unplacedGroups: 0, unschedulableGroups: 0 },
      10,
    );
    expect(p.fitGroups).toBe(2);
    expect(p.limitedBy).toBe('quota');
    expect(p.detail).toContain('ResourceQuota gpu-quota leaves 40 nvidia.com/gpu');
  });
});

describe('applyPlacement', () => {
  it('want 6 from 2 with room for 1 more is asked as 3, with the numbers', () => {
    const { decision, shortfall } = applyPlacement(decisionOf(6), 2, seen(1), 'Enforce');
    expect(decision.desiredGroups).toBe(3);
    expect(shortfall).toMatchObject({ wantGroups: 6, landGroups: 3, askedGroups: 3 });
    expect(decision.explanation.stages.at(-1)).toMatchObject({ stage: 'placement', before: 6, after: 3 });
    expect(decision.explanation.summary).toContain('insufficient capacity: want 6, 3 can land');
  });

  it('an unplaced group claims the room first: want 4 from 3 (1 unplaced) with room for 1 stays at 3', () => {
    const { decision } = applyPlacement(decisionOf(4), 3, seen(1, 1), 'Enforce');
    expect(decision.desiredGroups).toBe(3);
  });

  it('AskAnyway keeps want 6 and still reports that 3 can land', () => {
    const { decision, shortfall } = applyPlacement(decisionOf(6), 2, seen(1), 'AskAnyway');
    expect(decision.desiredGroups).toBe(6);
    expect(shortfall).toMatchObject({ wantGroups: 6, landGroups: 3, askedGroups: 6, check: 'AskAnyway' });
  });

  it('placement never lowers a pool: a want of 2 from 5 with no room stays 2', () => {
    expect(applyPlacement(decisionOf(2), 5, seen(0), 'Enforce').decision.desiredGroups).toBe(2);
  });

  it('2 unschedulable groups keep the shortage reported while the want holds at 4', () => {
    const { decision, shortfall } = applyPlacement(decisionOf(4), 4, seen(0, 2, 2), 'Enforce');
    expect(decision.desiredGroups).toBe(4);
    expect(shortfall).toMatchObject({ wantGroups: 4, landGroups: 2 });
  });

  it('an unknown placement limits nothing and says why', () => {
    const { decision, shortfall } = applyPlacement(
      decisionOf(6),
      2,
      { unknown: 'listing nodes failed' },
      'Enforce',
    );
    expect(decision.desiredGroups).toBe(6);
    expect(shortfall).toBeNull();
    expect(decision.explanation.stages.at(-1)?.reason).toContain('capacity unknown (listing nodes failed)');
  });

  it('property: the ask is between the request and the want, and within the ceiling unless AskAnyway', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 64 }),
        fc.integer({ min: 0, max: 8 }),
        fc.boolean(),
        (want, requested, fit, unplaced, anyway) => {
          const u = Math.min(unplaced, requested);
          const { decision } = applyPlacement(
            decisionOf(want),
            requested,
            seen(fit, u, u),
            anyway ? 'AskAnyway' : 'Enforce',
          );
          const asked = decision.desiredGroups;
          if (want <= requested) return asked === want;
          if (anyway) return asked === want;
          return asked >= requested && asked <= want && (asked === requested || asked <= requested - u + fit);
        },
      ),
    );
  });
});

describe('groupsThatFit property', () => {
  it('the groups counted as fitting never need more GPUs than the feasible nodes have free', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 16 }), { minLength: 0, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 4 }),
        (free, pods) => {
          const nodes = free.map((f, i) => node(`n${i}`, f));
          const shape: GroupShape = { gpuResource: GPU, pods: pods.map((gpus) => ({ gpus })) };
          const fit = groupsThatFit(shape, nodes, 100);
          const perGroup = pods.reduce((s, g) => s + g, 0);
          const total = free.reduce((s, f) => s + f, 0);
          return fit * perGroup <= total && groupsThatFit(shape, [...nodes, node('extra', 16)], 100) >= fit;
        },
      ),
    );
  });
});

describe('the startup gate and unschedulable groups', () => {
  const spec: DeciderSpec = {
    stableWindowSeconds: 60,
    panicThreshold: 2,
    maxScaleUpRate: 10,
    maxScaleDownRate: 2,
    scaleDownDelaySeconds: 0,
    activationScale: 1,
    reachable: true,
    minReplicas: 1,
    maxReplicas: 20,
    tickSeconds: 15,
    extensions: { ...KVPA_EXTENSIONS, horizonSeconds: 0 },
  };
  const kv = (total: number) => ({
    name: 'kvCacheUtilization',
    targetPerGroup: 0.7,
    state: 'ok' as const,
    stableTotal: total,
    panicTotal: total,
  });

  it('4 ready + 2 starting wanting 7 wait; the same 2 unschedulable do not hold the want of 7', () => {
    const state = { ...initialState(spec, 4, 0, 6), panicSinceSeconds: null, maxPanicGroups: 0 };
    const obs = { readyGroups: 4, requestedGroups: 6, signals: [kv(4.6)] };
    const waiting = decide(spec, { ...state, pendingSinceSeconds: 0 }, obs, 30);
    expect(waiting.decision.desiredGroups).toBe(6);
    const stuck = decide(spec, { ...state, pendingSinceSeconds: 0 }, { ...obs, unschedulableGroups: 2 }, 30);
    expect(stuck.decision.desiredGroups).toBe(7);
    expect(stuck.decision.explanation.stages.find((s) => s.stage === 'startup')?.reason).toContain(
      '2 unschedulable, not counted as starting',
    );
  });
});
