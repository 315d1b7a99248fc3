// Prometheus text exposition format 0.0.4: a strict parser that never throws.
//
// Why our own parser: the only maintained-looking npm candidate, `parse-prometheus-text-format`
// (1.1.1, last release 2024-12), has no types, returns values as strings, aborts the whole
// parse on the first bad line (throws) and silently accepts `a 1 2 3` (timestamp "23").
// The autoscaler needs the opposite: skip a bad line, say why, keep the rest.
//
// Contract:
// - `parseExposition` returns every well-formed sample; a malformed line is skipped and
//   recorded in `errors` with its 1-based line number and a reason. It never throws.
// - Family-level problems (a histogram without its `+Inf` bucket, `_count`, `_sum`) do not
//   drop samples; they are recorded with `kind: 'family'` so a reader can distrust them.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** Sample name as written, e.g. `vllm:ttft_seconds_bucket` inside family `vllm:ttft_seconds`. */
  readonly name: string;
  /** Null-prototype record: a label named `__proto__` is kept as data. */
  readonly labels: Labels;
  readonly value: number;
  readonly timestampMs?: number;
  readonly lineNumber: number;
}

export interface MetricFamily {
  readonly name: string;
  type: MetricType;
  help?: string;
  readonly samples: Sample[];
}

export interface ParseError {
  /** The offending line, cut to `MAX_ERROR_LINE_CHARS`. */
  readonly line: string;
  /** 1-based. */
  readonly lineNumber: number;
  readonly reason: string;
  /** `line`: the line was skipped. `family`: samples were kept but the family is incomplete. */
  readonly kind: 'line' | 'family';
}

export interface ParseResult {
  readonly families: MetricFamily[];
  /** At most `maxRecordedErrors` entries; `errorCount` has the true total. */
  readonly errors: ParseError[];
  readonly errorCount: number;
}

export interface ParseOptions {
  /** Caps memory on garbage input (a 10 MB HTML page would otherwise yield 10^5 errors). */
  readonly maxRecordedErrors?: number;
}

const MAX_ERROR_LINE_CHARS = 256;
const DEFAULT_MAX_RECORDED_ERRORS = 1000;

const METRIC_TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95; // A-Z a-z _
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isMetricNameStart(c: number): boolean {
  return isNameStart(c) || c === 58; // ':' is legal in metric names only
}
function isMetricNameChar(c: number): boolean {
  return isMetricNameStart(c) || isDigit(c);
}
function isLabelNameChar(c: number): boolean {
  return isNameStart(c) || isDigit(c);
}
function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export function isValidMetricName(name: string): boolean {
  return METRIC_NAME_RE.test(name);
}
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export function isValidLabelName(name: string): boolean {
  return LABEL_NAME_RE.test(name);
}

// Go's strconv.ParseFloat is the reference (Prometheus is written in Go). We accept its
// decimal forms and its special values; we reject JS-only forms that Number() would take
// (`0x1f`, `Infinity` with odd case is fine in Go, empty string, `1_000`).
const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INF_RE = /^([+-]?)(?:inf|infinity)$/i;
const NAN_RE = /^[+-]?nan$/i;

