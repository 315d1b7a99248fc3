// Direct scrape of engine head pods' `/metrics` (Knative-style, every tick, no Prometheus hop).
//
// Lessons from peers (github.com/vllm-project/aibrix/issues/1032): one pod's scrape timeout blocked
// the whole service, so here every pod has its own deadline, pods run in parallel under a small
// bound, and a failure is a typed per-pod result, never an exception for the batch.

import {
  type EngineSignals,
  type ExtractOptions,
  extractEngineSignals,
  missingSignals,
} from './engine-metrics.ts';
import { type ParseResult, parseExposition } from './exposition.ts';

export interface ScrapeTarget {
  /** Pod name (or any id the caller uses to join results back). */
  readonly pod: string;
  /** Full URL of the engine's metrics endpoint, e.g. `http://10.0.3.7:8000/metrics`. */
  readonly url: string;
}

export type ScrapeErrorKind =
  | 'Timeout'
  | 'ConnectionRefused'
  | 'HttpStatus'
  | 'ParseError'
  | 'BodyTooLarge'
  | 'NetworkError'
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
  /** Per-pod deadline covering connect, headers and body. */
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

/** Maps a fetch/body-read failure to a scrape error kind. Exported for tests. */
export function classifyError(err: unknown, timeoutSignal: AbortSignal, outer?: AbortSignal): ScrapeError {
  if (err instanceof ScrapeFailure) return err.scrapeError;
  const name = err !== null && typeof err === 'object' ? (err as { name?: unknown }).name : undefined;
  if (timeoutSignal.aborted || name === 'TimeoutError') {
    return { kind: 'Timeout', reason: 'no complete response before the per-pod timeout' };
  }
  if (outer?.aborted || name === 'AbortError') return { kind: 'Aborted', reason: 'scrape batch aborted' };
  const code = errorCode(err);
  if (code === 'ECONNREFUSED') return { kind: 'ConnectionRefused', reason: 'connection refused' };
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'NetworkError', reason: code ? `${code}: ${message}` : message };
}

async function readBody(res: Response, maxBytes: number): Promise<{ text: string; bytes: number }> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel();
    throw new ScrapeFailure({
      kind: 'BodyTooLarge',
      reason: `content-length ${declared} > ${maxBytes} bytes`,
    });
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
      await reader.cancel();
      throw new ScrapeFailure({ kind: 'BodyTooLarge', reason: `body exceeds ${maxBytes} bytes` });
    }
    chunks.push(value);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), bytes };
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
  const timeoutSignal = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeoutSignal, options.signal]) : timeoutSignal;
  const doFetch = options.fetch ?? fetch;
  try {
    if (options.signal?.aborted) throw new ScrapeFailure({ kind: 'Aborted', reason: 'scrape batch aborted' });
    const res = await doFetch(target.url, { signal, headers: { accept: ACCEPT }, redirect: 'error' });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new ScrapeFailure({
        kind: 'HttpStatus',
        reason: `HTTP ${res.status} ${res.statusText}`.trim(),
        httpStatus: res.status,
      });
    }
    const { text, bytes } = await readBody(res, options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    const parsed = parseExposition(text);
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
    return { ok: false, target, timing: timing(), error: classifyError(err, timeoutSignal, options.signal) };
  }
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
  if (!result.ok) return missingSignals(`scrape failed (${result.error.kind}): ${result.error.reason}`);
  return extractEngineSignals(result.parsed, options);
}

/** `http://<ip>:<port><path>`, bracketing IPv6 pod IPs (dual-stack clusters). */
export function metricsUrl(podIP: string, port: number, path = '/metrics'): string {
  const host = podIP.includes(':') && !podIP.startsWith('[') ? `[${podIP}]` : podIP;
  return `http://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`;
}
