/**
 * Every `kvpa` command against bad input, through main() in a child process with a deadline: each case
 * must end in time with its exit code, name the flag or field, say how to fix it, and print no stack
 * trace. The child runs every case in turn (test/harness/cli-runner.ts); a case that hangs is killed
 * with the child and named in the failure. A fake Prometheus on 127.0.0.1 answers NaN or negative
 * values for the recommend/backtest cases, which must come out as outOfRange, never as numbers; an
 * "API server" on 127.0.0.1 that accepts connections and never answers must end at the Kubernetes
 * call's deadline, naming the kubeconfig and the fix.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'kvpa-bad-input-'));
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

/** 9^9 expansions of one string: yaml stops at 100 alias expansions (maxAliasCount). */
const BOMB = write(
  'bomb.yaml',
  ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    .concat(
      'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
    )
    .join('\n'),
);
const EMPTY = write('empty.yaml', '# nothing here\n');
const NO_CLUSTER = write(
  'no-cluster.kubeconfig',
  'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n',
);
/** A kubeconfig whose cluster is never contacted: every case using it fails before a request. */
const UNUSED_CLUSTER = write(
  'unused.kubeconfig',
  'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\ncurrent-context: x\n',
);
const A_FILE = write('a-file', 'not a directory\n');
const scenario = (steps: unknown[], policy: unknown = { targetPerGroup: 1 }) =>
  write(`scenario-${Math.random().toString(36).slice(2)}.json`, JSON.stringify({ policy, steps }));
/** Two samples past 2^53 s: a one-second step there does not advance, which used to spin forever. */
const HUGE_TIME = scenario([
  {
    atSeconds: 9007199254740994,
    readyGroups: 1,
    samples: [
      { atSeconds: 9007199254740990, value: 1 },
      { atSeconds: 9007199254740994, value: 1 },
    ],
  },
]);
const HUGE_WINDOW = scenario([{ atSeconds: 0, readyGroups: 1, stableTotal: 1, panicTotal: 1 }], {
  targetPerGroup: 1,
  stableWindowSeconds: 1e9,
});
const NOT_JSON = write('not.json', '{"policy": ');
const PA = write(
  'pa.yaml',
  `apiVersion: kvpa.io/v1alpha1
kind: PodAutoscaler
metadata:
  name: pa
  namespace: default
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
`,
);
const TRACE = path.join(repo, 'examples/traces/r1-step-40min.csv');
const example = path.join(repo, 'examples/kserve-deepseek-r1.yaml');
const PROM = 'http://127.0.0.1:9'; // never reached: these cases fail before any query
/** A loopback port nothing listens on (and not one fetch refuses outright, as it does port 9). */
const CLOSED = 'http://127.0.0.1:47';
const sim = (...flags: string[]) => [
  'simulate',
  '--trace',
  TRACE,
  '--policy',
  'kvpa',
  '--out',
  dir,
  ...flags,
];
const bt = (...flags: string[]) => ['backtest', '--prometheus', PROM, '-f', PA, ...flags];

interface Case {
  readonly name: string;
  readonly argv: readonly string[];
  readonly code: number;
  /** What the message must name: the flag or field, and the cap or rule. */
  readonly says: readonly string[];
}

/** A fix is an instruction: what to give, use, choose, set, split or check instead. */
const FIX =
  /\b(give|use|run|choose|set|split|narrow|swap|check|write|raise|rename|add|expand)\b|hint:|must be|must lie|--help/;

