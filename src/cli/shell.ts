/**
 * The shell every `kvpa` subcommand runs in: one UsageError, flag parsing with bounds and named caps,
 * one Output, and the exit codes. A command throws UsageError for bad input; `runCommand` prints it
 * with a pointer to the usage and exits 2, and turns any other throw into one line naming the command
 * (exit 1), never a stack trace.
 */
import { mkdirSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** Exit codes of every subcommand. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Where a command writes: lines to stdout (results) and stderr (progress, errors). */
export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
  /** A transient status line that the next one replaces (a progress bar); absent when not a terminal. */
  progress?: (text: string) => void;
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  ...(process.stderr.isTTY ? { progress: (text: string) => process.stderr.write(`\r${text}`) } : {}),
};

/** Bad input on the command line: the message names the flag and the accepted forms. Exit code 2. */
export class UsageError extends Error {}

/**
 * Runs one subcommand: UsageError → its message and `kvpa COMMAND --help` (exit 2); any other error
 * → `kvpa COMMAND: message` (exit 1). The stack is never printed: it tells a user nothing they can fix.
 */
export async function runCommand(
  command: string,
  io: Output,
  body: () => Promise<number> | number,
): Promise<number> {
  try {
    return await body();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof UsageError) {
      io.err(`kvpa ${command}: ${message}\n    (kvpa ${command} --help lists every flag)`);
      return EXIT.usage;
    }
    io.err(`kvpa ${command}: ${message}`);
    return EXIT.failed;
  }
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/**
 * `--flag -5` as `--flag=-5` for a flag that takes a value: parseArgs reads a value starting with a dash
 * as a forgotten one, so a negative number would be refused for its dash, not checked against the flag's
 * bounds (which say what to give instead).
 */
