/**
 * `kvpa up`: kvpa doing its real job on one machine with no GPUs. Starts, on loopback:
 *   etcd + kube-apiserver → kube-controller-manager, kube-scheduler, the LWS controller, kwok with fake
 *   GPU nodes → two LeaderWorkerSets (DeepSeek-R1 prefill and decode, KServe-style) → an emulated vLLM
 *   engine behind every Ready leader pod (the lab's fleet model in wall-clock time) → Prometheus scraping
 *   them through Kubernetes service discovery → a Grafana contract server → the real `kvpa controller`
 *   process in Apply mode → a load generator replaying a trace.
 * Everything is torn down by `stop()`; each piece also has its own exit watchdog.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { PodAutoscaler } from '../api/podautoscaler.ts';
import { allowEntryFor } from '../observe/http.ts';
import { TOKEN_GRANT_LABEL } from '../report/grafana.ts';
import { loadCalibration } from '../sim/calibration.ts';
import { type Cluster, repoRoot, startCluster } from './cluster.ts';
import { type DemoPool, demoLeaderWorkerSet, demoPodAutoscaler, GPUS_PER_POD, lwsName } from './demo.ts';
import { EnginePodWatch, METRICS_PORT_ANNOTATION } from './engine-pods.ts';
import { LiveEngines } from './engines.ts';
import { type GrafanaContractServer, startGrafanaContractServer } from './grafana-contract-server.ts';
import { LoadGenerator, type LoadSource, type LoadStep } from './load.ts';
import { type PrometheusHarness, startPrometheus } from './prometheus.ts';
import type { PoolSample, StackSample } from './report.ts';
import type { PoolView, StackView } from './view.ts';
import { fakeNodeLabel, startWorkloadControllers, type WorkloadControllers } from './workloads.ts';

export const DEMO_NAMESPACE = 'kvpa-demo';
export const DEFAULT_TRACE = path.join(repoRoot, 'examples/traces/r1-step-40min.csv');
const POOLS: readonly DemoPool[] = ['prefill', 'decode'];

export interface StackOptions {
  /** What the load generator plays; default: the bundled step trace compressed 10×. */
  readonly load?: LoadSource;
  /** Trace seconds to play (the generator stops by itself after this). */
  readonly loadDurationSeconds?: number;
  readonly podStartupSeconds?: number;
  /** Virtual seconds of the engine model per wall second (default 1: real time). */
  readonly accelerationFactor?: number;
  readonly scrapeIntervalSeconds?: number;
  /** The PodAutoscaler's mode at creation (default Apply). */
  readonly initialMode?: 'Apply' | 'DryRun';
  readonly maxGroups?: Readonly<Record<DemoPool, number>>;
  /**
   * Fake 8-GPU nodes (default: enough for every pool at maxGroups, one pod per node). Fewer make a scale-up
   * that cannot land, for the capacity check.
   */
  readonly fakeNodes?: number;
  /** PodAutoscaler overrides for the compressed timescale (see demoPodAutoscaler). */
  readonly autoscaler?: {
    readonly stableWindowSeconds?: number;
    readonly scaleDownDelaySeconds?: number;
    readonly panicWindowPercentage?: number;
    readonly staleAfterSeconds?: number;
    readonly drainTimeoutSeconds?: number;
    /** Default: twice the pod startup, the compressed fleet's cold start. */
    readonly horizonSeconds?: number;
  };
  /** Pools whose pod template carries kvpa's readiness gate (drained before a scale-down). Default none. */
  readonly drainGate?: readonly DemoPool[];
  /** Start the `kvpa controller` process (default true; a test may run its own). */
  readonly startController?: boolean;
  /** A real Grafana; default: the contract server on loopback. */
  readonly grafana?: { readonly url: string; readonly token: string };
  /** Where logs and the report go. */
  readonly workDir: string;
  readonly log?: (message: string) => void;
}

/** Handles on every running piece, for the live view, the report and the end-to-end test. */
export class Stack {
  private controllerProcess: ChildProcess | null = null;
  private controllerStarts = 0;
  private readonly seenEvents = new Set<string>();
  readonly events: string[] = [];
  stopped = false;
  readonly startedAtMs = Date.now();

  constructor(
    readonly options: StackOptions,
    readonly cluster: Cluster,
    readonly kubeConfig: KubeConfig,
    readonly workloads: WorkloadControllers,
    public prometheus: PrometheusHarness | null,
    private readonly prometheusOptions: Parameters<typeof startPrometheus>[0] & object,
    private readonly prometheusPort: number,
    readonly engines: LiveEngines,
    readonly enginePods: EnginePodWatch,
    readonly grafana: GrafanaContractServer | null,
    public load: LoadGenerator,
    readonly namespace: string,
  ) {}

