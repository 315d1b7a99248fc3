import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Logger, pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostAllowlist } from '../observe/http.ts';
import { type GrafanaContractServer, startGrafanaContractServer } from '../stack/grafana-contract-server.ts';
import {
  type AnnotationEvent,
  backoffDelayMs,
  configFromSpec,
  type DecisionEvent,
  formatDecisionText,
  GrafanaAnnotator,
  type GrafanaAnnotatorConfig,
  type GrafanaAnnotatorOptions,
  GrafanaTokenError,
  grantedSecretValue,
  tokenFromSecret,
} from './grafana.ts';

const token = 'glsa_kvpaTestToken_5f3c9a0e7d21';
const t0Ms = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/** A pino logger writing JSON lines into memory, at debug so every message is seen. */
function captureLogs(): { logger: Logger; lines: string[]; messages: () => string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines, messages: () => lines.map((line) => (JSON.parse(line) as { msg: string }).msg) };
}

async function until(predicate: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadlineMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function decision(overrides: Partial<DecisionEvent> = {}): AnnotationEvent {
  return {
    kind: 'decision',
    namespace: 'llm',
    name: 'r1',
    pool: 'decode',
    timeMs: t0Ms,
    mode: 'Panic',
    dryRun: false,
    fromGroups: 3,
    toGroups: 5,
    explanation: 'kvCacheUtilization stable 0.82 panic 0.95 target 0.7; clamp: none',
    ...overrides,
  };
}

const ref = { namespace: 'llm', name: 'r1', pool: 'decode' } as const;

/** Fast, bounded defaults for tests: no batch wait, tiny backoff, short timeout. */
const fastOptions = {
  timeoutMs: 300,
  batchIntervalMs: 0,
  baseBackoffMs: 5,
  maxBackoffMs: 20,
  maxAttempts: 4,
} satisfies GrafanaAnnotatorOptions;

async function postRaw(
  server: GrafanaContractServer,
  body: unknown,
  init: { authorization?: string; contentType?: string; method?: string; path?: string } = {},
): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { 'content-type': init.contentType ?? 'application/json' };
  const authorization = init.authorization ?? `Bearer ${token}`;
  if (authorization !== '') headers.authorization = authorization;
  const response = await fetch(`${server.url}${init.path ?? '/api/annotations'}`, {
    method: init.method ?? 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

async function getAnnotations(
  server: GrafanaContractServer,
  query: string,
): Promise<Record<string, unknown>[]> {
  const response = await fetch(`${server.url}/api/annotations?${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>[];
}

let server: GrafanaContractServer;
const annotators: GrafanaAnnotator[] = [];

beforeEach(async () => {
  server = await startGrafanaContractServer({ token });
});

afterEach(async () => {
  await Promise.all(annotators.splice(0).map((a) => a.close({ timeoutMs: 100 })));
  await server.close();
});

function makeAnnotator(
  options: GrafanaAnnotatorOptions = {},
  config: Partial<GrafanaAnnotatorConfig> = {},
): GrafanaAnnotator {
  const annotator = new GrafanaAnnotator(
    { url: server.url, token: () => token, ...config },
    {
      ...fastOptions,
      logger: pino({ level: 'silent' }),
      allowedHosts: new HostAllowlist([server.url]),
      ...options,
    },
  );
  annotators.push(annotator);
  return annotator;
}

describe('grafana contract server', () => {
  it('adds, patches and finds annotations with Grafana response shapes', async () => {
    const added = await postRaw(server, {
      text: 'a',
      time: 1000,
      tags: ['kvpa', 'pool:decode'],
      dashboardUID: 'd1',
      panelId: 2,
    });
    expect(added).toEqual({ status: 200, json: { message: 'Annotation added', id: 1 } });
    const second = await postRaw(server, { text: 'b', time: 5000, timeEnd: 6000, tags: ['kvpa'] });
    expect(second.json).toEqual({ message: 'Annotation added', id: 2 });

    const patched = await postRaw(server, { timeEnd: 3000 }, { method: 'PATCH', path: '/api/annotations/1' });
    expect(patched).toEqual({ status: 200, json: { message: 'Annotation patched' } });

    // Tags must all match; results overlap [from, to] and come newest first.
    expect((await getAnnotations(server, 'tags=kvpa&tags=pool:decode')).map((a) => a.id)).toEqual([1]);
    expect((await getAnnotations(server, 'tags=kvpa')).map((a) => a.id)).toEqual([2, 1]);
    expect((await getAnnotations(server, 'from=2500&to=4000')).map((a) => a.id)).toEqual([1]);
    const [first] = await getAnnotations(server, 'dashboardUID=d1&panelId=2');
    expect(first).toMatchObject({
      id: 1,
      text: 'a',
      time: 1000,
      timeEnd: 3000,
      dashboardUID: 'd1',
      panelId: 2,
    });
  });

  it.each([
    ['missing text', { time: 1000 }, /text is required/],
    ['empty text', { text: '', time: 1000 }, /text is required/],
    ['non-integer time', { text: 'a', time: 1000.5 }, /time must be a non-negative integer/],
    ['time as string', { text: 'a', time: '1000' }, /time must be a non-negative integer/],
    ['timeEnd before time', { text: 'a', time: 2000, timeEnd: 1000 }, /timeEnd 1000 is before time 2000/],
    ['tags not strings', { text: 'a', tags: ['ok', 3] }, /tags must be an array of strings/],
    ['tags not an array', { text: 'a', tags: 'kvpa' }, /tags must be an array of strings/],
    ['panelId not an integer', { text: 'a', panelId: '2' }, /panelId must be an integer/],
    ['dashboardUID not a string', { text: 'a', dashboardUID: 7 }, /dashboardUID must be a string/],
    ['unknown field', { text: 'a', dashboardUid: 'typo' }, /unknown field "dashboardUid"/],
    ['array body', [{ text: 'a' }], /body must be a JSON object/],
    ['invalid JSON', '{"text":', /body must be a JSON object/],
  ])('rejects a POST with %s (400, nothing stored)', async (_name, body, message) => {
    const { status, json } = await postRaw(server, body);
    expect(status).toBe(400);
    expect((json as { message: string }).message).toMatch(message);
    expect(server.annotations()).toEqual([]);
    expect(server.requests.at(-1)?.outcome).toBe(400);
  });

  it('rejects a non-JSON content type', async () => {
    const { status, json } = await postRaw(server, { text: 'a' }, { contentType: 'text/plain' });
    expect(status).toBe(400);
    expect(json).toEqual({ message: 'bad request data: content-type must be application/json' });
  });

  it.each([
    ['no Authorization header', ''],
    ['a wrong token', 'Bearer not-the-token'],
    ['basic auth', `Basic ${Buffer.from(`admin:${token}`).toString('base64')}`],
    ['a bare token', token],
  ])('answers 401 to %s and stores nothing', async (_name, authorization) => {
    const { status, json } = await postRaw(server, { text: 'a', time: 1 }, { authorization });
    expect(status).toBe(401);
    expect(json).toEqual({ message: 'Unauthorized' });
    expect(server.annotations()).toEqual([]);
    const read = await fetch(`${server.url}/api/annotations`, { headers: { authorization } });
    expect(read.status).toBe(401);
  });

  it('answers 404 to a PATCH of an unknown id and 400 to a PATCH that would end before the start', async () => {
    expect(
      (await postRaw(server, { timeEnd: 5 }, { method: 'PATCH', path: '/api/annotations/99' })).status,
    ).toBe(404);
    await postRaw(server, { text: 'a', time: 2000 });
    const bad = await postRaw(server, { timeEnd: 1000 }, { method: 'PATCH', path: '/api/annotations/1' });
    expect(bad.status).toBe(400);
    expect(server.annotations()[0]).toMatchObject({ time: 2000, timeEnd: 2000 });
    const unknownField = await postRaw(
      server,
      { panelId: 3 },
      { method: 'PATCH', path: '/api/annotations/1' },
    );
    expect(unknownField.status).toBe(400);
  });

  it('injects status faults for the next N writes, recording them, then behaves normally', async () => {
    server.injectFault({ fault: { kind: 'status', status: 503 }, count: 2 });
    expect((await postRaw(server, { text: 'a' })).status).toBe(503);
    expect((await postRaw(server, { text: 'a' })).status).toBe(503);
    expect((await postRaw(server, { text: 'a' })).status).toBe(200);
    expect(server.requests.map((r) => r.outcome)).toEqual([503, 503, 200]);
    expect(server.annotations()).toHaveLength(1);
  });

  it('runs standalone and prints each accepted annotation as a JSON line, without the token', async () => {
    const serverPath = fileURLToPath(new URL('../stack/grafana-contract-server.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', serverPath, '--port', '0', '--token', token], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const lines: string[] = [];
      let buffered = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffered += chunk;
        const parts = buffered.split('\n');
        buffered = parts.pop() ?? '';
        lines.push(...parts);
      });
      await until(() => lines.length >= 1, 15_000);
      const listening = JSON.parse(lines[0] ?? '{}') as { event: string; url: string };
      expect(listening.event).toBe('listening');
      const response = await fetch(`${listening.url}/api/annotations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'standalone', time: 42, tags: ['kvpa'] }),
      });
      expect(response.status).toBe(200);
      await until(() => lines.length >= 2);
      expect(JSON.parse(lines[1] ?? '{}')).toMatchObject({
        event: 'added',
        annotation: { id: 1, text: 'standalone', time: 42, tags: ['kvpa'] },
      });
      expect(lines.join('\n')).not.toContain(token);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }, 20_000);
});

