/**
 * The Prometheus HTTP API client: prometheus-query's PrometheusDriver (axios underneath) with the
 * bounds http.ts gives every tenant-named endpoint, set on each request by the driver's request hook:
 * - one deadline over connect, headers and the whole body: an `AbortSignal.timeout`, on which axios's
 *   Node adapter destroys the response mid-body (lib/adapters/http.js, `abort`). axios's own `timeout`
 *   is not enough: it stops once the headers are in, so a server dripping a byte at a time held a tick;
 * - a body cap (`maxContentLength`, counted after decompression, so a gzip bomb stops at it too);
 * - http(s) only without credentials (checkOutboundUrl), and no proxy taken from the environment;
 * - redirects followed within the address's origin only: `beforeRedirect` refuses another origin
 *   before follow-redirects sends anything there.
 * Failures are BoundedFetchErrors with http.ts's texts (the tenant sees "unreachable", the log the
 * detail), or a PrometheusApiError carrying Prometheus's own message (a PromQL parse error, say).
 */
import { PrometheusDriver, type QueryResult } from 'prometheus-query';
import {
  BoundedFetchError,
  bodyTooLargeError,
  checkOutboundUrl,
  classifyFailure,
  redirectRefusedError,
  timedOutError,
} from './http.ts';
import type { RawMatrix, RawVector } from './prometheus-join.ts';

/** Same-origin redirects followed before giving up (boundedFetch's default too). */
const MAX_REDIRECTS = 3;

/** A Prometheus API error answer (`status: "error"`): its own text, e.g. a PromQL parse error. */
export class PrometheusApiError extends Error {
  override name = 'PrometheusApiError';
}

const RAW_KEY = 'kvpaRaw';

/**
 * The response hook's rule. prometheus-query turns every sample into class instances (and parses
 * "+Inf" as NaN with parseFloat); at 10,000 groups that was ~40 % of a tick's CPU. So a successful
 * answer's `data` is handed through untouched, as a "string" result the driver does not walk, and
 * rawResult takes it out. An error answer throws PrometheusApiError; a body that is no Prometheus API
 * answer at all (an HTML page, a proxy's 502) throws an Unreachable BoundedFetchError.
 */
export function passRawResult(body: unknown, httpStatus: number, url: string): unknown {
  const b = (body !== null && typeof body === 'object' ? body : {}) as {
    status?: unknown;
    data?: unknown;
    errorType?: unknown;
    error?: unknown;
  };
  if (b.status === 'success') return { ...b, data: { resultType: 'string', result: { [RAW_KEY]: b.data } } };
  if (b.status === 'error') {
    throw new PrometheusApiError(
      `${String(b.errorType ?? 'error')}: ${String(b.error ?? '')} (HTTP ${httpStatus})`,
    );
  }
  throw new BoundedFetchError('Unreachable', `HTTP ${httpStatus} from ${url}: not a Prometheus API answer`);
}

/** The vector or matrix `data` that passRawResult tucked into the driver's result; anything else throws. */
export function rawResult(result: QueryResult): RawVector | RawMatrix {
  const raw = (result.result as unknown as Record<string, unknown> | null)?.[RAW_KEY] as
    | { resultType?: unknown; result?: unknown }
    | null
    | undefined;
  if (!raw || !Array.isArray(raw.result) || (raw.resultType !== 'vector' && raw.resultType !== 'matrix')) {
    throw new Error(`unexpected query result (resultType ${String(raw?.resultType)})`);
  }
  return raw as RawVector | RawMatrix;
}

