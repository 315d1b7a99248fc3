/**
 * A stand-in for Grafana's annotations HTTP API that enforces the documented contract
 * (docs/sources/developers/http_api/annotations.md), so the client is tested against the contract rather
 * than against whatever a mock happens to accept (grafana/grafana docs/sources/developers/http_api/annotations.md).
 *
 * Deliberately stricter than Grafana in two places, so client mistakes surface in tests:
 * - unknown body fields are rejected (Grafana ignores them, which would hide a typo like `dashboardUid`);
 * - `time`/`timeEnd` must be non-negative integers in epoch ms (Grafana coerces).
 *
 * Standalone: `tsx src/stack/grafana-contract-server.ts --port 3000 [--token T]` (token also from
 * GRAFANA_TOKEN). It prints one JSON line per event on stdout: `listening`, then `added`/`patched`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

/** One annotation as Grafana returns it from GET /api/annotations (fields we do not model are constant). */
export interface StoredAnnotation {
  id: number;
  alertId: number;
  dashboardId: number;
  dashboardUID: string;
  panelId: number;
  userId: number;
  userName: string;
  newState: string;
  prevState: string;
  created: number;
  updated: number;
  time: number;
  timeEnd: number;
  text: string;
  metric: string;
  tags: string[];
  data: Record<string, unknown>;
}

export type RequestOutcome = number | 'hang' | 'reset';

/** Every request the server saw, accepted or not, in arrival order. */
export interface RecordedRequest {
  seq: number;
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  contentType: string | undefined;
  bodyText: string;
  /** Parsed JSON body, or undefined when empty or not JSON. */
  body: unknown;
  /** HTTP status sent, or the injected fault that replaced the response. */
  outcome: RequestOutcome;
  /** The `message` of the response body, when there was one. */
  message: string | undefined;
  receivedAtMs: number;
}

export type Fault = { kind: 'status'; status: number; body?: string } | { kind: 'hang' } | { kind: 'reset' };

export interface FaultInjection {
  fault: Fault;
  /** How many of the next matching requests get the fault. */
  count: number;
  /** Which methods the fault applies to; default POST and PATCH, so a test's read-back GET is unaffected. */
  methods?: readonly string[];
}

export interface ContractServerOptions {
  /** The service-account token expected in `Authorization: Bearer <token>`. */
  token: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Called after an annotation is stored (POST) or changed (PATCH). */
  onAnnotation?: (event: 'added' | 'patched', annotation: StoredAnnotation) => void;
  /** Server clock, for `created`/`updated` and a missing `time`. */
  nowMs?: () => number;
}

export interface GrafanaContractServer {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly requests: readonly RecordedRequest[];
  /** Stored annotations in insertion order. */
  annotations(): StoredAnnotation[];
  injectFault(injection: FaultInjection): void;
  clearFaults(): void;
  /** Ends hung requests too, so a test's afterEach never waits on a client. */
  close(): Promise<void>;
}

const maxBodyBytes = 1 << 20;
const createFields = new Set([
  'text',
  'time',
  'timeEnd',
  'tags',
  'dashboardUID',
  'dashboardId',
  'panelId',
  'data',
]);
const patchFields = new Set(['text', 'time', 'timeEnd', 'tags', 'data']);

class ContractViolation extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkEpochMs(body: Record<string, unknown>, field: 'time' | 'timeEnd'): number | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ContractViolation(
      `${field} must be a non-negative integer (epoch ms), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function checkTags(body: Record<string, unknown>): string[] | undefined {
  const value = body.tags;
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((tag) => typeof tag === 'string')) {
    throw new ContractViolation('tags must be an array of strings');
  }
  return value as string[];
}

function checkOptionalInteger(body: Record<string, unknown>, field: string): number | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new ContractViolation(`${field} must be an integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkText(body: Record<string, unknown>, required: boolean): string | undefined {
  const value = body.text;
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new ContractViolation('text is required and must be a non-empty string');
  }
  return value;
}

function checkKnownFields(body: Record<string, unknown>, allowed: ReadonlySet<string>): void {
  for (const field of Object.keys(body)) {
    if (!allowed.has(field)) throw new ContractViolation(`unknown field ${JSON.stringify(field)}`);
  }
}

