// RBAC acceptance: the shipped deploy/ manifests go into a real API server as they are, and the
// controller runs authenticated as its own ServiceAccount (a TokenRequest token), bound to exactly the
// shipped ClusterRole with RBAC enforced. It must scale an LWS, write status and raise events with no
// 403; the same token must be refused what kvpa does not need; leader election must work with it.
import { readdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import type { PodAutoscalerStatus } from '../../src/api/podautoscaler.ts';
import { secretReader } from '../../src/cli/controller.ts';
import { Controller } from '../../src/control/controller.ts';
import { LeaderElector } from '../../src/control/leader.ts';
import { ManualSignalSource } from '../../src/control/signals.ts';
import { parseExposition } from '../../src/observe/exposition.ts';
import { ControllerMetrics, type MetricsServer, startMetricsServer } from '../../src/report/metrics.ts';
import { kubeConfigWithToken, rawRequest, repoRoot } from '../harness/cluster.ts';
import { customPath, type Json, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const admin = new RawApi(cluster);
const DEPLOY_DIR = path.join(repoRoot, 'deploy');
const SYSTEM_NS = 'kvpa-system';
const SA = 'kvpa-controller';
const LEASE = 'kvpa-controller';
const LWS = 'leaderworkerset.sigs.k8s.io';
const T0_MS = Date.parse('2026-11-23T10:00:00Z');

interface Manifest extends Json {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(DEPLOY_DIR).sort()) {
    if (!/\.ya?ml$/.test(file)) continue;
    for (const doc of YAML.parseAllDocuments(readFileSync(path.join(DEPLOY_DIR, file), 'utf8'))) {
      const m = doc.toJSON() as Manifest | null;
      if (m) out.push(m);
    }
  }
  return out;
}

/** Collection URL of a manifest (the kinds deploy/ ships). */
function collectionOf(m: Manifest): string {
  const ns = m.metadata.namespace;
  const prefix = m.apiVersion.includes('/') ? `/apis/${m.apiVersion}` : `/api/${m.apiVersion}`;
  const plural = `${m.kind.toLowerCase()}s`; // true of every kind deploy/ ships
  return ns === undefined ? `${prefix}/${plural}` : `${prefix}/namespaces/${ns}/${plural}`;
}

/** Everything a request made with `token` may do is decided by RBAC; this returns its HTTP status. */
async function statusAs(token: string, method: string, urlPath: string, body?: unknown): Promise<number> {
  const res = await rawRequest({ ...cluster, token }, method, urlPath, body);
  return res.status;
}

const shipped = manifests();
let token = '';
let saKubeConfig: KubeConfig;
let ns = '';
let otherNs = '';

beforeAll(async () => {
  // Apply every shipped object as is: the namespace is kvpa-system, which no other test uses. Strict
  // field validation makes a typo in a manifest (an unknown field) fail here instead of being dropped.
  for (const m of shipped) {
    const res = await admin.request('POST', `${collectionOf(m)}?fieldValidation=Strict`, m);
    if (res.status !== 201 && res.status !== 409) {
      throw new Error(
        `applying ${m.kind} ${m.metadata.name}: HTTP ${res.status} ${JSON.stringify(res.json)}`,
      );
    }
  }
  const tr = await admin.create(`/api/v1/namespaces/${SYSTEM_NS}/serviceaccounts/${SA}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  token = (tr.status as { token: string }).token;
  saKubeConfig = kubeConfigWithToken(cluster, token);
  const mk = async (prefix: string) =>
    (
      (
        await admin.create('/api/v1/namespaces', {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { generateName: prefix },
        })
      ).metadata as { name: string }
    ).name;
  ns = await mk('kvpa-rbac-');
  otherNs = await mk('kvpa-rbac-other-');
});

describe('the shipped manifests', () => {
  it('every deploy/ object was accepted by the API server with strict field validation', async () => {
    const kinds = shipped.map((m) => m.kind).sort();
    expect(kinds).toEqual([
      'ClusterRole',
      'ClusterRole',
      'ClusterRoleBinding',
      'Deployment',
      'Namespace',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    for (const m of shipped) await admin.get(`${collectionOf(m)}/${m.metadata.name}`);
  });

  it('grants no wildcard and binds only the controller role cluster-wide', () => {
    for (const m of shipped.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
      for (const rule of (m.rules ?? []) as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
        expect([...rule.apiGroups, ...rule.resources, ...rule.verbs], m.metadata.name).not.toContain('*');
      }
    }
    const bindings = shipped.filter((m) => m.kind === 'ClusterRoleBinding');
    expect(bindings.map((b) => (b.roleRef as { name: string }).name)).toEqual(['kvpa-controller']);
  });

  it('the Deployment runs as the ServiceAccount, hardened, probing the port the Service exposes', () => {
    const d = shipped.find((m) => m.kind === 'Deployment') as unknown as Json & {
      spec: {
        replicas: number;
        template: {
          spec: {
            serviceAccountName: string;
            securityContext: Json;
            containers: {
              args: string[];
              securityContext: Json & { capabilities: { drop: string[] } };
              ports: { name: string; containerPort: number }[];
              livenessProbe: { httpGet: { port: string; path: string } };
              readinessProbe: { httpGet: { port: string; path: string } };
              resources: { requests: Json; limits: Json };
            }[];
          };
        };
      };
    };
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    expect(d.spec.replicas).toBe(2);
    expect(pod.serviceAccountName).toBe(SA);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // The image's ENTRYPOINT is `kvpa controller` (Dockerfile): args are its flags only.
    expect(c?.args).toEqual([
      '--leader-elect',
      '--metrics-port',
      '9090',
      '--metrics-address',
      '0.0.0.0',
      '--log-level',
      'info',
    ]);
    expect(c?.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    expect(c?.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(c?.resources.requests).toBeDefined();
    expect(c?.resources.limits).toBeDefined();
    const metricsPort = c?.ports.find((p) => p.name === 'metrics');
    expect(metricsPort?.containerPort).toBe(9090);
    expect(c?.livenessProbe.httpGet.port).toBe('metrics');
    expect(c?.readinessProbe.httpGet.port).toBe('metrics');
    const svc = shipped.find((m) => m.kind === 'Service') as unknown as Json & {
      spec: { ports: { port: number; targetPort: string }[] };
    };
    expect(svc.spec.ports[0]).toMatchObject({ port: 9090, targetPort: 'metrics' });
  });

  it("the Deployment's pod passes Pod Security 'restricted', which kvpa-system enforces", async () => {
    const d = shipped.find((m) => m.kind === 'Deployment') as unknown as Json & {
      spec: { template: { metadata: Json; spec: Json } };
    };
    const pods = `/api/v1/namespaces/${SYSTEM_NS}/pods?dryRun=All`;
    const ours = await admin.request('POST', pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'kvpa-controller-dry-run', labels: d.spec.template.metadata.labels },
      spec: d.spec.template.spec,
    });
    expect(ours.status, JSON.stringify(ours.json)).toBe(201);
    // The control: an unhardened pod is refused there, so the 201 above means the template complies.
    const plain = await admin.request('POST', pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'plain' },
      spec: { containers: [{ name: 'c', image: 'x' }] },
    });
    expect(plain.status).toBe(403);
    expect(String(plain.json.message)).toContain('violates PodSecurity "restricted');
  });
});

describe('the controller as its own ServiceAccount, RBAC enforced', () => {
  const logLines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  const signals = new ManualSignalSource();
  const metrics = new ControllerMetrics({ processMetrics: false });
  let metricsServer: MetricsServer;
  let controller: Controller;
  let nowMs = T0_MS;
  const lwsPath = () => `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/serve`;
  const paPath = () => `${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/serve`;

  const step = async () => {
    nowMs += 1000;
    await controller.tick();
  };

  beforeAll(async () => {
    const self = await saKubeConfig
      .makeApiClient(CoreV1Api)
      .listNamespacedPod({ namespace: ns })
      .then(() => 'ok');
    expect(self).toBe('ok'); // the token authenticates and may list pods: RBAC is bound
    // Test fixtures are written as admin, the way the LWS controller and kubelet would.
    await admin.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
      apiVersion: 'leaderworkerset.x-k8s.io/v1',
      kind: 'LeaderWorkerSet',
      metadata: { name: 'serve' },
      spec: {
        replicas: 2,
        leaderWorkerTemplate: {
          size: 2,
          workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
        },
      },
    });
    for (const g of [0, 1]) {
      for (const w of [0, 1]) {
        await admin.pod(
          ns,
          w === 0 ? `serve-${g}` : `serve-${g}-${w}`,
          {
            [`${LWS}/name`]: 'serve',
            [`${LWS}/group-index`]: String(g),
            [`${LWS}/worker-index`]: String(w),
            [`${LWS}/group-key`]: `k-serve-${g}`,
          },
          true,
        );
      }
    }
    await admin.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
      apiVersion: 'kvpa.io/v1alpha1',
      kind: 'PodAutoscaler',
      metadata: { name: 'serve' },
      spec: {
        mode: 'Apply',
        metricsSource: { pods: { port: 8000 } },
        pools: [
          {
            name: 'decode',
            scaleTargetRef: {
              apiVersion: 'leaderworkerset.x-k8s.io/v1',
              kind: 'LeaderWorkerSet',
              name: 'serve',
            },
            minReplicas: 1,
            maxReplicas: 8,
            metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
            stableWindowSeconds: 6,
            scaleDownDelaySeconds: 0,
            tickSeconds: 1,
            maxScaleUpRate: 1000,
          },
        ],
      },
    });
    controller = new Controller({
      kubeConfig: saKubeConfig,
      signals,
      policies: loadPolicies().policies,
      targetFor: (namespace, ref) => scaleTargetFor(saKubeConfig, namespace, ref),
      logger,
      // One namespace, so a parallel test file's PodAutoscalers are not touched; the ClusterRoleBinding
      // covers every namespace alike (the cluster-wide list is checked separately below).
      namespace: ns,
      nowMs: () => nowMs,
      sampleIntervalMs: 3_600_000, // ticks come from the test
      observer: metrics,
    });
    metricsServer = await startMetricsServer(metrics, { port: 0, host: '127.0.0.1' });
    await controller.start();
    for (let i = 0; ; i++) {
      const seen = controller.watched().some((key) => key.endsWith('/serve'));
      if (seen) break;
      if (i > 100) throw new Error('the watch never saw the PodAutoscaler');
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    await controller?.stop();
    await metricsServer?.close();
  });

  it('scales the LWS through /scale, writes status and raises events, with no 403 anywhere', async () => {
    const generationBefore = ((await admin.get(lwsPath())).metadata as { generation: number }).generation;
    signals.set(`${ns}/serve/decode`, 'kvCacheUtilization', 1.9); // Σ 1.9 / 0.7 → 3 groups
    await step();
    await step(); // a second tick: no further write, heads listed again, status unchanged

    const lws = await admin.get(lwsPath());
    expect((lws.spec as { replicas: number }).replicas).toBe(3);
    expect((lws.metadata as { generation: number }).generation).toBe(generationBefore + 1);
    // The write went through the scale subresource, under kvpa's field manager.
    const managers = ((lws.metadata as { managedFields: Json[] }).managedFields ?? []).map(
      (f) => `${f.manager}/${f.subresource ?? ''}`,
    );
    expect(managers).toContain('kvpa/scale');

    const status = (await admin.get(paPath())).status as PodAutoscalerStatus;
    expect(status.pools?.[0]).toMatchObject({ name: 'decode', replicas: 3, readyReplicas: 2 });
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');

    const events = await admin.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=serve`);
    const reasons = (events.items as { reason: string }[]).map((e) => e.reason);
    expect(reasons).toContain('SuccessfulRescale');
    expect(reasons).not.toContain('FailedRescale');

    // Nothing the controller logged was a refusal: no watch, read, list, write, status or event failure.
    expect(logLines.length).toBeGreaterThan(0); // the capture works (the rescale event is logged)
    expect(logLines.join('\n')).toContain('SuccessfulRescale');
    const refusals = logLines.filter((l) => /forbidden|\b403\b/i.test(l));
    expect(refusals).toEqual([]);
    const warnings = logLines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level >= 40);
    expect(warnings).toEqual([]);
  });

  it('its /metrics show the pool as the API server has it', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsServer.port}/metrics`)).text();
    const parsed = parseExposition(text);
    expect(parsed.errors).toEqual([]);
    const sample = (family: string) =>
      parsed.families
        .find((f) => f.name === family)
        ?.samples.find(
          (s) => s.labels.namespace === ns && s.labels.name === 'serve' && s.labels.pool === 'decode',
        )?.value;
    expect(sample('kvpa_pool_spec_groups')).toBe(3);
    expect(sample('kvpa_pool_ready_groups')).toBe(2);
    expect(sample('kvpa_pool_desired_groups')).toBe(3);
    expect(sample('kvpa_pool_target_found')).toBe(1);
    expect(sample('kvpa_write_errors_total') ?? 0).toBe(0);
  });

  it('the same binding covers the cluster-wide list-watch the Deployment uses', async () => {
    const all = '/apis/kvpa.io/v1alpha1/podautoscalers';
    expect(await statusAs(token, 'GET', all)).toBe(200);
    expect(await statusAs(token, 'GET', `${all}?watch=true&timeoutSeconds=1`)).toBe(200);
  });
});

describe('least privilege: what the controller may not do', () => {
  const lws = () => `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/serve`;

  it('may not touch pods beyond listing them', async () => {
    expect(await statusAs(token, 'DELETE', `/api/v1/namespaces/${ns}/pods/serve-0`)).toBe(403);
    expect(await statusAs(token, 'GET', `/api/v1/namespaces/${ns}/pods/serve-0`)).toBe(403);
    expect(await statusAs(token, 'POST', `/api/v1/namespaces/${ns}/pods/serve-0/exec?command=sh`)).toBe(403);
    expect(
      await statusAs(token, 'POST', `/api/v1/namespaces/${ns}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'intruder' },
        spec: { containers: [{ name: 'c', image: 'x' }] },
      }),
    ).toBe(403);
  });

  it('writes an LWS only through /scale: the main resource is read-only to it', async () => {
    const patch = { spec: { replicas: 7 } };
    const merge = async (p: string) => (await rawRequestPatch(token, p, patch)).status;
    expect(await merge(lws())).toBe(403);
    expect(await statusAs(token, 'DELETE', lws())).toBe(403);
    // …while the scale subresource is allowed (with a stale resourceVersion it is a 409, not a 403).
    const scale = await rawRequestPatch(token, `${lws()}/scale`, {
      metadata: { resourceVersion: '1' },
      spec: { replicas: 7 },
    });
    expect(scale.status).toBe(409);
    expect(((await admin.get(lws())).spec as { replicas: number }).replicas).toBe(3);
  });

  it('may not change a PodAutoscaler spec, nor create or delete one', async () => {
    const pa = `${customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers')}/serve`;
    expect((await rawRequestPatch(token, pa, { spec: { pools: [] } })).status).toBe(403);
    expect(await statusAs(token, 'DELETE', pa)).toBe(403);
  });

  it('reads no Secret unless a namespace binds the Grafana token reader, and then only there', async () => {
    await admin.create(`/api/v1/namespaces/${ns}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'grafana-token' },
      stringData: { token: 'glsa_test' },
    });
    await admin.create(`/api/v1/namespaces/${otherNs}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'grafana-token' },
      stringData: { token: 'glsa_other' },
    });
    const secret = (namespace: string) => `/api/v1/namespaces/${namespace}/secrets/grafana-token`;
    expect(await statusAs(token, 'GET', secret(ns))).toBe(403);
    // The RoleBinding deploy/README.md tells users to create in a namespace that uses spec.grafana.
    await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'kvpa-grafana-token-reader' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'kvpa-grafana-token-reader',
      },
      subjects: [{ kind: 'ServiceAccount', name: SA, namespace: SYSTEM_NS }],
    });
    const core = saKubeConfig.makeApiClient(CoreV1Api);
    const read = await core.readNamespacedSecret({ namespace: ns, name: 'grafana-token' });
    expect(Buffer.from(read.data?.token ?? '', 'base64').toString()).toBe('glsa_test');
    expect(await statusAs(token, 'GET', secret(otherNs))).toBe(403);
    expect(await statusAs(token, 'GET', `/api/v1/namespaces/${ns}/secrets`)).toBe(403); // no list
    expect(await statusAs(token, 'GET', '/api/v1/secrets')).toBe(403);
  });

  it('the grant model: kvpa uses a Secret only where RBAC is bound AND the Secret is labelled for it', async () => {
    // Relies on the previous test: the reader is bound in `ns`, not in `otherNs`; neither Secret is labelled.
    const ref = { name: 'grafana-token', key: 'token' };
    await expect(secretReader(saKubeConfig, ns)(ref)).rejects.toThrow(
      'Secret grafana-token is not granted to kvpa: its owner must label it kvpa.io/grafana-token=true',
    );
    await expect(secretReader(saKubeConfig, otherNs)(ref)).rejects.toThrow(
      `Secret ${otherNs}/grafana-token is not readable by kvpa (HTTP 403): the namespace owner binds ClusterRole kvpa-grafana-token-reader there`,
    );
    // The Secret's owner grants it; the namespace without the RoleBinding stays closed even when labelled.
    for (const namespace of [ns, otherNs]) {
      await admin.mergePatch(`/api/v1/namespaces/${namespace}/secrets/grafana-token`, {
        metadata: { labels: { 'kvpa.io/grafana-token': 'true' } },
      });
    }
    expect(await secretReader(saKubeConfig, ns)(ref)).toBe('glsa_test');
    await expect(secretReader(saKubeConfig, otherNs)(ref)).rejects.toThrow(
      /not readable by kvpa \(HTTP 403\)/,
    );
  });

  it('uses leases only in kvpa-system, and only its own', async () => {
    expect(
      await statusAs(token, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${LEASE}`),
    ).toBe(403);
    expect(
      await statusAs(
        token,
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases/someone-else`,
      ),
    ).toBe(403);
    expect(await statusAs(token, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases`)).toBe(
      403,
    );
  });
});

describe('leader election as the ServiceAccount', () => {
  it('creates, renews and releases its Lease in kvpa-system without a refusal', async () => {
    const logLines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
    const elector = new LeaderElector({
      kubeConfig: saKubeConfig,
      namespace: SYSTEM_NS,
      name: LEASE,
      identity: 'kvpa-controller-0',
      leaseDurationSeconds: 3,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: 0.2,
      logger,
    });
    let started = 0;
    let stopped = 0;
    elector.start({
      onStartedLeading: async () => void started++,
      onStoppedLeading: async () => void stopped++,
    });
    const leases = kubeConfigWithToken(cluster, cluster.adminToken).makeApiClient(CoordinationV1Api);
    try {
      const deadline = Date.now() + 10_000;
      while (!elector.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(elector.isLeader).toBe(true); // create (and get) allowed
      const first = await leases.readNamespacedLease({ name: LEASE, namespace: SYSTEM_NS });
      expect(first.spec?.holderIdentity).toBe('kvpa-controller-0');
      await new Promise((r) => setTimeout(r, 800)); // several renewals: update allowed
      const renewed = await leases.readNamespacedLease({ name: LEASE, namespace: SYSTEM_NS });
      expect(Number(renewed.metadata?.resourceVersion)).toBeGreaterThan(
        Number(first.metadata?.resourceVersion),
      );
      expect(elector.isLeader).toBe(true);
    } finally {
      await elector.stop(true);
    }
    // Released on stop: the holder is cleared (an update), so a standby need not wait for expiry.
    const released = await leases.readNamespacedLease({ name: LEASE, namespace: SYSTEM_NS });
    expect(released.spec?.holderIdentity).toBe('');
    expect([started, stopped]).toEqual([1, 1]);
    expect(
      logLines.filter((l) => /forbidden|\b403\b|lease round failed|releasing the lease failed/i.test(l)),
    ).toEqual([]);
  });
});

/** A merge patch as `token` (rawRequest sends JSON content type, which a PATCH refuses). */
async function rawRequestPatch(t: string, urlPath: string, body: unknown): Promise<{ status: number }> {
  const ca = readFileSync(cluster.caCertPath);
  const url = new URL(urlPath, cluster.server);
  return await new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: 'PATCH',
        ca,
        headers: {
          Authorization: `Bearer ${t}`,
          'Content-Type': 'application/merge-patch+json',
          Accept: 'application/json',
        },
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
