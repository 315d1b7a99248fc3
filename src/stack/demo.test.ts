import { describe, expect, it } from 'vitest';
import { loadPolicies } from '../api/documents.ts';
import { PodAutoscalerSchema } from '../api/podautoscaler.ts';
import { resolveAll } from '../api/resolve.ts';
import { demoLeaderWorkerSet, demoPodAutoscaler, lwsName, ROLE_LABEL } from './demo.ts';

describe('the live stack workload', () => {
  it('names the LWS the way KServe renders a multi-node LLMInferenceService', () => {
    expect(lwsName('decode')).toBe('deepseek-r1-kserve-mn');
    expect(lwsName('prefill', 'r1')).toBe('r1-kserve-mn-prefill');
  });

  it('labels every pod with its role and asks for whole 8-GPU nodes', () => {
    const lws = demoLeaderWorkerSet('prefill', { namespace: 'demo' }) as {
      spec: {
        leaderWorkerTemplate: {
          size: number;
          workerTemplate: { metadata: { labels: Record<string, string> } };
        };
      };
    };
    expect(lws.spec.leaderWorkerTemplate.size).toBe(2);
    expect(lws.spec.leaderWorkerTemplate.workerTemplate.metadata.labels[ROLE_LABEL]).toBe('prefill');
  });

  it('builds a PodAutoscaler that the API accepts and that resolves both pools from the shipped preset', () => {
    const pa = demoPodAutoscaler({
      namespace: 'demo',
      mode: 'Apply',
      metricsSource: { prometheus: { address: 'http://127.0.0.1:9090' } },
      grafana: { url: 'http://127.0.0.1:3000', tokenSecretName: 'grafana' },
    });
    const parsed = PodAutoscalerSchema.safeParse(pa);
    expect(parsed.error?.issues ?? []).toEqual([]);
    const { pools, errors } = resolveAll(pa.spec, loadPolicies().policies);
    expect(errors).toEqual([]);
    const decode = pools.find((p) => p.name === 'decode');
    expect(decode?.metrics.map((m) => m.type)).toEqual(['kvCacheUtilization', 'generationTokens']);
    expect(decode?.stableWindowSeconds).toBe(30);
    expect(decode?.scaleDownDelaySeconds).toBe(60);
    // The preset's 600 s horizon would hold every scale-down of the compressed demo for 10 minutes.
    expect(decode?.horizonSeconds).toBe(30);
  });
});
