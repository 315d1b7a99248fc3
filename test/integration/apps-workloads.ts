// apps/v1 workloads for the drain integration tests, written as their controllers and the kubelet would: no
// controller-manager or kubelet runs in the harness, so each test writes the pods, their status and the set's.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { customPath, type Json, type RawApi } from './actuate-fixtures.ts';

export const GATED_SPEC: Json = {
  containers: [{ name: 'engine', image: 'example.invalid/engine:1' }],
  readinessGates: [{ conditionType: 'kvpa.io/serving' }],
};

export function appsWorkloads(api: RawApi, kubeConfig: KubeConfig, namespace: () => string) {
  const pods = () => `/api/v1/namespaces/${namespace()}/pods`;
  const statefulSets = () => `/apis/apps/v1/namespaces/${namespace()}/statefulsets`;
  const deployments = () => `/apis/apps/v1/namespaces/${namespace()}/deployments`;
  const paBase = () => customPath('kvpa.io', 'v1alpha1', namespace(), 'podautoscalers');

  /** A running pod of the gated template, Ready and routed (kvpa.io/serving True) as kvpa left it. */
  async function runningPod(name: string, labels: Record<string, string>, extra: Json = {}): Promise<void> {
    await api.create(pods(), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels, ...extra },
      spec: GATED_SPEC,
    });
    await api.setStatus(`${pods()}/${name}`, {
      phase: 'Running',
      podIP: '10.7.0.1',
      conditions: [
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
        { type: 'kvpa.io/serving', status: 'True' },
      ],
    });
  }

  return {
    paBase,

    /** StatefulSet `name` (OrderedReady) with `replicas` Ready pods `<name>-<ordinal>`. */
    async statefulSet(name: string, replicas: number): Promise<void> {
      await api.create(statefulSets(), {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name },
        spec: {
          replicas,
          serviceName: name,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: GATED_SPEC },
        },
      });
      await this.setReady('StatefulSet', name, replicas);
      for (let i = 0; i < replicas; i++) await runningPod(`${name}-${i}`, { app: name });
    },

    /** Deployment `name` whose ReplicaSet `<name>-7c9d` runs one Ready pod `<name>-7c9d-<suffix>` per suffix. */
    async deployment(name: string, suffixes: readonly string[]): Promise<string[]> {
      await api.create(deployments(), {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name },
        spec: {
          replicas: suffixes.length,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: GATED_SPEC },
        },
      });
      await this.setReady('Deployment', name, suffixes.length);
      const rs = `${name}-7c9d`;
      const names = suffixes.map((s) => `${rs}-${s}`);
      for (const pod of names) {
        await runningPod(
          pod,
          { app: name, 'pod-template-hash': '7c9d' },
          {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs, uid: `uid-${rs}`, controller: true },
            ],
          },
        );
      }
      return names;
    },

    /** status.readyReplicas as the workload's controller reports it (a drained pod is not Ready). */
    async setReady(kind: 'StatefulSet' | 'Deployment', name: string, ready: number): Promise<void> {
      const base = kind === 'StatefulSet' ? statefulSets() : deployments();
      await api.setStatus(`${base}/${name}`, {
        replicas: ready,
        readyReplicas: ready,
        availableReplicas: ready,
      });
    },

    async replicasOf(kind: 'StatefulSet' | 'Deployment', name: string): Promise<number> {
      const base = kind === 'StatefulSet' ? statefulSets() : deployments();
      return ((await api.get(`${base}/${name}`)).spec as { replicas: number }).replicas;
    },

    async deletePod(name: string): Promise<void> {
      await api.delete(`${pods()}/${name}?gracePeriodSeconds=0`);
    },

    /** The kvpa.io/serving condition of each pod labelled app=`app`, as `<pod>: True|False`. */
    async servingByPod(app: string): Promise<string[]> {
      const list = await kubeConfig
        .makeApiClient(CoreV1Api)
        .listNamespacedPod({ namespace: namespace(), labelSelector: `app=${app}` });
      return list.items
        .map((p) => {
          const serving = p.status?.conditions?.find((c) => c.type === 'kvpa.io/serving')?.status;
          return `${p.metadata?.name}: ${serving}`;
        })
        .sort();
    },

    async poolStatus(pa: string) {
      return ((await api.get(`${paBase()}/${pa}`)).status as PodAutoscalerStatus | undefined)?.pools?.[0];
    },

    /** A PodAutoscaler in Apply whose one pool `decode` scales `kind/name` on kvCacheUtilization at 0.7. */
    podAutoscaler(
      name: string,
      kind: 'StatefulSet' | 'Deployment',
      target: string,
      drainTimeout = 300,
    ): Json {
      return {
        apiVersion: 'kvpa.io/v1alpha1',
        kind: 'PodAutoscaler',
        metadata: { name },
        spec: {
          mode: 'Apply',
          metricsSource: { pods: { port: 8000 } },
          pools: [
            {
              name: 'decode',
              scaleTargetRef: { apiVersion: 'apps/v1', kind, name: target },
              minReplicas: 1,
              maxReplicas: 8,
              metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
              stableWindowSeconds: 6,
              scaleDownDelaySeconds: 0,
              tickSeconds: 1,
              drainTimeoutSeconds: drainTimeout,
            },
          ],
        },
      };
    },
  };
}
