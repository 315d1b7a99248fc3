// npm run dev:cluster — a throw-away etcd + kube-apiserver with all CRDs installed, until Ctrl-C.
import { startCluster } from '../test/harness/cluster.ts';

const cluster = await startCluster();
const v = cluster.binaryVersions;
process.stdout.write(
  [
    '',
    `kvpa dev cluster is up (kube-apiserver ${v['kube-apiserver'] ?? '?'}, etcd ${v.etcd ?? '?'})`,
    `  server:     ${cluster.server}`,
    `  kubeconfig: ${cluster.kubeconfigPath}`,
    `  CRDs:       ${cluster.thirdPartyCrds.length} third-party, ${cluster.projectCrds.length} from crds/`,
    '',
    `export KUBECONFIG=${cluster.kubeconfigPath}`,
    '',
    'Press Ctrl-C to stop and delete everything.',
    '',
  ].join('\n'),
);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\n${signal}: stopping the cluster...\n`);
  await cluster.stop();
  process.stdout.write('stopped; work dir removed.\n');
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// Keep the event loop alive until a signal arrives.
setInterval(() => {}, 1 << 30);
