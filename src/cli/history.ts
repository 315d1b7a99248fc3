/**
 * A pool's history in Prometheus, as `kvpa recommend` and `kvpa backtest` read it: their per-pool
 * flags, loading PodAutoscalers (file or cluster), finding head pods in Prometheus, and replaying
 * that history through the pool's PoolRunner. Neither command writes anything anywhere but stdout
 * and --out.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { boundedApiClient, DEFAULT_KUBE_DEADLINE_MS, httpStatusOf } from '../actuate/kube.ts';
import { addPolicy, checkPodAutoscaler, formatError, loadPolicies, readDocuments } from '../api/documents.ts';
import { API_GROUP, API_VERSION, PLURAL, PodAutoscalerSpecSchema } from '../api/podautoscaler.ts';
import type { Policy } from '../api/policy.ts';
import { poolRunnerFor, type ResolvedPool, resolveAll } from '../api/resolve.ts';
import { type PoolSample, signalName } from '../control/signals.ts';
import type { Decision, SignalState } from '../decide/types.ts';
import { BoundedFetchError, type BoundedResponse, boundedFetch } from '../observe/http.ts';
import { registrationOf } from '../observe/prometheus-control.ts';
import {
  type HeadPod,
  kindNames,
  type PoolRegistration,
  type SignalKind,
  signalKindOf,
} from '../observe/prometheus-join.ts';
import {
  type BackfillResult,
  type BackfillSignal,
  DEFAULT_MAX_ANSWER_BYTES,
} from '../observe/prometheus-source.ts';
import { clusterReadError, kubeconfigSource } from './kubeconfig.ts';
import { UsageError } from './shell.ts';

export interface GroupCounts {
  readonly spec: number;
  readonly ready: number;
}

/** The most groups a --groups count may name: far above any real pool, low enough to stay exact. */
export const MAX_GROUPS = 10_000;

/**
 * `--groups decode=4/3,prefill=2` or `--groups 4` (every pool). `spec/ready`; ready defaults to spec.
 * Returns pool name → counts, with `*` for the bare form.
 */
export function parseGroups(text: string, flag = '--groups'): Map<string, GroupCounts> {
  const out = new Map<string, GroupCounts>();
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(?:([a-z0-9]([-a-z0-9]*[a-z0-9])?)=)?(\d+)(?:\/(\d+))?$/.exec(part);
    if (!m) {
      throw new UsageError(
        `${flag}: cannot read ${JSON.stringify(part)}; use POOL=SPEC/READY (decode=4/4), POOL=SPEC, or one count for every pool (4)`,
      );
    }
    const spec = Number(m[3]);
    const ready = m[4] === undefined ? spec : Number(m[4]);
    if (spec > MAX_GROUPS) {
      throw new UsageError(
        `${flag}: ${part}: ${spec} groups is over the cap of ${MAX_GROUPS}; give a real count`,
      );
    }
    if (ready > spec)
      throw new UsageError(`${flag}: ${part}: ready groups (${ready}) exceed spec groups (${spec})`);
    out.set(m[1] ?? '*', { spec, ready });
  }
  return out;
}

/**
 * Repeatable `POOL=VALUE` flags (`--head-selector decode=…`, `--actual-groups-query decode=…`). A value
 * without a known pool name in front applies to every pool. Returns pool name (or `*`) → value.
 */
export function parsePerPool(values: readonly string[], poolNames: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)=(.*)$/s.exec(v);
    if (m && poolNames.includes(m[1] ?? '')) out.set(m[1] ?? '', m[3] ?? '');
    else out.set('*', v);
  }
  return out;
}

/** `--groups` names only pools that exist: a misspelt pool would otherwise be ignored without a word. */
export function checkGroupPools(
  groups: ReadonlyMap<string, GroupCounts>,
  poolNames: readonly string[],
): void {
  for (const name of groups.keys()) {
    if (name === '*' || poolNames.includes(name)) continue;
    throw new UsageError(
      `--groups: no pool is named ${JSON.stringify(name)}; use one of ${poolNames.join(', ')} (or one count for every pool, e.g. --groups 4)`,
    );
  }
}

