/**
 * A test exporter that stands in for engine head pods: one node:http server on 127.0.0.1 serves
 * `/pods/<namespace>/<pod>` for every scripted pod. The text is the fixture text from
 * test/fixtures/metrics/ with only the scripted gauges' values replaced, and one sample line
 * per data-parallel rank (the fixture's `engine="0"` line copied with `engine="<k>"`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FIXTURES, readMetricsFixture } from '../observe/metric-fixtures.ts';

/** `vllmLegacy` is the V1 text with the KV gauge under its pre-0.9 name, as vLLM ≤ 0.8 exported it. */
export type ExporterDialect = 'vllm' | 'vllmLegacy' | 'sglang' | 'trtllm';

export interface RankValues {
  /** KV-cache usage as the engine prints it (a fraction; tests may script bad values). */
  readonly kv: number;
  readonly waiting: number;
  readonly running: number;
  readonly preemptionsTotal?: number;
  /**
   * vLLM only: of `waiting`, the requests deferred (KV transfer, LoRA budget). When set on any rank,
   * `vllm:num_requests_waiting_by_reason` is printed with `capacity` = waiting − deferred and `deferred`.
   */
  readonly waitingDeferred?: number;
}

export interface PodScript {
  readonly dialect: ExporterDialect;
  readonly ranks: readonly RankValues[];
  /** Print every sample with this explicit timestamp (ms): an exporter frozen in the past. */
  readonly timestampMs?: number;
  /** Answer 503, as a dead pod's endpoint would fail the scrape. */
  readonly down?: boolean;
  /** Serve this fixture file (test/fixtures/metrics/) verbatim; `ranks` and `dialect` are then unused. */
  readonly verbatim?: string;
  /**
   * With `verbatim`: every counter and histogram sample (`_total`, `_bucket`, `_sum`, `_count`) is its fixture
   * value times the seconds since the exporter started, so the fixture's counts arrive once a second: a
   * constant flow whose rate is the fixture value per second, however the scrapes are timed. Gauges stay.
   */
  readonly grow?: boolean;
}

const CUMULATIVE = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:_total|_bucket|_sum|_count))(\{.*\})? (\S+)$/;

/** The fixture text with its cumulative samples multiplied by `times` (PodScript.grow). */
function grown(text: string, times: number): string {
  return text
    .split('\n')
    .map((line) => {
      const m = CUMULATIVE.exec(line);
      return m ? `${m[1]}${m[2] ?? ''} ${formatValue(Number(m[3]) * times)}` : line;
    })
    .join('\n');
}

const FIXTURE: Record<ExporterDialect, string> = {
  vllm: FIXTURES.vllmEngineLabel,
  vllmLegacy: FIXTURES.vllmEngineLabel,
  sglang: FIXTURES.sglangDocs,
  trtllm: FIXTURES.trtllm,
};

/** Sample name → the scripted field that replaces its value. */
const SCRIPTED: Record<'vllm' | 'sglang' | 'trtllm', Record<string, keyof RankValues>> = {
  vllm: {
    'vllm:kv_cache_usage_perc': 'kv',
    'vllm:num_requests_waiting': 'waiting',
    'vllm:num_requests_running': 'running',
    'vllm:num_preemptions_total': 'preemptionsTotal',
  },
  sglang: {
    'sglang:token_usage': 'kv',
    'sglang:num_queue_reqs': 'waiting',
    'sglang:num_running_reqs': 'running',
  },
  trtllm: {
    trtllm_kv_cache_utilization: 'kv',
    trtllm_num_requests_waiting: 'waiting',
    trtllm_num_requests_running: 'running',
  },
};

const fixtureCache = new Map<string, string>();
function fixture(file: string): string {
  let text = fixtureCache.get(file);
  if (text === undefined) {
    text = readMetricsFixture(file);
    fixtureCache.set(file, text);
  }
  return text;
}

