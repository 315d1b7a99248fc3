/**
 * The direct-scrape signal source (metricsSource.pods): every second, scrape each ready group's head
 * pod with bounded concurrency and a per-pod timeout, extract the engine signals, and turn per-group
 * values into pool totals through a quorum gate. Prometheus scrape intervals of 15–30 s make a 6 s
 * panic window meaningless; this is how kvpa reacts within a second, as Knative's scraper does.
 */
import { type MetricSpec, signalName } from '../api/podautoscaler.ts';
import type { HistogramSnapshot } from '../decide/histogram.ts';
import { HistogramWindow } from '../decide/histogram-window.ts';
import type { LatencyObservation } from '../decide/types.ts';
import { type GroupWorkSample, WorkReader } from '../decide/work.ts';
import {
  type EngineSignals,
  type EngineWork,
  extractEngineWork,
  missingSignals,
  type SignalValue,
} from './engine-metrics.ts';
import { mergeGroup, type PodReading } from './group-ranks.ts';
import { metricsUrl, type PodScrapeResult, podSignals, scrapePods, tenantReason } from './pod-scraper.ts';
import type { ControlPoolRequest, ControlPoolSample } from './prometheus-control.ts';

export interface PodsEndpoint {
  readonly port: number;
  readonly path?: string;
  readonly scheme?: 'http' | 'https';
  readonly timeoutSeconds?: number;
}

export interface PodsSourceOptions {
  readonly maxConcurrency?: number;
  readonly clock?: () => number;
  readonly fetch?: typeof fetch;
  /**
   * The full detail of a failed scrape (`namespace/pod`, URL, kind and reason), for the controller log:
   * the tenant sees "unreachable". Called when a pod starts failing or fails differently, not every tick.
   */
  readonly onFailure?: (pod: string, url: string, detail: string) => void;
}

/** The head pod fields the scrape needs, beyond the Prometheus adapter's. */
export interface ScrapeHead {
  readonly name: string;
  readonly groupKey: string;
  readonly groupReady: boolean;
  readonly surge: boolean;
  readonly podIP?: string;
  /** The group's other pods, scraped too with ranksOn: all. */
  readonly members?: readonly { readonly name: string; readonly podIP?: string }[];
}

export interface PodsPoolRequest extends Omit<ControlPoolRequest, 'heads'> {
  readonly heads: readonly ScrapeHead[];
  readonly endpoint: PodsEndpoint;
}

function signalValueOf(signals: EngineSignals, metric: MetricSpec): SignalValue | null {
  switch (metric.type) {
    case 'kvCacheUtilization':
      return signals.kvCacheUsageFraction;
    case 'queueDepth':
      return signals.requestsWaiting;
    case 'runningRequests':
      return signals.requestsRunning;
    default:
      return null;
  }
}

/**
 * Pool total for one metric from the per-group values. Rules (the same as the Prometheus gate):
 * no reporting group → noData; any out-of-range value → outOfRange (never clipped, never zero);
 * fewer than minQuorumPercentage of ready groups reporting → noQuorum; otherwise Σ over reporting
 * groups, with non-reporting ready groups counted at the mean of the reporting ones and named in
 * `silentGroups`: the pool may grow on that total but never shrinks while a group is silent.
 */
export function poolTotal(
  metric: MetricSpec,
  perGroup: ReadonlyMap<string, { value: SignalValue | null; error?: string }>,
  minQuorumPercentage: number,
): ControlPoolSample {
  const name = signalName(metric);
  if (metric.type === 'promql') {
    return {
      name,
      state: 'error',
      detail: 'promql metrics need metricsSource.prometheus; the pods source cannot run PromQL',
    };
  }
  const ready = perGroup.size;
  if (ready === 0) return { name, state: 'noData', detail: 'no ready group to scrape' };
  let sum = 0;
  let reporting = 0;
  const silent: string[] = [];
  for (const [group, r] of perGroup) {
    const v = r.value;
    if (v === null || v.state === 'missing') {
      silent.push(`${group}: ${r.error ?? (v !== null && v.state === 'missing' ? v.reason : 'no value')}`);
      continue;
    }
    if (v.state === 'outOfRange') return { name, state: 'outOfRange', detail: `${group}: ${v.reason}` };
    sum += v.value;
    reporting++;
  }
  if (reporting === 0)
    return { name, state: 'noData', detail: `no ready group reported (${silent.slice(0, 3).join('; ')})` };
  if ((reporting / ready) * 100 < minQuorumPercentage) {
    return {
      name,
      state: 'noQuorum',
      detail: `${reporting} of ${ready} ready groups reported, below ${minQuorumPercentage}%`,
    };
  }
  const estimated = ready - reporting;
  const total = sum + (estimated * sum) / reporting;
  return {
    name,
    state: 'ok',
    total,
    ...(estimated > 0
      ? {
          silentGroups: estimated,
          detail: `${estimated} silent group(s) counted at the mean, no scale-down: ${silent.slice(0, 3).join('; ')}`,
        }
      : {}),
  };
}

