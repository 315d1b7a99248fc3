/**
 * `kvpa recommend` and `kvpa backtest` against a REAL Prometheus (1 s scrapes) scraping the test
 * exporter (the real vLLM fixture text with scripted values), through the CLI entry point.
 *
 * Policy of every pool here: kvCacheUtilization 0.7 and queueDepth 5 per group, stable window 6 s,
 * panic window 50 % (3 s), no scale-down delay, a decision every second, staleAfter 30 s.
 * recommend replays 6 + 0 + 1 = 7 s of decisions after filling the windows for 6 s, so the pods
 * need 13 s of steady values before --at.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { PoolBacktest } from '../../src/cli/backtest.ts';
import { main } from '../../src/cli/main.ts';
import type { PoolRecommendation } from '../../src/cli/recommend.ts';
import { type EngineExporter, type PodScript, startEngineExporter } from '../harness/engine-exporter.ts';
import { type PrometheusHarness, startPrometheus } from '../harness/prometheus.ts';
import { customPath, RawApi } from './actuate-fixtures.ts';

const LEADER = { 'leaderworkerset.sigs.k8s.io/worker-index': '0' };
const WORKER = { 'leaderworkerset.sigs.k8s.io/worker-index': '1' };
const HEAD_SELECTOR = 'leaderworkerset_sigs_k8s_io_worker_index="0"';
const FROZEN_AGE_SECONDS = 100;
/** Backtest history: waiting requests per head pod, and for how long. */
const PHASES = [
  { waiting: 1, seconds: 10 },
  { waiting: 10, seconds: 12 },
  { waiting: 1, seconds: 14 },
] as const;

const vllm = (kv: number, waiting: number, timestampMs?: number): PodScript => ({
  dialect: 'vllm',
  ranks: [{ kv, waiting, running: 4, preemptionsTotal: 0 }],
  ...(timestampMs !== undefined ? { timestampMs } : {}),
});

function podAutoscaler(namespace: string): string {
  return `apiVersion: kvpa.io/v1alpha1
kind: PodAutoscaler
metadata:
  name: pa
  namespace: ${namespace}
spec:
  metricsSource:
    prometheus:
      address: http://prometheus.monitoring:9090
  pools:
    - name: decode
      engine: vllm
      scaleTargetRef:
        apiVersion: leaderworkerset.x-k8s.io/v1
        kind: LeaderWorkerSet
        name: decode
      minReplicas: 1
      maxReplicas: 10
      metrics:
        - type: kvCacheUtilization
          target: 0.7
        - type: queueDepth
          target: 5
      stableWindowSeconds: 6
      panicWindowPercentage: 50
      scaleDownDelaySeconds: 0
      tickSeconds: 1
      missingData:
        staleAfterSeconds: 30
`;
}

/** A real API server (the integration project's shared cluster) for recommend's cluster mode. */
const cluster = inject('cluster');
const api = new RawApi(cluster);
const CLUSTER_NS = 'kvpa-tools-recommend';
const LWS = 'leaderworkerset.sigs.k8s.io';

