/**
 * The live stack's workload: DeepSeek-R1 prefill and decode as two LeaderWorkerSets, named and labelled
 * the way KServe's LLMInferenceService renders a multi-node deployment (kserve/kserve
 * pkg/controller/v1alpha2/llmisvc/workload_multi_node.go:
 * `<name>-kserve-mn` for decode, `<name>-kserve-mn-prefill`, `llm-d.ai/role` on the pods), and the
 * PodAutoscaler that scales both. Pure: options in, objects out.
 */
import { SERVING_CONDITION } from '../actuate/routing.ts';
import type { PodAutoscaler } from '../api/podautoscaler.ts';

export type DemoPool = 'prefill' | 'decode';

export const ROLE_LABEL = 'llm-d.ai/role';
/** Pods request whole GPU nodes, so a group of `size` pods needs `size` fake 8-GPU nodes. */
export const GPUS_PER_POD = 8;

export interface DemoOptions {
  readonly namespace: string;
  /** LLMInferenceService name; the LWS names derive from it. */
  readonly serviceName?: string;
  /** Pods per group (leader + workers): 16-GPU prefill = 2, 32-GPU decode = 4 (the lab's calibration, deepseek-r1-h200.yaml). */
  readonly podsPerGroup?: Readonly<Record<DemoPool, number>>;
  readonly initialGroups?: Readonly<Record<DemoPool, number>>;
  /** Node selection for the fake GPU nodes (kwok). */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Pools whose pod template carries kvpa's readiness gate, so kvpa drains them before a scale-down. */
  readonly drainGate?: readonly DemoPool[];
}

export function lwsName(pool: DemoPool, serviceName = 'deepseek-r1'): string {
  return pool === 'decode' ? `${serviceName}-kserve-mn` : `${serviceName}-kserve-mn-prefill`;
}

export const DEFAULT_PODS_PER_GROUP: Readonly<Record<DemoPool, number>> = { prefill: 2, decode: 4 };

/** One LeaderWorkerSet per role; every pod asks for a whole 8-GPU node. */
export function demoLeaderWorkerSet(pool: DemoPool, options: DemoOptions): Record<string, unknown> {
  const serviceName = options.serviceName ?? 'deepseek-r1';
  const size = (options.podsPerGroup ?? DEFAULT_PODS_PER_GROUP)[pool];
  const labels = {
    'app.kubernetes.io/name': serviceName,
    'app.kubernetes.io/part-of': 'llminferenceservice',
    'kserve.io/component': 'workload',
    [ROLE_LABEL]: pool,
  };
  const podSpec = {
    containers: [
      {
        name: 'main',
        // Never pulled: kwok stands in for the kubelet, and kvpa's emulated engine serves /metrics.
        image: 'vllm/vllm-openai:emulated',
        ports: [{ name: 'metrics', containerPort: 8000 }],
        resources: {
          requests: { 'nvidia.com/gpu': String(GPUS_PER_POD) },
          limits: { 'nvidia.com/gpu': String(GPUS_PER_POD) },
        },
      },
    ],
    ...(options.nodeSelector !== undefined ? { nodeSelector: { ...options.nodeSelector } } : {}),
    // The one-line template change that lets kvpa take a group out of routing (src/actuate/routing.ts).
    ...(options.drainGate?.includes(pool) ? { readinessGates: [{ conditionType: SERVING_CONDITION }] } : {}),
  };
  return {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name: lwsName(pool, serviceName), namespace: options.namespace, labels },
    spec: {
      replicas: (options.initialGroups ?? { prefill: 1, decode: 1 })[pool],
      startupPolicy: 'LeaderCreated',
      leaderWorkerTemplate: {
        size,
        restartPolicy: 'RecreateGroupOnPodRestart',
        workerTemplate: { metadata: { labels }, spec: podSpec },
      },
    },
  };
}

export interface DemoAutoscalerOptions {
  readonly namespace: string;
  readonly name?: string;
  readonly serviceName?: string;
  readonly mode: 'Apply' | 'DryRun';
  /** Prometheus base URL, or a direct-scrape port. */
  readonly metricsSource: { prometheus: { address: string } } | { pods: { port: number } };
  readonly grafana?: { url: string; tokenSecretName: string };
  readonly maxGroups?: Readonly<Record<DemoPool, number>>;
  /**
   * The demo compresses an hour into minutes, so the presets' windows (2–3 min stable, 10–15 min
   * scale-down delay) are scaled down by the same idea: these overrides keep their shape.
   */
  readonly stableWindowSeconds?: number;
  readonly scaleDownDelaySeconds?: number;
  readonly startupTimeoutSeconds?: number;
  /**
   * The demo fleet's cold start (default 30). The presets' 600 s would also be the shortest scale-down
   * delay in pools with a work signal, so it is compressed with the other windows.
   */
  readonly horizonSeconds?: number;
  readonly staleAfterSeconds?: number;
  readonly tickSeconds?: number;
  readonly panicWindowPercentage?: number;
  /** Per-pool drain timeout (0: draining off); the preset's default otherwise. */
  readonly drainTimeoutSeconds?: number;
}

/** A PodAutoscaler for both pools, from the shipped deepseek-r1-disaggregated preset. */
export function demoPodAutoscaler(o: DemoAutoscalerOptions): PodAutoscaler {
  const serviceName = o.serviceName ?? 'deepseek-r1';
  const maxGroups = o.maxGroups ?? { prefill: 4, decode: 4 };
  const pool = (name: DemoPool) => ({
    name,
    scaleTargetRef: {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      name: lwsName(name, serviceName),
    },
    minReplicas: 1,
    maxReplicas: maxGroups[name],
  });
  return {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name: o.name ?? serviceName, namespace: o.namespace },
    spec: {
      mode: o.mode,
      policyRef: {
        name: 'deepseek-r1-disaggregated',
        overrides: {
          stableWindowSeconds: o.stableWindowSeconds ?? 30,
          panicWindowPercentage: o.panicWindowPercentage ?? 20,
          scaleDownDelaySeconds: o.scaleDownDelaySeconds ?? 60,
          startupTimeoutSeconds: o.startupTimeoutSeconds ?? 180,
          horizonSeconds: o.horizonSeconds ?? 30,
          tickSeconds: o.tickSeconds ?? 1,
          ...(o.drainTimeoutSeconds !== undefined ? { drainTimeoutSeconds: o.drainTimeoutSeconds } : {}),
          missingData: { staleAfterSeconds: o.staleAfterSeconds ?? 10, minQuorumPercentage: 50 },
        },
      },
      metricsSource: o.metricsSource,
      ...(o.grafana !== undefined
        ? {
            grafana: {
              url: o.grafana.url,
              tokenSecretRef: { name: o.grafana.tokenSecretName, key: 'token' },
              tags: ['kvpa-up'],
            },
          }
        : {}),
      pools: [pool('prefill'), pool('decode')],
    },
  } as PodAutoscaler;
}
