// `kvpa controller` as a user runs it: the real binary, a kubeconfig file, the metrics port, SIGTERM.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { repoRoot } from '../harness/cluster.ts';
import { customPath, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const api = new RawApi(cluster);
const LWS = 'leaderworkerset.sigs.k8s.io';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('kvpa controller (the CLI)', () => {
  it('watches, decides, writes status, serves /metrics, and stops cleanly on SIGTERM', async () => {
    const ns = (
      (
        await api.create('/api/v1/namespaces', {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { generateName: 'kvpa-cli-' },
        })
      ).metadata as { name: string }
    ).name;
    await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      metadata: { name: 'cli' },
      spec: {
        replicas: 1,
        leaderWorkerTemplate: {
          size: 1,
          workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
        },
      },
    });
    await api.pod(
      ns,
      'cli-0',
      {
        [`${LWS}/name`]: 'cli',
        [`${LWS}/group-index`]: '0',
        [`${LWS}/worker-index`]: '0',
        [`${LWS}/group-key`]: 'k0',
      },
      true,
    );
    await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
      apiVersion: 'kvpa.io/v1alpha1',
      kind: 'PodAutoscaler',
      metadata: { name: 'cli' },
      spec: {
        policyRef: { name: 'deepseek-r1-disaggregated' },
        // the head pod's IP (10.1.0.1) answers nothing here: the signal is missing, and the pool holds
        metricsSource: { pods: { port: 8000, timeoutSeconds: 1 } },
        pools: [
          {
            name: 'decode',
            scaleTargetRef: {
              apiVersion: 'leaderworkerset.x-k8s.io/v1',
              kind: 'LeaderWorkerSet',
              name: 'cli',
            },
            maxReplicas: 4,
          },
        ],
      },
    });
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'bin/kvpa.js'),
        'controller',
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--namespace',
        ns,
        '--metrics-port',
        String(port),
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => {
      output += String(d);
    });
    child.stderr.on('data', (d) => {
      output += String(d);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let status: PodAutoscalerStatus | undefined;
      for (let i = 0; i < 150 && status?.observedGeneration === undefined; i++) {
        await sleep(200);
        status = (await api.get(`${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/cli`)).status as
          | PodAutoscalerStatus
          | undefined;
      }
      expect(status?.observedGeneration, output).toBe(1);
      expect(status?.mode).toBe('DryRun');
      expect(status?.pools?.[0], JSON.stringify(status)).toMatchObject({
        name: 'decode',
        replicas: 1,
        readyReplicas: 1,
      });
      const metricsCondition = status?.conditions?.find((c) => c.type === 'MetricsAvailable');
      expect(metricsCondition?.status).toBe('False');
      // nothing was written to the target: dry-run, and missing data holds
      expect(
        (
          (await api.get(`${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/cli`))
            .spec as { replicas: number }
        ).replicas,
      ).toBe(1);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain(`kvpa_pool_spec_groups{namespace="${ns}",name="cli",pool="decode"} 1`);
      expect(metrics).toContain('kvpa_tick_duration_seconds_bucket');
    } finally {
      child.kill('SIGTERM');
    }
    const code = await Promise.race([exited, sleep(10_000).then(() => 'timeout' as const)]);
    expect(code, output).toBe(0);
    expect(output).toContain('shutting down');
  });
});
