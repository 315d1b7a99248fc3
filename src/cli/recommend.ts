/**
 * `kvpa recommend`: one-shot, no writes. For each pool it rebuilds the windows from Prometheus
 * (query_range at 1 s), replays the decider over a warm-up as a dry-run controller would have run,
 * and prints the decision at --at: current and ready groups, every signal's stable and panic value,
 * the recommended groups and why.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { scaleTargetFor } from '../actuate/targets.ts';
import { BUNDLED_POLICY_DIR, formatError, loadPolicies } from '../api/documents.ts';
import { poolSamples } from '../observe/prometheus-control.ts';
import type { HeadPod } from '../observe/prometheus-join.ts';
import { PrometheusSignalSource } from '../observe/prometheus-source.ts';
import {
  checkGroupPools,
  checkMatchers,
  discoverHeads,
  forPool,
  type GroupCounts,
  headSelector,
  isoTime,
  PromHttp,
  parseGroups,
  parsePerPool,
  poolsFromCluster,
  poolsFromFile,
  registrationFor,
  replay,
  type ToolPool,
} from './history.ts';
import { clusterTransportError, loadKubeConfig } from './kubeconfig.ts';
import {
  checkUrl,
  EXIT,
  listFlag,
  namespaceFlag,
  type Output,
  parseFlags,
  parseTime,
  policiesFlag,
  stringFlag,
  UsageError,
} from './shell.ts';

export const RECOMMEND_USAGE = `Usage: kvpa recommend --prometheus URL (-f FILE | --namespace NS) [--kubeconfig FILE]
                      [--at TIME] [--groups POOL=SPEC/READY,...] [--head-selector [POOL=]MATCHERS]...
                      [--policies DIR] [--output table|json]

One-shot and read-only: prints, per pool, the current and ready groups, each signal's stable and
panic value (pool total and per ready group), the recommended groups and why.
  --prometheus URL     Prometheus HTTP API (e.g. http://localhost:9090); replaces metricsSource
  -f FILE              PodAutoscaler YAML (ScalingPolicies in the file are usable presets)
  --namespace NS       read the PodAutoscalers of NS from the cluster instead of -f
  --kubeconfig FILE    read groups and head pods from the cluster (default kubeconfig with --namespace)
  --at TIME            decide at TIME (default now): RFC3339, unix seconds, now, now-DURATION (now-1h)
  --groups LIST        spec/ready groups per pool, overriding the cluster or Prometheus, e.g. decode=4/4
  --head-selector M    PromQL label matchers that pick a pool's head pods, e.g.
                       decode=leaderworkerset_sigs_k8s_io_worker_index="0" (repeatable; no POOL= → all pools)
  --output json        one JSON document instead of tables

Without a cluster (no --kubeconfig, no --namespace) head pods come from Prometheus: every distinct pod
in the PodAutoscaler's namespace with an engine series of the pool's signals that matches
--head-selector, seen within the lookback (2 stable windows + scale-down delay + staleAfter + 5 min),
is ONE ready group; spec = ready = that count unless --groups says otherwise.
The decision is not a cold restart (which would hold in panic): the windows are filled over one stable
window, then the pool decides every tick for one stable window + scaleDownDelaySeconds with the counts
fixed, as a DryRun controller would have, and the decision at --at is printed. Missing or stale data
holds the current count; it never recommends a scale-down.
`;

export interface SignalRow {
  readonly name: string;
  readonly state: string;
  readonly targetPerGroup: number;
  readonly stableTotal: number | null;
  readonly panicTotal: number | null;
  /** Totals divided by the ready groups: what one group carries on average. */
  readonly stablePerGroup: number | null;
  readonly panicPerGroup: number | null;
  readonly stableWant: number | null;
  readonly panicWant: number | null;
  readonly detail: string | null;
}