const CASES: readonly Case[] = [
  // kvpa validate
  {
    name: 'validate: --policies names a missing directory',
    argv: ['validate', '--policies', path.join(dir, 'nope'), example],
    code: 1,
    says: ['cannot read the preset directory (no such directory)', '--policies'],
  },
  {
    name: 'validate: --policies names a file',
    argv: ['validate', '--policies', A_FILE, example],
    code: 1,
    says: ['not a directory', '--policies'],
  },
  { name: 'validate: a YAML alias bomb', argv: ['validate', BOMB], code: 1, says: ['bomb.yaml', 'alias'] },
  {
    name: 'validate: an empty file is an error, not a pass',
    argv: ['validate', EMPTY],
    code: 1,
    says: ['empty.yaml', 'no PodAutoscaler or ScalingPolicy'],
  },
  { name: 'validate: no files', argv: ['validate'], code: 2, says: ['no files given'] },
  {
    name: 'validate: an unknown flag',
    argv: ['validate', '--strict', example],
    code: 2,
    says: ["'--strict'"],
  },
  // kvpa controller (each fails before any connection)
  {
    name: 'controller: --log-level loud',
    argv: ['controller', '--log-level', 'loud'],
    code: 2,
    says: ['--log-level "loud"', 'info'],
  },
  {
    name: 'controller: a kubeconfig with no cluster',
    argv: ['controller', '--kubeconfig', NO_CLUSTER],
    code: 2,
    says: ['--kubeconfig', 'no cluster', 'current-context'],
  },
  {
    name: 'controller: a missing kubeconfig',
    argv: ['controller', '--kubeconfig', path.join(dir, 'nope')],
    code: 2,
    says: ['--kubeconfig', 'cannot load'],
  },
  {
    name: 'controller: --metrics-port 70000',
    argv: ['controller', '--metrics-port', '70000'],
    code: 2,
    says: ['--metrics-port "70000"', '65535'],
  },
  {
    name: 'controller: --metrics-port http',
    argv: ['controller', '--metrics-port', 'http'],
    code: 2,
    says: ['--metrics-port "http"', 'whole number'],
  },
  {
    name: 'controller: --namespace Team_A',
    argv: ['controller', '--namespace', 'Team_A'],
    code: 2,
    says: ['--namespace "Team_A"', 'lower-case'],
  },
  {
    name: 'controller: --policies names a missing directory',
    argv: ['controller', '--kubeconfig', UNUSED_CLUSTER, '--policies', path.join(dir, 'nope')],
    code: 1,
    says: ['cannot read the preset directory', '--policies'],
  },
  // kvpa decide
  {
    name: 'decide: atSeconds past 2^53',
    argv: ['decide', '--scenario', HUGE_TIME],
    code: 1,
    says: ['steps[0].atSeconds', '4102444800'],
  },
  {
    name: 'decide: a stable window of 1e9 s',
    argv: ['decide', '--scenario', HUGE_WINDOW],
    code: 1,
    says: ['policy.stableWindowSeconds', '3600'],
  },
  {
    name: 'decide: not JSON',
    argv: ['decide', '--scenario', NOT_JSON],
    code: 1,
    says: ['not.json', 'cannot read the scenario as JSON'],
  },
  { name: 'decide: no --scenario', argv: ['decide'], code: 2, says: ['--scenario FILE is required'] },
  {
    name: 'decide: a missing scenario file',
    argv: ['decide', '--scenario', path.join(dir, 'nope.json')],
    code: 1,
    says: ['nope.json', 'ENOENT'],
  },
  // kvpa recommend
  {
    name: 'recommend: --at 1e17',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--at', '100000000000000000'],
    code: 2,
    says: ['--at', '2100-01-01T00:00:00Z'],
  },
  {
    name: 'recommend: --at now-1000000000000d',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--at', 'now-1000000000000d'],
    code: 2,
    says: ['--at', 'cannot read'],
  },
  {
    name: 'recommend: --groups past the cap',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--groups', 'decode=99999999'],
    code: 2,
    says: ['--groups', 'cap of 10000'],
  },
  {
    name: 'recommend: --groups junk',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--groups', 'decode=lots'],
    code: 2,
    says: ['--groups', 'POOL=SPEC/READY'],
  },
  {
    name: 'recommend: --output yaml',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--output', 'yaml'],
    code: 2,
    says: ['--output', 'table or json'],
  },
  {
    name: 'recommend: --prometheus file:',
    argv: ['recommend', '--prometheus', 'file:///etc/passwd', '-f', PA],
    code: 2,
    says: ['--prometheus', 'http(s) URL'],
  },
  {
    name: 'recommend: a kubeconfig with no cluster',
    argv: ['recommend', '--prometheus', PROM, '--kubeconfig', NO_CLUSTER, '-f', PA],
    code: 2,
    says: ['--kubeconfig', 'no cluster'],
  },
  {
    name: 'recommend: --namespace Team_A',
    argv: ['recommend', '--prometheus', PROM, '--namespace', 'Team_A'],
    code: 2,
    says: ['--namespace "Team_A"'],
  },
  {
    name: 'recommend: --policies names a missing directory',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--policies', path.join(dir, 'nope')],
    code: 1,
    says: ['cannot read the preset directory', '--policies'],
  },
  {
    name: 'recommend: an empty -f file',
    argv: ['recommend', '--prometheus', PROM, '-f', EMPTY],
    code: 1,
    says: ['empty.yaml', 'no PodAutoscaler'],
  },
  {
    name: 'recommend: Prometheus unreachable',
    argv: ['recommend', '--prometheus', CLOSED, '-f', PA, '--groups', 'decode=1'],
    code: 1,
    says: ['Prometheus at http://127.0.0.1:47 is unreachable (ECONNREFUSED)', 'check --prometheus'],
  },
  // kvpa backtest
  {
    name: 'backtest: an unbounded range',
    argv: bt('--from', '0', '--to', 'now'),
    code: 2,
    says: ['--from/--to', 'cap is 7 days', 'split'],
  },
  {
    name: 'backtest: --out under a file',
    argv: bt('--from', 'now-1h', '--to', 'now', '--out', path.join(A_FILE, 'out')),
    code: 2,
    says: ['--out', 'not a directory', 'choose another --out'],
  },
  {
    name: 'backtest: --to before --from',
    argv: bt('--from', 'now', '--to', 'now-1h'),
    code: 2,
    says: ['--to', 'must be after --from'],
  },
  {
    name: 'backtest: --step 0',
    argv: bt('--from', 'now-1h', '--to', 'now', '--step', '0'),
    code: 2,
    says: ['--step "0"', '≥ 1'],
  },
  {
    name: 'backtest: --step 1w',
    argv: bt('--from', 'now-1h', '--to', 'now', '--step', '1w'),
    code: 2,
    says: ['--step', '3600 is the cap'],
  },
  {
    name: 'backtest: --from in 2200',
    argv: bt('--from', '2200-01-01T00:00:00Z', '--to', 'now'),
    code: 2,
    says: ['--from', '2100-01-01'],
  },
  { name: 'backtest: --from missing', argv: bt('--to', 'now'), code: 2, says: ['--from is required'] },
  {
    name: 'backtest: Prometheus unreachable',
    argv: [
      'backtest',
      '--prometheus',
      CLOSED,
      '-f',
      PA,
      '--from',
      'now-5m',
      '--to',
      'now',
      '--out',
      path.join(dir, 'bt-unreachable'),
    ],
    code: 1,
    says: ['unreachable (ECONNREFUSED)', 'check --prometheus'],
  },
  // kvpa simulate
  {
    name: 'simulate: an unbounded rate',
    argv: sim('--rate-multiplier', '1e9'),
    code: 2,
    says: ['--rate-multiplier "1e9"', '100 is the cap'],
  },
  {
    name: 'simulate: --from-seconds after --until-seconds',
    argv: sim('--from-seconds', '600', '--until-seconds', '300'),
    code: 2,
    says: ['--until-seconds 300 must be after --from-seconds 600'],
  },
  {
    name: 'simulate: --time-compression 0',
    argv: sim('--time-compression', '0'),
    code: 2,
    says: ['--time-compression "0"', '≥ 0.01'],
  },
  {
    name: 'simulate: --time-compression Infinity',
    argv: sim('--time-compression', 'Infinity'),
    code: 2,
    says: ['--time-compression "Infinity"'],
  },
  {
    name: 'simulate: --max-groups 1e6',
    argv: sim('--max-groups', '1000000'),
    code: 2,
    says: ['--max-groups', '1024 is the cap'],
  },
  {
    name: 'simulate: --seed 1.5',
    argv: sim('--seed', '1.5'),
    code: 2,
    says: ['--seed "1.5"', 'whole number'],
  },
  {
    name: 'simulate: --coupling with MIN above MAX',
    argv: sim('--coupling', '2:0.5'),
    code: 2,
    says: ['--coupling "2:0.5"', 'MIN 2 is above MAX 0.5', 'swap them'],
  },
  {
    name: 'simulate: --coupling not a band',
    argv: sim('--coupling', 'tight'),
    code: 2,
    says: ['--coupling "tight"', 'give MIN:MAX prefill groups per decode group, e.g. --coupling 0.5:2'],
  },
  {
    name: 'simulate: a calibration alias bomb',
    argv: sim('--calibration', BOMB),
    code: 2,
    says: ['--calibration', 'bomb.yaml'],
  },
  {
    name: 'simulate: --out under a file',
    argv: ['simulate', '--trace', TRACE, '--policy', 'kvpa', '--out', path.join(A_FILE, 'out')],
    code: 2,
    says: ['--out', 'not a directory'],
  },
  {
    name: 'simulate: --trace missing',
    argv: ['simulate', '--trace', path.join(dir, 'nope.csv'), '--policy', 'kvpa', '--out', dir],
    code: 2,
    says: ['nope.csv', '--trace'],
  },
  {
    name: 'simulate: --trace is not a trace',
    argv: ['simulate', '--trace', EMPTY, '--policy', 'kvpa', '--out', dir],
    code: 2,
    says: ['empty.yaml'],
  },
  {
    name: 'simulate: a replay of 1e9 s',
    argv: sim('--until-seconds', '1000000000'),
    code: 2,
    says: ['cap is 31 days'],
  },
  {
    name: 'simulate: --out ""',
    argv: ['simulate', '--trace', TRACE, '--policy', 'kvpa', '--out', ''],
    code: 2,
    says: ['--out is empty'],
  },
  // kvpa up (each fails before anything starts)
  {
    name: 'up: --time-compression 1e-300',
    argv: ['up', '--time-compression', '1e-300'],
    code: 2,
    says: ['--time-compression "1e-300"', '≥ 0.1'],
  },
  {
    name: 'up: --trace a directory',
    argv: ['up', '--trace', dir],
    code: 2,
    says: ['--trace', 'EISDIR', 'check --trace'],
  },
  {
    name: 'up: an unbounded rate',
    argv: ['up', '--rate-multiplier', '1e9'],
    code: 2,
    says: ['--rate-multiplier "1e9"', '100 is the cap'],
  },
  {
    name: 'up: --scrape-interval 0',
    argv: ['up', '--scrape-interval', '0'],
    code: 2,
    says: ['--scrape-interval "0"', '> 0'],
  },
  {
    name: 'up: --duration-seconds 1e9',
    argv: ['up', '--duration-seconds', '1e9'],
    code: 2,
    says: ['--duration-seconds', '86400 is the cap'],
  },
  {
    name: 'up: --out under a file',
    argv: ['up', '--out', path.join(A_FILE, 'out')],
    code: 2,
    says: ['--out', 'not a directory'],
  },
  // the dispatcher
  { name: 'an unknown command', argv: ['scale'], code: 2, says: ['unknown command "scale"', 'validate'] },
  {
    name: 'a command named like an Object property',
    argv: ['constructor'],
    code: 2,
    says: ['unknown command "constructor"'],
  },
];