describe('GrafanaAnnotator', () => {
  it('posts a point annotation per decision with text, tags, dashboard and panel', async () => {
    const annotator = makeAnnotator({}, { dashboardUID: 'kvpa-main', panelId: 4, tags: ['team:inference'] });
    expect(annotator.enqueue(decision())).toBe(true);
    expect(
      annotator.enqueue(decision({ dryRun: true, mode: 'Stable', toGroups: 2, timeMs: t0Ms + 1000 })),
    ).toBe(true);
    await annotator.flush();

    expect(server.annotations()).toEqual([
      expect.objectContaining({
        text: 'decode 3→5 groups (panic): kvCacheUtilization stable 0.82 panic 0.95 target 0.7; clamp: none',
        time: t0Ms,
        timeEnd: t0Ms,
        dashboardUID: 'kvpa-main',
        panelId: 4,
        tags: [
          'kvpa',
          'namespace:llm',
          'name:r1',
          'pool:decode',
          'mode:Panic',
          'dryRun:false',
          'event:scale',
          'team:inference',
        ],
      }),
      expect.objectContaining({
        text: 'decode 3→2 groups (stable, dry-run): kvCacheUtilization stable 0.82 panic 0.95 target 0.7; clamp: none',
        time: t0Ms + 1000,
        tags: expect.arrayContaining(['mode:Stable', 'dryRun:true', 'event:recommendation']),
      }),
    ]);
    const recommendations = await getAnnotations(server, 'tags=kvpa&tags=dryRun:true');
    expect(recommendations.map((a) => a.time)).toEqual([t0Ms + 1000]);
    const writes = server.requests.filter((r) => r.method === 'POST');
    expect(writes).toHaveLength(2);
    for (const request of writes) {
      expect(request.authorization).toBe(`Bearer ${token}`);
      expect(request.contentType).toBe('application/json');
    }
    expect(annotator.stats()).toMatchObject({ sent: 2, failed: 0, dropped: 0, retried: 0, queued: 0 });
  });

  it('opens a panic region with POST and closes it with PATCH timeEnd on the returned id', async () => {
    const annotator = makeAnnotator();
    annotator.enqueue({
      kind: 'panicStart',
      ...ref,
      timeMs: t0Ms,
      dryRun: false,
      explanation: 'panic 0.95 ≥ 2× 0.7',
    });
    // A repeated start while panicking is ignored.
    expect(
      annotator.enqueue({ kind: 'panicStart', ...ref, timeMs: t0Ms + 10, dryRun: false, explanation: '' }),
    ).toBe(false);
    await annotator.flush();
    expect(annotator.stats().openRegions).toBe(1);
    const [created] = server.annotations();
    expect(created).toMatchObject({ time: t0Ms, timeEnd: t0Ms, text: 'decode panic: panic 0.95 ≥ 2× 0.7' });
    expect(created?.tags).toEqual(expect.arrayContaining(['mode:Panic', 'event:panic', 'pool:decode']));

    expect(annotator.enqueue({ kind: 'panicEnd', ...ref, timeMs: t0Ms + 60_000 })).toBe(true);
    await annotator.flush();
    expect(server.requests.map((r) => `${r.method} ${r.path} ${r.outcome}`)).toEqual([
      'POST /api/annotations 200',
      `PATCH /api/annotations/${created?.id} 200`,
    ]);
    expect(server.requests[1]?.body).toEqual({ timeEnd: t0Ms + 60_000 });
    expect(server.annotations()).toEqual([expect.objectContaining({ time: t0Ms, timeEnd: t0Ms + 60_000 })]);
    expect(annotator.stats().openRegions).toBe(0);
    // An end without an open region does nothing.
    expect(annotator.enqueue({ kind: 'panicEnd', ...ref, timeMs: t0Ms + 70_000 })).toBe(false);
  });

  it('holds the region-end PATCH until the region POST, retried after a 503, returns its id', async () => {
    let releaseBackoff: () => void = () => {};
    const backoffGate = new Promise<void>((resolve) => {
      releaseBackoff = resolve;
    });
    server.injectFault({ fault: { kind: 'status', status: 503 }, count: 1 });
    const annotator = makeAnnotator({ sleep: () => backoffGate });
    annotator.enqueue({ kind: 'panicStart', ...ref, timeMs: t0Ms, dryRun: true, explanation: '' });
    await until(() => annotator.stats().retried === 1);
    // The POST has no id yet: the end must wait for it.
    annotator.enqueue({ kind: 'panicEnd', ...ref, timeMs: t0Ms + 5_000 });
    // Panic re-entered before the first region got its id: a second, separate region.
    expect(
      annotator.enqueue({ kind: 'panicStart', ...ref, timeMs: t0Ms + 6_000, dryRun: true, explanation: '' }),
    ).toBe(true);
    expect(server.requests).toHaveLength(1);
    releaseBackoff();
    await annotator.flush();
    annotator.enqueue({ kind: 'panicEnd', ...ref, timeMs: t0Ms + 9_000 });
    await annotator.flush();

    const [first, second] = server.annotations();
    expect(server.requests.map((r) => `${r.method} ${r.path} ${r.outcome}`)).toEqual([
      'POST /api/annotations 503',
      'POST /api/annotations 200',
      'POST /api/annotations 200',
      `PATCH /api/annotations/${first?.id} 200`,
      `PATCH /api/annotations/${second?.id} 200`,
    ]);
    expect(first).toMatchObject({ time: t0Ms, timeEnd: t0Ms + 5_000, text: 'decode panic (dry-run)' });
    expect(second).toMatchObject({ time: t0Ms + 6_000, timeEnd: t0Ms + 9_000 });
    expect(annotator.stats().openRegions).toBe(0);
  });

  it('sends a region whose end arrives before its POST left the queue as one POST with timeEnd', async () => {
    const annotator = makeAnnotator({ batchIntervalMs: 60_000 });
    annotator.enqueue({ kind: 'panicStart', ...ref, timeMs: t0Ms, dryRun: false, explanation: 'x' });
    annotator.enqueue({ kind: 'panicEnd', ...ref, timeMs: t0Ms + 3_000 });
    await annotator.flush();
    expect(server.requests.map((r) => r.method)).toEqual(['POST']);
    expect(server.requests[0]?.body).toMatchObject({ time: t0Ms, timeEnd: t0Ms + 3_000 });
  });

  it('re-posts a region whose POST was rejected as a complete region when the panic ends', async () => {
    server.injectFault({ fault: { kind: 'status', status: 400 }, count: 1 });
    const annotator = makeAnnotator();
    annotator.enqueue({ kind: 'panicStart', ...ref, timeMs: t0Ms, dryRun: false, explanation: 'x' });
    await annotator.flush();
    expect(server.annotations()).toEqual([]);
    annotator.enqueue({ kind: 'panicEnd', ...ref, timeMs: t0Ms + 2_000 });
    await annotator.flush();
    expect(server.requests.map((r) => `${r.method} ${r.outcome}`)).toEqual(['POST 400', 'POST 200']);
    expect(server.annotations()).toEqual([expect.objectContaining({ time: t0Ms, timeEnd: t0Ms + 2_000 })]);
    expect(annotator.stats()).toMatchObject({ sent: 1, failed: 1, openRegions: 0 });
  });

  it('retries 5xx with exponential backoff and jitter, then succeeds', async () => {
    server.injectFault({ fault: { kind: 'status', status: 500 }, count: 1 });
    server.injectFault({ fault: { kind: 'status', status: 503 }, count: 1 });
    const sleptMs: number[] = [];
    const logs = captureLogs();
    const annotator = makeAnnotator({
      logger: logs.logger,
      baseBackoffMs: 8,
      maxBackoffMs: 1_000,
      random: () => 0.5,
      sleep: async (delayMs) => {
        sleptMs.push(delayMs);
      },
    });
    annotator.enqueue(decision());
    await annotator.flush();
    // Equal jitter with random 0.5: 3/4 of the ceiling, ceilings 8 then 16.
    expect(sleptMs).toEqual([6, 12]);
    expect(server.requests.map((r) => r.outcome)).toEqual([500, 503, 200]);
    expect(server.annotations()).toHaveLength(1);
    expect(annotator.stats()).toMatchObject({ sent: 1, retried: 2, failed: 0 });
    expect(logs.messages().filter((m) => m === 'grafana request failed; retrying')).toHaveLength(2);
  });

  it('gives up after maxAttempts on a persistent 5xx and counts a failure', async () => {
    server.injectFault({ fault: { kind: 'status', status: 502 }, count: 10 });
    const annotator = makeAnnotator({ maxAttempts: 3 });
    annotator.enqueue(decision());
    await annotator.flush();
    expect(server.requests).toHaveLength(3);
    expect(annotator.stats()).toMatchObject({ sent: 0, retried: 2, failed: 1 });
  });

  it('never blocks enqueue on a hung server; the hung request times out and is retried', async () => {
    server.injectFault({ fault: { kind: 'hang' }, count: 1 });
    const logs = captureLogs();
    const annotator = makeAnnotator({ logger: logs.logger, timeoutMs: 300 });

    // Blocking would cost the whole 300 ms timeout; 50 ms leaves room for a loaded CI machine.
    let startedMs = performance.now();
    expect(annotator.enqueue(decision())).toBe(true);
    expect(performance.now() - startedMs).toBeLessThan(50);
    // Nothing reached the network before enqueue returned.
    expect(server.requests).toHaveLength(0);

    await until(() => server.requests.length === 1);
    startedMs = performance.now();
    expect(annotator.enqueue(decision({ fromGroups: 5, toGroups: 6 }))).toBe(true);
    expect(performance.now() - startedMs).toBeLessThan(50);

    const flushStartedMs = performance.now();
    await annotator.flush();
    const flushMs = performance.now() - flushStartedMs;
    // The hung request was cut by the timeout, not by the server.
    expect(flushMs).toBeGreaterThan(100);
    expect(flushMs).toBeLessThan(3_000);
    expect(server.requests[0]?.outcome).toBe('hang');
    expect(server.annotations()).toHaveLength(2);
    expect(annotator.stats()).toMatchObject({ sent: 2, retried: 1, failed: 0 });
    const timeoutLog = logs.lines
      .map((line) => JSON.parse(line) as { msg: string; error?: { name: string; message: string } })
      .find((record) => record.msg === 'grafana request error');
    expect(timeoutLog?.error?.message).toContain('no complete response in time');
  });

  it('drops the oldest entries when the queue is full, counting and logging each drop', async () => {
    const logs = captureLogs();
    const annotator = makeAnnotator({ logger: logs.logger, maxQueueLength: 3, batchIntervalMs: 60_000 });
    for (let toGroups = 1; toGroups <= 5; toGroups += 1) {
      expect(annotator.enqueue(decision({ fromGroups: 0, toGroups }))).toBe(true);
    }
    expect(annotator.stats()).toMatchObject({ dropped: 2, queued: 3 });
    expect(logs.messages().filter((m) => m === 'grafana annotation dropped: queue full')).toHaveLength(2);
    await annotator.flush();
    expect(server.annotations().map((a) => a.text.slice(0, 19))).toEqual([
      'decode 0→3 groups (',
      'decode 0→4 groups (',
      'decode 0→5 groups (',
    ]);
    expect(annotator.stats()).toMatchObject({ sent: 3, dropped: 2, queued: 0 });
  });

  it('reports a 401 once per entry without retrying, and never logs the rejected token', async () => {
    const wrongToken = 'glsa_wrongToken_0000aaaa';
    const logs = captureLogs();
    const annotator = makeAnnotator({ logger: logs.logger, maxAttempts: 5 }, { token: () => wrongToken });
    annotator.enqueue(decision());
    annotator.enqueue(decision({ toGroups: 7 }));
    await annotator.flush();
    expect(server.requests.map((r) => r.outcome)).toEqual([401, 401]);
    expect(annotator.stats()).toMatchObject({ sent: 0, failed: 2, retried: 0, authRejected: 2 });
    const failures = logs.lines
      .map((line) => JSON.parse(line) as { msg: string; status?: number })
      .filter((record) => record.msg === 'grafana annotation failed: rejected');
    expect(failures.map((f) => f.status)).toEqual([401, 401]);
    expect(logs.lines.join('\n')).not.toContain(wrongToken);
  });

  it('never logs the token, even when a failing response echoes it and the request times out', async () => {
    server.injectFault({
      fault: {
        kind: 'status',
        status: 500,
        body: `{"message":"upstream saw Authorization: Bearer ${token}"}`,
      },
      count: 1,
    });
    server.injectFault({ fault: { kind: 'hang' }, count: 1 });
    server.injectFault({ fault: { kind: 'reset' }, count: 1 });
    const logs = captureLogs();
    const annotator = makeAnnotator({ logger: logs.logger, timeoutMs: 100, maxAttempts: 5 });
    annotator.enqueue(decision());
    annotator.enqueue({ kind: 'panicStart', ...ref, timeMs: t0Ms, dryRun: false, explanation: 'e' });
    await annotator.flush();
    annotator.enqueue({ kind: 'panicEnd', ...ref, timeMs: t0Ms + 1 });
    await annotator.flush();
    await annotator.close();
    annotator.enqueue(decision());

    expect(annotator.stats()).toMatchObject({ sent: 3, retried: 3 });
    const messages = logs.messages();
    expect(messages).toEqual(expect.arrayContaining(['grafana request rejected', 'grafana request error']));
    // The echoed body is logged, with the token scrubbed out.
    expect(logs.lines.join('\n')).toContain('upstream saw Authorization: Bearer [REDACTED]');
    expect(logs.lines.join('\n')).not.toContain(token);
  });

  it('redacts token and authorization fields even if they reach the logger', async () => {
    const logs = captureLogs();
    const annotator = makeAnnotator({ logger: logs.logger });
    // The child logger is private; reach it only to prove the redact configuration is in place.
    const logger = (annotator as unknown as { logger: Logger }).logger;
    logger.info({ token, headers: { authorization: `Bearer ${token}` } }, 'probe');
    expect(logs.lines).toHaveLength(1);
    expect(logs.lines[0]).toContain('[REDACTED]');
    expect(logs.lines[0]).not.toContain(token);
  });

  it('retries while the token Secret is missing and sends once it appears', async () => {
    let reads = 0;
    const readSecretValue = (): string | undefined => {
      reads += 1;
      return reads === 1 ? undefined : `${token}\n`;
    };
    const annotator = makeAnnotator(
      {},
      { token: tokenFromSecret({ name: 'grafana', key: 'token' }, readSecretValue, { cacheTtlMs: 0 }) },
    );
    annotator.enqueue(decision());
    await annotator.flush();
    expect(annotator.stats()).toMatchObject({ sent: 1, retried: 1 });
    expect(server.requests[0]?.authorization).toBe(`Bearer ${token}`);
  });

  it('close() flushes within its deadline, aborts a hung request and drops what is left', async () => {
    server.injectFault({ fault: { kind: 'hang' }, count: 10 });
    const annotator = makeAnnotator({ timeoutMs: 30_000 });
    annotator.enqueue(decision());
    annotator.enqueue(decision({ toGroups: 9 }));
    await until(() => server.requests.length === 1);
    const startedMs = performance.now();
    await annotator.close({ timeoutMs: 100 });
    expect(performance.now() - startedMs).toBeLessThan(2_000);
    expect(annotator.stats()).toMatchObject({ sent: 0, dropped: 2, queued: 0 });
    expect(annotator.enqueue(decision())).toBe(false);
    expect(annotator.stats().dropped).toBe(3);
  });

  it('posts under a Grafana sub-path and treats 404 as a non-retryable failure', async () => {
    const annotator = makeAnnotator({}, { url: `${server.url}/grafana` });
    annotator.enqueue(decision());
    await annotator.flush();
    expect(server.requests.map((r) => `${r.path} ${r.outcome}`)).toEqual(['/grafana/api/annotations 404']);
    expect(annotator.stats()).toMatchObject({ failed: 1, retried: 0 });
  });

  it('sends no token to a host outside --allowed-hosts, nor over plain http to an https-only entry', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    let tokenReads = 0;
    const unlisted = makeAnnotator(
      { logger, allowedHosts: new HostAllowlist(['grafana.example.com']) },
      { token: () => `${tokenReads++}` },
    );
    unlisted.enqueue(decision());
    await unlisted.flush();
    const host = new URL(server.url).host;
    const httpsOnly = makeAnnotator({ logger, allowedHosts: new HostAllowlist([host]) });
    httpsOnly.enqueue(decision());
    await httpsOnly.flush();
    expect(server.requests).toEqual([]);
    expect(tokenReads).toBe(0); // the Secret is not even read
    expect(unlisted.stats()).toMatchObject({ failed: 1, retried: 0 });
    expect(lines.join('\n')).toContain(`${host} is not in the controller's --allowed-hosts`);
    expect(lines.join('\n')).toContain('over https only');
  });

  it('refuses a redirect to another host: the token never leaves grafana.url', async () => {
    const seen: string[] = [];
    const thief = createServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.end('{}');
    });
    await new Promise<void>((r) => thief.listen(0, '127.0.0.1', r));
    const thiefUrl = `http://127.0.0.1:${(thief.address() as AddressInfo).port}`;
    const bouncer = createServer((_req, res) =>
      res.writeHead(307, { location: `${thiefUrl}/api/annotations` }).end(),
    );
    await new Promise<void>((r) => bouncer.listen(0, '127.0.0.1', r));
    const bouncerUrl = `http://127.0.0.1:${(bouncer.address() as AddressInfo).port}`;
    try {
      const annotator = makeAnnotator(
        { allowedHosts: new HostAllowlist([bouncerUrl, thiefUrl]) },
        { url: bouncerUrl },
      );
      annotator.enqueue(decision());
      await annotator.flush();
      expect(seen).toEqual([]);
      expect(annotator.stats()).toMatchObject({ failed: 1, retried: 0 });
    } finally {
      await new Promise<void>((r) => thief.close(() => r()));
      await new Promise<void>((r) => bouncer.close(() => r()));
    }
  });

  it('rejects config it cannot use', () => {
    expect(() => new GrafanaAnnotator({ url: 'not a url', token: () => token })).toThrow(/not a valid URL/);
    expect(() => new GrafanaAnnotator({ url: 'ftp://grafana', token: () => token })).toThrow(/http or https/);
    expect(() => new GrafanaAnnotator({ url: `http://admin:${token}@grafana`, token: () => token })).toThrow(
      /must not contain credentials/,
    );
    expect(() => new GrafanaAnnotator({ url: 'http://grafana', token: () => token, panelId: 1.5 })).toThrow(
      /panelId must be an integer/,
    );
  });
});

