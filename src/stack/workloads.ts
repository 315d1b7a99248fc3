// The workload half of the live stack: real kube-controller-manager, kube-scheduler and the upstream
// LeaderWorkerSet controller, plus kwok standing in for kubelets on fake GPU nodes. Together they turn
// a LeaderWorkerSet into real Pods that become Ready after a startup delay. Binaries come from
// scripts/build-stack.sh. Everything listens on 127.0.0.1 only; processes run in their own process
// groups, which stop() (or the watchdog, if this Node process dies) kills.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import {
  type ClusterInfo,
  ensureBuiltBinaries,
  freePorts,
  loopbackServingCert,
  type ManagedProcess,
  rawRequest,
  spawnManaged,
  startWatchdog,
  waitFor,
} from './cluster.ts';

export const stackBinaries = ['kube-controller-manager', 'kube-scheduler', 'lws-controller', 'kwok'] as const;

/** Annotation kwok selects its nodes by (`--manage-nodes-with-annotation-selector`). */
export const fakeNodeAnnotation = 'kwok.x-k8s.io/node';
export const fakeNodeLabel = 'kvpa.dev/fake-node';

const lwsWebhookNames = {
  mutating: 'kvpa-stack-lws-mutating',
  validating: 'kvpa-stack-lws-validating',
};

/**
 * Returns the directory holding the stack binaries, building them if needed (scripts/build-stack.sh
 * is idempotent and cheap once cached). KVPA_STACK_BIN_DIR overrides.
 */
export async function ensureStackBinaries(log?: (message: string) => void): Promise<string> {
  return await ensureBuiltBinaries('scripts/build-stack.sh', 'KVPA_STACK_BIN_DIR', [...stackBinaries], log);
}

export interface StartWorkloadControllersOptions {
  cluster: ClusterInfo;
  /** Directory with the stack binaries; default: ensureStackBinaries(). */
  binDir?: string;
  /** Fake GPU nodes kwok manages (default 16). */
  fakeNodes?: number;
  /** nvidia.com/gpu capacity per fake node (default 8). */
  gpusPerNode?: number;
  /** Seconds from a Pod starting on its node to it turning Ready; one value for the whole stack (default 20). */
  podStartupSeconds?: number;
  /** Progress messages; default: stderr. */
  log?: (message: string) => void;
  /** Where the four processes write <name>.log; default: <cluster.workDir>/workloads (goes with the cluster). */
  logDir?: string;
  readyTimeoutSeconds?: number;
}

export interface WorkloadControllers {
  nodeNames: string[];
  logDir: string;
  /** The processes started (pid is also the process group id). */
  processes: { name: string; pid: number; logPath: string }[];
  stop(): Promise<void>;
}