/** An axios failure as http.ts names it: the cap, too many redirects, the deadline, else classifyFailure. */
export function axiosFailure(err: unknown, origin: URL, maxAnswerBytes: number): BoundedFetchError {
  const e = (err ?? {}) as { isAxiosError?: unknown; code?: unknown; message?: unknown; config?: unknown };
  const signal = (e.config as { signal?: unknown } | undefined)?.signal;
  if (e.isAxiosError === true) {
    // lib/adapters/http.js: 'maxContentLength size of N exceeded' (ERR_BAD_RESPONSE) when the cap is hit
    if (typeof e.message === 'string' && e.message.startsWith('maxContentLength')) {
      return bodyTooLargeError(origin, maxAnswerBytes);
    }
    // axios's own timer (connect and headers, the same length) may fire a moment before the signal
    if (e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT') return timedOutError(origin);
    if (e.code === 'ERR_FR_TOO_MANY_REDIRECTS') {
      return redirectRefusedError(origin.origin, `(more than ${MAX_REDIRECTS} redirects)`);
    }
  }
  return classifyFailure(err, signal instanceof AbortSignal ? signal : undefined, undefined, origin);
}

/** What the driver threw, as the Error our hooks threw (it wraps them in `{ original }`). */
function driverError(err: unknown): Error {
  const original = (err as { original?: unknown } | null)?.original;
  if (original instanceof Error) return original;
  if (err instanceof Error) return err;
  const e = (err ?? {}) as { errorType?: unknown; error?: unknown };
  return new Error(`${String(e.errorType ?? 'error')}: ${String(e.error ?? JSON.stringify(err))}`);
}

export interface PrometheusClientOptions {
  /** Base URL, e.g. http://prometheus.monitoring:9090 (metricsSource.prometheus.address). */
  readonly address: string;
  /** Total time for one request: connect, redirects, headers and the whole body. */
  readonly deadlineMs: number;
  readonly maxAnswerBytes: number;
  /** Called for every HTTP request sent. */
  readonly onRequest?: (url: string) => void;
}

/** Instant and range queries, POSTed (the namespace matcher of thousands of pools can outgrow a URL). */
export class PrometheusClient {
  /** The driver, or why the address cannot have one (answered to every query: never thrown here). */
  private readonly driver: PrometheusDriver | BoundedFetchError;

  constructor(options: PrometheusClientOptions) {
    let origin: URL;
    try {
      origin = checkOutboundUrl(options.address, 'metricsSource.prometheus.address');
    } catch (err) {
      this.driver = err as BoundedFetchError;
      return;
    }
    this.driver = new PrometheusDriver({
      endpoint: options.address,
      baseURL: '/api/v1/',
      // axios's own timer (connect and headers); the signal below is the one over the whole call
      timeout: options.deadlineMs,
      preferPost: true,
      requestInterceptor: {
        onFulfilled: (config) => {
          options.onRequest?.(`${config.baseURL ?? ''}${config.url ?? ''}`);
          config.signal = AbortSignal.timeout(options.deadlineMs);
          config.maxContentLength = options.maxAnswerBytes;
          // our own query; bounds follow-redirects' replay buffer as well
          config.maxBodyLength = options.maxAnswerBytes;
          config.maxRedirects = MAX_REDIRECTS;
          config.beforeRedirect = (next) => {
            const to = originOf(next.href);
            if (to !== origin.origin) throw redirectRefusedError(origin.origin, to);
          };
          config.proxy = false;
          // every status reaches passRawResult: Prometheus says what went wrong in the body
          config.validateStatus = () => true;
          return config;
        },
      },
      responseInterceptor: {
        onFulfilled: (response) => {
          const url = `${response.config.baseURL ?? ''}${response.config.url ?? ''}`;
          response.data = passRawResult(response.data, response.status, url);
          return response;
        },
        onRejected: (err: unknown) => {
          throw axiosFailure(err, origin, options.maxAnswerBytes);
        },
      },
    });
  }

  /** One instant query at `atSeconds`; `timeout` is Prometheus's evaluation timeout ("10s"). */
  async instant(query: string, atSeconds: number, timeout: string): Promise<RawVector | RawMatrix> {
    const driver = this.ready();
    try {
      return rawResult(await driver.instantQuery(query, atSeconds * 1000, timeout));
    } catch (err) {
      throw driverError(err);
    }
  }

  /** One range query over [startSeconds, endSeconds] at `stepSeconds`. */
  async range(
    query: string,
    startSeconds: number,
    endSeconds: number,
    stepSeconds: number,
    timeout: string,
  ): Promise<RawVector | RawMatrix> {
    const driver = this.ready();
    try {
      return rawResult(
        await driver.rangeQuery(query, startSeconds * 1000, endSeconds * 1000, stepSeconds, timeout),
      );
    } catch (err) {
      throw driverError(err);
    }
  }

  private ready(): PrometheusDriver {
    if (this.driver instanceof BoundedFetchError) throw this.driver;
    return this.driver;
  }
}

/** The origin of a redirect target, or the text itself when it is no URL (never equal to an origin). */
function originOf(href: unknown): string {
  try {
    return new URL(String(href)).origin;
  } catch {
    return String(href);
  }
}
