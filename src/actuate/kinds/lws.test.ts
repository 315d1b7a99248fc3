import { describe, expect, it } from 'vitest';
import { kserveOwnerOf, kserveRefusal } from './lws.ts';

/** The multi-node LWSs KServe creates for LLMInferenceService `r1`: decode (main) and prefill. */
const MAIN = 'r1-kserve-mn';
const PREFILL = 'r1-kserve-mn-prefill';

describe('kserveRefusal: the LLMInferenceService field that resets each LWS', () => {
  it('spec.replicas: 2 refuses the main LWS, naming the field and its removal; the prefill LWS is free', () => {
    const isvc = { spec: { replicas: 2 } };
    const refusal = kserveRefusal(MAIN, 'r1', isvc);
    expect(refusal?.reason).toBe('OwnerConflict');
    expect(refusal?.message).toContain('LLMInferenceService r1 sets spec.replicas: 2');
    expect(refusal?.message).toContain(`LeaderWorkerSet ${MAIN}`);
    expect(refusal?.message).toContain('remove spec.replicas (and any spec.scaling block)');
    expect(kserveRefusal(PREFILL, 'r1', isvc)).toBeUndefined();
  });

  it('spec.prefill.replicas: 3 refuses the prefill LWS only; the main LWS is free', () => {
    const isvc = { spec: { prefill: { replicas: 3 } } };
    const refusal = kserveRefusal(PREFILL, 'r1', isvc);
    expect(refusal?.reason).toBe('OwnerConflict');
    expect(refusal?.message).toContain('sets spec.prefill.replicas: 3');
    expect(refusal?.message).toContain('remove spec.prefill.replicas');
    expect(kserveRefusal(MAIN, 'r1', isvc)).toBeUndefined();
  });

  it('spec.replicas: 0 is still set, so it is refused (KServe writes 0 back)', () => {
    expect(kserveRefusal(MAIN, 'r1', { spec: { replicas: 0 } })?.message).toContain('spec.replicas: 0');
  });

  it('neither field set: both LWSs are free (KServe keeps the LWS count, PreserveLWSReplicas)', () => {
    for (const isvc of [{}, { spec: {} }, { spec: { prefill: {} } }]) {
      expect(kserveRefusal(MAIN, 'r1', isvc)).toBeUndefined();
      expect(kserveRefusal(PREFILL, 'r1', isvc)).toBeUndefined();
    }
  });
});

describe('kserveOwnerOf: only an LWS an LLMInferenceService owns is checked', () => {
  it('an LWS owned by serving.kserve.io/v1alpha2 LLMInferenceService r1: owner r1 at v1alpha2', () => {
    const lws = {
      metadata: {
        name: PREFILL,
        ownerReferences: [
          { apiVersion: 'serving.kserve.io/v1alpha2', kind: 'LLMInferenceService', name: 'r1' },
        ],
      },
    };
    expect(kserveOwnerOf(lws)).toEqual({ name: 'r1', version: 'v1alpha2' });
  });

  it('a non-KServe LWS (no owner, another owner, a same-named kind of another group): none', () => {
    const owned = (ownerReferences: { apiVersion?: string; kind?: string; name?: string }[]) => ({
      metadata: { name: 'decode-prefill', ownerReferences },
    });
    expect(kserveOwnerOf({ metadata: { name: 'decode-prefill' } })).toBeUndefined();
    expect(
      kserveOwnerOf(
        owned([{ apiVersion: 'nvidia.com/v1alpha1', kind: 'DynamoGraphDeployment', name: 'dgd' }]),
      ),
    ).toBeUndefined();
    expect(
      kserveOwnerOf(owned([{ apiVersion: 'example.com/v1', kind: 'LLMInferenceService', name: 'r1' }])),
    ).toBeUndefined();
  });
});