/** The whole table in one child process; every case must finish within this. */
const DEADLINE_MS = 90_000;
/** One case must finish within this: bad input is rejected before any work. */
const CASE_MS = 5_000;

interface Result {
  readonly name: string;
  readonly code: number;
  readonly out: string;
  readonly err: string;
  readonly ms: number;
}

/** Runs cases through main() in a child with a deadline; returns the finished ones (a hang truncates). */
function runCases(
  cases: readonly { name: string; argv: readonly string[] }[],
): Promise<{ results: Result[]; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repo, 'test/harness/cli-runner.ts')],
      {
        cwd: repo,
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let stdout = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, DEADLINE_MS);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      const results = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Result);
      resolve({ results, killed });
    });
    child.stdin.end(JSON.stringify(cases.map((c) => ({ name: c.name, argv: c.argv }))));
  });
}

/** A fake Prometheus on 127.0.0.1 whose every engine value is `value` (NaN or negative). */
async function fakePrometheus(value: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString('utf8');
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const params = new URLSearchParams(body);
      for (const [k, v] of url.searchParams) params.set(k, v);
      const query = params.get('query') ?? '';
      if (query.includes('BAD')) {
        res.statusCode = 400;
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            status: 'error',
            errorType: 'bad_data',
            error: 'parse error: unexpected identifier "BAD"',
          }),
        );
        return;
      }
      const pod = { namespace: 'default', pod: 'decode-0' };
      const name = /(vllm:[a-z_]+)/.exec(query)?.[1] ?? 'vllm:num_requests_waiting';
      const series = (v: (t: number) => string) => [
        { metric: { __name__: name, ...pod, kvpa_field: 'value' }, v },
        { metric: { ...pod, kvpa_field: 'ts' }, v: (t: number) => String(t) },
      ];
      let data: unknown;
      if (url.pathname.endsWith('/query_range')) {
        const start = Number(params.get('start'));
        const end = Number(params.get('end'));
        const step = Number(params.get('step')) || 1;
        const times: number[] = [];
        for (let t = start; t <= end; t += step) times.push(t);
        const rows = query.startsWith('count(') ? [{ metric: {}, v: () => value }] : series(() => value);
        data = {
          resultType: 'matrix',
          result: rows.map((r) => ({ metric: r.metric, values: times.map((t) => [t, r.v(t)]) })),
        };
      } else {
        const t = Number(params.get('time')) || Date.now() / 1000;
        const rows = query.startsWith('group by') ? [{ metric: pod, v: () => '1' }] : series(() => value);
        data = { resultType: 'vector', result: rows.map((r) => ({ metric: r.metric, value: [t, r.v(t)] })) };
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: 'success', data }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('every kvpa command against bad input', () => {
  let results: Result[] = [];
  let killed = false;
  beforeAll(async () => {
    ({ results, killed } = await runCases(CASES));
  }, DEADLINE_MS + 10_000);

  it('the whole table finishes before the deadline (no case hangs)', () => {
    const unfinished = CASES.filter((c) => !results.some((r) => r.name === c.name)).map((c) => c.name);
    expect({ killed, unfinished }).toEqual({ killed: false, unfinished: [] });
  });

  it.each(CASES)('$name → exit $code, naming the flag or field and the fix', (c) => {
    const r = results.find((x) => x.name === c.name);
    expect(r, 'did not finish: hung or crashed the runner').toBeDefined();
    if (r === undefined) return;
    expect({ code: r.code, err: r.err }).toMatchObject({ code: c.code });
    for (const s of c.says) expect(r.err).toContain(s);
    expect(r.err).toMatch(FIX);
    expect(r.err).not.toMatch(/\n\s+at [\w.<]/); // no stack frames
    expect(r.ms).toBeLessThan(CASE_MS);
  });
});