export interface PoolRecommendation {
  readonly key: string;
  readonly autoscaler: string;
  readonly namespace: string;
  readonly pool: string;
  readonly scaleTarget: string;
  /** Where the counts came from: cluster, prometheus (head pods) or --groups. */
  readonly groupsFrom: 'cluster' | 'prometheus' | '--groups';
  readonly headPods: readonly string[];
  readonly currentGroups: number;
  readonly readyGroups: number;
  readonly recommendedGroups: number;
  readonly change: 'up' | 'down' | 'hold';
  readonly valid: boolean;
  readonly mode: 'stable' | 'panic';
  readonly signals: readonly SignalRow[];
  readonly summary: string;
  readonly holdReason: string | null;
  readonly limitedBy: readonly string[];
  readonly window: { readonly from: string; readonly at: string; readonly decisionsReplayed: number };
}

export interface PoolFailure {
  readonly key: string;
  readonly error: string;
}

export interface RecommendOptions {
  readonly prometheus: string;
  readonly atSeconds: number;
  readonly pools: readonly ToolPool[];
  readonly groups: ReadonlyMap<string, GroupCounts>;
  readonly headSelectors: ReadonlyMap<string, string>;
  readonly kubeConfig: KubeConfig | null;
}

const PROMETHEUS_LOOKBACK_SECONDS = 300;

/** Recommends for every pool; a pool that cannot be read becomes a failure, not an exception. */
export async function recommend(
  options: RecommendOptions,
): Promise<{ pools: PoolRecommendation[]; failures: PoolFailure[] }> {
  const source = new PrometheusSignalSource({ address: options.prometheus });
  const prom = new PromHttp(options.prometheus);
  const pools: PoolRecommendation[] = [];
  const failures: PoolFailure[] = [];
  const at = Math.floor(options.atSeconds);
  for (const tp of options.pools) {
    try {
      pools.push(await recommendPool(tp, at, options, source, prom));
    } catch (e) {
      failures.push({ key: tp.key, error: (e as Error).message });
    }
  }
  return { pools, failures };
}

