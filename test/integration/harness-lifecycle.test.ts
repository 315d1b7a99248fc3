// The harness's own promise: a cluster it starts is gone after stop(), processes and files alike.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { startCluster } from '../harness/cluster.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('harness lifecycle', () => {
  it('starts a second, independent cluster and leaves no process or file behind after stop()', async () => {
    const cluster = await startCluster({ installCrds: false, log: () => {} });
    let pids: number[] = [];
    try {
      pids = readdirSync(cluster.workDir)
        .filter((f) => f.endsWith('.pgid'))
        .map((f) => Number(readFileSync(path.join(cluster.workDir, f), 'utf8')));
      expect(pids).toHaveLength(2); // etcd and kube-apiserver
      for (const pid of pids) expect(alive(pid)).toBe(true);
      const namespaces = await cluster.kubeConfig().makeApiClient(CoreV1Api).listNamespace();
      expect(namespaces.items.length).toBeGreaterThan(0);
      expect(cluster.thirdPartyCrds).toEqual([]);
    } finally {
      await cluster.stop();
    }
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(existsSync(cluster.workDir)).toBe(false);
  });
});