// A PromQL label matcher (label, operator, quoted string), as in prometheus/prometheus promql/parser.
const LABEL_MATCHER = String.raw`\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\x60[^\x60]*\x60)\s*`;
const MATCHER_LIST = new RegExp(`^${LABEL_MATCHER}(?:,${LABEL_MATCHER})*,?\\s*$`);

/**
 * `--head-selector` values go inside a selector's braces: only label matchers, so none can close the
 * braces and add a query of its own (`a="b"} or vector(1)`).
 */
export function checkMatchers(perPool: ReadonlyMap<string, string>, poolNames: readonly string[]): void {
  for (const [pool, matchers] of perPool) {
    if (matchers.trim() === '' || MATCHER_LIST.test(matchers)) continue;
    const given = pool === '*' ? matchers : `${pool}=${matchers}`;
    throw new UsageError(
      `--head-selector ${JSON.stringify(given)}: not PromQL label matchers; give [POOL=]label="value" pairs (=, !=, =~ or !~, comma-separated), e.g. --head-selector ${poolNames[0] ?? 'decode'}=leaderworkerset_sigs_k8s_io_worker_index="0"`,
    );
  }
}

/** `--actual-groups-query` values: a PromQL expression each, never empty. */
export function checkQueries(perPool: ReadonlyMap<string, string>): void {
  for (const [pool, query] of perPool) {
    if (query.trim() !== '') continue;
    throw new UsageError(
      `--actual-groups-query ${pool === '*' ? '""' : `${pool}=`}: empty; give a PromQL expression, e.g. --actual-groups-query 'kube_leaderworkerset_replicas{name="decode"}'`,
    );
  }
}

export function forPool<T>(map: ReadonlyMap<string, T>, pool: string): T | undefined {
  return map.get(pool) ?? map.get('*');
}

/** One pool of one PodAutoscaler, resolved against the presets. */
export interface ToolPool {
  /** namespace/name/pool, as the controller keys it. */
  readonly key: string;
  readonly namespace: string;
  readonly autoscaler: string;
  readonly pool: ResolvedPool;
}

/** Pools of every PodAutoscaler in a file (ScalingPolicies in the file are usable presets). */
export function poolsFromFile(
  file: string,
  policiesDir: string | undefined,
  defaultNamespace: string,
): { pools: ToolPool[]; errors: string[] } {
  const loaded = loadPolicies(policiesDir);
  const errors = loaded.errors.map(formatError);
  const { documents, errors: readErrors } = readDocuments(file);
  errors.push(...readErrors.map(formatError));
  for (const d of documents) if (d.kind === 'ScalingPolicy') addPolicy(loaded.policies, d, []);
  const pools: ToolPool[] = [];
  for (const d of documents) {
    if (d.kind !== 'PodAutoscaler') continue;
    const problems = checkPodAutoscaler(d, loaded.policies);
    if (problems.length > 0) {
      errors.push(...problems.map(formatError));
      continue;
    }
    const namespace = d.value.metadata.namespace ?? defaultNamespace;
    for (const p of resolveAll(d.value.spec, loaded.policies).pools) {
      pools.push({
        key: `${namespace}/${d.value.metadata.name}/${p.name}`,
        namespace,
        autoscaler: d.value.metadata.name,
        pool: p,
      });
    }
  }
  if (errors.length === 0 && pools.length === 0)
    errors.push(
      `${file}: error: no PodAutoscaler in the file\n    hint: give a file with kind: PodAutoscaler (see examples/)`,
    );
  return { pools, errors };
}

/** What to check when listing PodAutoscalers got HTTP `status`. */
function listFix(status: number | undefined, kc: KubeConfig, namespace: string): string {
  const where = kubeconfigSource(kc);
  if (status === 401) return `check the user's credentials in ${where}`;
  if (status === 403)
    return `check --namespace, and that the user in ${where} may list ${PLURAL}.${API_GROUP} in namespace ${namespace} (RBAC)`;
  if (status === 404)
    return `install kvpa's CRDs on that cluster (kubectl apply -f crds/), or check the context in ${where}`;
  return `check ${where} and --namespace`;
}

