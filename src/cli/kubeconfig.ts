/**
 * The kubeconfig of the commands that talk to a cluster (controller, recommend). A file that cannot be
 * read or names no usable cluster fails here, naming --kubeconfig and the fix, before any API call
 * (the client would otherwise throw `No active cluster!` from deep inside the first request). A read
 * that then fails without an HTTP answer (a timeout, a refused connection, a rejected certificate)
 * is reported by `clusterReadError`, naming the API server, the kubeconfig and the fix, not as
 * undici's bare `fetch failed`.
 */
import { KubeConfig } from '@kubernetes/client-node';
import {
  apiErrorMessage,
  DEFAULT_KUBE_DEADLINE_MS,
  httpStatusOf,
  KubeBodyTooLargeError,
} from '../actuate/kube.ts';
import { UsageError } from './shell.ts';

/** How each loaded KubeConfig was named on the command line, for messages. */
const SOURCES = new WeakMap<KubeConfig, string>();

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
  SOURCES.set(kc, where);
  return kc;
}

/** The codes undici and Node give a call that timed out before an answer. */
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

type Transport =
  | { readonly kind: 'timeout' }
  | { readonly kind: 'tooLarge'; readonly err: KubeBodyTooLargeError }
  | { readonly kind: 'unreachable'; readonly why: string };

/**
 * What went wrong below HTTP, looking down err's cause chain (an adapter wraps the client's error as
 * its cause): a deadline (AbortSignal.timeout's DOMException), an oversized body, or what undici's
 * TypeError('fetch failed') wraps (a socket, DNS or TLS error, or one of undici's own timers). Null
 * when an HTTP answer came (a status), or nothing in the chain is a transport failure (an exec
 * credential plugin that fails, say, is not the API server's fault).
 */
function transportFailure(err: unknown): Transport | null {
  let cur: unknown = err;
  let fetchFailed = false;
  for (let depth = 0; depth < 6 && cur !== null && typeof cur === 'object'; depth++) {
    if (httpStatusOf(cur) !== undefined) return null;
    if (cur instanceof KubeBodyTooLargeError) return { kind: 'tooLarge', err: cur };
    const { name, code, message } = cur as { name?: unknown; code?: unknown; message?: unknown };
    if (name === 'TimeoutError') return { kind: 'timeout' };
    if (fetchFailed) {
      // What undici wrapped: a socket, DNS or TLS error, or one of its own timers.
      if (typeof code !== 'string') return { kind: 'unreachable', why: firstLine(cur) };
      return TIMEOUT_CODES.has(code) ? { kind: 'timeout' } : { kind: 'unreachable', why: code };
    }
    if (cur instanceof TypeError && message === 'fetch failed') fetchFailed = true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return fetchFailed ? { kind: 'unreachable', why: 'fetch failed' } : null;
}

export interface ClusterRead {
  /** What was being read, for the message: `the PodAutoscalers of --namespace team-a`. */
  readonly what: string;
  /** The deadline of the call (boundedApiClient's), for a timeout's message. */
  readonly deadlineMs?: number;
}

/**
 * A cluster read's failure as one line naming the API server, the kubeconfig and the fix, when it is a
 * transport failure (no HTTP answer) or an oversized body; null for anything else (an HTTP error is the
 * caller's to explain: what a 403 or a 404 means depends on what was read).
 */
export function clusterTransportError(err: unknown, kc: KubeConfig, read: ClusterRead): Error | null {
  const failure = transportFailure(err);
  if (failure === null) return null;
  const server = kc.getCurrentCluster()?.server ?? '(no server)';
  const where = kubeconfigSource(kc);
  const fix = `check the server URL in ${where} and that the cluster is up`;
  switch (failure.kind) {
    case 'tooLarge':
      return new Error(
        `${failure.err.message} while reading ${read.what}; check that ${where} points at a Kubernetes API server`,
      );
    case 'timeout': {
      const seconds = Math.round((read.deadlineMs ?? DEFAULT_KUBE_DEADLINE_MS) / 1000);
      return new Error(
        `the API server at ${server} did not answer within ${seconds} s while reading ${read.what}; ${fix}`,
      );
    }
    case 'unreachable':
      if (/CERT|SELF_SIGNED|TLS|SSL/.test(failure.why)) {
        return new Error(
          `the API server at ${server} failed the TLS handshake (${failure.why}) while reading ${read.what}; check the server URL (https, the right port) and certificate-authority-data in ${where}`,
        );
      }
      return new Error(
        `the API server at ${server} is unreachable (${failure.why}) while reading ${read.what}; ${fix}`,
      );
  }
}

/**
 * clusterTransportError, and for an HTTP error the API server's own message with the status, what
 * was read, and which flag to check.
 */
export function clusterReadError(err: unknown, kc: KubeConfig, read: ClusterRead & { fix: string }): Error {
  const transport = clusterTransportError(err, kc, read);
  if (transport !== null) return transport;
  const status = httpStatusOf(err);
  if (status === undefined) return err instanceof Error ? err : new Error(String(err));
  const server = kc.getCurrentCluster()?.server ?? '(no server)';
  return new Error(
    `the API server at ${server} answered HTTP ${status} while reading ${read.what}: ${firstLine(apiErrorMessage(err))}; ${read.fix}`,
  );
}

/** Where the loaded kubeconfig came from (`--kubeconfig FILE` or the default), for messages. */
export function kubeconfigSource(kc: KubeConfig): string {
  return SOURCES.get(kc) ?? 'the kubeconfig';
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}
