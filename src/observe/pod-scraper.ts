// Direct scrape of engine head pods' `/metrics` (Knative-style, every tick, no Prometheus hop).
//
// Lessons from peers (github.com/vllm-project/aibrix/issues/1032): one pod's scrape timeout blocked
// the whole service, so here every pod has its own deadline, pods run in parallel under a small
// bound, and a failure is a typed per-pod result, never an exception for the batch. Requests go
// through boundedFetch (observe/http.ts): the deadline covers the body, which is capped.

import {
  type EngineSignals,
  type ExtractOptions,
  extractEngineSignals,
  missingSignals,
} from './engine-metrics.ts';
import { type ParseResult, parseExpositionYielding } from './exposition.ts';
import { BoundedFetchError, boundedFetch, type FetchFailure } from './http.ts';

export interface ScrapeTarget {
  /** Pod name (or any id the caller uses to join results back). */
  readonly pod: string;
  /** Full URL of the engine's metrics endpoint, e.g. `http://10.0.3.7:8000/metrics`. */
  readonly url: string;
  /** This pod's own deadline; `ScrapeOptions.timeoutMs` when unset. */
  readonly timeoutMs?: number;
}

export type ScrapeErrorKind =
  | 'Timeout'
  | 'ConnectionRefused'
  | 'HttpStatus'
  | 'ParseError'
  | 'BodyTooLarge'
  | 'NetworkError'
  | 'RedirectRefused'
  | 'Aborted';

export interface ScrapeError {
  readonly kind: ScrapeErrorKind;
  readonly reason: string;
  readonly httpStatus?: number;
}

export interface ScrapeTiming {
  /** Clock time when the request started (after waiting for a concurrency slot). */
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  readonly durationMs: number;
  /** Time spent waiting for a concurrency slot. */
  readonly queuedMs: number;
}

export type PodScrapeResult =
  | {
      readonly ok: true;
      readonly target: ScrapeTarget;
      readonly timing: ScrapeTiming;
      readonly httpStatus: number;
      readonly bodyBytes: number;
      /** May still hold per-line `errors`; the scrape fails only if nothing parsed. */
      readonly parsed: ParseResult;
    }
  | {
      readonly ok: false;
      readonly target: ScrapeTarget;
      readonly timing: ScrapeTiming;
      readonly error: ScrapeError;
    };

export interface ScrapeOptions {
  /** Requests in flight at once across all pods. */
  readonly maxConcurrency: number;
  /** Per-pod deadline covering connect, headers and the whole body (a target may set its own). */
  readonly timeoutMs: number;
  /** Monotonic-enough milliseconds; injected so timing logic is testable. */
  readonly clock: () => number;
  /** A vLLM page with histograms is ~100 KB; anything near this is not an engine. */
  readonly maxBodyBytes?: number;
  /** Aborts the whole batch (e.g. the tick deadline); queued pods end as `Aborted`. */
  readonly signal?: AbortSignal;
  /** Defaults to the global fetch. */
  readonly fetch?: typeof fetch;
}

export const DEFAULT_MAX_CONCURRENCY = 16;
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

// Ask for 0.0.4 text: the parser does not speak OpenMetrics (`# EOF`, `_created` semantics).
const ACCEPT = 'text/plain;version=0.0.4;q=1,*/*;q=0.1';

class ScrapeFailure extends Error {
  constructor(readonly scrapeError: ScrapeError) {
    super(scrapeError.reason);
  }
}

const FETCH_FAILURE_KIND: Record<FetchFailure, ScrapeErrorKind> = {
  Timeout: 'Timeout',
  Unreachable: 'NetworkError',
  BodyTooLarge: 'BodyTooLarge',
  RedirectRefused: 'RedirectRefused',
  BadUrl: 'NetworkError',
  Aborted: 'Aborted',
};

/** Maps a bounded-fetch failure to a scrape error kind. Exported for tests. */
export function classifyError(err: unknown): ScrapeError {
  if (err instanceof ScrapeFailure) return err.scrapeError;
  if (err instanceof BoundedFetchError) {
    const kind = FETCH_FAILURE_KIND[err.failure];
    if (kind === 'NetworkError' && /ECONNREFUSED/.test(err.message)) {
      return { kind: 'ConnectionRefused', reason: 'connection refused' };
    }
    if (kind === 'Timeout') return { kind, reason: 'no complete response before the per-pod timeout' };
    if (kind === 'Aborted') return { kind, reason: 'scrape batch aborted' };
    return { kind, reason: err.message };
  }
  return { kind: 'NetworkError', reason: err instanceof Error ? err.message : String(err) };
}

/**
 * The scrape error as the PodAutoscaler's author sees it. An answer that is wrong (HTTP status, not
 * an exposition page, too large) is theirs to fix; whether a connection was refused, filtered or
 * timed out says which ports are open on a pod IP (a hostNetwork pod's is the node's), so that is
 * "unreachable" here and in detail only in the controller log.
 */