/** Parses a sample value; `undefined` when the token is not a float in Go syntax. */
export function parseFloatToken(token: string): number | undefined {
  if (DECIMAL_RE.test(token)) return Number(token);
  const inf = INF_RE.exec(token);
  if (inf) return inf[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (NAN_RE.test(token)) return Number.NaN;
  return undefined;
}

const INT_RE = /^[+-]?\d+$/;

type LineOutcome =
  | { ok: true; name: string; labels: Record<string, string>; value: number; timestampMs?: number }
  | { ok: false; reason: string };

/** Parses one sample line (leading blanks already removed). Pure; exported for tests. */
export function parseSampleLine(line: string): LineOutcome {
  const n = line.length;
  let i = 0;
  if (i >= n || !isMetricNameStart(line.charCodeAt(i))) {
    return { ok: false, reason: 'invalid metric name: must match [a-zA-Z_:][a-zA-Z0-9_:]*' };
  }
  while (i < n && isMetricNameChar(line.charCodeAt(i))) i++;
  const name = line.slice(0, i);
  const afterName = i;
  while (i < n && isBlank(line.charCodeAt(i))) i++;

  const labels: Record<string, string> = Object.create(null);
  let afterLabels = false;
  if (i < n && line.charCodeAt(i) === 123 /* { */) {
    afterLabels = true;
    i++;
    for (;;) {
      while (i < n && isBlank(line.charCodeAt(i))) i++;
      if (i >= n) return { ok: false, reason: 'unterminated label set: missing "}"' };
      if (line.charCodeAt(i) === 125 /* } */) {
        i++;
        break;
      }
      const nameStart = i;
      if (!isNameStart(line.charCodeAt(i))) {
        return { ok: false, reason: `invalid label name at column ${i + 1}` };
      }
      while (i < n && isLabelNameChar(line.charCodeAt(i))) i++;
      const labelName = line.slice(nameStart, i);
      while (i < n && isBlank(line.charCodeAt(i))) i++;
      if (line.charCodeAt(i) !== 61 /* = */) {
        return { ok: false, reason: `expected "=" after label name "${labelName}"` };
      }
      i++;
      while (i < n && isBlank(line.charCodeAt(i))) i++;
      if (line.charCodeAt(i) !== 34 /* " */) {
        return { ok: false, reason: `expected '"' to open the value of label "${labelName}"` };
      }
      i++;
      let value = '';
      let closed = false;
      let runStart = i; // copy plain runs with one slice instead of char by char
      while (i < n) {
        const c = line.charCodeAt(i);
        if (c === 34) {
          value += line.slice(runStart, i);
          closed = true;
          i++;
          break;
        }
        if (c === 92 /* \ */) {
          value += line.slice(runStart, i);
          const next = line[i + 1];
          if (next === '\\') value += '\\';
          else if (next === '"') value += '"';
          else if (next === 'n') value += '\n';
          else {
            return {
              ok: false,
              reason: `invalid escape "\\${next ?? ''}" in value of label "${labelName}" (allowed: \\\\ \\" \\n)`,
            };
          }
          i += 2;
          runStart = i;
          continue;
        }
        i++;
      }
      if (!closed) return { ok: false, reason: `unterminated value of label "${labelName}"` };
      if (Object.hasOwn(labels, labelName)) {
        return { ok: false, reason: `duplicate label name "${labelName}"` };
      }
      labels[labelName] = value;
      while (i < n && isBlank(line.charCodeAt(i))) i++;
      const sep = line.charCodeAt(i);
      if (sep === 44 /* , */) {
        i++;
        continue; // a trailing comma before "}" is legal
      }
      if (sep === 125) {
        i++;
        break;
      }
      return { ok: false, reason: `expected "," or "}" after value of label "${labelName}"` };
    }
  } else {
    i = afterName;
    if (i < n && !isBlank(line.charCodeAt(i))) {
      // The name ran into a character that is neither a name char, a blank nor "{".
      return { ok: false, reason: `invalid character ${JSON.stringify(line[i])} in metric name` };
    }
  }

  // Remaining: blank-separated value and optional timestamp. As in Go's expfmt, a blank
  // is optional right after "}" but needed after a bare name.
  const rest = line.slice(i);
  if (!afterLabels && rest.length > 0 && !isBlank(rest.charCodeAt(0))) {
    return { ok: false, reason: 'expected a blank before the sample value' };
  }
  const tokens = splitBlanks(rest);
  if (tokens.length === 0) return { ok: false, reason: 'missing sample value' };
  if (tokens.length > 2) return { ok: false, reason: 'unexpected text after the timestamp' };
  const valueToken = tokens[0] as string;
  const value = parseFloatToken(valueToken);
  if (value === undefined) return { ok: false, reason: `invalid sample value "${clip(valueToken, 40)}"` };
  const tsToken = tokens[1];
  if (tsToken === undefined) return { ok: true, name, labels, value };
  if (!INT_RE.test(tsToken)) {
    return { ok: false, reason: `invalid timestamp "${clip(tsToken, 40)}": must be integer milliseconds` };
  }
  const timestampMs = Number(tsToken);
  if (!Number.isSafeInteger(timestampMs)) {
    return { ok: false, reason: `timestamp "${clip(tsToken, 40)}" is out of range` };
  }
  return { ok: true, name, labels, value, timestampMs };
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function unescapeHelp(s: string): string {
  // Only \\ and \n are escapes in HELP; any other backslash stays literal (as in Go's expfmt).
  return s.replace(/\\(\\|n)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'));
}

/** Splits on runs of blanks, dropping empty tokens (a hand loop: this is the hot path). */
function splitBlanks(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && isBlank(s.charCodeAt(i))) i++;
    if (i >= n) break;
    const start = i;
    while (i < n && !isBlank(s.charCodeAt(i))) i++;
    out.push(s.slice(start, i));
  }
  return out;
}

/**
 * An order-independent identity for a label set. Values are length-prefixed so no value
 * can forge a separator; the sort is skipped when names already come sorted (the usual case).
 */
function labelKey(labels: Labels, skip?: string): string {
  let keys = Object.keys(labels);
  if (skip !== undefined) keys = keys.filter((k) => k !== skip);
  for (let k = 1; k < keys.length; k++) {
    if ((keys[k - 1] as string) > (keys[k] as string)) {
      keys = [...keys].sort();
      break;
    }
  }
  let key = '';
  for (const k of keys) {
    const v = labels[k] as string;
    key += `${k}=${v.length}:${v},`;
  }
  return key;
}

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const;
const SUMMARY_SUFFIXES = ['_sum', '_count'] as const;

/** Parses a `/metrics` body. Never throws; malformed lines are skipped and reported. */
export function parseExposition(text: string, options: ParseOptions = {}): ParseResult {
  const parser = lineParser(text, options);
  for (let idx = 0; idx < parser.lineCount; idx++) parser.step(idx);
  return parser.finish();
}

/** Lines parsed between two yields of `parseExpositionYielding`: a few milliseconds of work. */
const LINES_PER_SLICE = 2000;

/**
 * `parseExposition` that yields to the event loop every few milliseconds, so that one tenant's huge page
 * (130,000 series take seconds) cannot hold every other pool's tick. `continueIf` is asked at each yield;
 * when it says no, the parse stops and this resolves to null.
 */
export async function parseExpositionYielding(
  text: string,
  continueIf: () => boolean,
  options: ParseOptions = {},
): Promise<ParseResult | null> {
  const parser = lineParser(text, options);
  for (let idx = 0; idx < parser.lineCount; idx++) {
    if (idx > 0 && idx % LINES_PER_SLICE === 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!continueIf()) return null;
    }
    parser.step(idx);
  }
  return parser.finish();
}