async function recommendPool(
  tp: ToolPool,
  at: number,
  options: RecommendOptions,
  source: PrometheusSignalSource,
  prom: PromHttp,
): Promise<PoolRecommendation> {
  const p = tp.pool;
  const warmupSeconds = p.stableWindowSeconds + p.scaleDownDelaySeconds + p.tickSeconds;
  const replayFrom = at - warmupSeconds;
  const backfillFrom = replayFrom - p.stableWindowSeconds;
  const override = forPool(options.groups, p.name);
  let heads: HeadPod[];
  let counts: GroupCounts;
  let groupsFrom: PoolRecommendation['groupsFrom'];
  if (options.kubeConfig !== null) {
    const kc = options.kubeConfig;
    const target = scaleTargetFor(kc, tp.namespace, p.scaleTargetRef);
    try {
      const state = await target.read();
      heads = (await target.heads())
        .filter((h) => !h.surge)
        .map((h) => ({ pod: h.name, groupKey: h.groupKey, ready: h.groupReady }));
      counts = { spec: state.specGroups, ready: state.readyGroups };
    } catch (e) {
      const what = `${p.scaleTargetRef.kind} ${tp.namespace}/${p.scaleTargetRef.name} and its pods`;
      throw clusterTransportError(e, kc, { what }) ?? e;
    }
    groupsFrom = 'cluster';
  } else {
    const selector = headSelector(tp, forPool(options.headSelectors, p.name));
    const lookback = at - backfillFrom + p.missingData.staleAfterSeconds + PROMETHEUS_LOOKBACK_SECONDS;
    heads = await discoverHeads(prom, selector, at, lookback);
    if (heads.length === 0 && override === undefined) {
      throw new Error(
        `no head pods in Prometheus for ${selector} within ${lookback}s before ${isoTime(at)}: check --head-selector and the namespace, or give --groups ${p.name}=SPEC/READY to get a (holding) recommendation anyway`,
      );
    }
    counts = { spec: heads.length, ready: heads.length };
    groupsFrom = 'prometheus';
  }
  if (override !== undefined) {
    counts = override;
    groupsFrom = '--groups';
  }
  const registration = registrationFor(tp, heads);
  const backfill = await source.backfill(registration, backfillFrom, at, 1);
  // The live tick at --at gives each signal's exact gate state and reason (which groups, how stale).
  const live = await source.tick([registration], at);
  const finalLatest = poolSamples(
    {
      poolKey: tp.key,
      namespace: tp.namespace,
      pool: p,
      heads: heads.map((h) => ({ name: h.pod, groupKey: h.groupKey, groupReady: h.ready, surge: false })),
    },
    live,
  );
  const steps = replay(p, backfill, {
    startSeconds: replayFrom,
    endSeconds: at,
    groupsAt: () => counts,
    finalLatest,
  });
  const last = steps[steps.length - 1];
  if (last === undefined) throw new Error('no decision was made (empty replay window)');
  const d = last.decision;
  const e = d.explanation;
  const perGroup = (v: number | undefined) =>
    v === undefined || counts.ready === 0 ? null : v / counts.ready;
  const ref = p.scaleTargetRef;
  return {
    key: tp.key,
    autoscaler: tp.autoscaler,
    namespace: tp.namespace,
    pool: p.name,
    scaleTarget: `${ref.kind} ${ref.name}${ref.workerGroupName ? `/${ref.workerGroupName}` : ''}${ref.roleName ? `/${ref.roleName}` : ''}`,
    groupsFrom,
    headPods: heads.map((h) => h.pod),
    currentGroups: counts.spec,
    readyGroups: counts.ready,
    recommendedGroups: d.desiredGroups,
    change: d.desiredGroups > counts.spec ? 'up' : d.desiredGroups < counts.spec ? 'down' : 'hold',
    valid: d.valid,
    mode: d.inPanic ? 'panic' : 'stable',
    signals: e.signals.map((s) => ({
      name: s.name,
      state: s.state,
      targetPerGroup: s.targetPerGroup,
      stableTotal: s.stableTotal ?? null,
      panicTotal: s.panicTotal ?? null,
      stablePerGroup: perGroup(s.stableTotal),
      panicPerGroup: perGroup(s.panicTotal),
      stableWant: s.stableWant ?? null,
      panicWant: s.panicWant ?? null,
      detail: s.detail ?? null,
    })),
    summary: e.summary,
    holdReason: e.holdReason,
    limitedBy: e.stages
      .filter((r) => r.applied && r.stage !== 'compute')
      .map((r) => `${r.stage}: ${r.reason}`),
    window: { from: isoTime(backfillFrom), at: isoTime(at), decisionsReplayed: steps.length },
  };
}

function num(v: number | null): string {
  if (v === null) return '-';
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}