export function tenantReason(error: ScrapeError): string {
  switch (error.kind) {
    case 'HttpStatus':
    case 'ParseError':
    case 'BodyTooLarge':
    case 'RedirectRefused':
      return `${error.kind}: ${error.reason}`;
    default:
      return 'unreachable';
  }
}

/** Scrapes one pod. Never throws: every failure becomes `{ ok: false, error }`. */
export async function scrapePod(
  target: ScrapeTarget,
  options: ScrapeOptions,
  queuedSinceMs?: number,
): Promise<PodScrapeResult> {
  const { clock } = options;
  const startedAtMs = clock();
  const timing = (): ScrapeTiming => {
    const finishedAtMs = clock();
    return {
      startedAtMs,
      finishedAtMs,
      durationMs: finishedAtMs - startedAtMs,
      queuedMs: queuedSinceMs === undefined ? 0 : startedAtMs - queuedSinceMs,
    };
  };
  try {
    if (options.signal?.aborted) throw new ScrapeFailure({ kind: 'Aborted', reason: 'scrape batch aborted' });
    const deadlineMs = target.timeoutMs ?? options.timeoutMs;
    const res = await boundedFetch(target.url, {
      deadlineMs,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      headers: { accept: ACCEPT },
      maxRedirects: 0,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
    });
    if (res.status < 200 || res.status >= 300) {
      throw new ScrapeFailure({
        kind: 'HttpStatus',
        reason: `HTTP ${res.status} ${res.statusText}`.trim(),
        httpStatus: res.status,
      });
    }
    const { text, bytes } = res;
    // The pod's deadline covers the parse too, which yields meanwhile: a page that takes seconds to
    // parse (130,000 series) costs its own pool that pod, not every other pool its tick.
    const parsed = await parseExpositionYielding(text, () => clock() - startedAtMs < deadlineMs);
    if (parsed === null) {
      throw new ScrapeFailure({
        kind: 'BodyTooLarge',
        reason: `a page of ${lineCount(text)} lines is not parsed within the ${deadlineMs / 1000}s timeout; an engine page has a few thousand (export fewer series, or raise pods.timeoutSeconds)`,
      });
    }
    const sampleCount = parsed.families.reduce((n, f) => n + f.samples.length, 0);
    if (sampleCount === 0 && parsed.errorCount > 0) {
      // Nothing usable and something wrong: not an exposition page (HTML error page, proxy banner).
      const first = parsed.errors[0];
      throw new ScrapeFailure({
        kind: 'ParseError',
        reason: `no valid sample; ${parsed.errorCount} bad line(s), first at line ${first?.lineNumber}: ${first?.reason}`,
      });
    }
    return { ok: true, target, timing: timing(), httpStatus: res.status, bodyBytes: bytes, parsed };
  } catch (err) {
    return { ok: false, target, timing: timing(), error: classifyError(err) };
  }
}

function lineCount(text: string): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n - 1 : n;
}

/**
 * Scrapes all targets with at most `maxConcurrency` requests in flight. Results keep the
 * order of `targets`. One slow pod holds one slot for at most `timeoutMs`; it never holds
 * the others' results back.
 */
export async function scrapePods(
  targets: readonly ScrapeTarget[],
  options: ScrapeOptions,
): Promise<PodScrapeResult[]> {
  const limit = Math.max(1, Math.floor(options.maxConcurrency) || 1);
  const queuedSinceMs = options.clock();
  const results: PodScrapeResult[] = new Array(targets.length);
  let next = 0;
  // A fixed pool of workers pulling from a shared cursor: the bound holds by construction,
  // and no promise per target waits on a semaphore queue.
  const worker = async () => {
    while (next < targets.length) {
      const i = next++;
      results[i] = await scrapePod(targets[i] as ScrapeTarget, options, queuedSinceMs);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, targets.length) }, worker));
  return results;
}

/** A pod's signals from its scrape: a failed scrape makes every signal `missing`, never 0. */
export function podSignals(result: PodScrapeResult, options: ExtractOptions): EngineSignals {
  if (!result.ok) return missingSignals(`scrape failed: ${tenantReason(result.error)}`);
  return extractEngineSignals(result.parsed, options);
}

/**
 * `<scheme>://<ip>:<port><path>`, bracketing IPv6 pod IPs (dual-stack clusters). With https the pod's
 * certificate is verified against the controller's trust store (NODE_EXTRA_CA_CERTS adds a CA).
 */
export function metricsUrl(
  podIP: string,
  port: number,
  path = '/metrics',
  scheme: 'http' | 'https' = 'http',
): string {
  const host = podIP.includes(':') && !podIP.startsWith('[') ? `[${podIP}]` : podIP;
  return `${scheme}://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`;
}