  private get log(): (m: string) => void {
    return this.options.log ?? ((m) => process.stderr.write(`[kvpa up] ${m}\n`));
  }

  /** Starts (or restarts) the real `kvpa controller` binary against the stack's API server. */
  startController(): void {
    if (this.controllerProcess !== null) throw new Error('the controller is already running');
    this.controllerStarts++;
    const logPath = path.join(this.options.workDir, `controller-${this.controllerStarts}.log`);
    const grafanaUrl = this.grafana?.url ?? this.options.grafana?.url;
    const out = createWriteStream(logPath);
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'bin/kvpa.js'),
        'controller',
        '--kubeconfig',
        this.cluster.kubeconfigPath,
        '--namespace',
        this.namespace,
        // The Grafana token may go to the stack's own Grafana (plain http on loopback) and nowhere else.
        ...(grafanaUrl !== undefined ? ['--allowed-hosts', allowEntryFor(grafanaUrl)] : []),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, POD_NAME: `kvpa-up-${this.controllerStarts}` },
      },
    );
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    child.once('exit', () => process.removeListener('exit', kill));
    this.controllerProcess = child;
    this.log(`kvpa controller started (pid ${child.pid}, log ${logPath})`);
  }

  /** SIGTERM, as Kubernetes does on a rollout; resolves when the process has exited. */
  async stopController(): Promise<void> {
    const child = this.controllerProcess;
    if (child === null) return;
    this.controllerProcess = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  get controllerRunning(): boolean {
    return this.controllerProcess !== null;
  }

  /** Replaces the load with a step profile (rates per virtual second), from now. */
  setLoad(steps: readonly LoadStep[]): void {
    this.load.stop();
    this.load = new LoadGenerator(this.engines, {
      source: { kind: 'steps', steps },
      durationSeconds: 24 * 3600, // until stop(): the stack ends the run, not the profile
    }).start();
  }

  /** Starts Prometheus again on the same address, so the PodAutoscaler's metricsSource still points at it. */
  async restartPrometheus(): Promise<void> {
    if (this.prometheus !== null) return;
    this.prometheus = await startPrometheus({ ...this.prometheusOptions, port: this.prometheusPort });
  }

  /** Stops Prometheus (a fault the pools must ride out without scaling down). */
  async killPrometheus(): Promise<void> {
    const p = this.prometheus;
    this.prometheus = null;
    await p?.stop();
  }

  async lws(pool: DemoPool): Promise<{ specGroups: number | null; readyGroups: number | null }> {
    const api = this.kubeConfig.makeApiClient(CustomObjectsApi);
    try {
      const o = (await api.getNamespacedCustomObject({
        group: 'leaderworkerset.x-k8s.io',
        version: 'v1',
        namespace: this.namespace,
        plural: 'leaderworkersets',
        name: lwsName(pool),
      })) as { spec?: { replicas?: number }; status?: { readyReplicas?: number } };
      return { specGroups: o.spec?.replicas ?? null, readyGroups: o.status?.readyReplicas ?? 0 };
    } catch {
      return { specGroups: null, readyGroups: null };
    }
  }

  async podAutoscaler(name = 'deepseek-r1'): Promise<PodAutoscaler | null> {
    const api = this.kubeConfig.makeApiClient(CustomObjectsApi);
    try {
      return (await api.getNamespacedCustomObject({
        group: 'kvpa.io',
        version: 'v1alpha1',
        namespace: this.namespace,
        plural: 'podautoscalers',
        name,
      })) as PodAutoscaler;
    } catch {
      return null;
    }
  }

  /**
   * Read-modify-write of the stack's PodAutoscaler. The controller writes its status all the time, so a 409
   * (the object changed since the read) is retried on a fresh read, up to 5 times.
   */
  async editPodAutoscaler(edit: (pa: PodAutoscaler) => PodAutoscaler, name = 'deepseek-r1'): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.podAutoscaler(name);
      if (current === null) throw new Error(`PodAutoscaler ${this.namespace}/${name} not found`);
      try {
        await this.kubeConfig.makeApiClient(CustomObjectsApi).replaceNamespacedCustomObject({
          group: 'kvpa.io',
          version: 'v1alpha1',
          namespace: this.namespace,
          plural: 'podautoscalers',
          name,
          body: edit(current),
        });
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt >= 5) throw err;
      }
    }
  }

  /** New Kubernetes Events of the PodAutoscalers since the last call, oldest first. */
  async newEvents(): Promise<string[]> {
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    let items: Awaited<ReturnType<CoreV1Api['listNamespacedEvent']>>['items'];
    try {
      items = (
        await core.listNamespacedEvent({
          namespace: this.namespace,
          fieldSelector: 'involvedObject.kind=PodAutoscaler',
        })
      ).items;
    } catch {
      return [];
    }
    const fresh: string[] = [];
    const sorted = [...items].sort((a, b) =>
      String(a.lastTimestamp ?? a.eventTime ?? '').localeCompare(
        String(b.lastTimestamp ?? b.eventTime ?? ''),
      ),
    );
    for (const e of sorted) {
      const key = `${e.metadata?.uid}/${e.count ?? 1}`;
      if (this.seenEvents.has(key)) continue;
      this.seenEvents.add(key);
      const at = new Date(String(e.lastTimestamp ?? e.eventTime ?? Date.now())).toISOString().slice(11, 19);
      fresh.push(`${at} ${e.reason ?? ''}: ${e.message ?? ''}`);
    }
    this.events.push(...fresh);
    return fresh;
  }

  /** One sample of everything the view and the report show. */
  async sample(): Promise<{ view: StackView; sample: StackSample }> {
    const [lwsPrefill, lwsDecode, pa] = await Promise.all([
      this.lws('prefill'),
      this.lws('decode'),
      this.podAutoscaler(),
    ]);
    await this.newEvents();
    const snapshot = this.engines.snapshot();
    const lws = { prefill: lwsPrefill, decode: lwsDecode };
    const elapsedSeconds = (Date.now() - this.startedAtMs) / 1000;
    const views: PoolView[] = [];
    const samples: Record<string, PoolSample> = {};
    for (const pool of POOLS) {
      const status = pa?.status?.pools?.find((p) => p.name === pool);
      const engine = snapshot.pools[pool];
      const serving = engine.readyGroups > 0;
      views.push({
        name: pool,
        specGroups: lws[pool].specGroups,
        readyGroups: lws[pool].readyGroups,
        mode: status?.mode ?? null,
        recommendedGroups: status?.recommendedReplicas ?? null,
        kvCacheUsage: serving ? engine.kvCacheUsageMean : null,
        requestsWaiting: serving ? engine.requestsWaiting : null,
        requestsRunning: serving ? engine.requestsRunning : null,
        decisionSummary: status?.lastDecision?.summary ?? null,
      });
      const wants: Record<string, number | null> = {};
      for (const s of status?.lastDecision?.signals ?? []) wants[s.name] = s.stableWant ?? null;
      samples[pool] = {
        specGroups: lws[pool].specGroups,
        readyGroups: lws[pool].readyGroups,
        recommendedGroups: status?.recommendedReplicas ?? null,
        mode: status?.mode ?? null,
        kvCacheUsage: serving ? engine.kvCacheUsageMean : null,
        requestsWaiting: serving ? engine.requestsWaiting : null,
        signalWants: wants,
      };
    }
    const loadRequestsPerSecond = this.loadRate(snapshot.requests.arrived);
    return {
      view: {
        elapsedSeconds,
        loadRequestsPerSecond,
        pools: views,
        recentEvents: this.events.slice(-8),
      },
      sample: { atSeconds: elapsedSeconds, loadRequestsPerSecond, pools: samples },
    };
  }

  private lastArrived: { atMs: number; arrived: number } | null = null;
  private loadRate(arrived: number): number {
    const now = Date.now();
    const prev = this.lastArrived;
    this.lastArrived = { atMs: now, arrived };
    if (prev === null || now <= prev.atMs) return 0;
    return ((arrived - prev.arrived) * 1000) / (now - prev.atMs);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.load.stop();
    await this.stopController();
    await this.enginePods.stop();
    await this.engines.stop();
    await this.prometheus?.stop();
    await this.grafana?.close();
    await this.workloads.stop();
    await this.cluster.stop();
  }
}