/** The parser's state over one body: `step(i)` takes line i (in order), `finish` checks the families. */
function lineParser(
  text: string,
  options: ParseOptions,
): { lineCount: number; step(idx: number): void; finish(): ParseResult } {
  const maxRecorded = options.maxRecordedErrors ?? DEFAULT_MAX_RECORDED_ERRORS;
  const families = new Map<string, MetricFamily>();
  const typeLine = new Map<string, number>();
  const helpSeen = new Set<string>();
  const seriesSeen = new Set<string>();
  const errors: ParseError[] = [];
  let errorCount = 0;

  const fail = (line: string, lineNumber: number, reason: string, kind: 'line' | 'family' = 'line') => {
    errorCount++;
    if (errors.length < maxRecorded) {
      errors.push({ line: clip(line, MAX_ERROR_LINE_CHARS), lineNumber, reason, kind });
    }
  };

  const familyFor = (name: string): MetricFamily => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', samples: [] };
      families.set(name, f);
    }
    return f;
  };

  // Which declared family does a sample name belong to? Only TYPE lines make
  // `x_bucket` part of `x`; without one it is an untyped family of its own.
  const owner = (sampleName: string): MetricFamily => {
    const exact = families.get(sampleName);
    if (exact && exact.type !== 'histogram') return exact;
    for (const suffix of HISTOGRAM_SUFFIXES) {
      if (!sampleName.endsWith(suffix)) continue;
      const base = families.get(sampleName.slice(0, -suffix.length));
      if (base?.type === 'histogram') return base;
      if (base?.type === 'summary' && (SUMMARY_SUFFIXES as readonly string[]).includes(suffix)) return base;
    }
    return exact ?? familyFor(sampleName);
  };

  // A UTF-8 BOM is not part of the format, but some proxies add one; it would break line 1.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = body.split('\n');
  const step = (idx: number): void => {
    const lineNumber = idx + 1;
    let raw = lines[idx] as string;
    if (raw.endsWith('\r')) raw = raw.slice(0, -1); // tolerate CRLF bodies
    let start = 0;
    while (start < raw.length && isBlank(raw.charCodeAt(start))) start++;
    if (start === raw.length) return;
    const line = start === 0 ? raw : raw.slice(start);

    if (line.charCodeAt(0) === 35 /* # */) {
      const m = /^#[ \t]+(HELP|TYPE)(?:[ \t]+|$)(.*)$/s.exec(line);
      if (!m) return; // a plain comment
      const keyword = m[1] as 'HELP' | 'TYPE';
      const directive = m[2] as string;
      const nm = /^([^ \t]+)(?:[ \t](.*))?$/s.exec(directive);
      if (!nm) {
        fail(raw, lineNumber, `${keyword} line without a metric name`);
        return;
      }
      const name = nm[1] as string;
      const arg = nm[2] ?? '';
      if (!isValidMetricName(name)) {
        fail(raw, lineNumber, `${keyword} line has an invalid metric name "${clip(name, 60)}"`);
        return;
      }
      if (keyword === 'HELP') {
        if (helpSeen.has(name)) {
          fail(raw, lineNumber, `second HELP line for "${name}"`);
          return;
        }
        helpSeen.add(name);
        familyFor(name).help = unescapeHelp(arg);
        return;
      }
      const type = arg.trim();
      if (!METRIC_TYPES.has(type)) {
        fail(raw, lineNumber, `unknown metric type "${clip(type, 40)}" for "${name}"`);
        return;
      }
      if (typeLine.has(name)) {
        fail(raw, lineNumber, `second TYPE line for "${name}"`);
        return;
      }
      const f = familyFor(name);
      if (f.samples.length > 0) {
        fail(raw, lineNumber, `TYPE line for "${name}" after its samples`);
        return;
      }
      f.type = type as MetricType;
      typeLine.set(name, lineNumber);
      return;
    }

    const parsed = parseSampleLine(line);
    if (!parsed.ok) {
      fail(raw, lineNumber, parsed.reason);
      return;
    }
    const family = owner(parsed.name);
    const misfit = sampleNameMisfit(family, parsed.name);
    if (misfit) {
      fail(raw, lineNumber, misfit);
      return;
    }
    if (family.type === 'histogram' && parsed.name === `${family.name}_bucket`) {
      const le = parsed.labels.le;
      if (le === undefined) {
        fail(raw, lineNumber, `histogram bucket without an "le" label`);
        return;
      }
      if (parseFloatToken(le) === undefined || Number.isNaN(parseFloatToken(le))) {
        fail(raw, lineNumber, `histogram bucket has an invalid "le" value "${clip(le, 40)}"`);
        return;
      }
    }
    if (family.type === 'summary' && parsed.name === family.name) {
      const q = parsed.labels.quantile;
      if (q === undefined || parseFloatToken(q) === undefined) {
        fail(raw, lineNumber, `summary sample without a valid "quantile" label`);
        return;
      }
    }
    const seriesId = `${parsed.name}\u0000${labelKey(parsed.labels)}`;
    if (seriesSeen.has(seriesId)) {
      // Prometheus drops duplicates too; keeping both would double-count in sums.
      fail(raw, lineNumber, `duplicate series ${parsed.name}${renderLabels(parsed.labels)}`);
      return;
    }
    seriesSeen.add(seriesId);
    const sample: Sample =
      parsed.timestampMs === undefined
        ? { name: parsed.name, labels: parsed.labels, value: parsed.value, lineNumber }
        : {
            name: parsed.name,
            labels: parsed.labels,
            value: parsed.value,
            timestampMs: parsed.timestampMs,
            lineNumber,
          };
    family.samples.push(sample);
  };

  const finish = (): ParseResult => {
    for (const f of families.values()) {
      if (f.type === 'histogram') {
        for (const problem of histogramProblems(f)) {
          const at = problem.lineNumber ?? typeLine.get(f.name) ?? 0;
          fail(lines[at - 1]?.replace(/\r$/, '') ?? '', at, problem.reason, 'family');
        }
      }
    }
    return { families: [...families.values()], errors, errorCount };
  };
  return { lineCount: lines.length, step, finish };
}

