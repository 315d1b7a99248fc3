/**
 * Every outbound HTTP call the controller makes to a tenant-named endpoint is bounded alike: a TOTAL
 * deadline that covers connect, headers and the whole body (a server dripping one byte a second cannot
 * extend it), a cap on the body size, http(s) only, and redirects followed only within the same origin
 * (scheme, host and port), so neither a request nor a token is ever bounced to another host. Engine
 * pods and Grafana go through `boundedFetch`; Prometheus through prometheus-query's driver with the
 * same rules and the same failures (prometheus-client.ts).
 *
 * Failures are a `BoundedFetchError` whose message is for the controller log; what a tenant sees
 * (status conditions, Events) is `tenantReason`, which never says more than "unreachable" about the
 * network: whether a port is open, refused or filtered is not the PodAutoscaler author's to learn.
 */

export type FetchFailure =
  /** The deadline passed before the whole body arrived. */
  | 'Timeout'
  /** DNS, connect, TLS or a reset connection. */
  | 'Unreachable'
  | 'BodyTooLarge'
  /** A redirect to another origin, or too many redirects. */
  | 'RedirectRefused'
  /** Not an http(s) URL, or one that carries credentials. */
  | 'BadUrl'
  /** The caller's signal aborted the request. */
  | 'Aborted';

export class BoundedFetchError extends Error {
  override name = 'BoundedFetchError';
  constructor(
    readonly failure: FetchFailure,
    message: string,
  ) {
    super(message);
  }

  /** Safe to show to the PodAutoscaler's author: the URL rule they broke, or just "unreachable". */
  get tenantReason(): string {
    return this.failure === 'BadUrl' ? this.message : 'unreachable (details in the controller log)';
  }
}

export interface BoundedFetchOptions {
  /** Total time for the request, redirects and the whole body. */
  readonly deadlineMs: number;
  readonly maxBodyBytes: number;
  readonly method?: 'GET' | 'POST' | 'PATCH';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Aborts the request early (a shutdown or a batch deadline). */
  readonly signal?: AbortSignal;
  /** Same-origin redirects followed before giving up. */
  readonly maxRedirects?: number;
  /** Defaults to the global fetch; injected by tests. */
  readonly fetch?: typeof fetch;
}

export interface BoundedResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly text: string;
  readonly bytes: number;
  /** The URL that answered (after same-origin redirects). */
  readonly url: string;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** The URL if it is http(s) without credentials; else a BadUrl error naming `field`. */
export function checkOutboundUrl(url: string | URL, field = 'url'): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BoundedFetchError('BadUrl', `${field} is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new BoundedFetchError('BadUrl', `${field} must be http or https, got ${parsed.protocol}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new BoundedFetchError('BadUrl', `${field} must not contain credentials (user:pass@)`);
  }
  return parsed;
}

function errorCode(err: unknown): string | undefined {
  // undici wraps socket errors: TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }).
  let cur: unknown = err;
  for (let depth = 0; depth < 5 && cur !== null && typeof cur === 'object'; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The BoundedFetchError somewhere in `err`'s cause chain (a client may wrap one thrown in a hook). */
function boundedCause(err: unknown): BoundedFetchError | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 5 && cur !== null && typeof cur === 'object'; depth++) {
    if (cur instanceof BoundedFetchError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The body outgrew its cap (`maxBytes` of `url`'s origin). */
export function bodyTooLargeError(url: URL, maxBytes: number): BoundedFetchError {
  return new BoundedFetchError('BodyTooLarge', `${url.origin}: body exceeds ${maxBytes} bytes`);
}

/** A redirect from `origin` to `to` (another origin, or none given) that is not followed. */
export function redirectRefusedError(origin: string, to: string): BoundedFetchError {
  return new BoundedFetchError(
    'RedirectRefused',
    `${origin}: redirect to ${to} refused (only same-origin redirects are followed)`,
  );
}

/** The deadline passed before the whole answer from `url`'s origin arrived. */
export function timedOutError(url: URL): BoundedFetchError {
  return new BoundedFetchError('Timeout', `${url.origin}: no complete response in time`);
}

/**
 * Maps a request or body-read failure to its kind; the message keeps the detail for the log. A
 * BoundedFetchError (also one wrapped as a cause) stands; then the deadline, the caller's signal, and
 * anything else is Unreachable, with the socket error code when there is one.
 */
export function classifyFailure(
  err: unknown,
  deadline: AbortSignal | undefined,
  outer: AbortSignal | undefined,
  url: URL,
): BoundedFetchError {
  const bounded = boundedCause(err);
  if (bounded !== undefined) return bounded;
  if (deadline?.aborted) return timedOutError(url);
  if (outer?.aborted) return new BoundedFetchError('Aborted', `${url.origin}: aborted`);
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return new BoundedFetchError('Unreachable', `${url.origin}: ${code ? `${code}: ` : ''}${message}`);
}

async function readCapped(
  res: Response,
  maxBytes: number,
  url: URL,
): Promise<{ text: string; bytes: number }> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new BoundedFetchError(
      'BodyTooLarge',
      `${url.origin}: content-length ${declared} > ${maxBytes} bytes`,
    );
  }
  if (!res.body) return { text: '', bytes: 0 };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw bodyTooLargeError(url, maxBytes);
    }
    chunks.push(value);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), bytes };
}

