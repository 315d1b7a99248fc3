/**
 * bench/observe: queries per tick and CPU time per tick of the Prometheus source, for 1,000 and
 * 10,000 replica groups (2 groups per pool, 2 data-parallel ranks per head pod, 100 namespaces).
 *
 *   npx tsx bench/observe.ts [--groups 1000,10000] [--ticks 5] [--synthetic-only]
 *
 * Two measurements:
 * 1. attribution only: a synthetic Prometheus answer of that size (the JSON body Prometheus would
 *    send) is decoded (JSON.parse, the client's response hook and prometheus-query's result), joined
 *    to groups and gated. No I/O.
 * 2. end to end against a real Prometheus (Debian 2.42, scripts/install-prometheus.sh) scraping one
 *    bulk exporter that prints every head pod's series with namespace/pod labels (honor_labels, as a
 *    federation endpoint would); each tick is the source's real HTTP fetch, parse, join and gate.
 *    Queries per tick are counted by the client and by Prometheus itself.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { QueryResult } from 'prometheus-query';
import { passRawResult, rawResult } from '../src/observe/prometheus-client.ts';
import {
  attribute,
  buildHeadIndex,
  decodeVector,
  FIELD_LABEL,
  type PoolRegistration,
  SIGNAL_KINDS,
  type SignalKind,
} from '../src/observe/prometheus-join.ts';
import { PrometheusSignalSource } from '../src/observe/prometheus-source.ts';
import { judgeSignal } from '../src/observe/quality.ts';
import { startPrometheus } from '../test/harness/prometheus.ts';

const GROUPS_PER_POOL = 2;
const RANKS = 2;
const NAMESPACES = 100;
const SIGNALS: SignalKind[] = ['kvCacheUtilization', 'queueDepth'];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function registrations(groups: number): PoolRegistration[] {
  const pools: PoolRegistration[] = [];
  for (let p = 0; p < groups / GROUPS_PER_POOL; p++) {
    const namespace = `ns-${p % NAMESPACES}`;
    pools.push({
      poolKey: `${namespace}/pa-${p}/decode`,
      namespace,
      heads: Array.from({ length: GROUPS_PER_POOL }, (_, g) => ({
        pod: `lws-${p}-${g}`,
        groupKey: `lws-${p}-${g}`,
        ready: true,
      })),
      engine: 'auto',
      signals: SIGNALS,
      staleAfterSeconds: 60,
      minQuorumPercentage: 50,
    });
  }
  return pools;
}

/** The JSON body Prometheus returns for buildQuery(kind) over these pools. */
function syntheticBody(kind: SignalKind, pools: readonly PoolRegistration[], nowSeconds: number): string {
  const name = SIGNAL_KINDS[kind].names.vllm ?? kind;
  const result: unknown[] = [];
  for (const p of pools) {
    for (const h of p.heads) {
      for (let r = 0; r < RANKS; r++) {
        const base = { namespace: p.namespace, pod: h.pod, engine: String(r) };
        result.push({
          metric: { __name__: name, ...base, [FIELD_LABEL]: 'value' },
          value: [nowSeconds, String(kind === 'kvCacheUtilization' ? 0.42 : 3)],
        });
        result.push({
          metric: { ...base, [FIELD_LABEL]: 'ts' },
          value: [nowSeconds, String(nowSeconds - 7.5)],
        });
      }
    }
  }
  return JSON.stringify({ status: 'success', data: { resultType: 'vector', result } });
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

function attributionTick(
  pools: readonly PoolRegistration[],
  bodies: Map<SignalKind, string>,
  now: number,
): number {
  const index = buildHeadIndex(pools);
  let ok = 0;
  for (const kind of SIGNALS) {
    // The same path as a live tick after the HTTP read: JSON, the response hook, the driver, decode.
    const body = passRawResult(JSON.parse(bodies.get(kind) ?? '{}'), 200, 'bench') as { data: object };
    const raw = rawResult(QueryResult.fromJSON(body.data));
    if (raw.resultType !== 'vector') throw new Error('expected a vector');
    const samples = decodeVector(raw);
    const joined = attribute(kind, samples, index);
    const spec = SIGNAL_KINDS[kind];
    for (const p of pools) {
      const groups = joined.pools.get(p.poolKey)?.groups;
      const gate = judgeSignal({
        signal: kind,
        range: spec.range,
        rankRule: spec.rankRule,
        nowSeconds: now,
        staleAfterSeconds: 60,
        minQuorumPercentage: 50,
        groups: p.heads.map((h) => {
          const ranks = groups?.get(h.groupKey)?.ranks;
          return ranks
            ? { groupKey: h.groupKey, ready: h.ready, ranks }
            : { groupKey: h.groupKey, ready: h.ready };
        }),
      });
      if (gate.state === 'ok') ok++;
    }
  }
  return ok;
}

function bulkExposition(pools: readonly PoolRegistration[], tick: number): string {
  const lines: string[] = [];
  for (const kind of SIGNALS) {
    const name = SIGNAL_KINDS[kind].names.vllm ?? kind;
    lines.push(`# TYPE ${name} gauge`);
    for (const p of pools) {
      for (const h of p.heads) {
        for (let r = 0; r < RANKS; r++) {
          const v = kind === 'kvCacheUtilization' ? ((tick % 10) + r) / 20 : (tick % 7) + r;
          lines.push(
            `${name}{engine="${r}",model_name="deepseek-r1",namespace="${p.namespace}",pod="${h.pod}"} ${v}`,
          );
        }
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const sizes = arg('groups', '1000,10000').split(',').map(Number);
  const ticks = Number(arg('ticks', '5'));
  const syntheticOnly = process.argv.includes('--synthetic-only');
  const rows: string[] = [];

  for (const groups of sizes) {
    const pools = registrations(groups);
    const now = Date.now() / 1000;
    const bodies = new Map(SIGNALS.map((k) => [k, syntheticBody(k, pools, now)]));
    attributionTick(pools, bodies, now); // warm-up (JIT)
    const cpu: number[] = [];
    for (let i = 0; i < ticks; i++) {
      const start = process.cpuUsage();
      const ok = attributionTick(pools, bodies, now);
      cpu.push(cpuMs(start));
      if (ok !== pools.length * SIGNALS.length) throw new Error(`only ${ok} pool signals ok`);
    }
    const bytes = [...bodies.values()].reduce((n, b) => n + b.length, 0);
    rows.push(
      `| ${groups} | ${pools.length} | synthetic answers (${(bytes / 1e6).toFixed(1)} MB JSON for both kinds): parse + join + gate | ${SIGNALS.length} (one per kind) | — | ${median(cpu).toFixed(0)} |`,
    );
  }

  if (!syntheticOnly) {
    for (const groups of sizes) {
      const pools = registrations(groups);
      let tickNo = 0;
      const server = createServer((_req, res) => {
        res
          .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
          .end(bulkExposition(pools, tickNo++));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const prom = await startPrometheus({
        scrapeIntervalSeconds: 5,
        honorLabels: true,
        startTimeoutMs: 30_000,
      });
      try {
        await prom.setTargets(
          [{ address, metricsPath: '/metrics', namespace: 'bench', pod: 'bulk-exporter' }],
          30_000,
        );
        const source = new PrometheusSignalSource({ address: prom.url, queryTimeoutSeconds: 30 });
        await source.tick(pools); // warm-up
        const cpu: number[] = [];
        const wall: number[] = [];
        const served: number[] = [];
        const sent: number[] = [];
        for (let i = 0; i < ticks; i++) {
          const s0 = await prom.servedRequests('/api/v1/query');
          const c0 = source.requestsSent;
          const start = process.cpuUsage();
          const t0 = performance.now();
          const tick = await source.tick(pools);
          wall.push(performance.now() - t0);
          cpu.push(cpuMs(start));
          served.push((await prom.servedRequests('/api/v1/query')) - s0);
          sent.push(source.requestsSent - c0);
          const okCount = [...tick.pools.values()].filter((p) =>
            [...p.signals.values()].every((g) => g.state === 'ok'),
          ).length;
          if (okCount !== pools.length)
            throw new Error(
              `only ${okCount}/${pools.length} pools ok: ${[...tick.errors.values()].join('; ')}`,
            );
        }
        rows.push(
          `| ${groups} | ${pools.length} | real Prometheus 2.42: HTTP fetch + parse + join + gate | ${median(sent)} sent / ${median(served)} served | ${median(wall).toFixed(0)} | ${median(cpu).toFixed(0)} |`,
        );
      } finally {
        await prom.stop();
        await new Promise<void>((r) => server.close(() => r()));
      }
    }
  }

  console.log(
    `groups=${sizes.join(',')} ticks=${ticks} (median per tick), ${RANKS} DP ranks per head, ${GROUPS_PER_POOL} groups per pool, signals ${SIGNALS.join('+')}`,
  );
  console.log('| groups | pools | what | queries per tick | wall ms | CPU ms (this process) |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
}

await main();
