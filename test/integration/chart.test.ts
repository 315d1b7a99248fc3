// The Helm chart in deploy/chart: `helm lint`, the plain YAML in deploy/ equal to its rendering, and
// `helm template | kubectl apply --dry-run=server` accepted by the real API server (strict field
// validation, Pod Security `restricted` warnings treated as failures).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import { CHART_DIR, helmTemplate, plainDeployFiles, repoRoot } from '../../scripts/deploy-manifests.ts';
import { ensureTools, runTool, type Tools } from '../harness/tools.ts';
import { RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const admin = new RawApi(cluster);
const chart = path.join(repoRoot, CHART_DIR);
let tools: Tools;
/** The release namespace, labelled to warn on anything Pod Security `restricted` would refuse. */
let releaseNs = '';
/** A namespace the controller is confined to, and where it may read the Grafana token. */
let watchedNs = '';

async function namespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const ns = await admin.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { generateName: prefix, labels },
  });
  return (ns.metadata as { name: string }).name;
}

/**
 * kubectl apply --dry-run=server of `yaml`. Server-side apply with --force-conflicts: rbac.test.ts
 * creates the same cluster-scoped objects (ClusterRoleBinding kvpa-controller, bound in kvpa-system) in
 * this shared API server; a dry run changes nothing, so taking their fields over is harmless.
 */
function dryRunApply(yaml: string) {
  return runTool(
    tools.kubectl,
    [
      '--kubeconfig',
      cluster.kubeconfigPath,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=kvpa-chart-test',
      '--dry-run=server',
      '--validate=strict',
      '-f',
      '-',
    ],
    { input: yaml },
  );
}

function kindsAndNames(yaml: string): string[] {
  return YAML.parseAllDocuments(yaml)
    .map((d) => d.toJSON() as { kind: string; metadata: { name: string; namespace?: string } } | null)
    .filter((m) => m !== null)
    .map((m) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`)
    .sort();
}

beforeAll(async () => {
  tools = await ensureTools();
  releaseNs = await namespace('kvpa-chart-', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/warn': 'restricted',
  });
  watchedNs = await namespace('kvpa-chart-watched-');
}, 900_000);

describe('the Helm chart', () => {
  it('passes helm lint --strict', async () => {
    const r = await runTool(tools.helm, ['lint', '--strict', chart]);
    expect(r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.code).toBe(0);
  });

  it('has the package version as its version and appVersion (0.1.0 now)', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const meta = YAML.parse(readFileSync(path.join(chart, 'Chart.yaml'), 'utf8')) as {
      version: string;
      appVersion: string;
    };
    expect([meta.version, meta.appVersion]).toEqual([pkg.version, pkg.version]);
  });

  it('renders exactly the committed deploy/*.yaml and chart CRD copy (npm run gen:deploy)', async () => {
    const wanted = await plainDeployFiles(tools.helm);
    expect([...wanted.keys()].sort()).toEqual([
      'deploy/00-namespace.yaml',
      'deploy/10-serviceaccount.yaml',
      'deploy/20-rbac.yaml',
      'deploy/30-deployment.yaml',
      'deploy/40-service.yaml',
      'deploy/chart/crds/podautoscalers.kvpa.io.yaml',
    ]);
    for (const [file, text] of wanted) {
      const committed = existsSync(path.join(repoRoot, file))
        ? readFileSync(path.join(repoRoot, file), 'utf8')
        : '';
      expect(committed, `${file} is stale: run npm run gen:deploy`).toBe(text);
    }
  });

  it('default values: 8 objects and the CRD accepted by the API server, no Pod Security warning', async () => {
    const yaml = await helmTemplate(tools.helm, releaseNs, ['--include-crds']);
    expect(kindsAndNames(yaml)).toEqual([
      'ClusterRole//kvpa-controller',
      'ClusterRole//kvpa-grafana-token-reader',
      'ClusterRoleBinding//kvpa-controller',
      'CustomResourceDefinition//podautoscalers.kvpa.io',
      `Deployment/${releaseNs}/kvpa-controller`,
      `Role/${releaseNs}/kvpa-leader-election`,
      `RoleBinding/${releaseNs}/kvpa-leader-election`,
      `Service/${releaseNs}/kvpa-controller-metrics`,
      `ServiceAccount/${releaseNs}/kvpa-controller`,
    ]);
    const r = await dryRunApply(yaml);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('deployment.apps/kvpa-controller serverside-applied (server dry run)');
    expect(r.stdout.trim().split('\n')).toHaveLength(9);
    // The control: the same Deployment with privilege escalation allowed draws the warning.
    const loose = await dryRunApply(
      yaml.replace('allowPrivilegeEscalation: false', 'allowPrivilegeEscalation: true'),
    );
    expect(loose.stderr).toContain(
      'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false',
    );
  });

  it('one watched namespace: --namespace, a RoleBinding there instead of the ClusterRoleBinding, Secret grant and flags', async () => {
    const yaml = await helmTemplate(tools.helm, releaseNs, [
      '--set-json',
      `watchNamespaces=["${watchedNs}"]`,
      '--set-json',
      `grafana.tokenSecretNamespaces=["${watchedNs}"]`,
      '--set-json',
      'grafana.allowedHosts=["https://grafana.example.com","grafana.internal:3000"]',
      '--set',
      'metrics.bindAddress=0.0.0.0,replicas=3,image.repository=registry.example.com/kvpa,image.tag=v9',
    ]);
    const objects = kindsAndNames(yaml);
    expect(objects).not.toContain('ClusterRoleBinding//kvpa-controller');
    expect(objects).toContain(`RoleBinding/${watchedNs}/kvpa-controller`);
    expect(objects).toContain(`RoleBinding/${watchedNs}/kvpa-grafana-token-reader`);
    const deployment = YAML.parseAllDocuments(yaml)
      .map((d) => d.toJSON())
      .find((m) => m?.kind === 'Deployment') as {
      spec: { replicas: number; template: { spec: { containers: { image: string; args: string[] }[] } } };
    };
    expect(deployment.spec.replicas).toBe(3);
    const [container] = deployment.spec.template.spec.containers;
    expect(container?.image).toBe('registry.example.com/kvpa:v9');
    expect(container?.args).toEqual([
      '--leader-elect',
      '--namespace',
      watchedNs,
      '--metrics-port',
      '9090',
      '--metrics-address',
      '0.0.0.0',
      '--allowed-hosts',
      'https://grafana.example.com,grafana.internal:3000',
      '--log-level',
      'info',
    ]);
    const r = await dryRunApply(yaml);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('refuses bad values naming the field: a port of 0, two watched namespaces, 2 replicas without a Lease', async () => {
    const port = await runTool(tools.helm, ['template', 'kvpa', chart, '--set', 'metrics.port=0']);
    expect(port.code).not.toBe(0);
    expect(port.stderr).toContain("at '/metrics/port': minimum: got 0, want 1");
    const two = await runTool(tools.helm, [
      'template',
      'kvpa',
      chart,
      '--set-json',
      'watchNamespaces=["a","b"]',
    ]);
    expect(two.code).not.toBe(0);
    expect(two.stderr).toContain('/watchNamespaces');
    const noLease = await runTool(tools.helm, [
      'template',
      'kvpa',
      chart,
      '--set',
      'leaderElection.enabled=false',
    ]);
    expect(noLease.code).not.toBe(0);
    expect(noLease.stderr).toContain('replicas > 1 needs leaderElection.enabled=true');
  });
});