/** The span of a work signal's per-group rates (as the lab's, src/sim/policies/kvpa.ts). */
export const WORK_RATE_SPAN_SECONDS = 10;
/** A pool's readers are dropped after this long without a sample (the pool was removed). */
const FORGET_AFTER_MS = 10 * 60 * 1000;

/** One ready group's scrape, as the work signals read it. */
export interface WorkGroup {
  readonly groupKey: string;
  /** Head pod name and IP: a restarted pod (new IP) starts a new rate. */
  readonly id: string;
  readonly signals: EngineSignals;
  readonly work: EngineWork | undefined;
  readonly error?: string;
}

interface WorkState {
  readonly reader: WorkReader;
  /** Ids read at the previous tick: only those have a rate; a new one is silent for one tick. */
  previous: Set<string>;
}

/**
 * A work signal's pool sample from this tick's scrapes, through the pool's WorkReader (rates from successive
 * scrapes, counter resets counted from zero). Quorum and silent groups as poolTotal: a group without a usable
 * counter or queue, or seen for the first time (no rate yet), is counted at the mean of the rated groups and
 * holds scale-down. The backlog is absent while the mean tokens per request is unknown and requests wait.
 */
export function workTotal(
  metric: MetricSpec,
  groups: readonly WorkGroup[],
  state: WorkState,
  nowSeconds: number,
  minQuorumPercentage: number,
): ControlPoolSample {
  const name = signalName(metric);
  const prompt = metric.type === 'promptTokens';
  if (groups.length === 0) return { name, state: 'noData', detail: 'no ready group to scrape' };
  const samples: GroupWorkSample[] = [];
  const silent: string[] = [];
  let rated = 0;
  let requestsKnown = true;
  const picked: { g: WorkGroup; tokens: number; requests: number | undefined; waiting: number }[] = [];
  for (const g of groups) {
    const tokens =
      g.work === undefined ? null : prompt ? g.work.promptTokensTotal : g.work.generationTokensTotal;
    const requests =
      g.work === undefined ? null : prompt ? g.work.promptRequestsTotal : g.work.generationRequestsTotal;
    const waiting = g.signals.requestsWaiting;
    for (const v of [tokens, waiting]) {
      if (v !== null && v.state === 'outOfRange')
        return { name, state: 'outOfRange', detail: `${g.groupKey}: ${v.reason}` };
    }
    if (tokens === null || tokens.state !== 'ok' || waiting.state !== 'ok') {
      const why =
        g.error ??
        (tokens !== null && tokens.state !== 'ok'
          ? tokens.reason
          : waiting.state !== 'ok'
            ? waiting.reason
            : 'no value');
      silent.push(`${g.groupKey}: ${why}`);
      continue;
    }
    const r = requests !== null && requests.state === 'ok' ? requests.value : undefined;
    if (r === undefined) requestsKnown = false;
    picked.push({ g, tokens: tokens.value, requests: r, waiting: waiting.value });
  }
  const seen = new Set<string>();
  for (const p of picked) {
    seen.add(p.g.id);
    samples.push({
      id: p.g.id,
      tokensTotal: p.tokens,
      // Without every group's request counter the pooled mean would be biased: no mean, so no backlog.
      requestsTotal: requestsKnown ? (p.requests ?? 0) : 0,
      waitingRequests: p.waiting,
      ...(!prompt && p.g.work?.itl !== undefined
        ? {
            latencySumSeconds: p.g.work.itl.sum,
            latencyCount: p.g.work.itl.cumulative[p.g.work.itl.upperBounds.length] ?? 0,
          }
        : {}),
    });
    if (state.previous.has(p.g.id)) rated++;
    else silent.push(`${p.g.groupKey}: first scrape of this pod, no rate yet`);
  }
  const work = state.reader.read(nowSeconds, samples);
  state.previous = seen;
  const ready = groups.length;
  if (rated === 0 || work.flowPerSecond === undefined)
    return {
      name,
      state: 'noData',
      detail: `no ready group has two scrapes of its counters yet (${silent.slice(0, 3).join('; ')})`,
    };
  if ((rated / ready) * 100 < minQuorumPercentage) {
    return {
      name,
      state: 'noQuorum',
      detail: `${rated} of ${ready} ready groups have a rate, below ${minQuorumPercentage}%`,
    };
  }
  const scale = ready / rated;
  const total = work.flowPerSecond * scale;
  const backlog = work.backlogTokens !== undefined ? work.backlogTokens * scale : undefined;
  if (!Number.isFinite(total) || (backlog !== undefined && !Number.isFinite(backlog)))
    return { name, state: 'outOfRange', detail: `flow ${total} or backlog ${backlog} is not finite` };
  const estimated = ready - rated;
  const notes: string[] = [];
  if (estimated > 0)
    notes.push(
      `${estimated} silent group(s) counted at the mean, no scale-down: ${silent.slice(0, 3).join('; ')}`,
    );
  if (backlog === undefined)
    notes.push('backlog unknown: requests wait but the mean tokens per request is not');
  return {
    name,
    state: 'ok',
    total,
    ...(backlog !== undefined ? { backlog } : {}),
    capacitySamples: work.capacitySamples,
    ...(estimated > 0 ? { silentGroups: estimated } : {}),
    ...(notes.length > 0 ? { detail: notes.join('; ') } : {}),
  };
}

