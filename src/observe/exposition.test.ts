import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIXTURES, metricsFixtureDir, readMetricsFixture } from '../../test/observe/metric-fixtures.ts';
import {
  type Labels,
  type MetricFamily,
  type MetricType,
  type ParseResult,
  parseExposition,
  parseExpositionYielding,
  parseFloatToken,
  type RenderableFamily,
  renderExposition,
} from './exposition.ts';

function family(r: ParseResult, name: string): MetricFamily {
  const f = r.families.find((x) => x.name === name);
  if (!f) throw new Error(`family ${name} not found`);
  return f;
}

function only(r: ParseResult, name: string) {
  const f = family(r, name);
  expect(f.samples).toHaveLength(1);
  return f.samples[0] as (typeof f.samples)[number];
}

describe('metric fixtures (test/fixtures/metrics)', () => {
  it('the fixture directory holds exactly the three documented fixtures', () => {
    const files = readdirSync(metricsFixtureDir)
      .filter((f) => f.endsWith('.txt'))
      .sort();
    expect(files).toEqual(Object.values(FIXTURES).sort());
  });

  it('vLLM V1 engine-label text: engine label, kv usage, _total/_created pairs, no errors', () => {
    const r = parseExposition(readMetricsFixture(FIXTURES.vllmEngineLabel));
    expect(r.errors).toEqual([]);
    expect(r.families).toHaveLength(14);

    const kv = family(r, 'vllm:kv_cache_usage_perc');
    expect(kv.type).toBe('gauge');
    expect(kv.help).toBe('KV-cache usage. 1 means 100 percent usage.');
    expect(kv.samples).toHaveLength(1);
    expect(kv.samples[0]?.value).toBe(0);
    // Label order as printed (engine first) and by name.
    expect(Object.keys(kv.samples[0]?.labels ?? {})).toEqual(['engine', 'model_name']);
    expect(kv.samples[0]?.labels).toEqual({ engine: '0', model_name: 'meta-llama/Llama-3.1-8B-Instruct' });

    const preempt = family(r, 'vllm:num_preemptions_total');
    expect(preempt.type).toBe('counter');
    expect(preempt.samples[0]?.value).toBe(0);

    // prometheus_client's `_created` companion is its own gauge family holding a Unix time.
    const created = only(r, 'vllm:prefix_cache_queries_created');
    expect(family(r, 'vllm:prefix_cache_queries_created').type).toBe('gauge');
    expect(created.value).toBe(1796191184.0933154);
    expect(only(r, 'vllm:generation_tokens_created').value).toBe(1.7961911840934126e9);
    expect(r.families.filter((f) => f.name.endsWith('_created'))).toHaveLength(5);

    // The 40-line cut leaves a HELP line with no samples: a family that is empty, not zero.
    const success = family(r, 'vllm:request_success_total');
    expect(success.samples).toEqual([]);
    expect(success.type).toBe('untyped');
    expect(success.help).toBe('Count of successfully processed requests.');
  });

  it('vLLM docs example: records the "..." lines and the truncated histogram without throwing', () => {
    const r = parseExposition(readMetricsFixture(FIXTURES.vllmDocsInvalid));
    const lineErrors = r.errors.filter((e) => e.kind === 'line');
    expect(lineErrors.map((e) => [e.lineNumber, e.line])).toEqual([
      [4, '...'],
      [8, '...'],
      [14, '...'],
    ]);
    for (const e of lineErrors) expect(e.reason).toMatch(/invalid metric name/);

    const familyErrors = r.errors.filter((e) => e.kind === 'family');
    expect(familyErrors.map((e) => e.reason)).toEqual([
      'histogram vllm:time_to_first_token_seconds{model_name="meta-llama/Llama-3.1-8B-Instruct"} has no le="+Inf" bucket',
      'histogram vllm:time_to_first_token_seconds{model_name="meta-llama/Llama-3.1-8B-Instruct"} has no _sum sample',
    ]);
    expect(familyErrors[0]?.lineNumber).toBe(25);
    expect(r.errorCount).toBe(5);

    // Everything well-formed around the bad lines is kept.
    expect(only(r, 'vllm:num_requests_running').value).toBe(8);
    expect(only(r, 'vllm:generation_tokens_total').value).toBe(27453);
    const success = family(r, 'vllm:request_success_total');
    expect(success.samples.map((s) => [s.labels.finished_reason, s.value])).toEqual([
      ['stop', 1],
      ['length', 131],
      ['abort', 0],
    ]);
    const ttft = family(r, 'vllm:time_to_first_token_seconds');
    expect(ttft.type).toBe('histogram');
    expect(ttft.samples).toHaveLength(9);
    expect(ttft.samples.at(-1)?.name).toBe('vllm:time_to_first_token_seconds_count');
  });

  it('SGLang docs example: token_usage, queue, running, scientific notation, histograms', () => {
    const r = parseExposition(readMetricsFixture(FIXTURES.sglangDocs));
    expect(r.errors).toEqual([]);
    expect(r.families).toHaveLength(12);
    expect(only(r, 'sglang:token_usage').value).toBe(0.28);
    expect(only(r, 'sglang:num_queue_reqs').value).toBe(2826);
    expect(only(r, 'sglang:num_running_reqs').value).toBe(162);
    expect(only(r, 'sglang:prompt_tokens_total').value).toBe(8128902);
    expect(only(r, 'sglang:cache_hit_rate').value).toBe(0.007507552643049313);

    const tpot = family(r, 'sglang:time_per_output_token_seconds');
    expect(tpot.type).toBe('histogram');
    const inf = tpot.samples.find((s) => s.name.endsWith('_bucket') && s.labels.le === '+Inf');
    expect(inf?.value).toBe(7400757);
    // SGLang prints _sum before the buckets; grouping is by name, not position.
    expect(tpot.samples[0]?.name).toBe('sglang:time_per_output_token_seconds_sum');

    const func = family(r, 'sglang:func_latency_seconds');
    expect(func.samples).toHaveLength(21);
    expect(func.samples[0]?.labels).toEqual({ name: 'generate_request' });
    expect(func.samples[2]?.labels.le).toBe('0.07500000000000001');
  });
});

