// Checks the shared test control plane itself: auth/RBAC, the upstream CRDs and their /scale
// subresources, and the project's own CRD when it exists.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ApiextensionsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  VersionApi,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import YAML from 'yaml';
import {
  describeApiError,
  kubeConfigWithToken,
  projectCrdDir,
  rawRequest,
  readCrds,
  readThirdPartyCrdPins,
  repoRoot,
} from '../harness/cluster.ts';

const cluster = inject('cluster');
const adminKc = kubeConfigWithToken(cluster, cluster.adminToken);

/** Each test works in its own namespace so tests cannot see each other's objects. */
async function createNamespace(prefix: string): Promise<string> {
  const core = adminKc.makeApiClient(CoreV1Api);
  const ns = await core.createNamespace({ body: { metadata: { generateName: `${prefix}-` } } });
  const name = ns.metadata?.name;
  if (!name) throw new Error('namespace without a name');
  return name;
}

async function expectApiError(promise: Promise<unknown>, code: number): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect((err as { code?: number }).code, describeApiError(err)).toBe(code);
    return describeApiError(err);
  }
  throw new Error(`expected HTTP ${code}, but the request succeeded`);
}

describe('control plane', () => {
  it('serves the version the build script recorded', async () => {
    const version = await adminKc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(cluster.binaryVersions['kube-apiserver']);
    expect(cluster.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('accepts the admin token (system:masters)', async () => {
    const auth = adminKc.makeApiClient(AuthenticationV1Api);
    const review = await auth.createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe('kvpa-admin');
    expect(review.status?.userInfo?.groups).toContain('system:masters');
    const namespaces = await adminKc.makeApiClient(CoreV1Api).listNamespace();
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain('default');
  });

  it('rejects a bad token with 401 and an anonymous request with 403', async () => {
    const bad = await rawRequest({ ...cluster, token: 'not-a-valid-token' }, 'GET', '/api/v1/pods');
    expect(bad.status).toBe(401);
    const anonymous = await rawRequest({ ...cluster, token: undefined }, 'GET', '/api/v1/pods');
    expect(anonymous.status).toBe(403);
    expect(anonymous.body).toContain('system:anonymous');
  });

  it('enforces RBAC for an authenticated user without bindings', async () => {
    const kc = kubeConfigWithToken(cluster, cluster.unprivilegedToken);
    const message = await expectApiError(kc.makeApiClient(CoreV1Api).listPodForAllNamespaces(), 403);
    expect(message).toContain('kvpa-nobody');
  });

  it('issues ServiceAccount tokens that authenticate, and RBAC decides what they may do', async () => {
    const namespace = await createNamespace('sa-rbac');
    const core = adminKc.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'no-bindings' } } });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'no-bindings',
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token).toBeTruthy();
    const saKc = kubeConfigWithToken(cluster, token ?? '');

    // Authenticated (not 401) as the ServiceAccount...
    const review = await saKc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${namespace}:no-bindings`);
    // ...but forbidden to list pods.
    const saCore = saKc.makeApiClient(CoreV1Api);
    const message = await expectApiError(saCore.listNamespacedPod({ namespace }), 403);
    expect(message).toContain(`system:serviceaccount:${namespace}:no-bindings`);

    // Granting the permission flips the same request to allowed, so the 403 above came from RBAC.
    const rbac = adminKc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'pod-reader' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'pod-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'no-bindings', namespace }],
      },
    });
    const pods = await saCore.listNamespacedPod({ namespace });
    expect(pods.items).toEqual([]);
    // Still scoped: other namespaces stay forbidden.
    await expectApiError(saCore.listNamespacedPod({ namespace: 'default' }), 403);
  });
});

const container = { name: 'main', image: 'registry.k8s.io/pause:3.10' };
const podSpec = { containers: [container] };
const podTemplate = { metadata: { labels: { app: 'fixture' } }, spec: podSpec };

/** Smallest objects each upstream schema accepts, with spec.replicas = 2 (keyed by CRD name). */
const minimalSpecs: Record<string, Record<string, unknown>> = {
  'leaderworkersets.leaderworkerset.x-k8s.io': {
    replicas: 2,
    leaderWorkerTemplate: { size: 2, workerTemplate: podTemplate },
  },
  'disaggregatedsetrolescalers.disaggregatedset.x-k8s.io': { replicas: 2 },
  'rayclusterfleets.orchestration.aibrix.ai': {
    replicas: 2,
    selector: { matchLabels: { app: 'fixture' } },
    template: {
      metadata: { labels: { app: 'fixture' } },
      spec: { headGroupSpec: { rayStartParams: {}, template: podTemplate } },
    },
  },
  'stormservices.orchestration.aibrix.ai': {
    replicas: 2,
    selector: { matchLabels: { app: 'fixture' } },
    template: {
      metadata: { labels: { app: 'fixture' } },
      spec: { roles: [{ name: 'prefill', replicas: 1, template: podTemplate }] },
    },
  },
  'podcliquesets.grove.io': {
    replicas: 2,
    template: { cliques: [{ name: 'prefill', spec: { roleName: 'prefill', replicas: 1, podSpec } }] },
  },
  'podcliquescalinggroups.grove.io': { replicas: 2, cliqueNames: ['prefill'] },
  'podcliques.grove.io': { replicas: 2, roleName: 'prefill', podSpec },
  'dynamographdeploymentscalingadapters.nvidia.com': {
    replicas: 2,
    dgdRef: { name: 'dgd', serviceName: 'decode' },
  },
};

describe('third-party CRDs', async () => {
  const rows = readThirdPartyCrdPins();
  const dir = cluster.thirdPartyCrdDir;
  const docs = await readCrds(dir);
  const crdsByFile = new Map(docs.map(({ file, crd }) => [path.relative(dir, file), crd]));
  // The files as written (x-kubernetes-* keys), to compare with the server's JSON.
  const rawByFile = new Map(
    docs.map(({ file }) => [path.relative(dir, file), YAML.parse(readFileSync(file, 'utf8'))]),
  );
  const extensions = adminKc.makeApiClient(ApiextensionsV1Api);

  it('scripts/fetch-crds.tsv and the fetched YAML files describe the same 17 CRDs', () => {
    expect(rows.length).toBe(17);
    expect([...crdsByFile.keys()].sort()).toEqual(rows.map((r) => r.file).sort());
    expect(cluster.thirdPartyCrds.sort()).toEqual(
      [...crdsByFile.values()].map((c) => c.metadata?.name).sort(),
    );
  });

  it('every fetched file has the SHA-256 committed in scripts/fetch-crds.tsv', () => {
    for (const row of rows) {
      const sha256 = createHash('sha256')
        .update(readFileSync(path.join(dir, row.file)))
        .digest('hex');
      expect(sha256, row.file).toBe(row.sha256);
    }
  });

  for (const row of rows) {
    const crd = crdsByFile.get(row.file);
    const name = crd?.metadata?.name ?? row.file;

    it(`${name} is Established, schemas intact, scale subresource as fetch-crds.tsv says`, async () => {
      expect(crd, `${row.file} listed in scripts/fetch-crds.tsv but not found`).toBeDefined();
      const stored = await extensions.readCustomResourceDefinition({ name });
      const conditions = stored.status?.conditions ?? [];
      expect(conditions.find((c) => c.type === 'Established')?.status).toBe('True');
      expect(conditions.find((c) => c.type === 'NamesAccepted')?.status).toBe('True');
      // The typed client serializes through its models; a dropped or renamed schema field would show
      // here, so compare the server's JSON with the YAML as written.
      const res = await rawRequest(
        { ...cluster, token: cluster.adminToken },
        'GET',
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
      );
      expect(res.status).toBe(200);
      const storedRaw = JSON.parse(res.body) as { spec: { versions: { name: string; schema: unknown }[] } };
      const raw = rawByFile.get(row.file) as { spec: { versions: { name: string; schema: unknown }[] } };
      expect(storedRaw.spec.versions.map((v) => v.name)).toEqual(raw.spec.versions.map((v) => v.name));
      for (const version of raw.spec.versions) {
        const storedVersion = storedRaw.spec.versions.find((v) => v.name === version.name);
        expect(storedVersion?.schema, `${name} ${version.name} schema`).toEqual(version.schema);
      }
      const scaleVersions = stored.spec.versions.filter((v) => v.served && v.subresources?.scale);
      if (row.scale) {
        expect(scaleVersions.length).toBeGreaterThan(0);
        for (const v of scaleVersions) expect(v.subresources?.scale).toEqual(row.scale);
      } else {
        expect(scaleVersions).toEqual([]);
      }
    });
  }

  const scaleRows = rows.filter((r) => r.scale !== undefined);

  it('has a minimal fixture for every CRD with a scale subresource', () => {
    expect(scaleRows.length).toBeGreaterThan(0);
    const names = scaleRows.map((r) => crdsByFile.get(r.file)?.metadata?.name);
    expect(Object.keys(minimalSpecs).sort()).toEqual(names.sort());
  });

  describe('/scale on a created instance', () => {
    let namespace = '';
    beforeAll(async () => {
      namespace = await createNamespace('scale');
    });

    for (const row of scaleRows) {
      const crd = crdsByFile.get(row.file);
      const name = crd?.metadata?.name ?? row.file;
      it(`${name}: GET and PUT /scale`, async () => {
        if (!crd) throw new Error(`${row.file} not found`);
        const version = crd.spec.versions.find((v) => v.served && v.subresources?.scale)?.name ?? '';
        const { group } = crd.spec;
        const plural = crd.spec.names.plural;
        const spec = minimalSpecs[name];
        expect(spec, `no fixture for ${name}`).toBeDefined();
        const objects = adminKc.makeApiClient(CustomObjectsApi);
        try {
          await objects.createNamespacedCustomObject({
            group,
            version,
            namespace,
            plural,
            body: {
              apiVersion: `${group}/${version}`,
              kind: crd.spec.names.kind,
              metadata: { name: 'min' },
              spec,
            },
          });
        } catch (err) {
          throw new Error(`creating a minimal ${crd.spec.names.kind} failed: ${describeApiError(err)}`);
        }

        // The exact URL the autoscaler will use.
        const scalePath = `/apis/${group}/${version}/namespaces/${namespace}/${plural}/min/scale`;
        const res = await rawRequest({ ...cluster, token: cluster.adminToken }, 'GET', scalePath);
        expect(res.status, res.body).toBe(200);
        const scale = JSON.parse(res.body) as {
          kind: string;
          apiVersion: string;
          spec: { replicas: number };
        };
        expect(scale.kind).toBe('Scale');
        expect(scale.apiVersion).toBe('autoscaling/v1');
        expect(scale.spec.replicas).toBe(2);

        // Writing through /scale must land in .spec.replicas of the object.
        await objects.replaceNamespacedCustomObjectScale({
          group,
          version,
          namespace,
          plural,
          name: 'min',
          body: { ...scale, spec: { replicas: 3 } },
        });
        const after = (await objects.getNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
          name: 'min',
        })) as {
          spec: { replicas: number };
        };
        expect(after.spec.replicas).toBe(3);
      });
    }
  });
});

describe('project CRDs (crds/)', () => {
  const kvpaCrdFile = path.join(repoRoot, 'crds/podautoscalers.kvpa.io.yaml');

  it('installs every CRD in crds/ when the directory exists', async () => {
    const expected = (await readCrds(projectCrdDir())).map(({ crd }) => crd.metadata?.name);
    expect(cluster.projectCrds.sort()).toEqual(expected.sort());
  });

  it.skipIf(!existsSync(kvpaCrdFile))('podautoscalers.kvpa.io is installed and Established', async () => {
    expect(cluster.projectCrds).toContain('podautoscalers.kvpa.io');
    const stored = await adminKc
      .makeApiClient(ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: 'podautoscalers.kvpa.io' });
    expect(stored.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
  });
});
