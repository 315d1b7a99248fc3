// A real control plane (etcd + kube-apiserver) for integration tests and local runs.
// Binaries come from scripts/build-k8s.sh (built from the Go module proxy, cached outside the clone).
// Everything listens on 127.0.0.1 only; teardown kills whole process groups and removes the work dir,
// and a watchdog does the same if this Node process dies without tearing down.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiextensionsV1Api,
  KubeConfig,
  loadAllYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import YAML from 'yaml';

const execFileAsync = promisify(execFile);

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Serializable facts about a running cluster (what the vitest globalSetup hands to tests). */
export interface ClusterInfo {
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** http://127.0.0.1:<port>, etcd's client URL: for tests that store what admission would refuse. */
  etcdUrl: string;
  caCertPath: string;
  /** Static token of user "kvpa-admin" in group system:masters. */
  adminToken: string;
  /** Static token of user "kvpa-nobody": authenticated, no RBAC bindings. */
  unprivilegedToken: string;
  /** Names of the CRDs installed from the fetched third-party pin set. */
  thirdPartyCrds: string[];
  /** Where those came from (ensureThirdPartyCrds); empty when installCrds was false. */
  thirdPartyCrdDir: string;
  /** Names of the CRDs installed from the project's crds/ directory. */
  projectCrds: string[];
  /** Contents of bin/VERSIONS (kube-apiserver=..., etcd=..., go=...). */
  binaryVersions: Record<string, string>;
  workDir: string;
  /** ServiceAccount token signing key (PEM), for a kube-controller-manager's token controller. */
  serviceAccountKeyPath?: string;
}

export interface Cluster extends ClusterInfo {
  kubeConfig(): KubeConfig;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** Directory with kube-apiserver and etcd; default: KVPA_K8S_BIN_DIR, else scripts/build-k8s.sh. */
  binDir?: string;
  /** Install the third-party CRDs (scripts/fetch-crds.sh) and crds/ (default true). */
  installCrds?: boolean;
  readyTimeoutSeconds?: number;
  crdEstablishedTimeoutSeconds?: number;
  /** Progress messages; default: stderr. */
  log?: (message: string) => void;
}

const stopTimeoutSeconds = 10;

/**
 * The pinned third-party CRDs (scripts/fetch-crds.tsv), fetched from the Go module proxy into the cache
 * by scripts/fetch-crds.sh (idempotent and checksum-verified, so calling it every time is cheap).
 * Returns the pin set's directory: one subdirectory per project (lws/, kuberay/, …).
 */
export async function ensureThirdPartyCrds(log: (message: string) => void = defaultLog): Promise<string> {
  const dir = await runCacheScript('scripts/fetch-crds.sh', log);
  if (!existsSync(path.join(dir, '.complete'))) {
    throw new Error(`scripts/fetch-crds.sh printed no complete CRD directory (got "${dir}")`);
  }
  return dir;
}

/** One row of scripts/fetch-crds.tsv: where a third-party CRD comes from and its scale subresource. */
export interface ThirdPartyCrdPin {
  /** Path inside the pin set, e.g. lws/leaderworkerset.x-k8s.io_leaderworkersets.yaml. */
  file: string;
  /** module@version on the Go module proxy, or "repo" for a copy in scripts/crds. */
  source: string;
  path: string;
  sha256: string;
  scale: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string } | undefined;
}

/** The pins as committed: tab-separated rows, `#` comments; scale is `spec|status|selector` or `none`. */
export function readThirdPartyCrdPins(): ThirdPartyCrdPin[] {
  const text = readFileSync(path.join(repoRoot, 'scripts/fetch-crds.tsv'), 'utf8');
  const pins: ThirdPartyCrdPin[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [file, source, rowPath, sha256, scale] = line.split('\t');
    if (!file || !source || !rowPath || !sha256 || !scale) {
      throw new Error(`scripts/fetch-crds.tsv: row "${line}" needs 5 tab-separated columns`);
    }
    const [specReplicasPath, statusReplicasPath, labelSelectorPath] = scale.split('|');
    pins.push({
      file,
      source,
      path: rowPath,
      sha256,
      scale:
        scale === 'none' || !specReplicasPath || !statusReplicasPath || !labelSelectorPath
          ? undefined
          : { specReplicasPath, statusReplicasPath, labelSelectorPath },
    });
  }
  return pins;
}

export function projectCrdDir(): string {
  return path.join(repoRoot, 'crds');
}

/**
 * Returns the directory holding kube-apiserver and etcd, building them if needed. The build script
 * is idempotent and prints progress on stderr, so calling it every time is cheap once cached.
 */