describe('sample line syntax', () => {
  const one = (text: string) => parseExposition(text);

  it('unescapes \\\\, \\" and \\n in label values and keeps other characters verbatim', () => {
    const r = one('a{x="q\\"uote\\\\back\\nnl",y="ünï{}=,"} 1\n');
    expect(r.errors).toEqual([]);
    expect(r.families[0]?.samples[0]?.labels).toEqual({ x: 'q"uote\\back\nnl', y: 'ünï{}=,' });
  });

  it('rejects unknown escapes, unterminated values, duplicate label names and bad label names', () => {
    const r = one(
      [
        'a{x="\\q"} 1',
        'b{x="open} 1',
        'c{x="1",x="2"} 1',
        'd{1x="1"} 1',
        'e{x=1} 1',
        'f{x="1" y="2"} 1',
      ].join('\n'),
    );
    expect(r.families).toEqual([]);
    expect(r.errors.map((e) => e.lineNumber)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.errors[0]?.reason).toMatch(/invalid escape/);
    expect(r.errors[1]?.reason).toMatch(/unterminated/);
    expect(r.errors[2]?.reason).toMatch(/duplicate label name "x"/);
    expect(r.errors[3]?.reason).toMatch(/invalid label name/);
    expect(r.errors[4]?.reason).toMatch(/expected '"'/);
    expect(r.errors[5]?.reason).toMatch(/expected "," or "}"/);
  });

  it('accepts Go float syntax: exponents, NaN, ±Inf, leading dot', () => {
    const r = one('a 1e-3\nb -1.5E+2\nc .5\nd NaN\ne +Inf\nf -Inf\ng Inf\nh 9.75010481363281e-06\n');
    expect(r.errors).toEqual([]);
    const v = (n: string) => only(r, n).value;
    expect([v('a'), v('b'), v('c'), v('e'), v('f'), v('g'), v('h')]).toEqual([
      0.001,
      -150,
      0.5,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.POSITIVE_INFINITY,
      9.75010481363281e-6,
    ]);
    expect(v('d')).toBeNaN();
  });

  it('rejects values Number() would take but Prometheus would not, and missing values', () => {
    const r = one('a 0x10\nb 1_000\nc abc\nd\ne{x="1"}\nf 1,5\n');
    expect(r.families).toEqual([]);
    expect(r.errors).toHaveLength(6);
    expect(r.errors[0]?.reason).toBe('invalid sample value "0x10"');
    expect(r.errors[3]?.reason).toBe('missing sample value');
    expect(r.errors[4]?.reason).toBe('missing sample value');
  });

  it('reads integer millisecond timestamps and rejects fractional ones or extra tokens', () => {
    const r = one('a 1 1700000000000\nb 2 -5\nc 3 1.5\nd 4 5 6\ne 5 99999999999999999999\n');
    expect(only(r, 'a').timestampMs).toBe(1700000000000);
    expect(only(r, 'b').timestampMs).toBe(-5);
    expect('timestampMs' in only(r, 'a')).toBe(true);
    expect(r.errors.map((e) => e.reason)).toEqual([
      'invalid timestamp "1.5": must be integer milliseconds',
      'unexpected text after the timestamp',
      'timestamp "99999999999999999999" is out of range',
    ]);
  });

  it('tolerates blanks, tabs, a trailing comma, CRLF and no blank after "}"', () => {
    const r = one('  a { x = "1" , y="2", }\t7  \r\nb{x="1"}8\r\nc\t9\n');
    expect(r.errors).toEqual([]);
    expect(only(r, 'a').labels).toEqual({ x: '1', y: '2' });
    expect(only(r, 'a').value).toBe(7);
    expect(only(r, 'b').value).toBe(8);
    expect(only(r, 'c').value).toBe(9);
  });

  it('rejects characters that cannot be in a metric name', () => {
    const r = one('foo-bar 1\n1abc 2\nfoo.bar 3\n');
    expect(r.families).toEqual([]);
    expect(r.errors.map((e) => e.reason)).toEqual([
      'invalid character "-" in metric name',
      'invalid metric name: must match [a-zA-Z_:][a-zA-Z0-9_:]*',
      'invalid character "." in metric name',
    ]);
  });

  it('ignores a leading UTF-8 byte order mark', () => {
    const r = one('\uFEFF# TYPE a gauge\na 1\n');
    expect(r.errors).toEqual([]);
    expect(family(r, 'a').type).toBe('gauge');
  });

  it('keeps a label named __proto__ as data', () => {
    const r = one('a{__proto__="x",constructor="y"} 1\n');
    expect(r.errors).toEqual([]);
    const labels = only(r, 'a').labels;
    expect(Object.entries(labels)).toEqual([
      ['__proto__', 'x'],
      ['constructor', 'y'],
    ]);
  });

  it('rejects a duplicate series, whatever the label order', () => {
    const r = one('a{x="1",y="2"} 1\na{y="2",x="1"} 2\na{x="1",y="3"} 3\n');
    expect(family(r, 'a').samples.map((s) => s.value)).toEqual([1, 3]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]?.lineNumber).toBe(2);
    expect(r.errors[0]?.reason).toMatch(/^duplicate series/);
  });
});