describe('an API server that accepts connections and never answers (127.0.0.1)', () => {
  const sockets = new Set<Socket>();
  // Takes the connection and says nothing: not even the TLS handshake completes.
  const silent = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  const kubeconfig = path.join(dir, 'silent.kubeconfig');
  let server = '';
  let r: Result | undefined;
  let k = true;
  beforeAll(async () => {
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    server = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}"}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\ncurrent-context: x\n`,
    );
    const argv = ['recommend', '--prometheus', PROM, '--namespace', 'team-a', '--kubeconfig', kubeconfig];
    const { results, killed } = await runCases([{ name: 'recommend --namespace', argv }]);
    r = results[0];
    k = killed;
  }, DEADLINE_MS + 10_000);
  afterAll(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });

  it('recommend --namespace ends at the 10 s call deadline, naming the server, the flags and the fix', () => {
    expect({ killed: k, finished: r !== undefined }).toEqual({ killed: false, finished: true });
    if (r === undefined) return;
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `kvpa recommend: the API server at ${server} did not answer within 10 s while reading the PodAutoscalers of --namespace team-a; check the server URL in --kubeconfig ${kubeconfig} and that the cluster is up`,
    );
    expect(r.err).toMatch(FIX);
    expect(r.err).not.toMatch(/\n\s+at [\w.<]/); // no stack frames
    // The call's own deadline ended it (not undici's 300 s idle timers), with slack for a busy CPU.
    expect(r.ms).toBeGreaterThanOrEqual(9_500);
    expect(r.ms).toBeLessThan(15_000);
  });
});