describe('grantedSecretValue', () => {
  const ref = { name: 'g', key: 'token' };
  const data = { token: Buffer.from('t0k').toString('base64') };
  it('reads a Secret labelled kvpa.io/grafana-token=true, and refuses one without the label', () => {
    expect(grantedSecretValue({ metadata: { labels: { 'kvpa.io/grafana-token': 'true' } }, data }, ref)).toBe(
      't0k',
    );
    expect(() => grantedSecretValue({ metadata: { labels: {} }, data }, ref)).toThrow(
      /Secret g is not granted to kvpa: its owner must label it kvpa.io\/grafana-token=true/,
    );
    expect(() =>
      grantedSecretValue({ metadata: { labels: { 'kvpa.io/grafana-token': 'yes' } }, data }, ref),
    ).toThrow(GrafanaTokenError);
  });
});

describe('helpers', () => {
  it('formats the decision text', () => {
    const event = decision() as DecisionEvent;
    expect(formatDecisionText(event)).toBe(
      'decode 3→5 groups (panic): kvCacheUtilization stable 0.82 panic 0.95 target 0.7; clamp: none',
    );
    expect(formatDecisionText({ ...event, explanation: '' })).toBe('decode 3→5 groups (panic)');
  });

  it('keeps backoff within [ceiling/2, ceiling] with the ceiling doubling up to the cap', () => {
    expect([0, 1, 2, 3, 10].map((i) => backoffDelayMs(i, 100, 500, () => 0))).toEqual([
      50, 100, 200, 250, 250,
    ]);
    expect([0, 1, 2, 3].map((i) => backoffDelayMs(i, 100, 500, () => 0.999999))).toEqual([
      100, 200, 400, 500,
    ]);
  });

  it('tokenFromSecret trims, caches for its TTL, and names the key but not the value when empty', async () => {
    let nowMs = 0;
    const values = [' first-token\n', 'second-token'];
    let reads = 0;
    const provider = tokenFromSecret(
      { name: 'grafana', key: 'token' },
      () => {
        reads += 1;
        return values.shift();
      },
      { cacheTtlMs: 1_000, nowMs: () => nowMs },
    );
    expect(await provider()).toBe('first-token');
    nowMs = 999;
    expect(await provider()).toBe('first-token');
    expect(reads).toBe(1);
    nowMs = 1_000;
    expect(await provider()).toBe('second-token');
    nowMs = 5_000;
    const missing = provider();
    await expect(missing).rejects.toThrow(GrafanaTokenError);
    await expect(missing).rejects.toThrow('Secret grafana has no non-empty key "token"');
  });

  it('configFromSpec maps spec.grafana and reads the token through the Secret reader', async () => {
    const config = configFromSpec(
      {
        url: 'https://grafana.example',
        tokenSecretRef: { name: 'grafana-sa', key: 'token' },
        dashboardUID: 'kvpa',
        panelId: 3,
        tags: ['env:prod'],
      },
      (secretRef) => (secretRef.name === 'grafana-sa' && secretRef.key === 'token' ? token : undefined),
    );
    expect(config).toMatchObject({ url: 'https://grafana.example', dashboardUID: 'kvpa', panelId: 3 });
    expect(config.tags).toEqual(['env:prod']);
    expect(await config.token()).toBe(token);
    const minimal = configFromSpec({ url: 'http://g', tokenSecretRef: { name: 'n', key: 'k' } }, () => token);
    expect(Object.keys(minimal).sort()).toEqual(['token', 'url']);
  });
});