interface LatencyState {
  readonly ttft: HistogramWindow;
  readonly itl: HistogramWindow;
}

export class PodsSignalSource {
  private readonly work = new Map<string, WorkState & { usedAtMs: number }>();
  private readonly latency = new Map<string, LatencyState & { usedAtMs: number }>();
  /** The failure last reported for each failing pod and URL (its kind and reason with numbers masked). */
  private readonly failing = new Map<string, { key: string; usedAtMs: number }>();

  constructor(private readonly options: PodsSourceOptions = {}) {}

  private forget(nowMs: number): void {
    for (const m of [this.work, this.latency, this.failing] as Map<string, { usedAtMs: number }>[])
      for (const [k, v] of m) if (nowMs - v.usedAtMs > FORGET_AFTER_MS) m.delete(k);
  }

  /** Reports each pod's failure once per change of kind or reason; a success re-arms it. */
  private reportFailures(results: readonly PodScrapeResult[], nowMs: number): void {
    const onFailure = this.options.onFailure;
    if (onFailure === undefined) return;
    for (const result of results) {
      const { pod, url } = result.target;
      const at = `${pod} ${url}`;
      if (result.ok) {
        this.failing.delete(at);
        continue;
      }
      const detail = `${result.error.kind}: ${result.error.reason}`;
      const key = detail.replace(/\d+(\.\d+)?/g, '#');
      const last = this.failing.get(at);
      this.failing.set(at, { key, usedAtMs: nowMs });
      if (last?.key !== key) onFailure(pod, url, detail);
    }
  }

  private workState(key: string, metric: MetricSpec, r: PodsPoolRequest, nowMs: number): WorkState {
    let s = this.work.get(key);
    if (s === undefined) {
      const slo = metric.type === 'generationTokens' ? r.pool.slo?.tpotSeconds : undefined;
      s = { reader: new WorkReader(WORK_RATE_SPAN_SECONDS, slo), previous: new Set(), usedAtMs: nowMs };
      this.work.set(key, s);
    }
    s.usedAtMs = nowMs;
    return s;
  }

