import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { ResolvedPool } from '../api/resolve.ts';
import { runBacktest } from './backtest.ts';
import { forPool, missingState, PromHttp, parseGroups, parsePerPool, replay } from './history.ts';
import { runRecommend } from './recommend.ts';
import { parseDuration, parseTime, runCommand, UsageError } from './shell.ts';

const NOW = 1_795_000_000;

describe('parseTime', () => {
  it('reads RFC3339, unix seconds, now and now-DURATION', () => {
    expect(parseTime('2026-11-23T10:00:00Z', '--from', NOW)).toBe(Date.parse('2026-11-23T10:00:00Z') / 1000);
    expect(parseTime('2026-11-23T11:00:00+01:00', '--from', NOW)).toBe(
      Date.parse('2026-11-23T10:00:00Z') / 1000,
    );
    expect(parseTime('2026-11-23T10:00:00.5Z', '--from', NOW)).toBe(
      Date.parse('2026-11-23T10:00:00Z') / 1000 + 0.5,
    );
    expect(parseTime('1795000123', '--from', NOW)).toBe(1_795_000_123);
    expect(parseTime('now', '--to', NOW)).toBe(NOW);
    expect(parseTime('now-1h', '--from', NOW)).toBe(NOW - 3600);
    expect(parseTime('now-1h30m', '--from', NOW)).toBe(NOW - 5400);
    expect(parseTime('now-90s', '--from', NOW)).toBe(NOW - 90);
  });

  it('rejects local times, dates alone and words, naming the flag and the accepted formats', () => {
    for (const bad of ['2026-11-23T10:00:00', '2026-11-23', 'yesterday', 'now-1y', 'now+1h', '']) {
      expect(() => parseTime(bad, '--from', NOW)).toThrow(UsageError);
      expect(() => parseTime(bad, '--from', NOW)).toThrow(/--from: .*RFC3339.*unix seconds.*now-DURATION/);
    }
  });
});

describe('parseDuration', () => {
  it('reads units and bare seconds', () => {
    expect(parseDuration('1s', '--step')).toBe(1);
    expect(parseDuration('5m', '--step')).toBe(300);
    expect(parseDuration('1h30m', '--step')).toBe(5400);
    expect(parseDuration('2d', '--step')).toBe(172_800);
    expect(parseDuration('15', '--step')).toBe(15);
    expect(() => parseDuration('5 minutes', '--step')).toThrow(/--step: .*1s, 90s, 5m/);
  });
});

describe('parseGroups and parsePerPool', () => {
  it('reads POOL=SPEC/READY, POOL=SPEC and a bare count', () => {
    const g = parseGroups('decode=4/3,prefill=2');
    expect(g.get('decode')).toEqual({ spec: 4, ready: 3 });
    expect(g.get('prefill')).toEqual({ spec: 2, ready: 2 });
    expect(forPool(parseGroups('5'), 'decode')).toEqual({ spec: 5, ready: 5 });
  });

  it('rejects bad entries and ready above spec', () => {
    expect(() => parseGroups('decode=four')).toThrow(/--groups: .*POOL=SPEC\/READY/);
    expect(() => parseGroups('decode=2/3')).toThrow(/ready groups \(3\) exceed spec groups \(2\)/);
  });

  it('a value whose prefix is not a pool name applies to every pool (matchers contain =)', () => {
    const m = parsePerPool(
      ['decode=pod=~"d-.*"', 'leaderworkerset_sigs_k8s_io_worker_index="0"'],
      ['decode'],
    );
    expect(m.get('decode')).toBe('pod=~"d-.*"');
    expect(forPool(m, 'prefill')).toBe('leaderworkerset_sigs_k8s_io_worker_index="0"');
  });
});

describe('missing data in the replay is a state, never zero', () => {
  const pool = {
    name: 'decode',
    ranksOn: 'head',
    expectedRanks: null,
    metrics: [{ type: 'queueDepth', target: 5 }],
    stableWindowSeconds: 6,
    panicWindowPercentage: 50,
    panicThresholdPercentage: 200,
    maxScaleUpRate: 1000,
    maxScaleDownRate: 2,
    scaleDownDelaySeconds: 0,
    activationScale: 1,
    aggregation: 'linear',
    tickSeconds: 1,
    headroomPercentage: 25,
    horizonSeconds: 0,
    seasonalLookbackSeconds: [],
    horizonMaxGrowthPercentage: 50,
    slo: {},
    drainTimeoutSeconds: 0,
    capacityCheck: 'Enforce' as const,
    startupTimeoutSeconds: 0,
    minReplicas: 1,
    maxReplicas: 10,
    engine: 'vllm',
    scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name: 'd' },
    missingData: {
      staleAfterSeconds: 30,
      minQuorumPercentage: 50,
      fallbackAfterSeconds: 0,
      fallbackMinReplicas: 0,
    },
    sources: {},
  } as ResolvedPool;

  it('names the most frequent non-ok state', () => {
    expect(missingState({ samples: [], states: { ok: 3, stale: 5, noData: 1 } }).state).toBe('stale');
    expect(missingState({ samples: [], states: {}, error: 'HTTP 503' })).toMatchObject({ state: 'error' });
  });

  it('quiet data scales 4 → 2; the same data with its last 3 s missing holds 4', () => {
    const samples = Array.from({ length: 20 }, (_, i) => ({ atSeconds: 100 + i, poolTotal: 1 }));
    const run = (s: typeof samples, states: Record<string, number>) =>
      replay(
        pool,
        {
          poolKey: 'k',
          fromSeconds: 100,
          toSeconds: 119,
          stepSeconds: 1,
          signals: new Map([['queueDepth', { samples: s, states }]]),
        },
        { startSeconds: 107, endSeconds: 119, groupsAt: () => ({ spec: 4, ready: 4 }) },
      );
    const full = run(samples, { ok: 20 });
    // 1 waiting → want 1; rate limit floor(4 / 2) = 2; the restart panic (from 107) ended at 114.
    expect(full[full.length - 1]?.decision.desiredGroups).toBe(2);
    const gap = run(samples.slice(0, 17), { ok: 17, stale: 3 });
    const last = gap[gap.length - 1];
    expect(last?.decision.desiredGroups).toBe(4);
    expect(last?.decision.explanation.signals[0]?.state).toBe('stale');
    expect(last?.totals.queueDepth).toBeNull();
  });

  it('a sample every 5 s is held for 5 s, not read as zeros in between', () => {
    const samples = [100, 105, 110, 115].map((t) => ({ atSeconds: t, poolTotal: 20 }));
    const steps = replay(
      pool,
      {
        poolKey: 'k',
        fromSeconds: 100,
        toSeconds: 119,
        stepSeconds: 5,
        signals: new Map([['queueDepth', { samples, states: { ok: 4 } }]]),
      },
      { startSeconds: 107, endSeconds: 119, groupsAt: () => ({ spec: 4, ready: 4 }) },
    );
    // 20 waiting every second → 4 groups; read with zeros in the gaps it would be 20 / 5 = 4 → 1.
    expect(steps.map((s) => s.decision.explanation.signals[0]?.stableTotal)).toEqual(steps.map(() => 20));
  });
});

