/**
 * Adapts the Prometheus source to the controller's per-tick signal interface (`SignalSource.sample`
 * in src/control/signals.ts on main): one call per tick for every pool, one PoolSample per metric.
 *
 * The request types are declared structurally here so this module does not depend on the control
 * layer; they match `PoolSignalRequest` / `PoolSample` field for field.
 */
import type { EngineSetting, MetricSpec } from '../api/podautoscaler.ts';
import { signalName } from '../api/podautoscaler.ts';
import { histogramQuantile } from '../decide/histogram.ts';
import type { LatencyObservation, SignalState } from '../decide/types.ts';
import {
  type HistogramKind,
  type PoolRegistration,
  type PoolSamples,
  type SignalKind,
  signalKindOf,
} from './prometheus-join.ts';
import { promqlMetricOf } from './prometheus-promql.ts';
import {
  DEFAULT_STALE_AFTER_SECONDS,
  type PoolTick,
  type PrometheusSignalSource,
  type TickResult,
} from './prometheus-source.ts';
import type { GateResult } from './quality.ts';

export interface ControlHeadPod {
  readonly name: string;
  readonly groupKey: string;
  /** The whole group (leader and every worker) is Ready. */
  readonly groupReady: boolean;
  /** A group beyond spec (rollout surge, scale-down leftover): its metrics must not count. */
  readonly surge: boolean;
  /** The group's other pods, where the kind lists them (read with ranksOn: all). */
  readonly members?: readonly { readonly name: string }[];
}

export interface ControlPoolRequest {
  readonly poolKey: string;
  readonly namespace: string;
  readonly pool: {
    readonly engine: EngineSetting;
    /** `all`: every pod of a group serves and is read; default `head`. */
    readonly ranksOn?: 'head' | 'all';
    /** DP ranks one group must report; null or absent when not checked. */
    readonly expectedRanks?: number | null;
    readonly metrics: readonly MetricSpec[];
    readonly missingData: { readonly staleAfterSeconds: number; readonly minQuorumPercentage: number };
    /** The latency SLO: a set field makes the source read that latency for the guard. */
    readonly slo?: { readonly ttftSeconds?: number; readonly tpotSeconds?: number };
    /** The panic window (stable × percentage / 100) is the span the direct scrape reads latency over. */
    readonly stableWindowSeconds?: number;
    readonly panicWindowPercentage?: number;
  };
  readonly heads: readonly ControlHeadPod[];
}

export interface ControlPoolSample {
  readonly name: string;
  readonly state: SignalState;
  /** Σ over ready groups; present iff state is ok. */
  readonly total?: number;
  /** Ready groups without a usable value, counted at the reporting mean in `total`. */
  readonly silentGroups?: number;
  readonly detail?: string;
  /** Work signals: Σ over ready groups of the tokens waiting; absent while unknown (never 0 for unknown). */
  readonly backlog?: number;
  /** Work signals: the flow of each ready group whose queue was non-empty (one group's capacity). */
  readonly capacitySamples?: readonly number[];
  /** The pool's latency quantiles for the SLO guard, the same on every sample of the pool. */
  readonly latency?: LatencyObservation;
}

/** The flow kind of a work metric and the kind of its mean tokens per request. */
const WORK_KINDS: Readonly<Record<'promptTokens' | 'generationTokens', SignalKind>> = {
  promptTokens: 'promptTokensPerRequest',
  generationTokens: 'generationTokensPerRequest',
};

/** Every kind the pool's metrics and SLO need: a work metric also needs the queue and its mean per request. */
export function kindsOf(request: ControlPoolRequest): SignalKind[] {
  const kinds: SignalKind[] = [];
  for (const m of request.pool.metrics) {
    const kind = signalKindOf(m);
    if (kind === null) continue;
    kinds.push(kind);
    if (kind === 'promptTokens' || kind === 'generationTokens') kinds.push('queueDepth', WORK_KINDS[kind]);
  }
  if (request.pool.slo?.ttftSeconds !== undefined) kinds.push('ttftHistogram');
  if (request.pool.slo?.tpotSeconds !== undefined) kinds.push('itlHistogram');
  return [...new Set(kinds)];
}

/** The registration the batched source needs; surge heads are left out (readyGroups excludes them). */
export function registrationOf(request: ControlPoolRequest): PoolRegistration {
  const signals = kindsOf(request);
  return {
    poolKey: request.poolKey,
    namespace: request.namespace,
    heads: request.heads
      .filter((h) => !h.surge)
      .flatMap((h) => [
        { pod: h.name, groupKey: h.groupKey, ready: h.groupReady },
        // With ranksOn: all a group's other pods are read too, joined to the same group.
        ...(request.pool.ranksOn === 'all'
          ? (h.members ?? []).map((m) => ({
              pod: m.name,
              groupKey: h.groupKey,
              ready: h.groupReady,
              member: true,
            }))
          : []),
      ]),
    engine: request.pool.engine,
    ...(request.pool.expectedRanks != null ? { expectedRanks: request.pool.expectedRanks } : {}),
    signals: [...new Set(signals)],
    staleAfterSeconds: request.pool.missingData.staleAfterSeconds,
    minQuorumPercentage: request.pool.missingData.minQuorumPercentage,
  };
}

