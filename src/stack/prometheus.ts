/**
 * A real Prometheus for integration tests: Debian's `prometheus` binary (scripts/install-prometheus.sh),
 * started by hand on 127.0.0.1 with a temp config and TSDB, never through systemd.
 *
 * Targets come from a file_sd file that the test rewrites at will. Each target carries the
 * `__meta_kubernetes_*` labels that Kubernetes SD would give a pod, and the scrape config turns them
 * into `namespace`, `pod` and pod-label labels with the usual relabel rules, so the series look like
 * the ones a cluster Prometheus stores.
 *
 * With `kubernetesSd`, targets come instead from real Kubernetes service discovery (role `pod`) against our
 * API server: only LWS leader pods that carry the emulated engines' port annotation are kept, and the
 * address becomes `127.0.0.1:<annotation>` because kwok's pod IPs are not reachable. The relabelling after
 * that is the file_sd one, so both modes store the same series. Debian's 2.42 binary is built without
 * Kubernetes SD (it rejects `kubernetes_sd_configs`); then a pod watcher of ours (pod-sd-bridge.ts) writes
 * what Kubernetes SD would have discovered to a file_sd file and the same relabelling runs on it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ScrapeTarget {
  /** host:port of the exporter. */
  readonly address: string;
  readonly metricsPath: string;
  readonly namespace: string;
  readonly pod: string;
  /** Pod labels, e.g. `leaderworkerset.sigs.k8s.io/worker-index: "0"`. */
  readonly podLabels?: Readonly<Record<string, string>>;
}

/** Kubernetes service discovery of emulated engines (see the module comment). */
export interface KubernetesSdOptions {
  /** https://127.0.0.1:<port> */
  readonly apiServer: string;
  readonly caFile: string;
  /** A bearer token (written to a 0600 file in Prometheus' temp dir), or a file holding one. */
  readonly bearerToken?: string;
  readonly bearerTokenFile?: string;
  readonly namespaces: readonly string[];
  /** The pod annotation with the engine's loopback port, e.g. `kvpa.io/emulated-metrics-port`. */
  readonly metricsPortAnnotation: string;
}