describe('Prometheus answering junk (a fake on 127.0.0.1)', () => {
  const servers: Server[] = [];
  const now = Math.floor(Date.now() / 1000);
  const range = ['--from', String(now - 60), '--to', String(now)];
  let rs: Result[] = [];
  let k = true;
  const result = (name: string) => rs.find((r) => r.name === name);
  // One child for every case here: each start of the runner costs seconds of a shared CPU.
  beforeAll(async () => {
    const cases: { name: string; argv: string[] }[] = [];
    for (const value of ['NaN', '-3']) {
      const prom = await fakePrometheus(value);
      servers.push(prom.server);
      const out = path.join(dir, `bt-${value}`);
      mkdirSync(out, { recursive: true });
      cases.push(
        {
          name: `recommend ${value}`,
          argv: ['recommend', '--prometheus', prom.url, '-f', PA, '--at', String(now), '--output', 'json'],
        },
        {
          name: `backtest ${value}`,
          argv: ['backtest', '--prometheus', prom.url, '-f', PA, ...range, '--out', out],
        },
      );
    }
    const prom = await fakePrometheus('1');
    servers.push(prom.server);
    cases.push(
      {
        name: 'recommend BAD',
        argv: ['recommend', '--prometheus', prom.url, '-f', PA, '--head-selector', 'BAD'],
      },
      {
        name: 'backtest BAD',
        argv: [
          'backtest',
          '--prometheus',
          prom.url,
          '-f',
          PA,
          ...range,
          '--out',
          path.join(dir, 'bt-bad'),
          '--actual-groups-query',
          'BAD',
        ],
      },
    );
    ({ results: rs, killed: k } = await runCases(cases));
  }, DEADLINE_MS + 10_000);
  afterAll(() => {
    for (const s of servers) s.close();
  });

  it('every case finishes before the deadline', () => {
    expect({ killed: k, finished: rs.length }).toEqual({ killed: false, finished: 6 });
  });

  it('a --head-selector or --actual-groups-query Prometheus rejects names that flag', () => {
    const rec = result('recommend BAD');
    const back = result('backtest BAD');
    expect(rec?.code).toBe(1);
    expect(rec?.err).toContain(
      'parse error: unexpected identifier "BAD"; check the PromQL of --head-selector',
    );
    expect(back?.code).toBe(1);
    expect(back?.err).toContain('; check the PromQL of --actual-groups-query');
    for (const r of [rec, back]) expect(r?.err).not.toMatch(/\n\s+at [\w.<]/);
  });

  it.each(['NaN', '-3'])('recommend and backtest show %s as outOfRange, never as a number', (value) => {
    const rec = result(`recommend ${value}`);
    const back = result(`backtest ${value}`);
    expect(rec?.err ?? 'missing').toBe('');
    const json = JSON.parse(rec?.out ?? '{}') as {
      pools: { signals: Record<string, unknown>[]; recommendedGroups: number; valid: boolean }[];
    };
    const signals = json.pools[0]?.signals ?? [];
    expect(signals.map((s) => s.state)).toEqual(['outOfRange', 'outOfRange']);
    for (const s of signals) {
      const numbers = [
        'stableTotal',
        'panicTotal',
        'stablePerGroup',
        'panicPerGroup',
        'stableWant',
        'panicWant',
      ];
      expect(numbers.map((n) => s[n])).toEqual(numbers.map(() => null));
      expect(String(s.detail)).toContain('rejected out of range');
    }
    // One head pod seen, so one group: held (no usable signal), never scaled on the bad value.
    expect(json.pools[0]).toMatchObject({ recommendedGroups: 1, valid: false });
    expect(back?.code).toBe(0);
    expect(back?.out).toContain('actual groups outOfRange (NaN, infinite or negative) at 61 steps');
    expect(back?.out).toContain('peak groups: recommended 1, actual unknown');
    expect(back?.out).toContain('holds on missing data: 61 decisions');
    const saved = JSON.parse(readFileSync(path.join(dir, `bt-${value}`, 'backtest.json'), 'utf8')) as {
      pools: { timeline: { actualGroups: number | null; signals: Record<string, number | null> }[] }[];
    };
    const timeline = saved.pools[0]?.timeline ?? [];
    expect(timeline).toHaveLength(61);
    expect(timeline.every((p) => p.actualGroups === null)).toBe(true);
    expect(timeline.every((p) => Object.values(p.signals).every((v) => v === null))).toBe(true);
  });
});
