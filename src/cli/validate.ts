/**
 * `kvpa validate FILE…`: checks PodAutoscaler and ScalingPolicy files against the API schemas, the
 * cross-field rules and the presets. Every error names file:line:column, the field path and a fix.
 * Exit 0 when all files are valid, 1 on any error, 2 on bad usage.
 */
import {
  addPolicy,
  BUNDLED_POLICY_DIR,
  checkPodAutoscaler,
  type DocumentError,
  formatError,
  loadPolicies,
  type ParsedDocument,
  readDocuments,
} from '../api/documents.ts';
import { resolveAll } from '../api/resolve.ts';
import { promqlLabelRule } from '../observe/prometheus-promql.ts';
import { EXIT, type Output, parseFlags, policiesFlag, UsageError } from './shell.ts';

export const VALIDATE_USAGE = `Usage: kvpa validate [--policies DIR] [--explain] FILE...

Checks PodAutoscaler (kvpa.io/v1alpha1) and ScalingPolicy files. Presets come from DIR
(default: kvpa's bundled policies/) plus any ScalingPolicy among the FILEs.
  --explain   also print each pool's effective settings and which layer set them
`;

export async function runValidate(argv: readonly string[], io: Output): Promise<number> {
  const { values, positionals: files } = parseFlags(
    argv,
    {
      policies: { type: 'string' },
      explain: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    io.out(VALIDATE_USAGE);
    return EXIT.ok;
  }
  if (files.length === 0)
    throw new UsageError('no files given; give one or more PodAutoscaler or ScalingPolicy YAML files');
  const { policies, errors: policyErrors } = loadPolicies(policiesFlag(values) ?? BUNDLED_POLICY_DIR);
  const errors: DocumentError[] = [...policyErrors];
  const documents: ParsedDocument[] = [];
  for (const file of files) {
    const r = readDocuments(file);
    errors.push(...r.errors);
    documents.push(...r.documents);
    // An empty file (or only comments) checks nothing: passing it would hide a wrong path or a truncated file.
    if (r.errors.length === 0 && r.documents.length === 0) {
      errors.push({
        file,
        line: 0,
        column: 0,
        path: '',
        message: 'no PodAutoscaler or ScalingPolicy in the file (it is empty or only comments)',
        hint: 'give a file with kind: PodAutoscaler or kind: ScalingPolicy (see examples/)',
      });
    }
  }
  // Presets given on the command line are usable by the PodAutoscalers given with them.
  for (const d of documents) if (d.kind === 'ScalingPolicy') addPolicy(policies, d, []);
  for (const d of documents) {
    if (d.kind !== 'PodAutoscaler') continue;
    const problems = checkPodAutoscaler(d, policies);
    errors.push(...problems);
    if (problems.length === 0 && values.explain) explain(d, policies, io);
  }
  errors.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  for (const e of errors) io.err(formatError(e));
  const bad = new Set(errors.map((e) => e.file));
  for (const d of documents) {
    if (bad.has(d.file)) continue;
    io.out(`ok  ${d.file}: ${d.kind} ${d.value.metadata.name}`);
    if (d.kind === 'PodAutoscaler') for (const note of promqlNotes(d, policies)) io.out(note);
  }
  if (errors.length > 0) {
    io.err(
      `${errors.length} error${errors.length === 1 ? '' : 's'} in ${bad.size} file${bad.size === 1 ? '' : 's'}`,
    );
    return EXIT.failed;
  }
  return EXIT.ok;
}

/**
 * What admission cannot check about a promql metric: the labels its answer must keep (the source
 * checks every answer against this rule; an answer that breaks it gives no value, and the pool holds).
 */
function promqlNotes(
  d: ParsedDocument & { kind: 'PodAutoscaler' },
  policies: Parameters<typeof resolveAll>[1],
): string[] {
  const notes: string[] = [];
  for (const p of resolveAll(d.value.spec, policies).pools) {
    for (const m of p.metrics) {
      if (m.type !== 'promql' || m.kind === undefined) continue;
      notes.push(`    ${d.value.metadata.name}/${p.name} promql ${m.name ?? ''}: ${promqlLabelRule(m.kind)}`);
    }
  }
  return notes;
}

function explain(
  d: ParsedDocument & { kind: 'PodAutoscaler' },
  policies: Parameters<typeof resolveAll>[1],
  io: Output,
): void {
  const { pools } = resolveAll(d.value.spec, policies);
  for (const p of pools) {
    io.out(
      `${d.value.metadata.name}/${p.name}: ${p.scaleTargetRef.kind} ${p.scaleTargetRef.name}, ${p.minReplicas}–${p.maxReplicas} groups`,
    );
    const metrics = p.metrics
      .map((m) => `${m.type === 'promql' ? m.name : m.type} target ${m.target}`)
      .join(', ');
    io.out(`  metrics: ${metrics}   (${p.sources.metrics})`);
    for (const field of [
      'stableWindowSeconds',
      'panicWindowPercentage',
      'panicThresholdPercentage',
      'maxScaleUpRate',
      'maxScaleDownRate',
      'scaleDownDelaySeconds',
      'startupTimeoutSeconds',
      'headroomPercentage',
      'horizonSeconds',
      'horizonMaxGrowthPercentage',
      'seasonalLookbackSeconds',
    ] as const) {
      io.out(`  ${field}: ${p[field]}   (${p.sources[field]})`);
    }
    for (const [k, v] of Object.entries(p.slo)) io.out(`  slo.${k}: ${v}   (${p.sources[`slo.${k}`]})`);
  }
}