/**
 * Pools of every PodAutoscaler in a namespace, read (never written) from the cluster. The list has the
 * controller's deadline and body cap; a failure names the API server, the kubeconfig and the fix.
 */
export async function poolsFromCluster(
  kc: KubeConfig,
  namespace: string,
  policies: ReadonlyMap<string, Policy>,
  deadlineMs = DEFAULT_KUBE_DEADLINE_MS,
): Promise<{ pools: ToolPool[]; errors: string[] }> {
  const api = boundedApiClient(kc, CustomObjectsApi, deadlineMs);
  let list: { items: { metadata?: { name?: string }; spec?: unknown }[] };
  try {
    list = (await api.listNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      namespace,
      plural: PLURAL,
    })) as typeof list;
  } catch (e) {
    throw clusterReadError(e, kc, {
      what: `the PodAutoscalers of --namespace ${namespace}`,
      deadlineMs,
      fix: listFix(httpStatusOf(e), kc, namespace),
    });
  }
  const pools: ToolPool[] = [];
  const errors: string[] = [];
  for (const item of list.items) {
    const name = item.metadata?.name ?? '?';
    const spec = PodAutoscalerSpecSchema.safeParse(item.spec);
    if (!spec.success) {
      errors.push(
        `${namespace}/${name}: invalid spec: ${spec.error.issues.map((i) => i.message).join('; ')}`,
      );
      continue;
    }
    const resolved = resolveAll(spec.data, policies);
    for (const e of resolved.errors) errors.push(`${namespace}/${name}: ${e.path}: ${e.message} (${e.hint})`);
    for (const p of resolved.pools) {
      pools.push({ key: `${namespace}/${name}/${p.name}`, namespace, autoscaler: name, pool: p });
    }
  }
  if (errors.length === 0 && pools.length === 0)
    errors.push(
      `no PodAutoscaler in namespace ${namespace}; check --namespace (kubectl get podautoscalers -n ${namespace})`,
    );
  return { pools, errors };
}

/** The batched source's signal kinds of a pool (promql metrics are not served by it). */
export function kindsOf(pool: ResolvedPool): SignalKind[] {
  return [...new Set(pool.metrics.map(signalKindOf).filter((k): k is SignalKind => k !== null))];
}

/** The registration the Prometheus source needs, built as the controller builds it. */
export function registrationFor(tp: ToolPool, heads: readonly HeadPod[]): PoolRegistration {
  return registrationOf({
    poolKey: tp.key,
    namespace: tp.namespace,
    pool: tp.pool,
    heads: heads.map((h) => ({ name: h.pod, groupKey: h.groupKey, groupReady: h.ready, surge: false })),
  });
}

/** Minimal Prometheus HTTP client for the few queries the source does not send (discovery, actual groups). */
export class PromHttp {
  constructor(
    readonly address: string,
    private readonly timeoutSeconds = 10,
    private readonly maxAnswerBytes = DEFAULT_MAX_ANSWER_BYTES,
  ) {}