/** Python's float repr is what engines print; Prometheus accepts these spellings. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

function withRank(
  labels: string,
  dialect: 'vllm' | 'sglang' | 'trtllm',
  rank: number,
  rankCount: number,
): string {
  if (dialect === 'vllm') return labels.replace(/engine="[^"]*"/, `engine="${rank}"`);
  // TensorRT-LLM's series have no rank label: one server, one set (scripts give one rank).
  if (dialect === 'trtllm') return labels;
  // SGLang's fixture has no rank label; DP attention adds one per rank (label name unverified).
  return rankCount > 1 ? `${labels},dp_rank="${rank}"` : labels;
}

/**
 * The exposition text one pod serves, `seconds` after the exporter started (PodScript.grow). Pure apart
 * from reading the fixture file.
 */
export function renderPodText(script: PodScript, seconds = 1): string {
  if (script.verbatim !== undefined)
    return script.grow ? grown(fixture(script.verbatim), seconds) : fixture(script.verbatim);
  const family = script.dialect === 'vllmLegacy' ? 'vllm' : script.dialect;
  const scripted = SCRIPTED[family];
  const out: string[] = [];
  for (const line of fixture(FIXTURE[script.dialect]).split('\n')) {
    if (line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    const field = m?.[1] !== undefined ? scripted[m[1]] : undefined;
    if (!m || field === undefined) {
      out.push(line);
      continue;
    }
    script.ranks.forEach((values, rank) => {
      const v = values[field] ?? 0;
      out.push(`${m[1]}{${withRank(m[2] ?? '', family, rank, script.ranks.length)}} ${formatValue(v)}`);
    });
  }
  if (family === 'vllm' && script.ranks.some((r) => r.waitingDeferred !== undefined)) {
    // Registered beside vllm:num_requests_waiting with the extra `reason` label (vllm/v1/metrics/loggers.py).
    const name = 'vllm:num_requests_waiting_by_reason';
    out.push(`# HELP ${name} Number of waiting requests by reason.`, `# TYPE ${name} gauge`);
    script.ranks.forEach((r, rank) => {
      const deferred = r.waitingDeferred ?? 0;
      for (const [reason, v] of [
        ['capacity', r.waiting - deferred],
        ['deferred', deferred],
      ] as const) {
        out.push(
          `${name}{engine="${rank}",model_name="meta-llama/Llama-3.1-8B-Instruct",reason="${reason}"} ${formatValue(v)}`,
        );
      }
    });
  }
  let text = out.join('\n');
  if (script.dialect === 'vllmLegacy')
    text = text.replaceAll('vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc');
  if (script.timestampMs !== undefined) {
    const ts = Math.round(script.timestampMs);
    text = text
      .split('\n')
      .map((l) => (l.startsWith('#') ? l : `${l} ${ts}`))
      .join('\n');
  }
  // The exposition format requires a final line feed after the last line.
  return `${text}\n`;
}

export interface EngineExporter {
  /** host:port to scrape. */
  readonly address: string;
  pathFor(namespace: string, pod: string): string;
  set(namespace: string, pod: string, script: PodScript): void;
  /** Scrapes served per pod, to wait for a fresh scrape. */
  scrapes(namespace: string, pod: string): number;
  close(): Promise<void>;
}

export async function startEngineExporter(): Promise<EngineExporter> {
  const scripts = new Map<string, PodScript>();
  const served = new Map<string, number>();
  const startedMs = Date.now();
  const server: Server = createServer((req, res) => {
    const m = /^\/pods\/([^/]+)\/([^/?]+)/.exec(req.url ?? '');
    const key = m ? `${decodeURIComponent(m[1] ?? '')}/${decodeURIComponent(m[2] ?? '')}` : '';
    const script = scripts.get(key);
    served.set(key, (served.get(key) ?? 0) + 1);
    if (!script || script.down) {
      res.writeHead(503).end('down');
      return;
    }
    try {
      const body = renderPodText(script, (Date.now() - startedMs) / 1000);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    pathFor: (namespace, pod) => `/pods/${encodeURIComponent(namespace)}/${encodeURIComponent(pod)}`,
    set(namespace, pod, script) {
      scripts.set(`${namespace}/${pod}`, script);
    },
    scrapes: (namespace, pod) => served.get(`${namespace}/${pod}`) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