export async function ensureK8sBinaries(log: (message: string) => void = defaultLog): Promise<string> {
  return await ensureBuiltBinaries(
    'scripts/build-k8s.sh',
    'KVPA_K8S_BIN_DIR',
    ['kube-apiserver', 'etcd'],
    log,
  );
}

/**
 * Runs an idempotent build script (repo-relative) whose last stdout line is a bin dir, unless the
 * env var names a dir that already holds the binaries. Shared by the control-plane and stack builds.
 */
export async function ensureBuiltBinaries(
  scriptRelPath: string,
  envVar: string,
  binaries: string[],
  log: (message: string) => void = defaultLog,
): Promise<string> {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    for (const name of binaries) {
      if (!existsSync(path.join(fromEnv, name))) {
        throw new Error(`${envVar}=${fromEnv} has no ${name}`);
      }
    }
    return fromEnv;
  }
  const binDir = await runCacheScript(scriptRelPath, log);
  if (!binDir || !binaries.every((b) => existsSync(path.join(binDir, b)))) {
    throw new Error(`${scriptRelPath} printed no usable bin dir (got "${binDir}")`);
  }
  return binDir;
}

/**
 * Runs an idempotent cache script (repo-relative; progress on stderr) and returns the last line it
 * printed on stdout: the cached directory.
 */
async function runCacheScript(scriptRelPath: string, log: (message: string) => void): Promise<string> {
  const script = path.join(repoRoot, scriptRelPath);
  const startedMs = Date.now();
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `${scriptRelPath} failed (exit ${code}); its output above names the versions tried and the ` +
              `log under \${KVPA_CACHE:-~/.cache/kvpa}`,
          ),
        );
    });
  });
  const dir = stdout.trim().split('\n').pop() ?? '';
  const elapsedSeconds = (Date.now() - startedMs) / 1000;
  if (elapsedSeconds > 5) log(`${scriptRelPath} done after ${elapsedSeconds.toFixed(0)}s: ${dir}`);
  return dir;
}