export async function startWorkloadControllers(
  options: StartWorkloadControllersOptions,
): Promise<WorkloadControllers> {
  const { cluster } = options;
  const log = options.log ?? ((m: string) => process.stderr.write(`[kvpa-stack] ${m}\n`));
  const binDir = options.binDir ?? (await ensureStackBinaries(log));
  const fakeNodes = options.fakeNodes ?? 16;
  const gpusPerNode = options.gpusPerNode ?? 8;
  const podStartupSeconds = options.podStartupSeconds ?? 20;
  const readyTimeoutSeconds = options.readyTimeoutSeconds ?? 120;
  const startedMs = Date.now();
  const api = apiClient(cluster);

  // Private run dir (configs, certs, pgid files) that the watchdog and stop() delete; logs live
  // apart so they survive stop() for post-mortems.
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'kvpa-workloads-'));
  const logDir = options.logDir ?? path.join(cluster.workDir, 'workloads');
  await mkdir(logDir, { recursive: true });
  const watchdog = startWatchdog(runDir);
  const procs: ManagedProcess[] = [];
  const nodeNames = Array.from({ length: fakeNodes }, (_, i) => `kwok-gpu-${i}`);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Webhook configs first: with failurePolicy Fail they would block LWS (and LWS Pod) writes once
    // the LWS manager is gone.
    for (const [kind, name] of [
      ['mutatingwebhookconfigurations', lwsWebhookNames.mutating],
      ['validatingwebhookconfigurations', lwsWebhookNames.validating],
    ] as const) {
      await api.del(`/apis/admissionregistration.k8s.io/v1/${kind}/${name}`).catch(() => undefined);
    }
    for (const p of [...procs].reverse()) await p.stop();
    await Promise.all(nodeNames.map((n) => api.del(`/api/v1/nodes/${n}`).catch(() => undefined)));
    watchdog.kill();
    await rm(runDir, { recursive: true, force: true });
  };

  try {
    const lwsCrd = await api.request(
      'GET',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/leaderworkersets.leaderworkerset.x-k8s.io',
    );
    if (lwsCrd.status !== 200) {
      throw new Error(
        `the LeaderWorkerSet CRD is not installed (HTTP ${lwsCrd.status}); start the cluster with installCrds`,
      );
    }
    const [kcmPort, schedPort, kwokPort, lwsHealthPort, lwsWebhookPort] = await freePorts(5);
    // KCM, the scheduler and the LWS manager authenticate as the cluster admin (system:masters); the
    // same kubeconfig serves their delegated authn/authz for /healthz.
    const kubeconfig = cluster.kubeconfigPath;
    // skip-lookup: the apiserver has no front-proxy CA, so reading it from extension-apiserver-
    // authentication only logs an error every second; bearer tokens still go through TokenReview.
    const delegation = [
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--authentication-skip-lookup=true',
    ];

    const kcmArgs = [
      `--kubeconfig=${kubeconfig}`,
      ...delegation,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${path.join(runDir, 'kcm-certs')}`,
      '--leader-elect=false',
      // Default controller set: StatefulSet (LWS groups), garbage collector (worker StatefulSets are
      // owned by leader Pods), ReplicaSet/Deployment, namespace deletion, node lifecycle, ...
      '--controllers=*',
      `--root-ca-file=${cluster.caCertPath}`,
      '--v=1',
    ];
    if (cluster.serviceAccountKeyPath) {
      kcmArgs.push(`--service-account-private-key-file=${cluster.serviceAccountKeyPath}`);
    }
    const spawn = (name: string, args: string[]) => {
      const p = spawnManaged(name, path.join(binDir, name), runDir, args, { logDir });
      procs.push(p);
      return p;
    };
    const kcm = spawn('kube-controller-manager', kcmArgs);
    const scheduler = spawn('kube-scheduler', [
      `--kubeconfig=${kubeconfig}`,
      ...delegation,
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      `--cert-dir=${path.join(runDir, 'scheduler-certs')}`,
      '--leader-elect=false',
      '--v=1',
    ]);

    const kwokConfig = path.join(runDir, 'kwok.yaml');
    await writeFile(kwokConfig, kwokStagesYaml(podStartupSeconds));
    const kwok = spawn('kwok', [
      `--kubeconfig=${kubeconfig}`,
      `--config=${kwokConfig}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${fakeNodeAnnotation}=fake`,
      // Loopback only: without it kwok would listen on 0.0.0.0:<node-port>.
      `--server-address=127.0.0.1:${kwokPort}`,
      `--node-port=${kwokPort}`,
      '--node-ip=10.127.0.1',
      // Pod IPs outside the apiserver's service range (10.0.0.0/24).
      '--cidr=10.128.0.0/16',
      '--node-lease-duration-seconds=40',
    ]);

    // LWS manager out of cluster. Upstream runs it in-cluster with internal cert management, which
    // writes a Secret and patches Service-backed webhook configs; neither works without a Service
    // network. We keep the webhooks (the Pod webhook adds the group-index/group-key/worker-index
    // labels and the LWS webhook applies defaults the CRD schema does not, e.g. networkConfig), serve
    // them on 127.0.0.1 with our own cert, and register url-based webhook configs pointing there.
    const certDir = path.join(runDir, 'lws-webhook-certs');
    const caPem = await generateServingCert(certDir);
    const lwsConfig = path.join(runDir, 'lws-config.yaml');
    await writeFile(
      lwsConfig,
      YAML.stringify({
        apiVersion: 'config.lws.x-k8s.io/v1alpha1',
        kind: 'Configuration',
        health: { healthProbeBindAddress: `127.0.0.1:${lwsHealthPort}` },
        // "0" disables the metrics server (it would bind :8443 on every interface).
        metrics: { bindAddress: '0' },
        webhook: { host: '127.0.0.1', port: lwsWebhookPort, certDir },
        leaderElection: { leaderElect: false },
        internalCertManagement: { enable: false },
      }),
    );
    const lws = spawn('lws-controller', [
      `--config=${lwsConfig}`,
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--zap-devel=false',
    ]);
    await installLwsWebhooks(api, `https://127.0.0.1:${lwsWebhookPort}`, caPem);

    await createFakeNodes(api, nodeNames, gpusPerNode);

    await waitFor('kube-controller-manager /healthz', readyTimeoutSeconds, kcm, () =>
      httpOk(`https://127.0.0.1:${kcmPort}/healthz`),
    );
    await waitFor('kube-scheduler /healthz', readyTimeoutSeconds, scheduler, () =>
      httpOk(`https://127.0.0.1:${schedPort}/healthz`),
    );
    await waitFor('kwok /healthz', readyTimeoutSeconds, kwok, () =>
      httpOk(`http://127.0.0.1:${kwokPort}/healthz`),
    );
    await waitFor(`${fakeNodes} fake nodes Ready`, readyTimeoutSeconds, kwok, async () => {
      const res = await api.request(
        'GET',
        `/api/v1/nodes?labelSelector=${encodeURIComponent(`${fakeNodeLabel}=true`)}`,
      );
      const items = (JSON.parse(res.body) as { items?: NodeLike[] }).items ?? [];
      const ready = items.filter((n) => nodeNames.includes(n.metadata.name) && nodeReady(n));
      return ready.length === nodeNames.length;
    });
    await waitFor('lws-controller /readyz', readyTimeoutSeconds, lws, () =>
      httpOk(`http://127.0.0.1:${lwsHealthPort}/readyz`),
    );
    // Proves the apiserver -> webhook path end to end (TLS, url, handlers registered).
    await waitFor('LWS admission webhooks', readyTimeoutSeconds, lws, async () => {
      const res = await api.request(
        'POST',
        '/apis/leaderworkerset.x-k8s.io/v1/namespaces/default/leaderworkersets?dryRun=All',
        probeLws(),
      );
      return res.status === 201 || res.status === 200;
    });
    log(
      `workload controllers ready after ${((Date.now() - startedMs) / 1000).toFixed(1)}s ` +
        `(${fakeNodes} fake nodes x ${gpusPerNode} GPUs, pod startup ${podStartupSeconds}s; logs in ${logDir})`,
    );
    return {
      nodeNames,
      logDir,
      processes: procs.map((p) => ({ name: p.name, pid: p.pid, logPath: p.logPath })),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * kwok Stages (replacing its defaults for Pods; Node stages stay default): a bound Pod starts at once
 * with containers running but not ready, turns Ready podStartupSeconds later (model loading), and a
 * deleted Pod is finalized at once. Readiness-gate conditions are left to their owner (kvpa sets
 * `kvpa.io/serving`); kwok has no kubelet to fold them into Ready, so readers check them themselves.
 */
export function kwokStagesYaml(podStartupSeconds: number): string {
  const podRef = { apiGroup: 'v1', kind: 'Pod' };
  const notDeleting = { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' };
  const containerStatuses = (ready: boolean) => `containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: ${ready}
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $start | Quote }}
{{ end }}`;
  const conditions = (ready: boolean) => `conditions:
- lastTransitionTime: {{ $start | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "${ready ? 'True' : 'False'}"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "${ready ? 'True' : 'False'}"
  type: ContainersReady`;
  const stages = [
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Stage',
      metadata: { name: 'kvpa-pod-start' },
      spec: {
        resourceRef: podRef,
        selector: { matchExpressions: [notDeleting, { key: '.status.podIP', operator: 'DoesNotExist' }] },
        next: {
          statusTemplate: `{{ $now := Now }}
{{ $start := $now }}
${conditions(false)}
${containerStatuses(false)}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
`,
        },
      },
    },
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Stage',
      metadata: { name: 'kvpa-pod-ready' },
      spec: {
        resourceRef: podRef,
        selector: {
          matchExpressions: [
            notDeleting,
            { key: '.status.podIP', operator: 'Exists' },
            {
              key: '.status.conditions.[] | select( .type == "Ready" ) | .status',
              operator: 'In',
              values: ['False'],
            },
          ],
        },
        delay: { durationMilliseconds: Math.round(podStartupSeconds * 1000) },
        next: {
          statusTemplate: `{{ $now := Now }}
{{ $start := .status.startTime }}
${conditions(true)}
${containerStatuses(true)}
`,
        },
      },
    },
    {
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'Stage',
      metadata: { name: 'kvpa-pod-delete' },
      spec: {
        resourceRef: podRef,
        selector: {
          matchExpressions: [
            { key: '.metadata.deletionTimestamp', operator: 'Exists' },
            { key: '.metadata.finalizers', operator: 'DoesNotExist' },
          ],
        },
        next: { delete: true },
      },
    },
  ];
  return stages.map((s) => `---\n${YAML.stringify(s)}`).join('');
}

interface NodeLike {
  metadata: { name: string };
  status?: { conditions?: { type: string; status: string }[] };
}

function nodeReady(n: NodeLike): boolean {
  return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function createFakeNodes(api: ApiClient, names: string[], gpus: number): Promise<void> {
  // Large cpu/memory/pods so that only GPUs constrain placement.
  const capacity = {
    cpu: '256',
    memory: '2Ti',
    pods: '256',
    'ephemeral-storage': '10Ti',
    'nvidia.com/gpu': String(gpus),
  };
  for (const name of names) {
    const res = await api.request('POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { [fakeNodeAnnotation]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: {
          [fakeNodeLabel]: 'true',
          type: 'kwok',
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'nvidia.com/gpu.count': String(gpus),
        },
      },
      // No taint: on this stack every node is fake, so workloads need no toleration.
      spec: {},
      status: { capacity, allocatable: capacity, phase: 'Running' },
    });
    // 409: left over from an earlier run on the same cluster; kwok adopts it.
    if (res.status !== 201 && res.status !== 409) {
      throw new Error(`creating node ${name}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    }
  }
}

async function installLwsWebhooks(api: ApiClient, baseUrl: string, caPem: string): Promise<void> {
  const caBundle = Buffer.from(caPem).toString('base64');
  const lwsRule = {
    apiGroups: ['leaderworkerset.x-k8s.io'],
    apiVersions: ['v1'],
    operations: ['CREATE', 'UPDATE'],
    resources: ['leaderworkersets'],
  };
  // Only LWS Pods: the handlers skip every other Pod anyway, and a dead manager must not block the
  // rest of the cluster.
  const lwsPods = {
    matchExpressions: [{ key: 'leaderworkerset.sigs.k8s.io/name', operator: 'Exists' }],
  };
  const hook = (name: string, urlPath: string, rules: unknown[], extra: Record<string, unknown> = {}) => ({
    name,
    admissionReviewVersions: ['v1'],
    clientConfig: { url: `${baseUrl}${urlPath}`, caBundle },
    failurePolicy: 'Fail',
    sideEffects: 'None',
    timeoutSeconds: 10,
    rules,
    ...extra,
  });
  // Paths and rules as in upstream config/webhook/manifests.yaml.
  const mutating = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: lwsWebhookNames.mutating },
    webhooks: [
      hook('mleaderworkerset.kb.io', '/mutate-leaderworkerset-x-k8s-io-v1-leaderworkerset', [lwsRule]),
      hook(
        'mpod.kb.io',
        '/mutate--v1-pod',
        [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
        { objectSelector: lwsPods },
      ),
    ],
  };
  const validating = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: lwsWebhookNames.validating },
    webhooks: [
      hook('vleaderworkerset.kb.io', '/validate-leaderworkerset-x-k8s-io-v1-leaderworkerset', [lwsRule]),
      hook(
        'vpod.kb.io',
        '/validate--v1-pod',
        [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'] }],
        { objectSelector: lwsPods },
      ),
      hook('vdisaggregatedset.kb.io', '/validate-disaggregatedset-x-k8s-io-v1-disaggregatedset', [
        { ...lwsRule, apiGroups: ['disaggregatedset.x-k8s.io'], resources: ['disaggregatedsets'] },
      ]),
    ],
  };
  for (const [kind, body] of [
    ['mutatingwebhookconfigurations', mutating],
    ['validatingwebhookconfigurations', validating],
  ] as const) {
    const base = `/apis/admissionregistration.k8s.io/v1/${kind}`;
    // Replace a leftover from an earlier run (its URL points at a dead port).
    await api.del(`${base}/${body.metadata.name}`).catch(() => undefined);
    const res = await api.request('POST', base, body);
    if (res.status !== 201)
      throw new Error(`creating ${kind}/${body.metadata.name}: HTTP ${res.status}: ${res.body}`);
  }
}

/** A minimal LeaderWorkerSet for the dry-run webhook probe. */
function probeLws(): unknown {
  return {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name: 'kvpa-stack-webhook-probe' },
    spec: {
      replicas: 1,
      leaderWorkerTemplate: {
        size: 1,
        workerTemplate: { spec: { containers: [{ name: 'c', image: 'kvpa/probe' }] } },
      },
    },
  };
}

/** A throw-away CA and a serving cert for 127.0.0.1 as tls.crt/tls.key (controller-runtime's names); returns the CA PEM. */
async function generateServingCert(dir: string): Promise<string> {
  const { caCert } = await loopbackServingCert(dir, {
    caCommonName: 'kvpa-lws-webhook-ca',
    name: 'tls',
    commonName: '127.0.0.1',
  });
  return await readFile(caCert, 'utf8');
}

/** GET url and report a 200; the KCM/scheduler serving certs are self-signed, so they are not verified. */
function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? https : http).request(
      u,
      { method: 'GET', timeout: 5000, ...(u.protocol === 'https:' ? { rejectUnauthorized: false } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

interface ApiClient {
  request(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: string }>;
  del(urlPath: string): Promise<void>;
}

function apiClient(cluster: ClusterInfo): ApiClient {
  const target = { server: cluster.server, caCertPath: cluster.caCertPath, token: cluster.adminToken };
  return {
    request: (method, urlPath, body) => rawRequest(target, method, urlPath, body),
    async del(urlPath) {
      const res = await rawRequest(target, 'DELETE', urlPath);
      if (res.status !== 200 && res.status !== 202 && res.status !== 404) {
        throw new Error(`DELETE ${urlPath}: HTTP ${res.status}`);
      }
    },
  };
}

/** True if a process group still has members (signal 0 probes without signalling). */
export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