  /** p90 TTFT / ITL over the panic window from successive histogram scrapes; only SLO fields set. */
  private poolLatency(r: PodsPoolRequest, groups: readonly WorkGroup[], nowMs: number): LatencyObservation {
    const slo = r.pool.slo ?? {};
    if (slo.ttftSeconds === undefined && slo.tpotSeconds === undefined) return {};
    const panicSeconds = ((r.pool.stableWindowSeconds ?? 60) * (r.pool.panicWindowPercentage ?? 10)) / 100;
    let s = this.latency.get(r.poolKey);
    if (s === undefined) {
      s = {
        ttft: new HistogramWindow(panicSeconds),
        itl: new HistogramWindow(panicSeconds),
        usedAtMs: nowMs,
      };
      this.latency.set(r.poolKey, s);
    }
    s.usedAtMs = nowMs;
    const nowSeconds = nowMs / 1000;
    const of = (pick: (w: EngineWork) => HistogramSnapshot | undefined) =>
      new Map(
        groups.flatMap((g) => {
          const h = g.work && pick(g.work);
          return h ? [[g.id, h] as const] : [];
        }),
      );
    s.ttft.record(
      nowSeconds,
      of((w) => w.ttft),
    );
    s.itl.record(
      nowSeconds,
      of((w) => w.itl),
    );
    const ttft = slo.ttftSeconds !== undefined ? s.ttft.quantile(0.9) : undefined;
    const tpot = slo.tpotSeconds !== undefined ? s.itl.quantile(0.9) : undefined;
    return {
      ...(ttft !== undefined ? { ttftSeconds: ttft } : {}),
      ...(tpot !== undefined ? { tpotSeconds: tpot } : {}),
    };
  }

  /**
   * Never throws: unreachable pods become per-group errors, which the gate turns into states. Each
   * pool is scraped on its own with its own timeout, so one pool's slow pods never delay another's.
   */
  async sample(requests: readonly PodsPoolRequest[]): Promise<Map<string, ControlPoolSample[]>> {
    const parts = await Promise.all(requests.map((r) => this.samplePool(r)));
    return new Map(parts);
  }

  /**
   * Requests running plus waiting on each head's engine, read now (a drain's victims, routed or not).
   * A head that has no IP, does not answer or lacks either series is absent (unknown, never 0).
   */
  async inFlight(
    engine: PodsPoolRequest['pool']['engine'],
    namespace: string,
    heads: readonly ScrapeHead[],
    endpoint: PodsEndpoint,
    ranksOn: 'head' | 'all' = 'head',
  ): Promise<Map<string, { requests: number; atSeconds: number }>> {
    // With ranksOn: all every pod of a victim holds requests: each counts, and a silent one leaves the group unknown.
    const pods = heads.flatMap((h) =>
      (ranksOn === 'all' ? [h, ...(h.members ?? [])] : [h]).map((p) => ({
        groupKey: h.groupKey,
        name: p.name,
        podIP: p.podIP,
      })),
    );
    const withIp = pods.filter((h): h is (typeof pods)[number] & { podIP: string } => h.podIP !== undefined);
    const results = await scrapePods(
      withIp.map((h) => ({
        pod: `${namespace}/${h.name}`,
        url: metricsUrl(h.podIP, endpoint.port, endpoint.path, endpoint.scheme),
      })),
      {
        maxConcurrency: this.options.maxConcurrency ?? 16,
        timeoutMs: (endpoint.timeoutSeconds ?? 1) * 1000,
        clock: this.options.clock ?? Date.now,
        ...(this.options.fetch !== undefined ? { fetch: this.options.fetch } : {}),
      },
    );
    const perGroup = new Map<string, { requests: number; atSeconds: number; pods: number }>();
    results.forEach((result, i) => {
      const pod = withIp[i];
      if (pod === undefined || !result.ok) return;
      const signals = podSignals(result, { dialect: engine });
      const running = signals.requestsRunning;
      // Every wait, not only capacity waits: a decode pod's deferred KV transfers are requests too.
      const waiting = signals.requestsWaitingAll;
      if (running.state !== 'ok' || waiting.state !== 'ok') return;
      const prior = perGroup.get(pod.groupKey);
      const atSeconds = result.timing.finishedAtMs / 1000;
      perGroup.set(pod.groupKey, {
        requests: (prior?.requests ?? 0) + running.value + waiting.value,
        atSeconds: Math.min(prior?.atSeconds ?? atSeconds, atSeconds),
        pods: (prior?.pods ?? 0) + 1,
      });
    });
    const podsPerGroup = new Map<string, number>();
    for (const p of pods) podsPerGroup.set(p.groupKey, (podsPerGroup.get(p.groupKey) ?? 0) + 1);
    const out = new Map<string, { requests: number; atSeconds: number }>();
    for (const [groupKey, g] of perGroup)
      if (g.pods === podsPerGroup.get(groupKey))
        out.set(groupKey, { requests: g.requests, atSeconds: g.atSeconds });
    return out;
  }