async function createObject(
  kc: KubeConfig,
  body: Record<string, unknown>,
  plural: string,
  group: string,
  version: string,
) {
  const api = kc.makeApiClient(CustomObjectsApi);
  const namespace = (body.metadata as { namespace: string }).namespace;
  await api.createNamespacedCustomObject({ group, version, namespace, plural, body });
}

/** Brings the whole stack up; on any failure, stops what already started and rethrows. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? ((m: string) => process.stderr.write(`[kvpa up] ${m}\n`));
  mkdirSync(options.workDir, { recursive: true });
  const namespace = DEMO_NAMESPACE;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    log('control plane: etcd + kube-apiserver (built from the Go module proxy on first use)');
    const cluster = await startCluster({ log });
    cleanups.push(() => cluster.stop());
    const kc = cluster.kubeConfig();

    const maxGroups = options.maxGroups ?? { prefill: 4, decode: 3 };
    const podStartupSeconds = options.podStartupSeconds ?? 20;
    const podsPerGroup = { prefill: 2, decode: 4 };
    const fakeNodes =
      options.fakeNodes ?? maxGroups.prefill * podsPerGroup.prefill + maxGroups.decode * podsPerGroup.decode;
    log(
      `workload controllers: kube-controller-manager, kube-scheduler, LWS, kwok (${fakeNodes} fake 8-GPU nodes)`,
    );
    const workloads = await startWorkloadControllers({
      cluster,
      fakeNodes,
      gpusPerNode: GPUS_PER_POD,
      podStartupSeconds,
      log,
      logDir: path.join(options.workDir, 'workloads'),
    });
    cleanups.push(() => workloads.stop());

    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });

    const engines = new LiveEngines({
      calibration: loadCalibration('deepseek-r1-h200'),
      accelerationFactor: options.accelerationFactor ?? 1,
    });
    cleanups.push(() => engines.stop());
    let stack: Stack | undefined;
    const enginePods = new EnginePodWatch({
      kubeConfig: kc,
      namespace,
      engines,
      // Aborted watches during stop() are expected; anything else is worth a line.
      onError: (e) => {
        if (stack?.stopped !== true) log(`engine pods: ${(e as Error).message ?? String(e)}`);
      },
    });
    await enginePods.start();
    cleanups.push(() => enginePods.stop());

    log('Prometheus (Debian package) with Kubernetes service discovery of the leader pods');
    const prometheusOptions = {
      scrapeIntervalSeconds: options.scrapeIntervalSeconds ?? 1,
      kubernetesSd: {
        apiServer: cluster.server,
        caFile: cluster.caCertPath,
        bearerToken: cluster.adminToken,
        namespaces: [namespace],
        metricsPortAnnotation: METRICS_PORT_ANNOTATION,
      },
    };
    const prometheus = await startPrometheus(prometheusOptions);
    cleanups.push(() => prometheus.stop());

    let grafana: GrafanaContractServer | null = null;
    let grafanaTarget = options.grafana;
    if (grafanaTarget === undefined) {
      const token = randomBytes(16).toString('hex');
      const annotationsLog = createWriteStream(path.join(options.workDir, 'grafana-annotations.jsonl'));
      grafana = await startGrafanaContractServer({
        token,
        onAnnotation: (event, a) => annotationsLog.write(`${JSON.stringify({ event, ...a })}\n`),
      });
      cleanups.push(() => grafana?.close() ?? Promise.resolve());
      grafanaTarget = { url: grafana.url, token };
    }
    await core.createNamespacedSecret({
      namespace,
      body: {
        // The label is the Secret owner's grant: kvpa reads no Secret without it (deploy/README.md).
        metadata: { name: 'grafana-annotations', labels: { [TOKEN_GRANT_LABEL]: 'true' } },
        stringData: { token: grafanaTarget.token },
      },
    });

    log('workload: DeepSeek-R1 prefill and decode LeaderWorkerSets (KServe multi-node naming)');
    for (const pool of POOLS) {
      await createObject(
        kc,
        demoLeaderWorkerSet(pool, {
          namespace,
          podsPerGroup,
          nodeSelector: { [fakeNodeLabel]: 'true' },
          ...(options.drainGate !== undefined ? { drainGate: options.drainGate } : {}),
        }),
        'leaderworkersets',
        'leaderworkerset.x-k8s.io',
        'v1',
      );
    }
    const pa = demoPodAutoscaler({
      namespace,
      mode: options.initialMode ?? 'Apply',
      metricsSource: { prometheus: { address: prometheus.url } },
      grafana: { url: grafanaTarget.url, tokenSecretName: 'grafana-annotations' },
      maxGroups,
      horizonSeconds: 2 * podStartupSeconds,
      ...options.autoscaler,
    });
    await createObject(kc, pa as unknown as Record<string, unknown>, 'podautoscalers', 'kvpa.io', 'v1alpha1');

    const load = new LoadGenerator(engines, {
      source: options.load ?? { kind: 'trace', path: DEFAULT_TRACE, timeCompression: 10 },
      ...(options.loadDurationSeconds !== undefined ? { durationSeconds: options.loadDurationSeconds } : {}),
    });
    stack = new Stack(
      options,
      cluster,
      kc,
      workloads,
      prometheus,
      prometheusOptions,
      Number(new URL(prometheus.url).port),
      engines,
      enginePods,
      grafana,
      load,
      namespace,
    );
    cleanups.length = 0; // the stack owns them now
    if (options.startController ?? true) stack.startController();
    return stack;
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    throw error;
  }
}