/** An LWS `decode` with 3 groups of 2 pods, of which groups 0 and 1 are ready and group 2 is not. */
async function clusterFixture(): Promise<void> {
  await api.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: CLUSTER_NS },
  });
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', CLUSTER_NS, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name: 'decode' },
    spec: {
      replicas: 3,
      leaderWorkerTemplate: {
        size: 2,
        workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
      },
    },
  });
  for (let g = 0; g < 3; g++) {
    for (let w = 0; w < 2; w++) {
      await api.pod(
        CLUSTER_NS,
        w === 0 ? `decode-${g}` : `decode-${g}-${w}`,
        {
          [`${LWS}/name`]: 'decode',
          [`${LWS}/group-index`]: String(g),
          [`${LWS}/worker-index`]: String(w),
          [`${LWS}/group-key`]: `k-decode-${g}`,
        },
        g < 2,
      );
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function kvpa(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

let prom: PrometheusHarness;
let exporter: EngineExporter;
let dir: string;
let targetsActiveAtMs: number;
/** Unix seconds at which each backtest phase began (after the exporter switched). */
const phaseStarts: number[] = [];
let history: Promise<void>;

const file = (ns: string) => path.join(dir, `${ns}.yaml`);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kvpa-tools-'));
  for (const ns of ['t-rc', 't-frozen', 't-bt', CLUSTER_NS]) await writeFile(file(ns), podAutoscaler(ns));
  await clusterFixture();
  prom = await startPrometheus({ scrapeIntervalSeconds: 1 });
  exporter = await startEngineExporter();
  const pods: { ns: string; pod: string; labels: Record<string, string>; script: PodScript }[] = [
    { ns: 't-rc', pod: 'rc-0', labels: LEADER, script: vllm(0.3, 7) },
    { ns: 't-rc', pod: 'rc-1', labels: LEADER, script: vllm(0.3, 6) },
    { ns: 't-rc', pod: 'rc-2', labels: LEADER, script: vllm(0.3, 5) },
    // A worker pod of group rc-0 exporting engine series: the head selector must leave it out.
    { ns: 't-rc', pod: 'rc-0-1', labels: WORKER, script: vllm(0.99, 50) },
    {
      ns: 't-frozen',
      pod: 'fz-0',
      labels: LEADER,
      script: vllm(0.05, 0, Date.now() - FROZEN_AGE_SECONDS * 1000),
    },
    // The cluster's heads: ready groups 0 and 1 wait 7 + 6; the not-ready group 2's 50 must not count.
    { ns: CLUSTER_NS, pod: 'decode-0', labels: LEADER, script: vllm(0.2, 7) },
    { ns: CLUSTER_NS, pod: 'decode-1', labels: LEADER, script: vllm(0.2, 6) },
    { ns: CLUSTER_NS, pod: 'decode-2', labels: LEADER, script: vllm(0.2, 50) },
    { ns: 't-bt', pod: 'bt-0', labels: LEADER, script: vllm(0.1, PHASES[0].waiting) },
    { ns: 't-bt', pod: 'bt-1', labels: LEADER, script: vllm(0.1, PHASES[0].waiting) },
  ];
  for (const p of pods) exporter.set(p.ns, p.pod, p.script);
  await prom.setTargets(
    pods.map((p) => ({
      address: exporter.address,
      metricsPath: exporter.pathFor(p.ns, p.pod),
      namespace: p.ns,
      pod: p.pod,
      podLabels: p.labels,
    })),
    20_000,
  );
  targetsActiveAtMs = Date.now();
  // The backtest history plays while the recommend tests run.
  history = (async () => {
    for (const phase of PHASES) {
      for (const pod of ['bt-0', 'bt-1']) exporter.set('t-bt', pod, vllm(0.1, phase.waiting));
      phaseStarts.push(Math.round(Date.now() / 1000));
      await sleep(phase.seconds * 1000);
    }
  })();
}, 45_000);

afterAll(async () => {
  await history?.catch(() => undefined);
  await prom?.stop();
  await exporter?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

/** Waits until the rc pods have 14 s of steady history (windows 6 s + replay 7 s + a scrape). */
async function steadyHistory(): Promise<void> {
  await sleep(Math.max(0, targetsActiveAtMs + 14_000 - Date.now()));
}

describe('kvpa recommend against a real Prometheus', () => {
  it('recommends 4 groups for 18 waiting requests on 3 heads (worker pod left out)', async () => {
    await steadyHistory();
    const r = await kvpa([
      'recommend',
      '--prometheus',
      prom.url,
      '-f',
      file('t-rc'),
      '--head-selector',
      HEAD_SELECTOR,
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // queueDepth: 7 + 6 + 5 = 18 over 3 ready groups = 6 per group; ceil(18 / 5) = 4 groups.
    // kvCacheUtilization: 3 × 0.3 = 0.9, 0.3 per group; ceil(0.9 / 0.7) = 2. The larger want wins: 4.
    // Panic want 4 / 3 ready = 1.33 < 200 %: stable mode; the restart panic of the replay has ended.
    expect(r.out).toContain('t-rc/pa/decode  (LeaderWorkerSet decode)');
    expect(r.out).toContain('groups: current 3, ready 3  (from prometheus; head pods: rc-0, rc-1, rc-2)');
    expect(r.out).toMatch(/queueDepth\s+ok\s+5\s+18\s+18\s+6\s+6\s+4\/4/);
    expect(r.out).toMatch(/kvCacheUtilization\s+ok\s+0\.7\s+0\.9\s+0\.9\s+0\.3\s+0\.3\s+2\/2/);
    expect(r.out).toContain('recommended: 4 groups (scale up 3 → 4, stable mode)');
  }, 40_000);

  it('--output json, and a scale-down from --groups 10/10 is limited by maxScaleDownRate', async () => {
    await steadyHistory();
    const r = await kvpa([
      'recommend',
      '--prometheus',
      prom.url,
      '-f',
      file('t-rc'),
      '--head-selector',
      HEAD_SELECTOR,
      '--groups',
      'decode=10/10',
      '--output',
      'json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { pools: PoolRecommendation[]; failures: unknown[] };
    expect(doc.failures).toEqual([]);
    const p = doc.pools[0];
    expect(p?.groupsFrom).toBe('--groups');
    expect(p?.headPods).toEqual(['rc-0', 'rc-1', 'rc-2']);
    const queue = p?.signals.find((s) => s.name === 'queueDepth');
    // The same 18 waiting requests, now over 10 ready groups: 1.8 per group; still want 4 ...
    expect(queue).toMatchObject({ state: 'ok', stableTotal: 18, stablePerGroup: 1.8, stableWant: 4 });
    // ... but one decision may at most halve: floor(10 / 2) = 5.
    expect(p).toMatchObject({ currentGroups: 10, readyGroups: 10, recommendedGroups: 5, change: 'down' });
    expect(p?.limitedBy.join(' ')).toContain('maxScaleDownRate 2');
  }, 40_000);

  it('holds on an empty signal: no head pod matches, so nothing is read, and 4 groups stay 4', async () => {
    const r = await kvpa([
      'recommend',
      '--prometheus',
      prom.url,
      '-f',
      file('t-rc'),
      '--head-selector',
      'pod="no-such-pod"',
      '--groups',
      'decode=4/4',
      '--output',
      'json',
    ]);
    expect(r.code).toBe(0);
    const p = (JSON.parse(r.out) as { pools: PoolRecommendation[] }).pools[0];
    expect(p?.signals.map((s) => s.state)).toEqual(['noData', 'noData']);
    expect(p).toMatchObject({ recommendedGroups: 4, change: 'hold', valid: false });
    expect(p?.holdReason).toContain('no usable signal');
    // Without --groups there is nothing to hold: a clear failure naming the selector, not a guess.
    const bare = await kvpa([
      'recommend',
      '--prometheus',
      prom.url,
      '-f',
      file('t-rc'),
      '--head-selector',
      'pod="no-such-pod"',
    ]);
    expect(bare.code).toBe(1);
    expect(bare.err).toContain('no head pods in Prometheus');
    expect(bare.err).toContain('--groups decode=SPEC/READY');
  }, 40_000);

  it('holds on a stale signal: a head frozen 100 s in the past would want 1 group, 4 stay 4', async () => {
    const r = await kvpa([
      'recommend',
      '--prometheus',
      prom.url,
      '-f',
      file('t-frozen'),
      '--groups',
      'decode=4/4',
      '--output',
      'json',
    ]);
    expect(r.code).toBe(0);
    const p = (JSON.parse(r.out) as { pools: PoolRecommendation[] }).pools[0];
    expect(p?.headPods).toEqual(['fz-0']);
    // Read as values, 0 waiting and KV 0.05 would want 1 group, and floor(4 / 2) = 2 after the rate limit.
    expect(p?.signals.map((s) => s.state)).toEqual(['stale', 'stale']);
    expect(p?.signals[0]?.detail).toMatch(/fz-0 1\d\ds old/);
    expect(p).toMatchObject({ currentGroups: 4, recommendedGroups: 4, change: 'hold' });
    expect(p?.recommendedGroups).toBeGreaterThanOrEqual(p?.currentGroups ?? Number.POSITIVE_INFINITY);
  }, 40_000);
});

describe('kvpa recommend with a cluster (real API server) and a real Prometheus', () => {
  it('reads spec and ready groups and the head pods from the LWS; a not-ready group does not count', async () => {
    await steadyHistory();
    const r = await kvpa([
      'recommend',
      '--prometheus',
      prom.url,
      '-f',
      file(CLUSTER_NS),
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--output',
      'json',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const p = (JSON.parse(r.out) as { pools: PoolRecommendation[] }).pools[0];
    expect(p).toMatchObject({ groupsFrom: 'cluster', currentGroups: 3, readyGroups: 2 });
    expect(p?.headPods).toEqual(['decode-0', 'decode-1', 'decode-2']);
    // Ready groups only: 7 + 6 = 13 waiting, 6.5 per ready group, ceil(13 / 5) = 3 groups. Counting the
    // not-ready head's 50 would have wanted ceil(63 / 5) = 13. 3 = the spec count: hold.
    const queue = p?.signals.find((s) => s.name === 'queueDepth');
    expect(queue).toMatchObject({ state: 'ok', stableTotal: 13, stablePerGroup: 6.5, stableWant: 3 });
    expect(p).toMatchObject({ recommendedGroups: 3, change: 'hold', valid: true });
    // Read-only: the LWS still asks for 3 groups.
    const lws = await api.ok(
      'GET',
      `${customPath('leaderworkerset.x-k8s.io', 'v1', CLUSTER_NS, 'leaderworkersets')}/decode`,
    );
    expect((lws.spec as { replicas: number }).replicas).toBe(3);
  }, 40_000);
});

describe('kvpa backtest against a real Prometheus', () => {
  it('replays a burst: events, peaks, group-hours, panic time, JSON and a well-formed SVG', async () => {
    await history;
    const [a0 = 0, b0 = 0, c0 = 0] = phaseStarts;
    // From 2 s into phase A (the windows get the 6 s before it too), to the end of phase C.
    const from = a0 + 2;
    const to = c0 + PHASES[2].seconds - 1;
    const out = path.join(dir, 'bt-out');
    const r = await kvpa([
      'backtest',
      '--prometheus',
      prom.url,
      '-f',
      file('t-bt'),
      '--from',
      String(from),
      '--to',
      new Date(to * 1000).toISOString(),
      '--actual-groups-query',
      'count(vllm:num_requests_waiting{namespace="t-bt"})',
      '--out',
      out,
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(await readFile(path.join(out, 'backtest.json'), 'utf8')) as {
      pools: PoolBacktest[];
    };
    const pool = doc.pools[0];
    if (pool === undefined) throw new Error('no pool in backtest.json');
    const s = pool.summary;
    expect(s.decisions).toBe(to - from + 1);
    // Actual: 2 pods counted at every step, so exactly 2 groups × (to − from) s.
    expect(s.peakActualGroups).toBe(2);
    expect(s.actualGroupHours).toBeCloseTo((2 * (to - from)) / 3600, 9);
    expect(s.missingDataDecisions).toBe(0);
    // Phase B: 2 × 10 = 20 waiting → ceil(20 / 5) = 4 groups, and 4 / 2 ready = 200 %: panic.
    expect(s.peakRecommendedGroups).toBe(4);
    // Events: the restart panic (2 groups, a fresh decider) ends one stable window after --from and
    // phase A's 2 waiting want 1 → first event 2 → 1. Then up to 4 during the burst. Then panic holds
    // 4 until 6 s after the last tick over the threshold (≈ C0) and the stable window is all quiet:
    // 4 → 1 in one step (rate limit floor(2 / 2) = 1).
    const events = s.scaleEvents;
    expect(events[0]).toMatchObject({ from: 2, to: 1 });
    expect(events[0]?.atSeconds).toBeLessThan(b0);
    const last = events[events.length - 1];
    expect(last).toMatchObject({ from: 4, to: 1 });
    expect(last?.atSeconds).toBeGreaterThanOrEqual(c0 + 6);
    expect(last?.atSeconds).toBeLessThanOrEqual(c0 + 10);
    const ups = events.slice(1, -1);
    expect(ups.length).toBeGreaterThanOrEqual(1);
    for (const e of ups) {
      expect(e.to).toBeGreaterThan(e.from);
      expect(e.atSeconds).toBeGreaterThanOrEqual(b0);
      expect(e.atSeconds).toBeLessThanOrEqual(b0 + 6);
    }
    expect(s.scaleDowns).toBe(2);
    // Group-seconds by hand (a = B0 − from): 2 × 7 (restart panic) + 1 × (a − 7) (quiet) + ≈ 5 (ramp
    // 2, 3 over ≈ 2 s) + 4 × ≈ 16 (B0 + 3 → C0 + 7, panic) + 1 × (to − C0 − 7) (quiet again).
    const a = b0 - from;
    const byHand = 14 + (a - 7) + 5 + 64 + (to - c0 - 7);
    expect(s.recommendedGroupHours * 3600).toBeGreaterThan(byHand - 10);
    expect(s.recommendedGroupHours * 3600).toBeLessThan(byHand + 10);
    // Panic: the restart panic ≈ 7 s, and the burst ≈ 16 s.
    expect(s.panicSeconds).toBeGreaterThan(23 - 5);
    expect(s.panicSeconds).toBeLessThan(23 + 5);
    // The printed summary says the same.
    expect(r.out).toContain(`scale events: ${events.length} (${s.scaleUps} up, 2 down)`);
    expect(r.out).toContain('peak groups: recommended 4, actual 2');

    const svg = await readFile(path.join(out, 'timeline.svg'), 'utf8');
    const root = parseXml(svg);
    expect(root.name).toBe('svg');
    const paths = findAll(root, (e) => e.name === 'path' && (e.attrs.class ?? '').includes('series'));
    const kinds = paths.map((p) => (p.attrs.class ?? '').replace('series series-', ''));
    expect(kinds.sort()).toEqual(['actual', 'desired', 'signal', 'signal']);
    for (const p of paths) expect(p.attrs.d ?? '').toMatch(/^M[\d.]+ [\d.]+ /);
  }, 90_000);
});

interface XmlElement {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: XmlElement[];
}

/**
 * A strict little XML reader for the test: throws on unbalanced tags, unquoted or duplicate
 * attributes, stray `<` or `&` in text. Enough to prove the SVG is well-formed.
 */
function parseXml(text: string): XmlElement {
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, '');
  const token =
    /<!--[\s\S]*?-->|<\/([A-Za-z][\w:-]*)\s*>|<([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/gy;
  const stack: XmlElement[] = [{ name: '#document', attrs: {}, children: [] }];
  let m: RegExpExecArray | null;
  let at = 0;
  for (;;) {
    token.lastIndex = at;
    m = token.exec(body);
    if (m === null) break;
    at = token.lastIndex;
    const [, close, open, attrText, selfClose, textNode] = m;
    if (close !== undefined) {
      const top = stack.pop();
      if (top?.name !== close) throw new Error(`</${close}> closes <${top?.name}>`);
    } else if (open !== undefined) {
      const attrs: Record<string, string> = {};
      for (const [, k = '', v = ''] of (attrText ?? '').matchAll(/([\w:-]+)="([^"]*)"/g)) {
        if (k in attrs) throw new Error(`duplicate attribute ${k} on <${open}>`);
        if (/&(?!amp;|lt;|gt;|quot;|apos;|#\d+;)/.test(v)) throw new Error(`bad entity in ${k}`);
        attrs[k] = v;
      }
      const el: XmlElement = { name: open, attrs, children: [] };
      stack[stack.length - 1]?.children.push(el);
      if (selfClose !== '/') stack.push(el);
    } else if (textNode !== undefined && /&(?!amp;|lt;|gt;|quot;|apos;|#\d+;)/.test(textNode)) {
      throw new Error('bad entity in text');
    }
  }
  if (at !== body.length) throw new Error(`not well-formed at offset ${at}: ${body.slice(at, at + 40)}`);
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]?.name}>`);
  const roots = stack[0]?.children ?? [];
  if (roots.length !== 1 || roots[0] === undefined) throw new Error('expected exactly one root element');
  return roots[0];
}

function findAll(e: XmlElement, pred: (e: XmlElement) => boolean): XmlElement[] {
  return [...(pred(e) ? [e] : []), ...e.children.flatMap((c) => findAll(c, pred))];
}