export interface PrometheusHarness {
  readonly url: string;
  readonly scrapeIntervalSeconds: number;
  /** Where targets come from: test-written file_sd, Prometheus' own Kubernetes SD, or our stand-in for it. */
  readonly discovery: 'file' | 'native' | 'bridge';
  /** Replaces the scrape targets (file_sd); resolves once Prometheus lists exactly these as active. Throws in kubernetesSd mode. */
  setTargets(targets: readonly ScrapeTarget[], timeoutMs?: number): Promise<void>;
  /** Resolves once Prometheus' active targets are exactly these pods, each scraped at least once. */
  waitForTargets(pods: readonly { namespace: string; pod: string }[], timeoutMs?: number): Promise<void>;
  /** Requests Prometheus has served on an API handler, read from its own /metrics (server-side count). */
  servedRequests(handler: '/api/v1/query' | '/api/v1/query_range'): Promise<number>;
  stop(): Promise<void>;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function which(name: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** The prometheus binary; installs Debian's package first if it is missing (idempotent script). */
export function prometheusBinary(): string {
  const fromEnv = process.env.KVPA_PROMETHEUS_BIN;
  if (fromEnv) return fromEnv;
  const found = which('prometheus');
  if (found) return found;
  execFileSync(path.join(repoRoot, 'scripts/install-prometheus.sh'), { stdio: 'inherit', timeout: 300_000 });
  const installed = which('prometheus');
  if (!installed) throw new Error('prometheus not found after scripts/install-prometheus.sh');
  return installed;
}

/** promtool, which Debian's prometheus package installs beside prometheus. */
function promtoolBinary(): string {
  const beside = path.join(path.dirname(prometheusBinary()), 'promtool');
  return which('promtool') ?? beside;
}

/** Writes OpenMetrics history into a fresh TSDB directory as blocks (promtool tsdb create-blocks-from openmetrics). */
async function backfillHistory(text: string, dir: string, dataDir: string): Promise<void> {
  const file = path.join(dir, 'history.om');
  await writeFile(file, text);
  try {
    execFileSync(promtoolBinary(), ['tsdb', 'create-blocks-from', 'openmetrics', file, dataDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 120_000,
    });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`promtool could not write the history blocks: ${stderr || String(err)}`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Kubernetes SD's label-name sanitising: every character outside [a-zA-Z0-9_] becomes `_`. */
export function sanitizeLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

function fileSd(targets: readonly ScrapeTarget[]): string {
  return JSON.stringify(
    targets.map((t) => {
      const labels: Record<string, string> = {
        __metrics_path__: t.metricsPath,
        __meta_kubernetes_namespace: t.namespace,
        __meta_kubernetes_pod_name: t.pod,
      };
      for (const [k, v] of Object.entries(t.podLabels ?? {})) {
        labels[`__meta_kubernetes_pod_label_${sanitizeLabelName(k)}`] = v;
      }
      return { targets: [t.address], labels };
    }),
  );
}

/** The relabelling both modes share: `__meta_kubernetes_*` → `namespace`, `pod` and pod labels. */
const POD_RELABELS = [
  { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
  { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
  { action: 'labelmap', regex: '__meta_kubernetes_pod_label_(.+)' },
];

const LEADER_LABEL = 'leaderworkerset.sigs.k8s.io/worker-index';

/**
 * The `engines` job over Kubernetes SD (Prometheus 2.42 syntax: `kubernetes_sd_configs` with `api_server`,
 * `tls_config`, `authorization.credentials_file`, `namespaces.names`, `selectors`). Pure.
 */
export function kubernetesSdJob(sd: KubernetesSdOptions, tokenFile: string): Record<string, unknown> {
  const annotation = `__meta_kubernetes_pod_annotation_${sanitizeLabelName(sd.metricsPortAnnotation)}`;
  const leader = `__meta_kubernetes_pod_label_${sanitizeLabelName(LEADER_LABEL)}`;
  return {
    job_name: 'engines',
    honor_labels: false,
    kubernetes_sd_configs: [
      {
        role: 'pod',
        api_server: sd.apiServer,
        tls_config: { ca_file: sd.caFile },
        authorization: { type: 'Bearer', credentials_file: tokenFile },
        namespaces: { names: [...sd.namespaces] },
        // Server-side filter: the API server sends leaders only.
        selectors: [{ role: 'pod', label: `${LEADER_LABEL}=0` }],
      },
    ],
    relabel_configs: [
      { source_labels: [leader], regex: '0', action: 'keep' },
      { source_labels: [annotation], regex: '[0-9]+', action: 'keep' },
      // One target per container (port) collapses to one after this: same labels, same address.
      {
        source_labels: [annotation],
        regex: '([0-9]+)',
        target_label: '__address__',
        replacement: '127.0.0.1:$1',
      },
      { target_label: '__metrics_path__', replacement: '/metrics' },
      ...POD_RELABELS,
    ],
  };
}

function globalConfig(scrapeIntervalSeconds: number) {
  return {
    scrape_interval: `${scrapeIntervalSeconds}s`,
    scrape_timeout: `${Math.round(Math.max(0.5, scrapeIntervalSeconds * 0.8) * 1000)}ms`,
    evaluation_interval: '60s',
  };
}

function kubernetesSdConfig(
  scrapeIntervalSeconds: number,
  sd: KubernetesSdOptions,
  tokenFile: string,
): string {
  return JSON.stringify({
    global: globalConfig(scrapeIntervalSeconds),
    scrape_configs: [kubernetesSdJob(sd, tokenFile)],
  });
}

function config(scrapeIntervalSeconds: number, sdFile: string, honorLabels: boolean): string {
  // JSON is valid YAML; no YAML writer needed.
  return JSON.stringify({
    global: {
      scrape_interval: `${scrapeIntervalSeconds}s`,
      scrape_timeout: `${Math.round(Math.max(0.5, scrapeIntervalSeconds * 0.8) * 1000)}ms`,
      evaluation_interval: '60s',
    },
    scrape_configs: [
      {
        job_name: 'engines',
        // Bulk exporters (the benchmark) print namespace/pod themselves, as a federation endpoint does.
        honor_labels: honorLabels,
        file_sd_configs: [{ files: [sdFile], refresh_interval: '1s' }],
        relabel_configs: [
          { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
          { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
          { action: 'labelmap', regex: '__meta_kubernetes_pod_label_(.+)' },
        ],
      },
    ],
  });
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function getJson(url: string, timeoutMs = 2000): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

async function waitForTargets(
  url: string,
  pods: readonly { namespace: string; pod: string }[],
  timeoutMs: number,
): Promise<void> {
  const want = new Set(pods.map((t) => `${t.namespace}/${t.pod}`));
  const until = Date.now() + timeoutMs;
  for (;;) {
    const body = (await getJson(`${url}/api/v1/targets?state=active`)) as {
      data: { activeTargets: { labels: Record<string, string>; health: string }[] };
    };
    const active = body.data.activeTargets;
    const have = new Set(active.map((t) => `${t.labels.namespace}/${t.labels.pod}`));
    const scraped = active.filter((t) => t.health !== 'unknown').length;
    if (have.size === want.size && [...want].every((k) => have.has(k)) && scraped === active.length) {
      return;
    }
    if (Date.now() > until) {
      throw new Error(
        `targets not active within ${timeoutMs} ms: have [${[...have].join(', ')}], want [${[...want].join(', ')}]`,
      );
    }
    await sleep(200);
  }
}

/** A running Prometheus process; `stop` ends it (not the temp dir). */
interface Launched {
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts the binary on a free loopback port and waits for /-/ready; on failure kills it and throws with stderr. */
async function launch(
  configFile: string,
  dataDir: string,
  startTimeoutMs: number,
  fixedPort?: number,
): Promise<Launched> {
  const port = fixedPort ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    prometheusBinary(),
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  // Never leave a Prometheus behind if the test process dies first.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const deadline = Date.now() + 3000;
      while (!exited && Date.now() < deadline) await sleep(50);
      if (!exited) child.kill('SIGKILL');
    }
  };

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`prometheus exited during start-up: ${stderr}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return { url, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within the start timeout: ${stderr}`);
    }
    await sleep(100);
  }
}

/**
 * How Kubernetes SD is done: `native` = Prometheus' own `kubernetes_sd_configs`; `bridge` = our pod watcher
 * writes what Kubernetes SD would discover (the same `__meta_kubernetes_*` labels) to a file_sd file, with the
 * same relabelling. `auto` tries native and falls back to the bridge when the binary has no Kubernetes SD:
 * Debian's 2.42 build leaves it out (client-go is not packaged), and rejects the config at start-up.
 */
export type KubernetesSdDiscovery = 'auto' | 'native' | 'bridge';

const NO_KUBERNETES_SD = /field kubernetes_sd_configs not found/;

export async function startPrometheus(
  options: {
    scrapeIntervalSeconds?: number;
    startTimeoutMs?: number;
    honorLabels?: boolean;
    /** Listen on this loopback port (a restart that clients must find at the same address); default: a free one. */
    port?: number;
    /**
     * OpenMetrics text (ending in `# EOF`) written into the TSDB before start with promtool's
     * `tsdb create-blocks-from openmetrics`: history from days ago, as a long-running Prometheus holds it.
     */
    history?: string;
    /** Discover engines through Kubernetes SD instead of test-written file_sd targets. */
    kubernetesSd?: KubernetesSdOptions & { readonly discovery?: KubernetesSdDiscovery };
  } = {},
): Promise<PrometheusHarness> {
  const scrapeIntervalSeconds = options.scrapeIntervalSeconds ?? 1;
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const dir = await mkdtemp(path.join(tmpdir(), 'kvpa-prom-'));
  const sdFile = path.join(dir, 'targets.json');
  const configFile = path.join(dir, 'prometheus.yml');
  const dataDir = path.join(dir, 'data');
  const sd = options.kubernetesSd;
  let launched: Launched | undefined;
  let bridge: { stop(): Promise<void> } | undefined;
  let discovery: 'file' | 'native' | 'bridge' = 'file';
  try {
    if (options.history !== undefined) await backfillHistory(options.history, dir, dataDir);
    if (sd === undefined) {
      await writeFile(sdFile, '[]');
      await writeFile(configFile, config(scrapeIntervalSeconds, sdFile, options.honorLabels ?? false));
      launched = await launch(configFile, dataDir, startTimeoutMs, options.port);
    } else {
      let tokenFile = sd.bearerTokenFile;
      if (sd.bearerToken !== undefined) {
        tokenFile = path.join(dir, 'token');
        await writeFile(tokenFile, sd.bearerToken, { mode: 0o600 });
      }
      if (tokenFile === undefined) throw new Error('kubernetesSd needs bearerToken or bearerTokenFile');
      const mode = sd.discovery ?? 'auto';
      if (mode !== 'bridge') {
        await writeFile(configFile, kubernetesSdConfig(scrapeIntervalSeconds, sd, tokenFile));
        try {
          launched = await launch(configFile, dataDir, startTimeoutMs, options.port);
          discovery = 'native';
        } catch (err) {
          if (mode === 'native' || !NO_KUBERNETES_SD.test(String(err))) throw err;
        }
      }
      if (launched === undefined) {
        await writeFile(sdFile, '[]');
        const { kubernetes_sd_configs: _native, ...job } = kubernetesSdJob(sd, tokenFile);
        await writeFile(
          configFile,
          JSON.stringify({
            global: globalConfig(scrapeIntervalSeconds),
            scrape_configs: [{ ...job, file_sd_configs: [{ files: [sdFile], refresh_interval: '1s' }] }],
          }),
        );
        // Loaded only here: the file_sd mode never needs the Kubernetes client.
        const { startPodSdBridge } = await import('./pod-sd-bridge.ts');
        bridge = await startPodSdBridge({ ...sd, tokenFile, file: sdFile, leaderLabel: LEADER_LABEL });
        launched = await launch(configFile, dataDir, startTimeoutMs, options.port);
        discovery = 'bridge';
      }
    }
  } catch (err) {
    await bridge?.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const { url } = launched;
  const running = launched;
  const stop = async () => {
    await running.stop();
    await bridge?.stop();
    await rm(dir, { recursive: true, force: true });
  };

  return {
    url,
    scrapeIntervalSeconds,
    discovery,
    async setTargets(targets, timeoutMs = 10_000) {
      if (sd !== undefined)
        throw new Error('setTargets: this Prometheus discovers its targets through Kubernetes SD');
      await writeFile(`${sdFile}.tmp`, fileSd(targets));
      // Rename so that Prometheus never reads a half-written file.
      await rename(`${sdFile}.tmp`, sdFile);
      await waitForTargets(url, targets, timeoutMs);
    },
    waitForTargets: (pods, timeoutMs = 10_000) => waitForTargets(url, pods, timeoutMs),
    async servedRequests(handler) {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) });
      const text = await res.text();
      let total = 0;
      for (const line of text.split('\n')) {
        if (line.startsWith('prometheus_http_requests_total{') && line.includes(`handler="${handler}"`)) {
          total += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
      }
      return total;
    },
    stop,
  };
}