export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const log = options.log ?? defaultLog;
  const binDir = options.binDir ?? (await ensureK8sBinaries(log));
  const readyTimeoutSeconds = options.readyTimeoutSeconds ?? 120;
  const startedMs = Date.now();

  const workDir = await mkdtemp(path.join(os.tmpdir(), 'kvpa-cluster-'));
  const procs: ManagedProcess[] = [];
  const watchdog = startWatchdog(workDir);
  const stop = async (): Promise<void> => {
    // The apiserver first, so it does not spin on a vanished etcd.
    for (const p of [...procs].reverse()) await p.stop();
    watchdog.kill();
    await rm(workDir, { recursive: true, force: true });
  };

  try {
    const pki = await generatePki(workDir);
    const adminToken = randomBytes(24).toString('hex');
    const unprivilegedToken = randomBytes(24).toString('hex');
    const tokenFile = path.join(workDir, 'tokens.csv');
    // Format: token,user,uid,"group1,group2"
    await writeFile(
      tokenFile,
      `${adminToken},kvpa-admin,kvpa-admin-uid,"system:masters"\n${unprivilegedToken},kvpa-nobody,kvpa-nobody-uid\n`,
      { mode: 0o600 },
    );

    const [etcdPort, etcdPeerPort, apiPort] = await freePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = spawnManaged('etcd', path.join(binDir, 'etcd'), workDir, [
      '--name=kvpa',
      `--data-dir=${path.join(workDir, 'etcd-data')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=kvpa=${etcdPeerUrl}`,
      // Test data is throw-away; skipping fsync makes CRD installs much faster.
      '--unsafe-no-fsync=true',
      // Large upstream CRDs (KServe is 2.7 MB of YAML) must fit in one etcd request.
      `--max-request-bytes=${8 * 1024 * 1024}`,
      '--log-level=warn',
    ]);
    procs.push(etcd);
    await waitFor(`etcd ${etcdUrl}/health`, readyTimeoutSeconds, etcd, async () => {
      const res = await fetch(`${etcdUrl}/health`);
      return res.ok;
    });

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = spawnManaged('kube-apiserver', path.join(binDir, 'kube-apiserver'), workDir, [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(workDir, 'cert-dir')}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPublicKey}`,
      `--service-account-signing-key-file=${pki.saPrivateKey}`,
      // No controller-manager runs, so default ServiceAccounts never appear; the admission plugin
      // would reject every Pod for lacking one (envtest does the same).
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      // The advertise address is loopback; endpoint reconciling only logs errors about it.
      '--endpoint-reconciler-type=none',
      '--v=1',
    ]);
    procs.push(apiserver);

    const kubeconfigPath = path.join(workDir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, pki.caCert, adminToken), { mode: 0o600 });

    await waitFor(`kube-apiserver ${server}/readyz`, readyTimeoutSeconds, apiserver, async () => {
      const res = await rawRequest({ server, caCertPath: pki.caCert, token: adminToken }, 'GET', '/readyz');
      return res.status === 200;
    });
    // The "default" namespace is created by an apiserver controller shortly after /readyz.
    await waitFor('namespace "default"', readyTimeoutSeconds, apiserver, async () => {
      const res = await rawRequest(
        { server, caCertPath: pki.caCert, token: adminToken },
        'GET',
        '/api/v1/namespaces/default',
      );
      return res.status === 200;
    });
    log(`kube-apiserver ready at ${server} after ${((Date.now() - startedMs) / 1000).toFixed(1)}s`);

    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    let thirdPartyCrds: string[] = [];
    let projectCrds: string[] = [];
    let thirdPartyCrdDir = '';
    if (options.installCrds ?? true) {
      const crdTimeoutSeconds = options.crdEstablishedTimeoutSeconds ?? 120;
      thirdPartyCrdDir = await ensureThirdPartyCrds(log);
      const crdStartedMs = Date.now();
      thirdPartyCrds = await installCrdDir(kc, thirdPartyCrdDir, crdTimeoutSeconds, true);
      projectCrds = await installCrdDir(kc, projectCrdDir(), crdTimeoutSeconds, false);
      log(
        `installed ${thirdPartyCrds.length} third-party + ${projectCrds.length} project CRDs in ` +
          `${((Date.now() - crdStartedMs) / 1000).toFixed(1)}s`,
      );
    }

    const info: ClusterInfo = {
      kubeconfigPath,
      server,
      etcdUrl,
      caCertPath: pki.caCert,
      adminToken,
      unprivilegedToken,
      thirdPartyCrds,
      thirdPartyCrdDir,
      projectCrds,
      binaryVersions: await readVersions(binDir),
      workDir,
      serviceAccountKeyPath: pki.saPrivateKey,
    };
    return {
      ...info,
      kubeConfig: () => {
        const k = new KubeConfig();
        k.loadFromFile(kubeconfigPath);
        return k;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A KubeConfig for the cluster that authenticates with the given bearer token instead of the admin's. */
export function kubeConfigWithToken(info: Pick<ClusterInfo, 'server' | 'caCertPath'>, token: string) {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml(info.server, info.caCertPath, token));
  return kc;
}

export interface RawResponse {
  status: number;
  body: string;
}

/** A plain HTTPS request against the apiserver; for status-code assertions the typed client hides. */
export async function rawRequest(
  target: { server: string; caCertPath: string; token?: string | undefined },
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<RawResponse> {
  const ca = await readFile(target.caCertPath);
  const url = new URL(urlPath, target.server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return await new Promise<RawResponse>((resolve, reject) => {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (target.token) headers.Authorization = `Bearer ${target.token}`;
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    const req = https.request(url, { method, ca, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function defaultLog(message: string): void {
  process.stderr.write(`[kvpa-cluster] ${message}\n`);
}

function kubeconfigYaml(server: string, caCertPath: string, token: string): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kvpa-test', cluster: { server, 'certificate-authority': caCertPath } }],
    users: [{ name: 'kvpa-user', user: { token } }],
    contexts: [{ name: 'kvpa-test', context: { cluster: 'kvpa-test', user: 'kvpa-user' } }],
    'current-context': 'kvpa-test',
  });
}

export async function readVersions(binDir: string): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  const file = path.join(binDir, 'VERSIONS');
  if (!existsSync(file)) return versions;
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const [key, value] = line.split('=');
    if (key && value) versions[key.trim()] = value.trim();
  }
  return versions;
}

interface Pki {
  caCert: string;
  servingCert: string;
  servingKey: string;
  saPublicKey: string;
  saPrivateKey: string;
}

/** Runs openssl in `dir`, naming the command in the error. */
async function openssl(dir: string, ...args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd: dir });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed: ${(err as Error).message}`);
  }
}

/**
 * A throw-away CA (`ca.crt`/`ca.key`) and a serving cert for 127.0.0.1/localhost signed by it
 * (`<name>.crt`/`<name>.key`) in `dir`, valid for 7 days. Used by the API server and by the LWS webhook.
 */
