/**
 * A real Prometheus for integration tests: Debian's `prometheus` binary (scripts/install-prometheus.sh),
 * started by hand on 127.0.0.1 with a temp config and TSDB, never through systemd.
 *
 * Targets come from a file_sd file that the test rewrites at will. Each target carries the
 * `__meta_kubernetes_*` labels that Kubernetes SD would give a pod, and the scrape config turns them
 * into `namespace`, `pod` and pod-label labels with the usual relabel rules, so the series look like
 * the ones a cluster Prometheus stores.
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

export interface PrometheusHarness {
  readonly url: string;
  readonly scrapeIntervalSeconds: number;
  /** Replaces the scrape targets (file_sd); resolves once Prometheus lists exactly these as active. */
  setTargets(targets: readonly ScrapeTarget[], timeoutMs?: number): Promise<void>;
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

export async function startPrometheus(
  options: { scrapeIntervalSeconds?: number; startTimeoutMs?: number; honorLabels?: boolean } = {},
): Promise<PrometheusHarness> {
  const scrapeIntervalSeconds = options.scrapeIntervalSeconds ?? 1;
  const dir = await mkdtemp(path.join(tmpdir(), 'kvpa-prom-'));
  const sdFile = path.join(dir, 'targets.json');
  const configFile = path.join(dir, 'prometheus.yml');
  await writeFile(sdFile, '[]');
  await writeFile(configFile, config(scrapeIntervalSeconds, sdFile, options.honorLabels ?? false));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    prometheusBinary(),
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
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
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`prometheus exited during start-up: ${stderr}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within the start timeout: ${stderr}`);
    }
    await sleep(100);
  }

  return {
    url,
    scrapeIntervalSeconds,
    async setTargets(targets, timeoutMs = 10_000) {
      await writeFile(`${sdFile}.tmp`, fileSd(targets));
      // Rename so that Prometheus never reads a half-written file.
      await rename(`${sdFile}.tmp`, sdFile);
      const want = new Set(targets.map((t) => `${t.namespace}/${t.pod}`));
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
          throw new Error(`targets not active within ${timeoutMs} ms: have ${have.size}, want ${want.size}`);
        }
        await sleep(200);
      }
    },
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
