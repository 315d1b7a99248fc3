// vitest globalSetup for the "integration" project: ONE cluster shared by all integration tests.
// Tests read it with inject('cluster'); KUBECONFIG is also set for code that loads the default config.
import type { TestProject } from 'vitest/node';
import { type ClusterInfo, startCluster } from './cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const startedMs = Date.now();
  const cluster = await startCluster();
  process.stderr.write(
    `[kvpa-cluster] cluster up in ${((Date.now() - startedMs) / 1000).toFixed(1)}s; KUBECONFIG=${cluster.kubeconfigPath}\n`,
  );
  const { kubeConfig: _kc, stop: _stop, ...info } = cluster;
  project.provide('cluster', info);
  process.env.KUBECONFIG = cluster.kubeconfigPath;
  return async () => {
    await cluster.stop();
  };
}