/** A gated signal as the controller's sample: a total iff ok, silent groups when some were estimated. */
export function gateSample(name: string, gate: GateResult): ControlPoolSample {
  if (gate.state !== 'ok' || gate.poolTotal === undefined)
    return { name, state: gate.state, detail: gate.detail };
  const silentGroups = gate.estimatedGroups ?? 0;
  return {
    name,
    state: 'ok',
    total: gate.poolTotal,
    ...(silentGroups > 0 ? { silentGroups } : {}),
    detail: gate.detail,
  };
}

/**
 * One PoolSample per metric of the pool, in the pool's metric order: batched kinds from the tick,
 * promql metrics from their own query's verdict (`promql`, keyed by signal name).
 */
export function poolSamples(
  request: ControlPoolRequest,
  tick: TickResult,
  promql: ReadonlyMap<string, GateResult> = new Map(),
): ControlPoolSample[] {
  const poolTick = tick.pools.get(request.poolKey);
  const signals = poolTick?.signals;
  const latency = poolTick === undefined ? undefined : poolLatency(request, poolTick, tick.atSeconds);
  const withLatency = (s: ControlPoolSample): ControlPoolSample =>
    latency !== undefined && Object.keys(latency).length > 0 ? { ...s, latency } : s;
  return request.pool.metrics.map((m): ControlPoolSample => {
    const kind = signalKindOf(m);
    if (kind === null) {
      const name = signalName(m);
      const gate = promql.get(name);
      return withLatency(
        gate !== undefined
          ? gateSample(name, gate)
          : { name, state: 'error', detail: `${name}: no result from the Prometheus source` },
      );
    }
    const gate = signals?.get(kind);
    if (!gate)
      return withLatency({
        name: kind,
        state: 'error',
        detail: `${kind}: no result from the Prometheus source`,
      });
    const sample = gateSample(kind, gate);
    if (sample.state !== 'ok') return withLatency(sample);
    if (kind !== 'promptTokens' && kind !== 'generationTokens') return withLatency(sample);
    return withLatency(workSample(sample, gate, signals?.get('queueDepth'), signals?.get(WORK_KINDS[kind])));
  });
}

/**
 * A work signal's backlog and capacity samples from the same tick's queue and mean tokens per request.
 * - Backlog: Σ over ready groups of waiting × the group's mean tokens per request (the pool's mean over
 *   the groups that have one when a group finished no request in the rate window); groups without a queue
 *   value are counted at the reporting mean, as the gate counts silent groups. Unknown (no queue, or a
 *   queue without any mean) leaves it absent, never 0: the runner then adds no growth term.
 * - Capacity samples: the flow of each ready group whose queue is non-empty NOW. Prometheus gives the
 *   queue at one scrape, not over the rate span as the direct scrape does, so a group whose queue just
 *   emptied may give a sample below its capacity; the estimator's median over many samples absorbs that.
 */
function workSample(
  sample: ControlPoolSample,
  flow: GateResult,
  queue: GateResult | undefined,
  perRequest: GateResult | undefined,
): ControlPoolSample {
  const flows = flow.groupValues ?? new Map<string, number>();
  const waiting = queue?.state === 'ok' ? (queue.groupValues ?? new Map<string, number>()) : undefined;
  const capacitySamples: number[] = [];
  if (waiting !== undefined) {
    for (const [group, f] of flows) if ((waiting.get(group) ?? 0) > 0 && f > 0) capacitySamples.push(f);
  }
  const notes: string[] = [];
  let backlog: number | undefined;
  if (waiting === undefined) {
    notes.push(`backlog unknown: queueDepth ${queue?.state ?? 'absent'}`);
  } else {
    const means = new Map<string, number>();
    for (const [g, v] of perRequest?.groupValues ?? []) if (v > 0 && Number.isFinite(v)) means.set(g, v);
    let meanSum = 0;
    for (const v of means.values()) meanSum += v;
    const poolMean = means.size > 0 ? meanSum / means.size : undefined;
    let sum = 0;
    let unknown = false;
    for (const [g, w] of waiting) {
      if (w <= 0) continue;
      const mean = means.get(g) ?? poolMean;
      if (mean === undefined) unknown = true;
      else sum += w * mean;
    }
    const ready = queue?.counts.readyGroups ?? waiting.size;
    if (unknown) notes.push('backlog unknown: requests wait but no group finished one in the rate window');
    else if (waiting.size > 0) backlog = sum * (ready / waiting.size);
  }
  return {
    ...sample,
    ...(backlog !== undefined && Number.isFinite(backlog) ? { backlog } : {}),
    capacitySamples,
    ...(notes.length > 0 ? { detail: `${sample.detail ?? ''}; ${notes.join('; ')}` } : {}),
  };
}