  private async post(path: string, params: Record<string, string>): Promise<unknown> {
    let res: BoundedResponse;
    try {
      // One deadline over connect, headers and body, and the controller's cap on an answer's size.
      res = await boundedFetch(`${this.address.replace(/\/$/, '')}/api/v1/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(params).toString(),
        deadlineMs: this.timeoutSeconds * 1000,
        maxBodyBytes: this.maxAnswerBytes,
      });
    } catch (e) {
      const failure = e instanceof BoundedFetchError ? e.failure : undefined;
      if (failure === 'Timeout') {
        throw new Error(
          `Prometheus at ${this.address} did not answer within ${this.timeoutSeconds} s; check --prometheus and that Prometheus is up`,
        );
      }
      if (failure === 'BodyTooLarge') {
        throw new Error(
          `Prometheus at ${this.address} answered ${path} with more than ${this.maxAnswerBytes} bytes; narrow the query (a shorter --from/--until range or fewer pools)`,
        );
      }
      // The system error code (ECONNREFUSED, ENOTFOUND, …) is what to fix; the rest repeats the address.
      const message = (e as Error).message;
      const why = /\b(E[A-Z0-9_]{3,})\b/.exec(message)?.[1] ?? message;
      throw new Error(`Prometheus at ${this.address} is unreachable (${why}); check --prometheus`);
    }
    type Answer = { status?: string; error?: string; data?: unknown } | null;
    const body = ((): Answer => {
      try {
        return JSON.parse(res.text) as Answer;
      } catch {
        return null;
      }
    })();
    if (res.status < 200 || res.status >= 300 || body?.status !== 'success') {
      throw new Error(`Prometheus ${path} (HTTP ${res.status}): ${body?.error ?? 'no JSON body'}`);
    }
    return body.data;
  }

  async instant(
    query: string,
    atSeconds: number,
  ): Promise<{ metric: Record<string, string>; value: number }[]> {
    const data = (await this.post('query', { query, time: String(atSeconds) })) as {
      result: { metric: Record<string, string>; value: [number, string] }[];
    };
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /**
   * Σ over series per step (seconds → value); steps without any series are absent. A step where any
   * series is NaN, infinite or negative is out of range: it is listed in `outOfRange`, never summed.
   */
  async rangeSum(
    query: string,
    fromSeconds: number,
    toSeconds: number,
    stepSeconds: number,
  ): Promise<{ sums: Map<number, number>; outOfRange: Set<number> }> {
    const sums = new Map<number, number>();
    const outOfRange = new Set<number>();
    const chunk = stepSeconds * 10_000;
    for (let start = fromSeconds; start <= toSeconds; start += chunk + stepSeconds) {
      const end = Math.min(toSeconds, start + chunk);
      const data = (await this.post('query_range', {
        query,
        start: String(start),
        end: String(end),
        step: String(stepSeconds),
      })) as { result: { values: [number, string][] }[] };
      for (const series of data.result) {
        for (const [t, v] of series.values) {
          const at = Math.round(t);
          const value = Number(v);
          if (Number.isFinite(value) && value >= 0) sums.set(at, (sums.get(at) ?? 0) + value);
          else outOfRange.add(at);
        }
      }
    }
    for (const at of outOfRange) sums.delete(at);
    return { sums, outOfRange };
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The selector of a pool's engine series in Prometheus: every sample name the pool's signals may use,
 * in its namespace, plus the user's --head-selector matchers (e.g. `leaderworkerset_sigs_k8s_io_worker_index="0"`).
 */
export function headSelector(tp: ToolPool, extraMatchers: string | undefined): string {
  const names = kindsOf(tp.pool).flatMap(kindNames);
  const matchers = [
    `__name__=~"${[...new Set(names)].map(escapeRegex).join('|')}"`,
    `namespace="${tp.namespace.replace(/"/g, '\\"')}"`,
  ];
  if (extraMatchers !== undefined && extraMatchers.trim() !== '') matchers.push(extraMatchers.trim());
  return `{${matchers.join(',')}}`;
}

/**
 * Head pods without a cluster: every distinct pod that has a series matching `headSelector` within
 * `lookbackSeconds` before `atSeconds` is one group, keyed by the pod name, and counted ready.
 */
export async function discoverHeads(
  prom: PromHttp,
  selector: string,
  atSeconds: number,
  lookbackSeconds: number,
): Promise<HeadPod[]> {
  const rows = await blameFlag(
    '--head-selector',
    prom.instant(
      `group by (namespace, pod) (last_over_time(${selector}[${Math.ceil(lookbackSeconds)}s]))`,
      atSeconds,
    ),
  );
  const pods = [...new Set(rows.map((r) => r.metric.pod).filter((p): p is string => p !== undefined))].sort();
  return pods.map((pod) => ({ pod, groupKey: pod, ready: true }));
}

/**
 * A query Prometheus rejects as malformed (HTTP 400, bad_data) was built from a user's PromQL: the
 * error says which flag to fix. Other failures pass through unchanged.
 */
export async function blameFlag<T>(flag: string, query: Promise<T>): Promise<T> {
  try {
    return await query;
  } catch (e) {
    const message = (e as Error).message;
    if (!message.includes('(HTTP 400)')) throw e;
    throw new Error(`${message}; check the PromQL of ${flag}`);
  }
}