function checkData(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const value = body.data;
  if (value === undefined) return undefined;
  if (!isRecord(value)) throw new ContractViolation('data must be an object');
  return value;
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let sizeBytes = 0;
    req.on('data', (chunk: Buffer) => {
      sizeBytes += chunk.length;
      if (sizeBytes > maxBodyBytes) {
        resolve(undefined);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Grafana's find semantics: an annotation matches [from, to] if it overlaps it; tags must all match. */
function findAnnotations(all: readonly StoredAnnotation[], query: URLSearchParams): StoredAnnotation[] {
  const fromMs = query.has('from') ? Number(query.get('from')) : Number.NEGATIVE_INFINITY;
  const toMs = query.has('to') ? Number(query.get('to')) : Number.POSITIVE_INFINITY;
  const dashboardUID = query.get('dashboardUID');
  const panelId = query.has('panelId') ? Number(query.get('panelId')) : undefined;
  const tags = query.getAll('tags');
  const matchAny = query.get('matchAny') === 'true';
  const limit = query.has('limit') ? Number(query.get('limit')) : 100;
  return all
    .filter((a) => a.timeEnd >= fromMs && a.time <= toMs)
    .filter((a) => dashboardUID === null || a.dashboardUID === dashboardUID)
    .filter((a) => panelId === undefined || a.panelId === panelId)
    .filter((a) => {
      if (tags.length === 0) return true;
      return matchAny ? tags.some((t) => a.tags.includes(t)) : tags.every((t) => a.tags.includes(t));
    })
    .sort((a, b) => b.time - a.time || b.id - a.id)
    .slice(0, limit);
}

export async function startGrafanaContractServer(
  options: ContractServerOptions,
): Promise<GrafanaContractServer> {
  const nowMs = options.nowMs ?? Date.now;
  const stored: StoredAnnotation[] = [];
  const requests: RecordedRequest[] = [];
  const faults: FaultInjection[] = [];
  let nextId = 1;

  function takeFault(method: string): Fault | undefined {
    const injection = faults[0];
    if (injection === undefined) return undefined;
    if (!(injection.methods ?? ['POST', 'PATCH']).includes(method)) return undefined;
    injection.count -= 1;
    if (injection.count <= 0) faults.shift();
    return injection.fault;
  }

  function createAnnotation(body: Record<string, unknown>): StoredAnnotation {
    checkKnownFields(body, createFields);
    const text = checkText(body, true) ?? '';
    const tags = checkTags(body) ?? [];
    const panelId = checkOptionalInteger(body, 'panelId') ?? 0;
    const dashboardId = checkOptionalInteger(body, 'dashboardId') ?? 0;
    const dashboardUID = body.dashboardUID;
    if (dashboardUID !== undefined && typeof dashboardUID !== 'string') {
      throw new ContractViolation('dashboardUID must be a string');
    }
    const data = checkData(body) ?? {};
    const time = checkEpochMs(body, 'time') ?? nowMs();
    const timeEnd = checkEpochMs(body, 'timeEnd') ?? time;
    if (timeEnd < time) throw new ContractViolation(`timeEnd ${timeEnd} is before time ${time}`);
    const createdMs = nowMs();
    const annotation: StoredAnnotation = {
      id: nextId++,
      alertId: 0,
      dashboardId,
      dashboardUID: dashboardUID ?? '',
      panelId,
      userId: 1,
      userName: 'kvpa-service-account',
      newState: '',
      prevState: '',
      created: createdMs,
      updated: createdMs,
      time,
      timeEnd,
      text,
      metric: '',
      tags,
      data,
    };
    stored.push(annotation);
    return annotation;
  }

  function patchAnnotation(existing: StoredAnnotation, body: Record<string, unknown>): void {
    checkKnownFields(body, patchFields);
    const text = checkText(body, false);
    const tags = checkTags(body);
    const data = checkData(body);
    const time = checkEpochMs(body, 'time') ?? existing.time;
    const timeEnd = checkEpochMs(body, 'timeEnd') ?? Math.max(existing.timeEnd, time);
    if (timeEnd < time) throw new ContractViolation(`timeEnd ${timeEnd} is before time ${time}`);
    // Validate everything before changing anything, so a rejected PATCH leaves no trace.
    if (text !== undefined) existing.text = text;
    if (tags !== undefined) existing.tags = tags;
    if (data !== undefined) existing.data = data;
    existing.time = time;
    existing.timeEnd = timeEnd;
    existing.updated = nowMs();
  }

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
    const send = (status: number, payload: unknown): void => {
      record.outcome = status;
      if (isRecord(payload) && typeof payload.message === 'string') record.message = payload.message;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };

    const bodyText = await readBody(req);
    if (bodyText === undefined) {
      send(413, { message: 'request body too large' });
      return;
    }
    record.bodyText = bodyText;
    try {
      record.body = bodyText === '' ? undefined : JSON.parse(bodyText);
    } catch {
      record.body = undefined;
    }

    const fault = takeFault(record.method);
    if (fault !== undefined) {
      switch (fault.kind) {
        case 'status':
          record.outcome = fault.status;
          res.writeHead(fault.status, { 'content-type': 'application/json' });
          res.end(fault.body ?? JSON.stringify({ message: 'injected fault' }));
          return;
        case 'hang':
          // Never answer; close() ends the socket.
          record.outcome = 'hang';
          return;
        case 'reset':
          record.outcome = 'reset';
          req.socket.destroy();
          return;
      }
    }

    if (record.authorization !== `Bearer ${options.token}`) {
      send(401, { message: 'Unauthorized' });
      return;
    }

    const isCollection = record.path === '/api/annotations';
    const idMatch = /^\/api\/annotations\/([^/]+)$/.exec(record.path);
    if (!isCollection && idMatch === null) {
      send(404, { message: 'Not found' });
      return;
    }

    if (isCollection && record.method === 'GET') {
      send(200, findAnnotations(stored, record.query));
      return;
    }

    const isWrite =
      (isCollection && record.method === 'POST') || (idMatch !== null && record.method === 'PATCH');
    if (!isWrite) {
      send(405, { message: `method ${record.method} not allowed on ${record.path}` });
      return;
    }
    if (!(record.contentType ?? '').toLowerCase().startsWith('application/json')) {
      send(400, { message: 'bad request data: content-type must be application/json' });
      return;
    }
    if (!isRecord(record.body)) {
      send(400, { message: 'bad request data: body must be a JSON object' });
      return;
    }

    try {
      if (isCollection) {
        const annotation = createAnnotation(record.body);
        options.onAnnotation?.('added', annotation);
        send(200, { message: 'Annotation added', id: annotation.id });
        return;
      }
      const idText = idMatch?.[1] ?? '';
      const id = /^\d+$/.test(idText) ? Number(idText) : Number.NaN;
      if (Number.isNaN(id)) {
        send(400, { message: 'annotationId is invalid' });
        return;
      }
      const existing = stored.find((a) => a.id === id);
      if (existing === undefined) {
        send(404, { message: 'Annotation not found' });
        return;
      }
      patchAnnotation(existing, record.body);
      options.onAnnotation?.('patched', existing);
      send(200, { message: 'Annotation patched' });
    } catch (err) {
      if (!(err instanceof ContractViolation)) throw err;
      send(400, { message: `bad request data: ${err.message}` });
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: RecordedRequest = {
      seq: requests.length,
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      bodyText: '',
      body: undefined,
      outcome: 0,
      message: undefined,
      receivedAtMs: Date.now(),
    };
    requests.push(record);
    handle(req, res, record).catch(() => {
      if (!res.headersSent) {
        record.outcome = 500;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'internal error' }));
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    annotations: () => stored.map((a) => ({ ...a, tags: [...a.tags] })),
    injectFault: (injection) => {
      faults.push({ ...injection });
    },
    clearFaults: () => {
      faults.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function argValue(args: readonly string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index >= 0 ? args[index + 1] : undefined;
}

async function runStandalone(args: readonly string[]): Promise<void> {
  const port = Number(argValue(args, '--port') ?? '3000');
  const token = argValue(args, '--token') ?? process.env.GRAFANA_TOKEN ?? 'kvpa-local-token';
  const writeLine = (line: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const server = await startGrafanaContractServer({
    token,
    port,
    onAnnotation: (event, annotation) => writeLine({ event, annotation }),
  });
  // The token is never printed: the live stack passes it in and knows it already.
  writeLine({ event: 'listening', url: server.url });
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runStandalone(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`grafana-contract-server: ${String(err)}\n`);
    process.exit(1);
  });
}