  /** The pods read for one group: the head, and its members with ranksOn: all. */
  private static podsOf(r: PodsPoolRequest, h: ScrapeHead): { name: string; podIP?: string }[] {
    const head = { name: h.name, ...(h.podIP !== undefined ? { podIP: h.podIP } : {}) };
    return r.pool.ranksOn === 'all' ? [head, ...(h.members ?? [])] : [head];
  }

  private async samplePool(r: PodsPoolRequest): Promise<[string, ControlPoolSample[]]> {
    const groups = r.heads.filter((h) => h.groupReady && !h.surge);
    const targets: { pod: string; url: string }[] = [];
    for (const h of groups) {
      for (const p of PodsSignalSource.podsOf(r, h)) {
        if (p.podIP === undefined) continue;
        targets.push({
          pod: `${r.namespace}/${p.name}`,
          url: metricsUrl(p.podIP, r.endpoint.port, r.endpoint.path, r.endpoint.scheme),
        });
      }
    }
    const results = await scrapePods(targets, {
      maxConcurrency: this.options.maxConcurrency ?? 16,
      timeoutMs: (r.endpoint.timeoutSeconds ?? 1) * 1000,
      clock: this.options.clock ?? Date.now,
      ...(this.options.fetch !== undefined ? { fetch: this.options.fetch } : {}),
    });
    const byPod = new Map(results.map((result, i) => [targets[i]?.pod ?? '', result]));
    const nowMs = (this.options.clock ?? Date.now)();
    this.forget(nowMs);
    this.reportFailures(results, nowMs);
    const readingOf = (name: string): PodReading => {
      const result = byPod.get(`${r.namespace}/${name}`);
      if (result === undefined)
        return {
          pod: name,
          signals: missingSignals('pod has no IP yet'),
          work: undefined,
          error: 'pod has no IP yet',
        };
      return {
        pod: name,
        signals: podSignals(result, { dialect: r.pool.engine }),
        work: result.ok ? extractEngineWork(result.parsed, { dialect: r.pool.engine }) : undefined,
        ...(result.ok ? {} : { error: tenantReason(result.error) }),
      };
    };
    const expectedRanks = r.pool.expectedRanks ?? undefined;
    const workGroups: WorkGroup[] = groups.map((h) => {
      const pods = PodsSignalSource.podsOf(r, h);
      const merged = mergeGroup(
        pods.map((p) => readingOf(p.name)),
        expectedRanks,
      );
      return {
        groupKey: h.groupKey,
        // A restarted pod (new IP) starts a new rate.
        id: pods.map((p) => `${p.name}/${p.podIP ?? ''}`).join(','),
        signals: merged.signals,
        work: merged.work,
        ...(merged.error !== undefined ? { error: merged.error } : {}),
      };
    });
    const latency = this.poolLatency(r, workGroups, nowMs);
    const samples = r.pool.metrics.map((metric): ControlPoolSample => {
      if (metric.type === 'promptTokens' || metric.type === 'generationTokens') {
        const state = this.workState(`${r.poolKey}|${signalName(metric)}`, metric, r, nowMs);
        return workTotal(metric, workGroups, state, nowMs / 1000, r.pool.missingData.minQuorumPercentage);
      }
      const perGroup = new Map<string, { value: SignalValue | null; error?: string }>();
      for (const g of workGroups) {
        perGroup.set(g.groupKey, {
          value: signalValueOf(g.signals, metric),
          ...(g.error !== undefined ? { error: g.error } : {}),
        });
      }
      return poolTotal(metric, perGroup, r.pool.missingData.minQuorumPercentage);
    });
    if (Object.keys(latency).length === 0) return [r.poolKey, samples];
    return [r.poolKey, samples.map((x) => ({ ...x, latency }))];
  }
}
