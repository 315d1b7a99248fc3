import { describe, expect, it } from 'vitest';
import { podTargetGroups } from './pod-sd-bridge.ts';
import { kubernetesSdJob } from './prometheus.ts';

describe('the Kubernetes SD stand-in', () => {
  it('a pod becomes what role pod would discover: one target per container port, or per port-less container', () => {
    const groups = podTargetGroups({
      metadata: {
        name: 'dc-0',
        namespace: 'ns',
        labels: { 'leaderworkerset.sigs.k8s.io/worker-index': '0', 'llm-d.ai/role': 'decode' },
        annotations: { 'kvpa.io/emulated-metrics-port': '40123' },
      },
      spec: {
        containers: [{ name: 'vllm', ports: [{ containerPort: 8000, name: 'http' }] }, { name: 'sidecar' }],
      },
      status: { podIP: '10.0.0.7', phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
    });
    expect(groups.map((g) => g.targets[0])).toEqual(['10.0.0.7:8000', '10.0.0.7']);
    expect(groups[0]?.labels).toMatchObject({
      __meta_kubernetes_namespace: 'ns',
      __meta_kubernetes_pod_name: 'dc-0',
      __meta_kubernetes_pod_ready: 'true',
      __meta_kubernetes_pod_label_llm_d_ai_role: 'decode',
      __meta_kubernetes_pod_labelpresent_llm_d_ai_role: 'true',
      __meta_kubernetes_pod_annotation_kvpa_io_emulated_metrics_port: '40123',
      __meta_kubernetes_pod_container_port_number: '8000',
      __meta_kubernetes_pod_container_init: 'false',
    });
    expect(
      podTargetGroups({ metadata: { name: 'x' }, spec: { containers: [{ name: 'c' }] }, status: {} }),
    ).toEqual([]);
  });

  it('the job keeps annotated leaders and points the address at the loopback port', () => {
    const job = kubernetesSdJob(
      {
        apiServer: 'https://127.0.0.1:1',
        caFile: '/ca',
        namespaces: ['a'],
        metricsPortAnnotation: 'kvpa.io/emulated-metrics-port',
      },
      '/token',
    );
    expect(job.relabel_configs).toContainEqual({
      source_labels: ['__meta_kubernetes_pod_annotation_kvpa_io_emulated_metrics_port'],
      regex: '([0-9]+)',
      target_label: '__address__',
      replacement: '127.0.0.1:$1',
    });
  });
});