export async function loopbackServingCert(
  dir: string,
  o: { caCommonName: string; name: string; commonName: string },
): Promise<{ caCert: string; cert: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const f = (file: string) => path.join(dir, file);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const days = ['-days', '7'];
  await openssl(
    dir,
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    ...days,
    '-subj',
    `/CN=${o.caCommonName}`,
  );
  await openssl(
    dir,
    'req',
    ...ecKey,
    '-keyout',
    f(`${o.name}.key`),
    '-out',
    f(`${o.name}.csr`),
    '-subj',
    `/CN=${o.commonName}`,
  );
  await writeFile(
    f('serving.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
  );
  await openssl(
    dir,
    'x509',
    '-req',
    '-in',
    f(`${o.name}.csr`),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    ...days,
    '-extfile',
    f('serving.ext'),
    '-out',
    f(`${o.name}.crt`),
  );
  return { caCert: f('ca.crt'), cert: f(`${o.name}.crt`), key: f(`${o.name}.key`) };
}

/** A throw-away CA, a serving cert for 127.0.0.1/localhost and a ServiceAccount signing key pair. */
async function generatePki(workDir: string): Promise<Pki> {
  const dir = path.join(workDir, 'pki');
  const serving = await loopbackServingCert(dir, {
    caCommonName: 'kvpa-test-ca',
    name: 'apiserver',
    commonName: 'kube-apiserver',
  });
  // RSA: the signing algorithm every ServiceAccount token consumer supports.
  await openssl(dir, 'genrsa', '-out', path.join(dir, 'sa.key'), '2048');
  await openssl(dir, 'rsa', '-in', path.join(dir, 'sa.key'), '-pubout', '-out', path.join(dir, 'sa.pub'));
  return {
    caCert: serving.caCert,
    servingCert: serving.cert,
    servingKey: serving.key,
    saPublicKey: path.join(dir, 'sa.pub'),
    saPrivateKey: path.join(dir, 'sa.key'),
  };
}

export async function freePorts(count: number): Promise<number[]> {
  // Hold all listeners open until every port is known, so the same port is never handed out twice.
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('unexpected listener address');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export interface ManagedProcess {
  name: string;
  /** Process id, which is also the process group id (spawned detached). */
  pid: number;
  logPath: string;
  /** Set once the process has exited. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  stop(): Promise<void>;
}

/**
 * Spawns a binary in its own process group (detached), logging to <logDir>/<name>.log (logDir
 * defaults to workDir) and recording the group in <workDir>/<name>.pgid for the watchdog.
 */
export function spawnManaged(
  name: string,
  bin: string,
  workDir: string,
  args: string[],
  options: { logDir?: string; env?: NodeJS.ProcessEnv } = {},
): ManagedProcess {
  const logPath = path.join(options.logDir ?? workDir, `${name}.log`);
  const logStream = createWriteStream(logPath);
  const child: ChildProcess = spawn(bin, args, {
    cwd: workDir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env ? { env: options.env } : {}),
  });
  child.stdout?.pipe(logStream);
  child.stderr?.pipe(logStream);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`failed to start ${bin}`);
  // The watchdog reads these if this Node process dies without a clean stop.
  void writeFile(path.join(workDir, `${name}.pgid`), String(pid));
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      managed.exit = { code, signal };
      resolve();
    });
  });
  child.on('error', (err) => {
    logStream.write(`\n[harness] spawn error: ${err.message}\n`);
  });
  const managed: ManagedProcess = {
    name,
    pid,
    logPath,
    exit: undefined,
    async stop() {
      if (managed.exit === undefined) {
        killGroup(pid, 'SIGTERM');
        const timedOut = await Promise.race([
          exited.then(() => false),
          sleep(stopTimeoutSeconds * 1000).then(() => true),
        ]);
        if (timedOut) {
          killGroup(pid, 'SIGKILL');
          await exited;
        }
      }
      // Also reap any children the binary may have forked into its group.
      killGroup(pid, 'SIGKILL');
      await new Promise<void>((resolve) => logStream.end(() => resolve()));
    },
  };
  return managed;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * A detached shell that polls this Node process and, once it is gone, kills the recorded process
 * groups and deletes the work dir. Covers SIGKILLed test runners and crashes.
 */
