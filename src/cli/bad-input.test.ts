/**
 * Every `kvpa` command against bad input, through main() in a child process with a deadline: each case
 * must end in time with its exit code, name the flag or field, say how to fix it, and print no stack
 * trace. The child runs every case in turn (test/harness/cli-runner.ts); a case that hangs is killed
 * with the child and named in the failure. A fake Prometheus on 127.0.0.1 answers NaN or negative
 * values for the recommend/backtest cases, which must come out as outOfRange, never as numbers; an
 * "API server" and a "Prometheus" on 127.0.0.1 that accept connections and never answer must end at
 * the call's deadline, naming the address and the fix.
 *
 * The table goes through every command × missing or unknown flag, bad number (NaN, negative, huge),
 * bad file (missing, a directory, empty, not YAML or JSON, an alias bomb, the wrong schema), time and
 * range limits, rates and sizes over their caps, and endpoints that refuse or do not resolve.
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
const NOT_YAML = write('not.yaml', 'pools: [1, 2\n  name: }{\n');
/** A PodAutoscaler with no maxReplicas, a KV target of 7 (a fraction is 0–1) and a file: Prometheus. */
const WRONG_SCHEMA = write(
  'wrong-schema.yaml',
  `apiVersion: kvpa.io/v1alpha1
kind: PodAutoscaler
metadata: {name: pa, namespace: default}
spec:
  metricsSource: {prometheus: {address: "file:///etc/passwd"}}
  pools:
    - name: decode
      scaleTargetRef: {apiVersion: leaderworkerset.x-k8s.io/v1, kind: LeaderWorkerSet, name: decode}
      metrics: [{type: kvCacheUtilization, target: 7}]
`,
);
const WRONG_KIND = write('deployment.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n');
/** A preset directory whose one preset is an alias bomb. */
const BAD_POLICIES = path.join(dir, 'bad-policies');
mkdirSync(BAD_POLICIES);
writeFileSync(path.join(BAD_POLICIES, 'bomb.yaml'), readFileSync(BOMB));
const NO_STEPS = scenario([]);
const NEGATIVE_GROUPS = scenario([{ atSeconds: 0, readyGroups: -1, stableTotal: 1, panicTotal: 1 }]);
const HUGE_GROUPS = scenario([{ atSeconds: 0, readyGroups: 1e9, stableTotal: 1, panicTotal: 1 }]);
const BACKWARDS = scenario([
  { atSeconds: 10, readyGroups: 1, stableTotal: 1, panicTotal: 1 },
  { atSeconds: 5, readyGroups: 1, stableTotal: 1, panicTotal: 1 },
]);
/** JSON.parse reads 1e400 as Infinity. */
const INFINITE_TARGET = write(
  'infinite-target.json',
  '{"policy":{"targetPerGroup":1e400},"steps":[{"atSeconds":0,"readyGroups":1,"stableTotal":1,"panicTotal":1}]}',
);
const NOT_CSV = write('not.csv', 'hello,world\nfoo\n');
/** A preset file (ScalingPolicy) with a negative target. */
const BAD_PRESET = write(
  'bad-preset.yaml',
  'apiVersion: kvpa.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: bad}\nspec:\n  metrics: [{type: kvCacheUtilization, target: -1}]\n',
);
const BAD_CALIBRATION = write('bad-calibration.yaml', 'name: x\ngpusPerGroup: -1\n');
/** A port in use on 127.0.0.1 (held for the whole file). */
const busy = createTcpServer();
await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
const BUSY_PORT = String((busy.address() as AddressInfo).port);
afterAll(() => busy.close());
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
  {
    name: 'recommend: Prometheus at a name DNS does not know',
    argv: [
      'recommend',
      '--prometheus',
      'http://kvpa-no-such-host.invalid:9090',
      '-f',
      PA,
      '--groups',
      'decode=1',
    ],
    code: 1,
    says: ['Prometheus at http://kvpa-no-such-host.invalid:9090 is unreachable', 'check --prometheus'],
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
  {
    name: 'backtest: Prometheus at a name DNS does not know',
    argv: [
      'backtest',
      '--prometheus',
      'http://kvpa-no-such-host.invalid:9090',
      '-f',
      PA,
      '--from',
      'now-5m',
      '--to',
      'now',
      '--out',
      path.join(dir, 'bt-dns'),
    ],
    code: 1,
    says: ['Prometheus at http://kvpa-no-such-host.invalid:9090 is unreachable', 'check --prometheus'],
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
  // kvpa validate: files, presets and flags
  {
    name: 'validate: a missing file',
    argv: ['validate', path.join(dir, 'nope.yaml')],
    code: 1,
    says: ['nope.yaml', 'ENOENT', 'check the path'],
  },
  {
    name: 'validate: a directory as FILE',
    argv: ['validate', dir],
    code: 1,
    says: ['EISDIR', 'check the path'],
  },
  {
    name: 'validate: not YAML',
    argv: ['validate', NOT_YAML],
    code: 1,
    says: ['not.yaml:1:12', 'fix the YAML syntax'],
  },
  {
    name: 'validate: wrong schema',
    argv: ['validate', WRONG_SCHEMA],
    code: 1,
    says: [
      'spec.metricsSource.prometheus.address: must be an http:// or https:// URL',
      'spec.pools[0].maxReplicas',
      'this field is required: add it',
    ],
  },
  {
    name: 'validate: a Deployment',
    argv: ['validate', WRONG_KIND],
    code: 1,
    says: ['deployment.yaml:2:1', 'unknown kind "Deployment"', 'kind PodAutoscaler'],
  },
  {
    name: 'validate: --policies ""',
    argv: ['validate', '--policies', '', example],
    code: 2,
    says: ['--policies is empty', 'give a directory of ScalingPolicy YAML files'],
  },
  {
    name: 'validate: --policies with a bomb preset',
    argv: ['validate', '--policies', BAD_POLICIES, example],
    code: 1,
    says: ['bad-policies/bomb.yaml', 'Excessive alias count', 'write the values out'],
  },
  {
    name: 'validate: --policies with no value',
    argv: ['validate', '--policies'],
    code: 2,
    says: ["Option '--policies <value>' argument missing"],
  },
  {
    name: 'validate: --explain=yes',
    argv: ['validate', '--explain=yes', example],
    code: 2,
    says: ["Option '--explain' does not take an argument"],
  },
  {
    name: 'validate: a bad preset among the files',
    argv: ['validate', BAD_PRESET, example],
    code: 1,
    says: ['bad-preset.yaml:5:3', 'spec.metrics: unknown field "metrics"', 'remove it'],
  },
  // kvpa controller: flags, kubeconfig and presets (each fails before the loop starts)
  {
    name: 'controller: --metrics-bind-address',
    argv: ['controller', '--metrics-bind-address', '127.0.0.1'],
    code: 2,
    says: ["Unknown option '--metrics-bind-address'"],
  },
  {
    name: 'controller: --metrics-port 0',
    argv: ['controller', '--metrics-port', '0'],
    code: 2,
    says: ['--metrics-port "0"', '≥ 1 and ≤ 65535'],
  },
  {
    name: 'controller: --metrics-port -1',
    argv: ['controller', '--metrics-port', '-1'],
    code: 2,
    says: ['--metrics-port "-1"', '≥ 1 and ≤ 65535'],
  },
  {
    name: 'controller: --metrics-port 1.5',
    argv: ['controller', '--metrics-port', '1.5'],
    code: 2,
    says: ['--metrics-port "1.5"', 'whole number'],
  },
  {
    name: 'controller: --metrics-port NaN',
    argv: ['controller', '--metrics-port', 'NaN'],
    code: 2,
    says: ['--metrics-port "NaN"', 'whole number'],
  },
  {
    name: 'controller: --metrics-port ""',
    argv: ['controller', '--metrics-port', ''],
    code: 2,
    says: ['--metrics-port ""', 'whole number'],
  },
  {
    name: 'controller: --metrics-port in use',
    argv: ['controller', '--kubeconfig', UNUSED_CLUSTER, '--metrics-port', BUSY_PORT],
    code: 2,
    says: ['--metrics-port', 'EADDRINUSE', 'choose a free port'],
  },
  {
    name: 'controller: --metrics-address localhost',
    argv: ['controller', '--metrics-address', 'localhost'],
    code: 2,
    says: ['--metrics-address "localhost"', 'not an IP address', '127.0.0.1'],
  },
  {
    name: 'controller: --metrics-address 999.1.1.1',
    argv: ['controller', '--metrics-address', '999.1.1.1'],
    code: 2,
    says: ['--metrics-address "999.1.1.1"', 'not an IP address'],
  },
  {
    name: 'controller: --allowed-hosts ftp://h',
    argv: ['controller', '--allowed-hosts', 'ftp://grafana.example.com'],
    code: 2,
    says: ['--allowed-hosts: "ftp://grafana.example.com" is not host', 'write e.g. --allowed-hosts'],
  },
  {
    name: 'controller: --allowed-hosts user:pass@',
    argv: ['controller', '--allowed-hosts', 'https://u:p@grafana.example.com'],
    code: 2,
    says: ['--allowed-hosts: "https://u:p@grafana.example.com" is not host'],
  },
  {
    name: 'controller: --allowed-hosts *',
    argv: ['controller', '--allowed-hosts', '*'],
    code: 2,
    says: ['--allowed-hosts: "*" is not host', '*.domain'],
  },
  {
    name: 'controller: --lease-namespace Bad_NS',
    argv: ['controller', '--lease-namespace', 'Bad_NS'],
    code: 2,
    says: ['--lease-namespace "Bad_NS"', 'lower-case'],
  },
  {
    name: 'controller: --kubeconfig a directory',
    argv: ['controller', '--kubeconfig', dir],
    code: 2,
    says: ['--kubeconfig', 'EISDIR', 'check the path'],
  },
  {
    name: 'controller: --kubeconfig empty',
    argv: ['controller', '--kubeconfig', EMPTY],
    code: 2,
    says: ['--kubeconfig', 'the input is empty', 'check the path and the YAML'],
  },
  {
    name: 'controller: --kubeconfig not YAML',
    argv: ['controller', '--kubeconfig', NOT_YAML],
    code: 2,
    says: ['--kubeconfig', 'cannot load it', 'check the path and the YAML'],
  },
  {
    name: 'controller: --kubeconfig alias bomb',
    argv: ['controller', '--kubeconfig', BOMB],
    code: 2,
    says: ['--kubeconfig', 'no cluster to talk to', 'set current-context'],
  },
  {
    name: 'controller: --policies a file',
    argv: ['controller', '--kubeconfig', UNUSED_CLUSTER, '--policies', A_FILE],
    code: 1,
    says: ['a-file', 'not a directory', 'give --policies a directory'],
  },
  {
    name: 'controller: --policies with a bomb preset',
    argv: ['controller', '--kubeconfig', UNUSED_CLUSTER, '--policies', BAD_POLICIES],
    code: 1,
    says: ['bad-policies/bomb.yaml', 'Excessive alias count'],
  },
  {
    name: 'controller: --namespace with no value',
    argv: ['controller', '--namespace'],
    code: 2,
    says: ["Option '--namespace <value>' argument missing"],
  },
  {
    name: 'controller: --leader-elect=no',
    argv: ['controller', '--leader-elect=no'],
    code: 2,
    says: ["Option '--leader-elect' does not take an argument"],
  },
  {
    name: 'controller: a positional',
    argv: ['controller', 'now'],
    code: 2,
    says: ["Unexpected argument 'now'"],
  },
  // kvpa decide: the scenario file
  {
    name: 'decide: --scenario a directory',
    argv: ['decide', '--scenario', dir],
    code: 1,
    says: ['cannot read the scenario as JSON', 'EISDIR'],
  },
  {
    name: 'decide: --scenario empty',
    argv: ['decide', '--scenario', EMPTY],
    code: 1,
    says: ['empty.yaml', 'cannot read the scenario as JSON'],
  },
  {
    name: 'decide: --scenario alias bomb',
    argv: ['decide', '--scenario', BOMB],
    code: 1,
    says: ['bomb.yaml', 'cannot read the scenario as JSON'],
  },
  {
    name: 'decide: no steps',
    argv: ['decide', '--scenario', NO_STEPS],
    code: 1,
    says: ['steps', '>=1 items'],
  },
  {
    name: 'decide: readyGroups -1',
    argv: ['decide', '--scenario', NEGATIVE_GROUPS],
    code: 1,
    says: ['steps[0].readyGroups', '>=0'],
  },
  {
    name: 'decide: readyGroups 1e9',
    argv: ['decide', '--scenario', HUGE_GROUPS],
    code: 1,
    says: ['steps[0].readyGroups', '<=10000'],
  },
  {
    name: 'decide: time backwards',
    argv: ['decide', '--scenario', BACKWARDS],
    code: 1,
    says: ['steps[1].atSeconds', 'atSeconds went backwards'],
  },
  {
    name: 'decide: targetPerGroup 1e400',
    argv: ['decide', '--scenario', INFINITE_TARGET],
    code: 1,
    says: ['policy.targetPerGroup', 'received Infinity'],
  },
  {
    name: 'decide: a PodAutoscaler as scenario',
    argv: ['decide', '--scenario', PA],
    code: 1,
    says: ['pa.yaml', 'cannot read the scenario as JSON'],
  },
  {
    name: 'decide: unknown flag',
    argv: ['decide', '--scenario', HUGE_WINDOW, '--verbose'],
    code: 2,
    says: ["Unknown option '--verbose'"],
  },
  {
    name: 'decide: --scenario with no value',
    argv: ['decide', '--scenario'],
    code: 2,
    says: ["Option '--scenario <value>' argument missing"],
  },
  // kvpa recommend: flags, files and names, checked before any query
  {
    name: 'recommend: no --prometheus',
    argv: ['recommend', '-f', PA],
    code: 2,
    says: ['--prometheus URL is required'],
  },
  {
    name: 'recommend: no -f or --namespace',
    argv: ['recommend', '--prometheus', PROM],
    code: 2,
    says: ['give -f FILE', '--namespace NS'],
  },
  {
    name: 'recommend: -f missing',
    argv: ['recommend', '--prometheus', PROM, '-f', path.join(dir, 'nope.yaml')],
    code: 1,
    says: ['nope.yaml', 'ENOENT', 'check the path'],
  },
  {
    name: 'recommend: -f a directory',
    argv: ['recommend', '--prometheus', PROM, '-f', dir],
    code: 1,
    says: ['EISDIR', 'check the path'],
  },
  {
    name: 'recommend: -f not YAML',
    argv: ['recommend', '--prometheus', PROM, '-f', NOT_YAML],
    code: 1,
    says: ['not.yaml:1:12', 'fix the YAML syntax'],
  },
  {
    name: 'recommend: -f alias bomb',
    argv: ['recommend', '--prometheus', PROM, '-f', BOMB],
    code: 1,
    says: ['bomb.yaml', 'Excessive alias count'],
  },
  {
    name: 'recommend: -f wrong schema',
    argv: ['recommend', '--prometheus', PROM, '-f', WRONG_SCHEMA],
    code: 1,
    says: ['spec.metricsSource.prometheus.address', 'spec.pools[0].maxReplicas'],
  },
  {
    name: 'recommend: --at yesterday',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--at', 'yesterday'],
    code: 2,
    says: ['--at: cannot read "yesterday" as a time', 'RFC3339'],
  },
  {
    name: 'recommend: --at -5',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--at', '-5'],
    code: 2,
    says: ['--at: cannot read "-5" as a time'],
  },
  {
    name: 'recommend: --at NaN',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--at', 'NaN'],
    code: 2,
    says: ['--at: cannot read "NaN" as a time'],
  },
  {
    name: 'recommend: --groups decode=-1/1',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--groups', 'decode=-1/1'],
    code: 2,
    says: ['--groups: cannot read "decode=-1/1"', 'POOL=SPEC/READY'],
  },
  {
    name: 'recommend: --groups ready above spec',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--groups', 'decode=4/5'],
    code: 2,
    says: ['--groups: decode=4/5', 'ready groups (5) exceed spec groups (4)'],
  },
  {
    name: 'recommend: --groups unknown pool',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--groups', 'prefill=1'],
    code: 2,
    says: ['--groups: no pool is named "prefill"', 'use one of decode'],
  },
  {
    name: 'recommend: --groups NaN',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--groups', 'decode=NaN'],
    code: 2,
    says: ['--groups: cannot read "decode=NaN"'],
  },
  {
    name: 'recommend: --head-selector injection',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--head-selector', 'a="b"} or vector(1) or {c="d"'],
    code: 2,
    says: ['--head-selector', 'not PromQL label matchers', 'label="value"'],
  },
  {
    name: 'recommend: --head-selector unknown pool',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--head-selector', 'prefill=a="b"'],
    code: 2,
    says: ['--head-selector "prefill=a=\\"b\\""', 'not PromQL label matchers'],
  },
  {
    name: 'recommend: --prometheus user:pass@',
    argv: ['recommend', '--prometheus', 'http://u:p@127.0.0.1:9', '-f', PA],
    code: 2,
    says: ['--prometheus: the URL carries user:pass@', 'give the URL without it'],
  },
  {
    name: 'recommend: --prometheus ""',
    argv: ['recommend', '--prometheus', '', '-f', PA],
    code: 2,
    says: ['--prometheus: "" is not an http(s) URL'],
  },
  {
    name: 'recommend: --kubeconfig missing',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--kubeconfig', path.join(dir, 'nope')],
    code: 2,
    says: ['--kubeconfig', 'ENOENT', 'check the path'],
  },
  {
    name: 'recommend: --kubeconfig alias bomb',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--kubeconfig', BOMB],
    code: 2,
    says: ['--kubeconfig', 'no cluster to talk to'],
  },
  {
    name: 'recommend: unknown flag',
    argv: ['recommend', '--prometheus', PROM, '-f', PA, '--watch'],
    code: 2,
    says: ["Unknown option '--watch'"],
  },
  // kvpa backtest: flags, files, range and names
  {
    name: 'backtest: no --prometheus',
    argv: ['backtest', '-f', PA, '--from', 'now-1h', '--to', 'now'],
    code: 2,
    says: ['--prometheus URL is required'],
  },
  {
    name: 'backtest: no -f',
    argv: ['backtest', '--prometheus', PROM, '--from', 'now-1h', '--to', 'now'],
    code: 2,
    says: ['--file is required'],
  },
  { name: 'backtest: --to missing', argv: bt('--from', 'now-1h'), code: 2, says: ['--to is required'] },
  {
    name: 'backtest: --from garbage',
    argv: bt('--from', 'last tuesday', '--to', 'now'),
    code: 2,
    says: ['--from: cannot read "last tuesday" as a time'],
  },
  {
    name: 'backtest: --from -5',
    argv: bt('--from', '-5', '--to', 'now'),
    code: 2,
    says: ['--from: cannot read "-5" as a time'],
  },
  {
    name: 'backtest: --step -1',
    argv: bt('--from', 'now-1h', '--to', 'now', '--step', '-1'),
    code: 2,
    says: ['--step: cannot read "-1" as a duration'],
  },
  {
    name: 'backtest: --step abc',
    argv: bt('--from', 'now-1h', '--to', 'now', '--step', 'abc'),
    code: 2,
    says: ['--step: cannot read "abc" as a duration'],
  },
  {
    name: 'backtest: --groups -1',
    argv: bt('--from', 'now-1h', '--to', 'now', '--groups', '-1'),
    code: 2,
    says: ['--groups: cannot read "-1"'],
  },
  {
    name: 'backtest: --groups 1e9',
    argv: bt('--from', 'now-1h', '--to', 'now', '--groups', '1000000000'),
    code: 2,
    says: ['--groups', 'over the cap of 10000'],
  },
  {
    name: 'backtest: --groups unknown pool',
    argv: bt('--from', 'now-1h', '--to', 'now', '--groups', 'prefill=2'),
    code: 2,
    says: ['--groups: no pool is named "prefill"'],
  },
  {
    name: 'backtest: a range of 7 days and 1 s',
    argv: bt('--from', '1800000000', '--to', String(1800000000 + 7 * 86400 + 1)),
    code: 2,
    says: ['--from/--to', 'the range is 604801 s', 'cap is 7 days'],
  },
  {
    name: 'backtest: -f missing',
    argv: [
      'backtest',
      '--prometheus',
      PROM,
      '-f',
      path.join(dir, 'nope.yaml'),
      '--from',
      'now-1h',
      '--to',
      'now',
    ],
    code: 1,
    says: ['nope.yaml', 'ENOENT'],
  },
  {
    name: 'backtest: -f a directory',
    argv: ['backtest', '--prometheus', PROM, '-f', dir, '--from', 'now-1h', '--to', 'now'],
    code: 1,
    says: ['EISDIR'],
  },
  {
    name: 'backtest: -f not YAML',
    argv: ['backtest', '--prometheus', PROM, '-f', NOT_YAML, '--from', 'now-1h', '--to', 'now'],
    code: 1,
    says: ['not.yaml:1:12', 'fix the YAML syntax'],
  },
  {
    name: 'backtest: -f alias bomb',
    argv: ['backtest', '--prometheus', PROM, '-f', BOMB, '--from', 'now-1h', '--to', 'now'],
    code: 1,
    says: ['bomb.yaml', 'Excessive alias count'],
  },
  {
    name: 'backtest: -f empty',
    argv: ['backtest', '--prometheus', PROM, '-f', EMPTY, '--from', 'now-1h', '--to', 'now'],
    code: 1,
    says: ['empty.yaml', 'no PodAutoscaler in the file'],
  },
  {
    name: 'backtest: -f wrong schema',
    argv: ['backtest', '--prometheus', PROM, '-f', WRONG_SCHEMA, '--from', 'now-1h', '--to', 'now'],
    code: 1,
    says: ['spec.pools[0].maxReplicas'],
  },
  {
    name: 'backtest: --prometheus gopher:',
    argv: ['backtest', '--prometheus', 'gopher://127.0.0.1:70', '-f', PA, '--from', 'now-1h', '--to', 'now'],
    code: 2,
    says: ['--prometheus: "gopher://127.0.0.1:70" is not an http(s) URL'],
  },
  {
    name: 'backtest: --out ""',
    argv: bt('--from', 'now-1h', '--to', 'now', '--out', ''),
    code: 2,
    says: ['--out is empty'],
  },
  {
    name: 'backtest: --actual-groups-query ""',
    argv: bt('--from', 'now-1h', '--to', 'now', '--actual-groups-query', ''),
    code: 2,
    says: ['--actual-groups-query ""', 'empty', 'give a PromQL expression'],
  },
  {
    name: 'backtest: unknown flag',
    argv: bt('--from', 'now-1h', '--to', 'now', '--dry-run'),
    code: 2,
    says: ["Unknown option '--dry-run'"],
  },
  {
    name: 'backtest: --policies a file',
    argv: bt('--from', 'now-1h', '--to', 'now', '--policies', A_FILE),
    code: 1,
    says: ['a-file', 'not a directory', '--policies'],
  },
  // kvpa simulate: flags, caps, presets, calibration and trace
  {
    name: 'simulate: no --trace',
    argv: ['simulate', '--policy', 'kvpa', '--out', dir],
    code: 2,
    says: ['--trace FILE is required'],
  },
  {
    name: 'simulate: no --policy',
    argv: ['simulate', '--trace', TRACE, '--out', dir],
    code: 2,
    says: ['give exactly one of --policy NAME or --compare'],
  },
  {
    name: 'simulate: no --out',
    argv: ['simulate', '--trace', TRACE, '--policy', 'kvpa'],
    code: 2,
    says: ['--out DIR is required'],
  },
  {
    name: 'simulate: --policy and --compare',
    argv: sim('--compare', 'kvpa,hpa'),
    code: 2,
    says: ['give exactly one of --policy NAME or --compare'],
  },
  {
    name: 'simulate: --policy unknown',
    argv: ['simulate', '--trace', TRACE, '--policy', 'magic', '--out', dir],
    code: 2,
    says: ['unknown policy "magic"', 'choose from kvpa'],
  },
  {
    name: 'simulate: --compare with an unknown',
    argv: ['simulate', '--trace', TRACE, '--compare', 'kvpa,magic', '--out', dir],
    code: 2,
    says: ['unknown policy "magic"'],
  },
  {
    name: 'simulate: --policy file missing',
    argv: ['simulate', '--trace', TRACE, '--policy', path.join(dir, 'nope.yaml'), '--out', dir],
    code: 2,
    says: ['--policy', 'nope.yaml', 'ENOENT'],
  },
  {
    name: 'simulate: --policy file alias bomb',
    argv: ['simulate', '--trace', TRACE, '--policy', BOMB, '--out', dir],
    code: 2,
    says: ['--policy', 'bomb.yaml', 'Excessive alias count'],
  },
  {
    name: 'simulate: --policy file not YAML',
    argv: ['simulate', '--trace', TRACE, '--policy', NOT_YAML, '--out', dir],
    code: 2,
    says: ['--policy', 'not.yaml:1:12'],
  },
  {
    name: 'simulate: --policy file wrong schema',
    argv: ['simulate', '--trace', TRACE, '--policy', BAD_PRESET, '--out', dir],
    code: 2,
    says: ['--policy', 'spec.metrics: unknown field "metrics"'],
  },
  {
    name: 'simulate: --policy kvpa@target=-1',
    argv: ['simulate', '--trace', TRACE, '--policy', 'kvpa@target=-1', '--out', dir],
    code: 2,
    says: ['policy "kvpa@target=-1"', 'bad knob "target=-1"', 'target > 0'],
  },
  {
    name: 'simulate: --rate-multiplier -1',
    argv: sim('--rate-multiplier', '-1'),
    code: 2,
    says: ['--rate-multiplier "-1"', '> 0 and ≤ 100'],
  },
  {
    name: 'simulate: --rate-multiplier NaN',
    argv: sim('--rate-multiplier', 'NaN'),
    code: 2,
    says: ['--rate-multiplier "NaN"'],
  },
  {
    name: 'simulate: --rate-multiplier 0',
    argv: sim('--rate-multiplier', '0'),
    code: 2,
    says: ['--rate-multiplier "0"', '> 0'],
  },
  {
    name: 'simulate: --output-scale 1e9',
    argv: sim('--output-scale', '1e9'),
    code: 2,
    says: ['--output-scale "1e9"', '100 is the cap'],
  },
  {
    name: 'simulate: --input-scale -1',
    argv: sim('--input-scale', '-1'),
    code: 2,
    says: ['--input-scale "-1"', '> 0'],
  },
  {
    name: 'simulate: --shape junk',
    argv: sim('--shape', 'zigzag'),
    code: 2,
    says: ['--shape "zigzag"', 'unknown shape "zigzag"', 'use step:'],
  },
  {
    name: 'simulate: --shape step 1e9',
    argv: sim('--shape', 'step:30m=1000000000'),
    code: 2,
    says: ['--shape "step:30m=1000000000"', 'the rate peaks at 1000000000×', '100× is the cap'],
  },
  {
    name: 'simulate: --startup-minutes 1e9',
    argv: sim('--startup-minutes', '1e9'),
    code: 2,
    says: ['--startup-minutes "1e9"', '1440 is the cap'],
  },
  {
    name: 'simulate: --scrape-interval -1',
    argv: sim('--scrape-interval', '-1'),
    code: 2,
    says: ['--scrape-interval "-1"', '≥ 0'],
  },
  {
    name: 'simulate: --max-groups 0',
    argv: sim('--max-groups', '0'),
    code: 2,
    says: ['--max-groups "0"', '≥ 1'],
  },
  { name: 'simulate: --ttft-slo 0', argv: sim('--ttft-slo', '0'), code: 2, says: ['--ttft-slo "0"', '> 0'] },
  { name: 'simulate: --tpot-slo NaN', argv: sim('--tpot-slo', 'NaN'), code: 2, says: ['--tpot-slo "NaN"'] },
  {
    name: 'simulate: --usd-per-gpu-hour -1',
    argv: sim('--usd-per-gpu-hour', '-1'),
    code: 2,
    says: ['--usd-per-gpu-hour "-1"', '≥ 0'],
  },
  {
    name: 'simulate: --oracle-slo 150',
    argv: sim('--oracle-slo', '150'),
    code: 2,
    says: ['--oracle-slo "150"', '100 is the cap'],
  },
  {
    name: 'simulate: --victims random',
    argv: sim('--victims', 'random'),
    code: 2,
    says: ['--victims "random"', 'choose one of highest-index'],
  },
  {
    name: 'simulate: --drain maybe',
    argv: sim('--drain', 'maybe'),
    code: 2,
    says: ['--drain "maybe"', 'choose on or off'],
  },
  {
    name: 'simulate: --frontier-points 1e6',
    argv: sim('--frontier', '--frontier-points', '1000000'),
    code: 2,
    says: ['--frontier-points "1000000"', '64 is the cap'],
  },
  {
    name: 'simulate: --workers 1e6',
    argv: sim('--frontier', '--workers', '1000000'),
    code: 2,
    says: ['--workers "1000000"', '64 is the cap'],
  },
  {
    name: 'simulate: --calibration missing',
    argv: sim('--calibration', path.join(dir, 'nope.yaml')),
    code: 2,
    says: ['--calibration', 'nope.yaml', 'ENOENT', 'give deepseek-r1-h200'],
  },
  {
    name: 'simulate: --calibration a directory',
    argv: sim('--calibration', dir),
    code: 2,
    says: ['--calibration', 'EISDIR'],
  },
  {
    name: 'simulate: --calibration unknown name',
    argv: sim('--calibration', 'tpu-v9'),
    code: 2,
    says: ['--calibration tpu-v9', 'give deepseek-r1-h200, deepseek-r1-h100 or a calibration YAML file'],
  },
  {
    name: 'simulate: --calibration wrong schema',
    argv: sim('--calibration', BAD_CALIBRATION),
    code: 2,
    says: ['--calibration', 'bad-calibration.yaml', 'invalid calibration', 'hardware'],
  },
  {
    name: 'simulate: --trace a directory',
    argv: ['simulate', '--trace', dir, '--policy', 'kvpa', '--out', dir],
    code: 2,
    says: ['EISDIR', 'check --trace'],
  },
  {
    name: 'simulate: --trace not a CSV trace',
    argv: ['simulate', '--trace', NOT_CSV, '--policy', 'kvpa', '--out', dir],
    code: 2,
    says: ['not.csv:1:1', 'unknown header "hello,world"', 'use one of'],
  },
  {
    name: 'simulate: --from-seconds -5',
    argv: sim('--from-seconds', '-5'),
    code: 2,
    says: ['--from-seconds "-5"', '≥ 0'],
  },
  {
    name: 'simulate: --seed 1e30',
    argv: sim('--seed', '1e30'),
    code: 2,
    says: ['--seed "1e30"', '2147483647 is the cap'],
  },
  { name: 'simulate: unknown flag', argv: sim('--fast'), code: 2, says: ["Unknown option '--fast'"] },
  // kvpa up: flags and the trace (each fails before anything starts)
  {
    name: 'up: --trace missing',
    argv: ['up', '--trace', path.join(dir, 'nope.csv')],
    code: 2,
    says: ['--trace', 'nope.csv', 'ENOENT', 'check --trace'],
  },
  {
    name: 'up: --trace empty',
    argv: ['up', '--trace', EMPTY],
    code: 2,
    says: ['--trace', 'unknown header "# nothing here"'],
  },
  {
    name: 'up: --trace not a trace',
    argv: ['up', '--trace', NOT_CSV],
    code: 2,
    says: ['--trace', 'unknown header "hello,world"'],
  },
  {
    name: 'up: --pod-startup-seconds -1',
    argv: ['up', '--pod-startup-seconds', '-1'],
    code: 2,
    says: ['--pod-startup-seconds "-1"', '> 0'],
  },
  {
    name: 'up: --pod-startup-seconds 1e9',
    argv: ['up', '--pod-startup-seconds', '1e9'],
    code: 2,
    says: ['--pod-startup-seconds "1e9"', '3600 is the cap'],
  },
  {
    name: 'up: --scrape-interval 1e9',
    argv: ['up', '--scrape-interval', '1e9'],
    code: 2,
    says: ['--scrape-interval "1e9"', '60 is the cap'],
  },
  {
    name: 'up: --duration-seconds 0',
    argv: ['up', '--duration-seconds', '0'],
    code: 2,
    says: ['--duration-seconds "0"', '> 0'],
  },
  {
    name: 'up: --duration-seconds NaN',
    argv: ['up', '--duration-seconds', 'NaN'],
    code: 2,
    says: ['--duration-seconds "NaN"'],
  },
  {
    name: 'up: --rate-multiplier 0',
    argv: ['up', '--rate-multiplier', '0'],
    code: 2,
    says: ['--rate-multiplier "0"', '> 0'],
  },
  {
    name: 'up: --time-compression 1e9',
    argv: ['up', '--time-compression', '1e9'],
    code: 2,
    says: ['--time-compression "1e9"', '100 is the cap'],
  },
  { name: 'up: --out ""', argv: ['up', '--out', ''], code: 2, says: ['--out is empty'] },
  { name: 'up: unknown flag', argv: ['up', '--gpus', '8'], code: 2, says: ["Unknown option '--gpus'"] },
  // the dispatcher: no command, or a flag for one
  { name: 'kvpa ""', argv: [''], code: 2, says: ['unknown command ""', 'run kvpa help'] },
  {
    name: 'kvpa --version',
    argv: ['--version'],
    code: 2,
    says: ['unknown command "--version"', 'run kvpa help'],
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

describe('a Prometheus that accepts connections and never answers (127.0.0.1)', () => {
  const sockets = new Set<Socket>();
  const silent = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  let url = '';
  let rs: Result[] = [];
  let k = true;
  beforeAll(async () => {
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    ({ results: rs, killed: k } = await runCases([
      { name: 'recommend', argv: ['recommend', '--prometheus', url, '-f', PA] },
      {
        name: 'backtest',
        argv: [
          'backtest',
          '--prometheus',
          url,
          '-f',
          PA,
          '--from',
          'now-5m',
          '--to',
          'now',
          '--out',
          path.join(dir, 'bt-silent'),
        ],
      },
    ]));
  }, DEADLINE_MS + 10_000);
  afterAll(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });

  it.each(['recommend', 'backtest'])(
    '%s ends at the 10 s query deadline, naming the address, the flag and the fix',
    (name) => {
      expect({ killed: k, finished: rs.length }).toEqual({ killed: false, finished: 2 });
      const r = rs.find((x) => x.name === name);
      expect(r?.code).toBe(1);
      expect(r?.err).toBe(
        `kvpa ${name}: default/pa/decode: Prometheus at ${url} did not answer within 10 s; check --prometheus and that Prometheus is up`,
      );
      expect(r?.err).not.toMatch(/\n\s+at [\w.<]/);
      expect(r?.ms).toBeGreaterThanOrEqual(9_500);
      expect(r?.ms).toBeLessThan(15_000);
    },
  );
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
        argv: ['recommend', '--prometheus', prom.url, '-f', PA, '--head-selector', 'x="BAD"'],
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