describe('HELP, TYPE and family grouping', () => {
  it('unescapes HELP (\\\\ and \\n only) and ignores plain comments', () => {
    const r = parseExposition(
      '# just a comment\n#HELP not a directive\n# HELP a line\\nnext \\\\ \\q\na 1\n',
    );
    expect(r.errors).toEqual([]);
    expect(family(r, 'a').help).toBe('line\nnext \\ \\q');
    expect(r.families).toHaveLength(1);
  });

  it('reports bad directives with reasons', () => {
    const r = parseExposition(
      [
        '# TYPE a gauge',
        '# TYPE a counter',
        '# HELP a x',
        '# HELP a y',
        '# TYPE b bogus',
        'c 1',
        '# TYPE c gauge',
        '# HELP',
        '# TYPE 9x gauge',
      ].join('\n'),
    );
    expect(r.errors.map((e) => [e.lineNumber, e.reason])).toEqual([
      [2, 'second TYPE line for "a"'],
      [4, 'second HELP line for "a"'],
      [5, 'unknown metric type "bogus" for "b"'],
      [7, 'TYPE line for "c" after its samples'],
      [8, 'HELP line without a metric name'],
      [9, 'TYPE line has an invalid metric name "9x"'],
    ]);
    expect(family(r, 'a').type).toBe('gauge');
    expect(family(r, 'a').help).toBe('x');
    expect(family(r, 'c').type).toBe('untyped');
  });

  it('groups _bucket/_sum/_count under a declared histogram and checks its buckets', () => {
    const text = [
      '# TYPE h histogram',
      'h_bucket{le="0.1"} 1',
      'h_bucket{le="1"} 3',
      'h_bucket{le="+Inf"} 4',
      'h_sum 2.5',
      'h_count 4',
      'h_bucket{x="no-le"} 1',
      'h_bucket{le="abc"} 1',
      'h 1',
      'g_bucket{le="1"} 1',
    ].join('\n');
    const r = parseExposition(text);
    expect(family(r, 'h').samples.map((s) => s.name)).toEqual([
      'h_bucket',
      'h_bucket',
      'h_bucket',
      'h_sum',
      'h_count',
    ]);
    // Without a TYPE line, g_bucket is just an untyped family of that name.
    expect(family(r, 'g_bucket').type).toBe('untyped');
    expect(r.errors.map((e) => [e.lineNumber, e.reason])).toEqual([
      [7, 'histogram bucket without an "le" label'],
      [8, 'histogram bucket has an invalid "le" value "abc"'],
      [9, 'histogram "h" has no bare sample: expected _bucket, _sum or _count'],
    ]);
  });

  it('flags a histogram whose _count disagrees with +Inf or whose buckets decrease, keeping samples', () => {
    const r = parseExposition(
      [
        '# TYPE h histogram',
        'h_bucket{le="1"} 5',
        'h_bucket{le="2"} 3',
        'h_bucket{le="+Inf"} 6',
        'h_sum 1',
        'h_count 7',
      ].join('\n'),
    );
    expect(family(r, 'h').samples).toHaveLength(5);
    expect(r.errors.every((e) => e.kind === 'family')).toBe(true);
    expect(r.errors.map((e) => e.reason)).toEqual([
      'histogram h: _count 7 differs from the +Inf bucket 6',
      'histogram h: bucket counts decrease at le="2"',
    ]);
  });

  it('groups summary quantiles, _sum and _count and requires a quantile label', () => {
    const r = parseExposition(
      ['# TYPE s summary', 's{quantile="0.5"} 1', 's{quantile="0.9"} 2', 's_sum 10', 's_count 4', 's 3'].join(
        '\n',
      ),
    );
    expect(family(r, 's').samples.map((x) => x.name)).toEqual(['s', 's', 's_sum', 's_count']);
    expect(r.errors.map((e) => e.reason)).toEqual(['summary sample without a valid "quantile" label']);
  });

  it('caps recorded errors but counts them all, and clips long lines', () => {
    const text = `${'x'.repeat(1000)}-\n`.repeat(50);
    const r = parseExposition(text, { maxRecordedErrors: 10 });
    expect(r.errors).toHaveLength(10);
    expect(r.errorCount).toBe(50);
    expect(r.errors[0]?.line.length).toBeLessThanOrEqual(257);
  });
});