export function startWatchdog(
  workDir: string,
  parentPid: number = process.pid,
): { pid: number; kill(): void } {
  const script = `
    parent=$1; dir=$2
    while kill -0 "$parent" 2>/dev/null; do sleep 1; done
    for f in "$dir"/*.pgid; do [ -f "$f" ] && kill -TERM -- "-$(cat "$f")" 2>/dev/null; done
    sleep 5
    for f in "$dir"/*.pgid; do [ -f "$f" ] && kill -KILL -- "-$(cat "$f")" 2>/dev/null; done
    rm -rf "$dir"`;
  const child = spawn('bash', ['-c', script, 'kvpa-cluster-watchdog', String(parentPid), workDir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  if (child.pid === undefined) throw new Error('failed to start the cluster watchdog (bash)');
  return {
    pid: child.pid,
    kill() {
      if (child.pid !== undefined && child.exitCode === null) killGroup(child.pid, 'SIGKILL');
    },
  };
}

export async function waitFor(
  what: string,
  timeoutSeconds: number,
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadlineMs = Date.now() + timeoutSeconds * 1000;
  let lastError = '';
  while (Date.now() < deadlineMs) {
    if (proc.exit !== undefined) {
      throw new Error(
        `${proc.name} exited (code ${proc.exit.code}, signal ${proc.exit.signal}) while waiting for ${what}; ` +
          `last log lines:\n${await tail(proc.logPath, 40)}`,
      );
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(
    `timed out after ${timeoutSeconds}s waiting for ${what} (last error: ${lastError || 'none'}); ` +
      `last ${proc.name} log lines:\n${await tail(proc.logPath, 40)}`,
  );
}

export async function tail(file: string, lines: number): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function listYamlFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...listYamlFiles(full));
    else if (/\.ya?ml$/.test(entry)) out.push(full);
  }
  return out;
}

export interface CrdDocument {
  file: string;
  /** Typed model, as client-node's API classes expect it (schema keys like x_kubernetes_validations). */
  crd: V1CustomResourceDefinition;
}

/** Reads every CustomResourceDefinition document from the YAML files under dir (recursively). */
export async function readCrds(dir: string): Promise<CrdDocument[]> {
  const out: CrdDocument[] = [];
  for (const file of listYamlFiles(dir)) {
    // client-node's typed models rename schema keys (x-kubernetes-* -> x_kubernetes_*); plain JSON
    // handed to the typed client would silently lose them, so deserialize through its own loader
    // (which is also ~3x faster than the yaml package on the 2.7 MB KServe CRD).
    const docs = loadAllYaml(await readFile(file, 'utf8')) as ({ kind?: string } | null | undefined)[];
    for (const doc of docs) {
      if (doc?.kind !== 'CustomResourceDefinition') continue;
      const crd = doc as V1CustomResourceDefinition;
      if (!crd.metadata?.name) throw new Error(`${file}: CRD without metadata.name`);
      out.push({ file, crd });
    }
  }
  return out;
}

/**
 * Creates every CRD found under dir and waits until each is Established. A plain create (not
 * client-side apply) keeps the stored object small: the biggest upstream CRD is ~0.9 MB as JSON, and
 * a last-applied annotation would double it past etcd's default 1.5 MiB request limit.
 */
export async function installCrdDir(
  kc: KubeConfig,
  dir: string,
  timeoutSeconds: number,
  required: boolean,
): Promise<string[]> {
  if (!existsSync(dir)) {
    if (required) throw new Error(`CRD directory ${dir} does not exist`);
    return [];
  }
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const crds = await readCrds(dir);
  if (required && crds.length === 0) throw new Error(`no CustomResourceDefinitions found under ${dir}`);
  const names: string[] = [];
  for (const { file, crd } of crds) {
    const name = crd.metadata?.name;
    if (!name) throw new Error(`${file}: CRD without metadata.name`);
    try {
      await api.createCustomResourceDefinition({ body: crd });
    } catch (err) {
      throw new Error(`creating CRD ${name} from ${file} failed: ${describeApiError(err)}`);
    }
    names.push(name);
  }
  const deadlineMs = Date.now() + timeoutSeconds * 1000;
  for (const name of names) {
    for (;;) {
      const got = await api.readCustomResourceDefinition({ name });
      const established = got.status?.conditions?.some(
        (c) => c.type === 'Established' && c.status === 'True',
      );
      if (established) break;
      if (Date.now() > deadlineMs) {
        throw new Error(
          `CRD ${name} not Established after ${timeoutSeconds}s: ${JSON.stringify(got.status?.conditions)}`,
        );
      }
      await sleep(200);
    }
  }
  return names;
}

/** Status code and message of a client-node ApiException (or any error). */
export function describeApiError(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  if (typeof e.code === 'number') {
    const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body);
    return `HTTP ${e.code}: ${body.slice(0, 500)}`;
  }
  return e.message ?? String(err);
}