/** A histogram has no bare sample and a summary no `_bucket`; say so instead of guessing. */
function sampleNameMisfit(f: MetricFamily, sampleName: string): string | undefined {
  if (f.type === 'histogram' && sampleName === f.name) {
    return `histogram "${f.name}" has no bare sample: expected _bucket, _sum or _count`;
  }
  return undefined;
}

interface FamilyProblem {
  reason: string;
  lineNumber?: number;
}

/** Checks each histogram series: `+Inf` bucket, `_count` equal to it, `_sum`, monotonic buckets. */
function histogramProblems(f: MetricFamily): FamilyProblem[] {
  interface Series {
    buckets: { le: number; value: number; lineNumber: number }[];
    count?: Sample;
    sum?: Sample;
    labels: Labels;
    lastLine: number;
  }
  const series = new Map<string, Series>();
  for (const s of f.samples) {
    const key = labelKey(s.labels, 'le');
    let entry = series.get(key);
    if (!entry) {
      entry = { buckets: [], labels: s.labels, lastLine: s.lineNumber };
      series.set(key, entry);
    }
    entry.lastLine = Math.max(entry.lastLine, s.lineNumber);
    if (s.name === `${f.name}_bucket`) {
      entry.buckets.push({
        le: parseFloatToken(s.labels.le ?? '') ?? Number.NaN,
        value: s.value,
        lineNumber: s.lineNumber,
      });
    } else if (s.name === `${f.name}_count`) entry.count = s;
    else if (s.name === `${f.name}_sum`) entry.sum = s;
  }
  const problems: FamilyProblem[] = [];
  for (const entry of series.values()) {
    const where = `histogram ${f.name}${renderLabels(withoutLabel(entry.labels, 'le'))}`;
    const sorted = [...entry.buckets].sort((a, b) => a.le - b.le);
    const inf = sorted.find((b) => b.le === Number.POSITIVE_INFINITY);
    if (!inf) problems.push({ reason: `${where} has no le="+Inf" bucket`, lineNumber: entry.lastLine });
    if (!entry.count) problems.push({ reason: `${where} has no _count sample`, lineNumber: entry.lastLine });
    if (!entry.sum) problems.push({ reason: `${where} has no _sum sample`, lineNumber: entry.lastLine });
    if (inf && entry.count && inf.value !== entry.count.value && !Number.isNaN(inf.value)) {
      problems.push({
        reason: `${where}: _count ${entry.count.value} differs from the +Inf bucket ${inf.value}`,
        lineNumber: entry.count.lineNumber,
      });
    }
    for (let k = 1; k < sorted.length; k++) {
      const prev = sorted[k - 1];
      const cur = sorted[k];
      if (prev && cur && cur.value < prev.value) {
        problems.push({
          reason: `${where}: bucket counts decrease at le="${cur.le}"`,
          lineNumber: cur.lineNumber,
        });
        break;
      }
    }
  }
  return problems;
}

function withoutLabel(labels: Labels, skip: string): Labels {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(labels)) if (k !== skip) out[k] = v;
  return out;
}

// ---------------------------------------------------------------------------
// Rendering: the inverse of parsing, used by tests (round trip) and fake engines.

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k] ?? '')}"`).join(',')}}`;
}

/** Formats a value so that `parseFloatToken` gives back the same number (incl. -0). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  return String(v);
}

export interface RenderableFamily {
  readonly name: string;
  readonly type: MetricType;
  readonly help?: string;
  readonly samples: readonly Pick<Sample, 'name' | 'labels' | 'value' | 'timestampMs'>[];
}

export function renderExposition(families: readonly RenderableFamily[]): string {
  let out = '';
  for (const f of families) {
    if (f.help !== undefined) out += `# HELP ${f.name} ${escapeHelp(f.help)}\n`;
    out += `# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) {
      out += `${s.name}${renderLabels(s.labels)} ${formatValue(s.value)}`;
      if (s.timestampMs !== undefined) out += ` ${s.timestampMs}`;
      out += '\n';
    }
  }
  return out;
}