/**
 * One request under a total deadline and a body cap; any HTTP status is returned, only transport
 * and bound failures throw (BoundedFetchError). Redirects are followed within the origin only.
 */
export async function boundedFetch(
  url: string | URL,
  options: BoundedFetchOptions,
): Promise<BoundedResponse> {
  let current = checkOutboundUrl(url);
  const origin = current.origin;
  const deadline = AbortSignal.timeout(options.deadlineMs);
  const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
  const doFetch = options.fetch ?? fetch;
  let method = options.method ?? 'GET';
  let body = options.body;
  try {
    for (let hop = 0; ; hop++) {
      if (options.signal?.aborted) throw new BoundedFetchError('Aborted', `${origin}: aborted`);
      const res = await doFetch(current, {
        method,
        ...(options.headers !== undefined ? { headers: { ...options.headers } } : {}),
        ...(body !== undefined ? { body } : {}),
        signal,
        redirect: 'manual',
      });
      if (REDIRECT_STATUSES.has(res.status)) {
        await res.body?.cancel().catch(() => undefined);
        const location = res.headers.get('location');
        const next = location === null ? null : new URL(location, current);
        if (next === null || next.origin !== origin || hop >= (options.maxRedirects ?? 3)) {
          throw redirectRefusedError(origin, next?.origin ?? '(no location)');
        }
        // 303, and 301/302 after a POST, turn into a GET (the fetch standard's rule).
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        current = next;
        continue;
      }
      const { text, bytes } = await readCapped(res, options.maxBodyBytes, current);
      return {
        status: res.status,
        statusText: res.statusText,
        headers: res.headers,
        text,
        bytes,
        url: current.href,
      };
    }
  } catch (err) {
    throw classifyFailure(err, deadline, options.signal, current);
  }
}

/**
 * Hosts an operator allows credentials to be sent to (`kvpa controller --allowed-hosts`). An entry is
 * `host`, `host:port` or `*.domain` (https only), or `http://host:port` to allow plain http to that one
 * origin explicitly (a loopback test server, say). Nothing is allowed when the list is empty.
 */
export class HostAllowlist {
  private readonly entries: readonly { scheme: 'https:' | 'http:'; host: string; port: string | null }[];

  constructor(readonly spec: readonly string[]) {
    this.entries = spec.map(parseAllowEntry);
  }

  /** Why a token may not go to `url`, or null when it may. */
  refusal(url: URL): string | null {
    const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
    const host = url.hostname.toLowerCase();
    const allowed = this.entries.some(
      (e) =>
        e.scheme === url.protocol &&
        (e.port === null || e.port === port) &&
        (e.host.startsWith('*.') ? host.endsWith(e.host.slice(1)) : host === e.host),
    );
    if (allowed) return null;
    const httpsListed = this.entries.some(
      (e) => e.scheme === 'https:' && e.host === host && (e.port === null || e.port === url.port),
    );
    if (url.protocol !== 'https:' && httpsListed) {
      return `a token is sent over https only; ${url.origin} is plain http`;
    }
    return `${url.host} is not in the controller's --allowed-hosts, so no token is sent there (ask the operator to add it)`;
  }
}

/** The --allowed-hosts entry that allows exactly the origin of `url` (plain http names its port). */
export function allowEntryFor(url: string | URL): string {
  const u = new URL(url);
  if (u.protocol === 'https:') return u.host;
  return `http://${u.hostname}:${u.port === '' ? '80' : u.port}`;
}

function parseAllowEntry(entry: string): { scheme: 'https:' | 'http:'; host: string; port: string | null } {
  const text = entry.trim().toLowerCase();
  const explicitHttp = text.startsWith('http://');
  const bare = text.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const match = /^(\*\.)?([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/.exec(bare);
  if (match === null || bare === '' || (explicitHttp && match[3] === undefined)) {
    throw new Error(
      `--allowed-hosts: ${JSON.stringify(entry)} is not host, host:port, *.domain or http://host:port (plain http needs a port)`,
    );
  }
  // URL.hostname keeps the brackets of an IPv6 literal, so the entry does too.
  const host = `${match[1] ?? ''}${match[2]}`;
  return { scheme: explicitHttp ? 'http:' : 'https:', host, port: match[3] ?? null };
}