function joinNegativeValues(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig['options']>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      !name.includes('=') &&
      Object.hasOwn(options, name) &&
      options[name]?.type === 'string' &&
      next !== undefined &&
      /^-(\d|\.\d|inf)/i.test(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** node:util parseArgs whose errors (unknown flag, missing value) are UsageErrors. */
export function parseFlags(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig['options']>,
  allowPositionals = false,
): { values: FlagValues; positionals: string[] } {
  try {
    const args = joinNegativeValues(argv, options);
    const { values, positionals } = parseArgs({ args, options, allowPositionals, strict: true });
    return { values: values as FlagValues, positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A string flag's value, or undefined when absent. */
export function stringFlag(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The values of a repeatable string flag. */
export function listFlag(values: FlagValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** The accepted range of a numeric flag. `max` is a named cap: the message says why it exists. */
export interface Bounds {
  readonly min: number;
  /** true: the value must be strictly greater than `min`. */
  readonly minExclusive?: boolean;
  readonly max: number;
  /** Why the cap is where it is, and what to do instead (shown when the value exceeds `max`). */
  readonly cap?: string;
  readonly integer?: boolean;
  /** A value to suggest in the message, usually the default. */
  readonly example: number;
  /** The unit, for the message (`seconds`, `minutes`). */
  readonly unit?: string;
}

function rule(b: Bounds): string {
  const kind = b.integer ? 'a whole number' : 'a number';
  const low = `${b.minExclusive ? '>' : '≥'} ${b.min}`;
  return `${kind}${b.unit ? ` of ${b.unit}` : ''} ${low} and ≤ ${b.max}`;
}

/** Reads one decimal number within bounds; the error names the flag, the range, the cap and an example. */
export function parseNumber(text: string, flag: string, b: Bounds): number {
  const t = text.trim();
  const x = t === '' ? Number.NaN : Number(t);
  const fix = `give e.g. ${flag} ${b.example}`;
  if (!Number.isFinite(x) || (b.integer && !Number.isInteger(x))) {
    throw new UsageError(`${flag} ${JSON.stringify(text)}: must be ${rule(b)}; ${fix}`);
  }
  if (b.minExclusive ? !(x > b.min) : !(x >= b.min)) {
    throw new UsageError(`${flag} ${JSON.stringify(text)}: must be ${rule(b)}; ${fix}`);
  }
  if (x > b.max) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: ${b.max} is the cap${b.cap ? ` (${b.cap})` : ''}; ${fix}`,
    );
  }
  return x;
}

/** A numeric flag: undefined when absent, else `parseNumber` of its value. */
export function numberFlag(values: FlagValues, name: string, b: Bounds): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  return parseNumber(String(raw), `--${name}`, b);
}

/** The latest time any flag may name: 2100-01-01T00:00:00Z. Beyond it, second steps lose precision. */
export const MAX_TIME_SECONDS = 4_102_444_800;
const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const TIME_FORMATS =
  'RFC3339 (2026-11-23T10:00:00Z), unix seconds (1795000000), now, or now-DURATION (now-1h)';

/** `90s`, `5m`, `1h30m`, `2d`, or a bare number of seconds; at most 100 years. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  let seconds: number | undefined;
  if (/^\d+(\.\d+)?$/.test(t)) seconds = Number(t);
  else if (/^(\d+(\.\d+)?[smhdw])+$/.test(t)) {
    seconds = 0;
    for (const m of t.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) {
      seconds += Number(m[1]) * (DURATION_UNITS[m[2] ?? 's'] ?? 1);
    }
  }
  if (seconds === undefined || !Number.isFinite(seconds) || seconds > MAX_TIME_SECONDS) {
    throw new UsageError(
      `${flag}: cannot read ${JSON.stringify(text)} as a duration; use e.g. 1s, 90s, 5m, 1h30m or a number of seconds`,
    );
  }
  return seconds;
}

/** A point in time, in unix seconds, from 1970 to 2100: RFC3339, unix seconds, `now` or `now-DURATION`. */
export function parseTime(text: string, flag: string, nowSeconds: number): number {
  const t = text.trim();
  const bad = () =>
    new UsageError(`${flag}: cannot read ${JSON.stringify(text)} as a time; use ${TIME_FORMATS}`);
  let seconds: number | undefined;
  const rel = /^now-(.+)$/.exec(t);
  if (t === 'now') seconds = nowSeconds;
  else if (rel) {
    try {
      seconds = nowSeconds - parseDuration(rel[1] ?? '', flag);
    } catch {
      throw bad();
    }
  } else if (/^\d+(\.\d+)?$/.test(t)) seconds = Number(t);
  // RFC3339 needs a date, a time and a zone; Date.parse alone accepts much more (and local times).
  else if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) seconds = ms / 1000;
  }
  if (seconds === undefined) throw bad();
  if (!(seconds >= 0 && seconds <= MAX_TIME_SECONDS)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: must lie between 1970-01-01T00:00:00Z and 2100-01-01T00:00:00Z (the cap); use ${TIME_FORMATS}`,
    );
  }
  return seconds;
}

/** A Kubernetes namespace flag: a DNS label (RFC 1123), at most 63 characters. */
export function namespaceFlag(values: FlagValues, name: string): string | undefined {
  const v = stringFlag(values, name);
  if (v !== undefined && !(v.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v))) {
    throw new UsageError(
      `--${name} ${JSON.stringify(v)}: not a namespace name; use lower-case letters, digits and '-', at most 63 characters (e.g. --${name} default)`,
    );
  }
  return v;
}

/** An http(s) URL flag without credentials, required. */
export function checkUrl(text: string | undefined, flag: string): string {
  if (text === undefined) throw new UsageError(`${flag} URL is required (e.g. http://localhost:9090)`);
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(
      `${flag}: ${JSON.stringify(text)} is not an http(s) URL; use e.g. http://localhost:9090`,
    );
  }
  // fetch refuses such a URL anyway, and the error would print the password back.
  if (url.username !== '' || url.password !== '') {
    throw new UsageError(
      `${flag}: the URL carries user:pass@, which kvpa does not send; give the URL without it, e.g. ${url.protocol}//${url.host}`,
    );
  }
  return text;
}

/** `--policies DIR`: undefined when absent; an empty value is refused (it would read as no directory). */
export function policiesFlag(values: FlagValues): string | undefined {
  const v = stringFlag(values, 'policies');
  if (v !== undefined && v.trim() === '') {
    throw new UsageError(
      '--policies is empty; give a directory of ScalingPolicy YAML files, e.g. --policies policies/',
    );
  }
  return v;
}

/**
 * Creates an output directory before any work, so `--out` under a file or in a read-only place fails
 * at once, naming the flag, rather than after a long run.
 */
export function prepareOutDir(dir: string, flag = '--out'): string {
  if (dir.trim() === '') throw new UsageError(`${flag} is empty; give a directory, e.g. ${flag} out/run`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const why =
      code === 'ENOTDIR' || code === 'EEXIST'
        ? 'a part of the path is a file, not a directory'
        : code === 'EACCES' || code === 'EROFS'
          ? 'no permission to write there'
          : (e as Error).message;
    throw new UsageError(
      `${flag} ${dir}: cannot create the directory (${code}: ${why}); choose another ${flag}`,
    );
  }
  return dir;
}