/**
 * The pool's p90 TTFT / ITL for the SLO guard: `histogram_quantile(0.9, sum by (le) (rate(…_bucket[w])))`
 * over the ready groups' head pods, computed here from the per-pod bucket rates of one batched query (the
 * window is the source's rate window: Prometheus scrapes too rarely for a seconds-long panic window).
 * A field is present only when the SLO sets it and some group observed something; stale groups are left out.
 */
export function poolLatency(
  request: ControlPoolRequest,
  tick: PoolTick,
  nowSeconds: number,
): LatencyObservation {
  const slo = request.pool.slo ?? {};
  const staleAfter = request.pool.missingData.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS;
  const ready = new Set(request.heads.filter((h) => h.groupReady && !h.surge).map((h) => h.groupKey));
  const read = (kind: HistogramKind): number | undefined => {
    const h = tick.histograms.get(kind);
    if (h === undefined || 'error' in h) return undefined;
    return quantileOf(h, ready, nowSeconds, staleAfter);
  };
  const ttft = slo.ttftSeconds !== undefined ? read('ttftHistogram') : undefined;
  const tpot = slo.tpotSeconds !== undefined ? read('itlHistogram') : undefined;
  return {
    ...(ttft !== undefined ? { ttftSeconds: ttft } : {}),
    ...(tpot !== undefined ? { tpotSeconds: tpot } : {}),
  };
}

function quantileOf(
  samples: PoolSamples,
  ready: ReadonlySet<string>,
  nowSeconds: number,
  staleAfterSeconds: number,
): number | undefined {
  const byLe = new Map<number, number>();
  for (const [groupKey, g] of samples.groups) {
    if (!ready.has(groupKey)) continue;
    const fresh = g.ranks.every((r) => nowSeconds - r.timestampSeconds <= staleAfterSeconds);
    if (!fresh) continue;
    const parsed: [number, number][] = [];
    let bad = false;
    for (const r of g.ranks) {
      const le = r.rank === '+Inf' ? Number.POSITIVE_INFINITY : Number(r.rank);
      if (r.rank === '' || Number.isNaN(le) || !(r.value >= 0) || !Number.isFinite(r.value)) bad = true;
      else parsed.push([le, r.value]);
    }
    if (bad) continue; // one pod's broken histogram is left out, not summed as zeros
    for (const [le, v] of parsed) byLe.set(le, (byLe.get(le) ?? 0) + v);
  }
  const inf = byLe.get(Number.POSITIVE_INFINITY);
  if (inf === undefined) return undefined;
  const bounds = [...byLe.keys()].filter((le) => Number.isFinite(le)).sort((a, b) => a - b);
  const cumulative = [...bounds.map((le) => byLe.get(le) as number), inf];
  const q = histogramQuantile(0.9, bounds, cumulative);
  return Number.isFinite(q) && q >= 0 ? q : undefined;
}

export class PrometheusPoolSignals {
  constructor(readonly source: PrometheusSignalSource) {}

  /**
   * Never throws: the source turns failures into per-signal states. The batched kinds of all pools go
   * in one tick; each promql metric of each pool is its own instant query, run alongside it.
   */
  async sample(
    requests: readonly ControlPoolRequest[],
    nowSeconds: number,
  ): Promise<Map<string, ControlPoolSample[]>> {
    const [tick, promql] = await Promise.all([
      this.source.tick(requests.map(registrationOf), nowSeconds),
      Promise.all(requests.map((r) => this.promql(r, nowSeconds))),
    ]);
    const out = new Map<string, ControlPoolSample[]>();
    requests.forEach((r, i) => {
      out.set(r.poolKey, poolSamples(r, tick, promql[i]));
    });
    return out;
  }

  /** The verdict of each promql metric of one pool, by signal name. */
  private async promql(request: ControlPoolRequest, nowSeconds: number): Promise<Map<string, GateResult>> {
    const metrics = request.pool.metrics.flatMap((m) => {
      const p = promqlMetricOf(m);
      return p === null ? [] : [p];
    });
    const out = new Map<string, GateResult>();
    if (metrics.length === 0) return out;
    const registration = registrationOf(request);
    const gates = await Promise.all(metrics.map((m) => this.source.promql(registration, m, nowSeconds)));
    metrics.forEach((m, i) => {
      const gate = gates[i];
      if (gate !== undefined) out.set(m.name, gate);
    });
    return out;
  }

  /** Requests in flight on the given heads' groups (a drain's victims), per group key. */
  inFlight(
    request: ControlPoolRequest,
    heads: ControlPoolRequest['heads'],
    nowSeconds: number,
  ): Promise<Map<string, { requests: number; atSeconds: number }>> {
    return this.source.inFlight({ ...registrationOf({ ...request, heads }), signals: [] }, nowSeconds);
  }
}