/** Left-aligned columns, two spaces apart. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
}

export function formatRecommendation(r: PoolRecommendation): string[] {
  const verb =
    r.change === 'hold'
      ? `hold at ${r.currentGroups}`
      : `scale ${r.change} ${r.currentGroups} → ${r.recommendedGroups}`;
  const lines = [
    `${r.key}  (${r.scaleTarget})`,
    `  groups: current ${r.currentGroups}, ready ${r.readyGroups}  (from ${r.groupsFrom}; head pods: ${r.headPods.join(', ') || 'none'})`,
    `  window: ${r.window.from} → ${r.window.at}, ${r.window.decisionsReplayed} decisions replayed`,
    ...table([
      [
        '  signal',
        'state',
        'target/group',
        'stable total',
        'panic total',
        'stable/group',
        'panic/group',
        'want stable/panic',
      ],
      ...r.signals.map((s) => [
        `  ${s.name}`,
        s.state,
        num(s.targetPerGroup),
        num(s.stableTotal),
        num(s.panicTotal),
        num(s.stablePerGroup),
        num(s.panicPerGroup),
        `${num(s.stableWant)}/${num(s.panicWant)}`,
      ]),
    ]),
  ];
  for (const s of r.signals)
    if (s.state !== 'ok' && s.detail !== null) lines.push(`  ${s.name}: ${s.detail}`);
  lines.push(
    `  recommended: ${r.recommendedGroups} groups (${verb}, ${r.mode} mode${r.valid ? '' : ', no usable signal'})`,
  );
  if (r.holdReason !== null) lines.push(`  hold: ${r.holdReason}`);
  for (const l of r.limitedBy) lines.push(`  limited by ${l}`);
  lines.push(`  why: ${r.summary}`);
  return lines;
}

/** Shared by recommend and backtest: where the pools come from. */
export async function loadToolPools(
  values: { file?: string | undefined; namespace?: string | undefined; policies?: string | undefined },
  kc: KubeConfig | null,
): Promise<{ pools: ToolPool[]; errors: string[] }> {
  if (values.file !== undefined)
    return poolsFromFile(values.file, values.policies, values.namespace ?? 'default');
  if (values.namespace === undefined || kc === null) {
    throw new UsageError(`give -f FILE (a PodAutoscaler YAML) or --namespace NS (read from the cluster)`);
  }
  const { policies, errors } = loadPolicies(values.policies ?? BUNDLED_POLICY_DIR);
  if (errors.length > 0) return { pools: [], errors: errors.map(formatError) };
  return poolsFromCluster(kc, values.namespace, policies);
}

export async function runRecommend(
  argv: readonly string[],
  io: Output,
  nowMs: () => number = Date.now,
): Promise<number> {
  const { values } = parseFlags(argv, {
    prometheus: { type: 'string' },
    file: { type: 'string', short: 'f' },
    namespace: { type: 'string' },
    kubeconfig: { type: 'string' },
    at: { type: 'string' },
    groups: { type: 'string' },
    'head-selector': { type: 'string', multiple: true },
    policies: { type: 'string' },
    output: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(RECOMMEND_USAGE);
    return EXIT.ok;
  }
  const str = (k: string) => stringFlag(values, k);
  const output = str('output') ?? 'table';
  if (output !== 'table' && output !== 'json') {
    throw new UsageError(`--output must be table or json, got ${JSON.stringify(output)}`);
  }
  const prometheus = checkUrl(str('prometheus'), '--prometheus');
  const atSeconds =
    str('at') === undefined ? nowMs() / 1000 : parseTime(str('at') ?? '', '--at', nowMs() / 1000);
  const groups =
    str('groups') === undefined ? new Map<string, GroupCounts>() : parseGroups(str('groups') ?? '');
  const useCluster =
    str('kubeconfig') !== undefined ||
    (namespaceFlag(values, 'namespace') !== undefined && str('file') === undefined);
  const kc = useCluster ? loadKubeConfig(str('kubeconfig')) : null;
  const loaded = await loadToolPools(
    { file: str('file'), namespace: str('namespace'), policies: policiesFlag(values) },
    kc,
  );
  if (loaded.errors.length > 0) {
    for (const e of loaded.errors) io.err(e);
    return EXIT.failed;
  }
  const names = loaded.pools.map((p) => p.pool.name);
  checkGroupPools(groups, names);
  const headSelectors = parsePerPool(listFlag(values, 'head-selector'), names);
  checkMatchers(headSelectors, names);
  const options: RecommendOptions = {
    prometheus,
    atSeconds,
    pools: loaded.pools,
    groups,
    headSelectors,
    kubeConfig: kc,
  };
  const result = await recommend(options);
  if (output === 'json') {
    io.out(JSON.stringify({ at: isoTime(Math.floor(options.atSeconds)), ...result }, null, 2));
  } else {
    result.pools.forEach((r, i) => {
      if (i > 0) io.out('');
      for (const line of formatRecommendation(r)) io.out(line);
    });
  }
  for (const f of result.failures) io.err(`kvpa recommend: ${f.key}: ${f.error}`);
  return result.failures.length > 0 ? EXIT.failed : EXIT.ok;
}
