/**
 * The kubeconfig of the commands that talk to a cluster (controller, recommend). A file that cannot be
 * read or names no usable cluster fails here, naming --kubeconfig and the fix, before any API call
 * (the client would otherwise throw `No active cluster!` from deep inside the first request).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { UsageError } from './shell.ts';

/** Loads FILE, or the default kubeconfig ($KUBECONFIG, ~/.kube/config, in-cluster) when undefined. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  const where =
    file === undefined ? 'the default kubeconfig ($KUBECONFIG or ~/.kube/config)' : `--kubeconfig ${file}`;
  try {
    if (file !== undefined) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (e) {
    throw new UsageError(`${where}: cannot load it: ${firstLine(e)}; check the path and the YAML`);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null || typeof cluster.server !== 'string' || cluster.server === '') {
    const context = kc.getCurrentContext();
    throw new UsageError(
      `${where}: no cluster to talk to (current-context ${JSON.stringify(context ?? '')} names no cluster with a server); set current-context to a context whose cluster has a server URL`,
    );
  }
  return kc;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}