describe('CLI flag errors', () => {
  const run = async (fn: typeof runBacktest, argv: string[]) => {
    const err: string[] = [];
    const io = { out: () => undefined, err: (l: string) => err.push(l) };
    const code = await runCommand(fn.name, io, () => fn(argv, io, () => NOW * 1000));
    return { code, err: err.join('\n') };
  };

  it('backtest: a bad --from names the flag and the formats; exit 2', async () => {
    const r = await run(runBacktest, [
      '--prometheus',
      'http://localhost:9090',
      '-f',
      'x.yaml',
      '--from',
      'yesterday',
      '--to',
      'now',
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--from: cannot read "yesterday" as a time; use RFC3339');
  });

  it('backtest: --to before --from, a missing --to, a bad --step and a bad URL', async () => {
    const base = ['--prometheus', 'http://localhost:9090', '-f', 'x.yaml'];
    expect((await run(runBacktest, [...base, '--from', 'now', '--to', 'now-1h'])).err).toContain(
      'must be after --from',
    );
    expect((await run(runBacktest, [...base, '--from', 'now-1h'])).err).toContain('--to is required');
    expect(
      (await run(runBacktest, [...base, '--from', 'now-1h', '--to', 'now', '--step', '0.5s'])).err,
    ).toContain('--step "0.5": must be a whole number of seconds ≥ 1 and ≤ 3600; give e.g. --step 1');
    const url = await run(runBacktest, [
      '--prometheus',
      'localhost:9090',
      '--from',
      'now-1h',
      '--to',
      'now',
      '-f',
      'x',
    ]);
    expect(url.code).toBe(2);
    expect(url.err).toContain('--prometheus: "localhost:9090" is not an http(s) URL');
  });

  it('recommend: needs -f or --namespace, a valid --at, and table or json', async () => {
    const base = ['--prometheus', 'http://localhost:9090'];
    expect((await run(runRecommend, base)).err).toContain('give -f FILE');
    const at = await run(runRecommend, [...base, '-f', 'x.yaml', '--at', 'tomorrow']);
    expect(at.code).toBe(2);
    expect(at.err).toContain('--at: cannot read "tomorrow"');
    expect((await run(runRecommend, [...base, '-f', 'x.yaml', '--output', 'yaml'])).err).toContain(
      '--output must be table or json',
    );
  });
});

describe('PromHttp: the CLI tools’ Prometheus calls are bounded like the controller’s', () => {
  /** A Prometheus on 127.0.0.1 that answers every query with `answer`, or drips it a byte every 200 ms. */
  async function fakeProm(answer: string, drip = false): Promise<{ address: string; server: Server }> {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (!drip) return void res.end(answer);
      let i = 0;
      const t = setInterval(() => {
        if (res.destroyed || i >= answer.length) {
          clearInterval(t);
          return void res.end();
        }
        res.write(answer[i++]);
      }, 200);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  }
  const ok = (n: number) =>
    JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] }, pad: 'x'.repeat(n) });

  it('an answer of 2,100 bytes against a 1,024-byte cap is refused, naming the cap and how to narrow the query', async () => {
    const { address, server } = await fakeProm(ok(2000));
    try {
      await expect(new PromHttp(address, 5, 1024).instant('up', 0)).rejects.toThrow(
        /more than 1024 bytes; narrow the query/,
      );
      await expect(new PromHttp(address, 5, 4096).instant('up', 0)).resolves.toEqual([]);
    } finally {
      server.close();
    }
  });

  it('a Prometheus that drips its answer a byte every 200 ms ends at the 1 s deadline, not after the body', async () => {
    const { address, server } = await fakeProm(ok(100), true);
    const started = Date.now();
    try {
      await expect(new PromHttp(address, 1).instant('up', 0)).rejects.toThrow(/did not answer within 1 s/);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