// ---------------------------------------------------------------------------
// Property tests. fast-check prints the seed and the shrunk counterexample on failure.

function assertWellFormedResult(text: string, r: ParseResult): void {
  const lineCount = text.split('\n').length;
  expect(r.errorCount).toBe(r.errors.length);
  for (const e of r.errors) {
    expect(e.reason.trim().length).toBeGreaterThan(0);
    expect(e.lineNumber).toBeGreaterThanOrEqual(1);
    expect(e.lineNumber).toBeLessThanOrEqual(lineCount);
  }
  const rejected = new Set(r.errors.filter((e) => e.kind === 'line').map((e) => e.lineNumber));
  for (const f of r.families) {
    for (const s of f.samples) {
      expect(rejected.has(s.lineNumber)).toBe(false);
    }
  }
}

const syntaxChar = fc.constantFrom(
  ...'aZ_:9{}"\\=, \t\n\r#.eE+-NaInfHELPTYPgugcounterhistogramle'.split(''),
  '# HELP ',
  '# TYPE ',
  ' histogram\n',
  '_bucket{le="',
  '+Inf',
  'NaN',
  '\u2028',
  '😀',
);

describe('parser properties', () => {
  it('never throws on any string, and every rejected line carries a non-empty reason', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.string({ unit: syntaxChar, maxLength: 80 }),
        ),
        (text) => {
          const r = parseExposition(text);
          assertWellFormedResult(text, r);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never throws on mutated real fixture lines: each mutant either parses or is rejected with a reason', () => {
    const lines = Object.values(FIXTURES).flatMap((f) => readMetricsFixture(f).split('\n'));
    const mutant = fc
      .record({
        line: fc.constantFrom(...lines.filter((l) => l.length > 0)),
        at: fc.nat(),
        op: fc.constantFrom('insert', 'delete', 'replace', 'truncate'),
        ch: syntaxChar,
      })
      .map(({ line, at, op, ch }) => {
        const i = at % (line.length + 1);
        if (op === 'insert') return line.slice(0, i) + ch + line.slice(i);
        if (op === 'delete') return line.slice(0, i) + line.slice(i + 1);
        if (op === 'replace') return line.slice(0, i) + ch + line.slice(i + 1);
        return line.slice(0, i);
      });
    fc.assert(
      fc.property(fc.array(mutant, { minLength: 1, maxLength: 5 }), (mutants) => {
        const text = mutants.join('\n');
        const r = parseExposition(text);
        assertWellFormedResult(text, r);
      }),
      { numRuns: 400 },
    );
  });

  // Weighted towards the characters that need escaping, so the round trip exercises them.
  const trickyChar = fc.oneof(
    fc.constantFrom('\\', '"', '\n', '\r', '\t', ' ', '{', '}', '=', ',', '#', '\u2028', '😀'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  );
  const trickyString = (maxLength: number) => fc.string({ unit: trickyChar, maxLength });
  const nameArb = fc
    .stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,12}$/)
    .filter((n) => !/_(bucket|sum|count)$/.test(n));
  const labelNameArb = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/).filter((n) => n !== 'le');
  const labelsArb = fc
    .uniqueArray(fc.tuple(labelNameArb, trickyString(12)), {
      selector: ([k]) => k,
      maxLength: 4,
    })
    .map((pairs) => {
      const labels: Record<string, string> = Object.create(null);
      for (const [k, v] of pairs) labels[k] = v;
      return labels as Labels;
    });
  const seriesKey = (l: Labels) => JSON.stringify(Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1)));
  const helpArb = fc.option(
    trickyString(30).filter((h) => !h.endsWith('\r')),
    { nil: undefined },
  );
  const timestampArb = fc.option(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), {
    nil: undefined,
  });

  const simpleFamilyArb = fc
    .record({
      name: nameArb,
      type: fc.constantFrom<MetricType>('counter', 'gauge', 'untyped'),
      help: helpArb,
      series: fc.uniqueArray(fc.record({ labels: labelsArb, value: fc.double(), ts: timestampArb }), {
        selector: (s) => seriesKey(s.labels),
        maxLength: 4,
      }),
    })
    .map(({ name, type, help, series }): RenderableFamily => {
      const samples = series.map((s) =>
        s.ts === undefined
          ? { name, labels: s.labels, value: s.value }
          : { name, labels: s.labels, value: s.value, timestampMs: s.ts },
      );
      return help === undefined ? { name, type, samples } : { name, type, help, samples };
    });

  // Complete histograms: sorted bounds, non-decreasing counts, +Inf == _count.
  const histogramArb = fc
    .record({
      name: nameArb,
      help: helpArb,
      series: fc.uniqueArray(
        fc.record({
          labels: labelsArb,
          bounds: fc.uniqueArray(fc.double({ noNaN: true, noDefaultInfinity: true }), { maxLength: 4 }),
          increments: fc.array(fc.nat(1000), { minLength: 5, maxLength: 5 }),
          sum: fc.double(),
        }),
        { selector: (s) => seriesKey(s.labels), maxLength: 3 },
      ),
    })
    .map(({ name, help, series }): RenderableFamily => {
      const samples = series.flatMap(({ labels, bounds, increments, sum }) => {
        let cumulative = 0;
        const les = [...bounds].sort((a, b) => a - b).map((b) => (Object.is(b, -0) ? '-0' : String(b)));
        const buckets = [...les, '+Inf'].map((le, i) => {
          cumulative += increments[i] ?? 0;
          return { name: `${name}_bucket`, labels: { ...labels, le }, value: cumulative };
        });
        return [
          ...buckets,
          { name: `${name}_sum`, labels, value: sum },
          { name: `${name}_count`, labels, value: cumulative },
        ];
      });
      return help === undefined
        ? { name, type: 'histogram', samples }
        : { name, type: 'histogram', help, samples };
    });

  it('round trip: rendering valid families to text and parsing gives back the same families and samples', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof(simpleFamilyArb, histogramArb), { selector: (f) => f.name, maxLength: 5 }),
        (families) => {
          const text = renderExposition(families);
          const r = parseExposition(text);
          expect(r.errors).toEqual([]);
          expect(r.families.map((f) => f.name)).toEqual(families.map((f) => f.name));
          for (const [i, f] of families.entries()) {
            const got = r.families[i] as MetricFamily;
            expect(got.type).toBe(f.type);
            expect(got.help).toBe(f.help);
            expect(got.samples.map(({ lineNumber: _ln, ...rest }) => rest)).toEqual(f.samples);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('parseFloatToken', () => {
  it('matches Go ParseFloat on the forms exporters print', () => {
    expect(parseFloatToken('1.7769301736864316e+09')).toBe(1776930173.6864316);
    expect(parseFloatToken('-0')).toBe(-0);
    expect(parseFloatToken('infinity')).toBe(Number.POSITIVE_INFINITY);
    expect(parseFloatToken('-inf')).toBe(Number.NEGATIVE_INFINITY);
    expect(parseFloatToken('nan')).toBeNaN();
    for (const bad of ['', ' 1', '1.2.3', 'e5', '0x1p3', '1e', '--1', '+']) {
      expect(parseFloatToken(bad)).toBeUndefined();
    }
  });
});

describe('parseExpositionYielding', () => {
  // 5,001 lines with a duplicate, a bad line and a histogram without +Inf: every path of the sync parse.
  const page = [
    '# TYPE h histogram',
    'h_bucket{le="1"} 1',
    'h_sum 1',
    'h_count 1',
    ...Array.from({ length: 4995 }, (_, i) => `g{engine="${i}"} ${i}`),
    'g{engine="0"} 9',
    'not a sample !',
  ].join('\n');

  it('a 5,001-line page: the same result as parseExposition, with 2 yields (one per 2,000 lines)', async () => {
    let asked = 0;
    const yielding = await parseExpositionYielding(page, () => {
      asked++;
      return true;
    });
    expect(yielding).toEqual(parseExposition(page));
    expect(yielding?.errorCount).toBe(3);
    expect(asked).toBe(2);
  });

  it('stops at the first yield told to stop: null after 2,000 of 5,001 lines', async () => {
    expect(await parseExpositionYielding(page, () => false)).toBeNull();
  });

  it('lets a timer run while it parses 130,000 lines', async () => {
    const lines = Array.from({ length: 130_000 }, (_, i) => `g{engine="${i}"} ${i % 10}`).join('\n');
    let fired = 0;
    const timer = setInterval(() => fired++, 1);
    try {
      const r = await parseExpositionYielding(lines, () => true);
      expect(r?.families[0]?.samples).toHaveLength(130_000);
    } finally {
      clearInterval(timer);
    }
    // 65 slices; a parse that held the event loop throughout would let the timer fire at most once.
    expect(fired).toBeGreaterThan(1);
  });
});