/** The state to report for a second the backfill had no usable sample for: its most frequent non-ok state. */
export function missingState(signal: BackfillSignal | undefined): { state: SignalState; detail: string } {
  if (signal === undefined) return { state: 'error', detail: 'not queried' };
  if (signal.error !== undefined)
    return { state: 'error', detail: `Prometheus query failed: ${signal.error}` };
  let worst: SignalState = 'noData';
  let n = 0;
  for (const [state, count] of Object.entries(signal.states) as [SignalState, number][]) {
    if (state !== 'ok' && count > n) {
      worst = state;
      n = count;
    }
  }
  const counts = Object.entries(signal.states)
    .map(([s, c]) => `${s} ${c}`)
    .join(', ');
  return { state: worst, detail: `no usable sample at this second (replayed steps: ${counts || 'none'})` };
}

export interface ReplayStep {
  readonly atSeconds: number;
  readonly requestedGroups: number;
  readonly readyGroups: number;
  readonly decision: Decision;
  /** Per signal name: the pool total recorded at this second, or null when the sample was unusable. */
  readonly totals: Readonly<Record<string, number | null>>;
}

export interface ReplayOptions {
  /** First decision; windows are fed from the backfill's start. */
  readonly startSeconds: number;
  /** Last decision (always decided, even off the tick grid). */
  readonly endSeconds: number;
  /** Spec (requested) and ready groups at a second. */
  readonly groupsAt: (atSeconds: number) => GroupCounts;
  /** Overrides the latest samples of the last decision (a live tick's gate states and details). */
  readonly finalLatest?: readonly PoolSample[];
}

/**
 * Replays a backfill through a fresh PoolRunner, second by second: each second's usable pool totals are
 * recorded (a sample taken every N s is held for N s, as Prometheus's lookback would, since the windows
 * read a gap as zeros), and the pool decides every tickSeconds. A second without a usable sample is
 * passed to the decider in its gate state, so it holds; it is never a zero.
 */
export function replay(pool: ResolvedPool, backfill: BackfillResult, options: ReplayOptions): ReplayStep[] {
  const runner = poolRunnerFor(pool);
  const step = backfill.stepSeconds;
  const perSignal = pool.metrics.map((m) => {
    const name = signalName(m);
    const kind = signalKindOf(m);
    const signal = kind === null ? undefined : backfill.signals.get(kind);
    const bySecond = new Map((signal?.samples ?? []).map((s) => [Math.round(s.atSeconds), s.poolTotal]));
    const missing =
      kind === null
        ? {
            state: 'error' as const,
            detail: 'promql metrics are not served by the batched Prometheus source',
          }
        : missingState(signal);
    return { name, bySecond, missing };
  });
  const tick = Math.max(1, pool.tickSeconds);
  const out: ReplayStep[] = [];
  for (let t = backfill.fromSeconds; t <= options.endSeconds; t++) {
    const latest: PoolSample[] = [];
    const totals: Record<string, number | null> = {};
    for (const s of perSignal) {
      // The newest step at or before t, held for one step.
      const stepAt = backfill.fromSeconds + Math.floor((t - backfill.fromSeconds) / step) * step;
      const total = s.bySecond.get(stepAt);
      totals[s.name] = total ?? null;
      latest.push(
        total !== undefined
          ? { name: s.name, state: 'ok', total }
          : { name: s.name, state: s.missing.state, detail: s.missing.detail },
      );
    }
    runner.record(latest, t);
    const onGrid = t >= options.startSeconds && (t - options.startSeconds) % tick === 0;
    if (!onGrid && t !== options.endSeconds) continue;
    const groups = options.groupsAt(t);
    const last = t === options.endSeconds && options.finalLatest !== undefined ? options.finalLatest : latest;
    out.push({
      atSeconds: t,
      requestedGroups: groups.spec,
      readyGroups: groups.ready,
      decision: runner.decide(t, groups.ready, groups.spec, last),
      totals,
    });
  }
  return out;
}

export function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
