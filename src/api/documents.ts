/**
 * Reading PodAutoscaler and ScalingPolicy documents from YAML, with errors that name the file, the
 * line, the field path and the fix. Used by `kvpa validate`, `kvpa decide`-adjacent tooling and the
 * policy loader; the controller validates objects from the API server with the same schemas.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Document, isMap, isScalar, LineCounter, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { KIND, type PodAutoscaler, PodAutoscalerSchema } from './podautoscaler.ts';
import { POLICY_KIND, type Policy, PolicySchema } from './policy.ts';
import { closest, resolveAll } from './resolve.ts';

export interface DocumentError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** Field path in the document, e.g. spec.pools[0].maxReplicas; empty for the document itself. */
  readonly path: string;
  readonly message: string;
  readonly hint: string;
}

interface DocumentBase {
  readonly file: string;
  readonly index: number;
  /** Line and column of a field of this document (or of its nearest parent). */
  readonly locate: (path: readonly PropertyKey[]) => { line: number; column: number };
}
export type ParsedDocument =
  | (DocumentBase & { readonly kind: 'PodAutoscaler'; readonly value: PodAutoscaler })
  | (DocumentBase & { readonly kind: 'ScalingPolicy'; readonly value: Policy });

/** spec.pools[0].metrics → ['spec', 'pools', 0, 'metrics'] */
export function parsePath(path: string): PropertyKey[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) =>
    m[2] !== undefined ? Number(m[2]) : (m[1] ?? ''),
  );
}

/** The policies/ directory shipped with kvpa. */
export const BUNDLED_POLICY_DIR = resolve(import.meta.dirname, '../../policies');

/** One error as the CLI prints it: `file:line:column: error: path: message` and a hint line. */
export function formatError(e: DocumentError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}:${e.column}` : e.file;
  const field = e.path === '' ? '' : `${e.path}: `;
  return `${where}: error: ${field}${e.message}${e.hint === '' ? '' : `\n    hint: ${e.hint}`}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  // Walk the schema along the path to list the keys an object accepts, for "did you mean".
  let node: unknown = schema;
  for (const p of path) {
    node = unwrap(node);
    const def = (
      node as {
        def?: { type?: string; shape?: Record<string, unknown>; element?: unknown; valueType?: unknown };
      }
    ).def;
    if (def?.type === 'object' && typeof p === 'string') node = def.shape?.[p];
    else if (def?.type === 'array') node = def.element;
    else if (def?.type === 'record') node = def.valueType;
    else return [];
  }
  const def = (unwrap(node) as { def?: { type?: string; shape?: Record<string, unknown> } }).def;
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

function unwrap(node: unknown): unknown {
  let n = node as { def?: { type?: string; innerType?: unknown; in?: unknown } } | undefined;
  while (
    n?.def &&
    (n.def.type === 'optional' ||
      n.def.type === 'default' ||
      n.def.type === 'pipe' ||
      n.def.type === 'nullable')
  ) {
    n = (n.def.innerType ?? n.def.in) as typeof n;
  }
  return n;
}

/** A hint that says how to fix one zod issue. */
function hintFor(
  issue: z.core.$ZodIssue,
  schema: z.ZodType,
): { message: string; hint: string; path: PropertyKey[] } {
  const path = [...issue.path];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(schema, path);
      const key = issue.keys[0] ?? '';
      const guess = closest(key, known);
      return {
        message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`,
        hint:
          guess !== null ? `did you mean "${guess}"?` : `remove it; allowed fields here: ${known.join(', ')}`,
        path: [...path, key],
      };
    }
    case 'invalid_type':
      return {
        message: issue.message,
        hint:
          issue.input === undefined
            ? 'this field is required: add it'
            : `write a value of type ${issue.expected}${issue.expected === 'number' && typeof issue.input === 'string' ? ' (without quotes)' : ''}`,
        path,
      };
    case 'invalid_value': {
      const allowed = issue.values.map(String);
      const guess = typeof issue.input === 'string' ? closest(issue.input, allowed) : null;
      return {
        message: `${JSON.stringify(issue.input)} is not one of ${allowed.join(', ')}`,
        hint: guess !== null ? `did you mean "${guess}"?` : `use one of ${allowed.join(', ')}`,
        path,
      };
    }
    case 'too_small':
      return {
        message: issue.message,
        hint: `use a value of at least ${String(issue.minimum)}${issue.inclusive === false ? ' (exclusive)' : ''}`,
        path,
      };
    case 'too_big':
      return { message: issue.message, hint: `use a value of at most ${String(issue.maximum)}`, path };
    case 'invalid_format':
      return { message: issue.message, hint: `write a valid ${issue.format}`, path };
    case 'custom':
      // Cross-field rule messages already say what to change.
      return { message: issue.message, hint: '', path };
    default:
      return {
        message: issue.message,
        hint: 'see kvpa validate --help and the CRD (kubectl explain podautoscaler.spec)',
        path,
      };
  }
}

/** 1-based line and column of the node at `path`, or of its nearest existing parent. */
function locate(
  doc: Document,
  counter: LineCounter,
  path: readonly PropertyKey[],
): { line: number; column: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as
      | { range?: [number, number, number] }
      | undefined;
    let offset = node && typeof node === 'object' && 'range' in node ? node.range?.[0] : undefined;
    // For an unknown key the value may be anywhere; point at the key itself.
    if (n === path.length && n > 0) {
      const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true);
      if (isMap(parent)) {
        const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === path[n - 1]);
        const keyRange = pair && isScalar(pair.key) ? pair.key.range : undefined;
        if (keyRange) offset = keyRange[0];
      }
    }
    if (offset !== undefined) {
      const pos = counter.linePos(offset);
      return { line: pos.line, column: pos.col };
    }
  }
  return { line: 1, column: 1 };
}

/** Parses every YAML document of a file; returns the valid ones and every error found. */
export function parseDocuments(
  file: string,
  text: string,
): { documents: ParsedDocument[]; errors: DocumentError[] } {
  const counter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: counter, prettyErrors: false });
  const documents: ParsedDocument[] = [];
  const errors: DocumentError[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = counter.linePos(e.pos[0]);
        errors.push({
          file,
          line: pos.line,
          column: pos.col,
          path: '',
          message: `YAML: ${e.message.split('\n')[0]}`,
          hint: 'fix the YAML syntax',
        });
      }
      return;
    }
    let value: unknown;
    try {
      // yaml caps alias expansion (maxAliasCount, default 100) and throws past it: an alias bomb.
      value = doc.toJS();
    } catch (e) {
      errors.push({
        file,
        line: 1,
        column: 1,
        path: '',
        message: `YAML: ${(e as Error).message.split('\n')[0]}`,
        hint: 'write the values out instead of expanding aliases (*name) so many times',
      });
      return;
    }
    if (value === null || value === undefined) return; // an empty document between --- markers
    const kind = (value as { kind?: unknown }).kind;
    const schema: z.ZodType | undefined =
      kind === KIND ? PodAutoscalerSchema : kind === POLICY_KIND ? PolicySchema : undefined;
    if (schema === undefined) {
      const pos = locate(doc, counter, ['kind']);
      errors.push({
        file,
        ...pos,
        path: 'kind',
        message: `unknown kind ${JSON.stringify(kind)}`,
        hint: `kvpa validates kind ${KIND} (apiVersion kvpa.io/v1alpha1) and kind ${POLICY_KIND}`,
      });
      return;
    }
    const result = schema.safeParse(value, { reportInput: true });
    if (!result.success) {
      for (const issue of result.error.issues) {
        const { message, hint, path } = hintFor(issue, schema);
        errors.push({ file, ...locate(doc, counter, path), path: formatPath(path), message, hint });
      }
      return;
    }
    const at = (path: readonly PropertyKey[]) => locate(doc, counter, path);
    documents.push(
      kind === KIND
        ? { kind: 'PodAutoscaler', value: result.data as PodAutoscaler, file, index, locate: at }
        : { kind: 'ScalingPolicy', value: result.data as Policy, file, index, locate: at },
    );
  });
  return { documents, errors };
}

export function readDocuments(file: string): { documents: ParsedDocument[]; errors: DocumentError[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return {
      documents: [],
      errors: [
        {
          file,
          line: 0,
          column: 0,
          path: '',
          message: `cannot read: ${(e as Error).message}`,
          hint: 'check the path',
        },
      ],
    };
  }
  return parseDocuments(file, text);
}

/** Loads every preset in a directory. Duplicate names and invalid files are errors. */
export function loadPolicies(dir: string = BUNDLED_POLICY_DIR): {
  policies: Map<string, Policy>;
  errors: DocumentError[];
} {
  const policies = new Map<string, Policy>();
  const errors: DocumentError[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : code;
    const message = `cannot read the preset directory (${why})`;
    errors.push({
      file: dir,
      line: 0,
      column: 0,
      path: '',
      message,
      hint: 'give --policies a directory of ScalingPolicy YAML files',
    });
    return { policies, errors };
  }
  const files = names.filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();
  for (const f of files) {
    const { documents, errors: e } = readDocuments(join(dir, f));
    errors.push(...e);
    for (const d of documents) {
      if (d.kind !== 'ScalingPolicy') continue;
      addPolicy(policies, d, errors);
    }
  }
  return { policies, errors };
}

export function addPolicy(
  policies: Map<string, Policy>,
  d: ParsedDocument & { kind: 'ScalingPolicy' },
  errors: DocumentError[],
): void {
  const name = d.value.metadata.name;
  if (policies.has(name)) {
    errors.push({
      file: d.file,
      ...d.locate(['metadata', 'name']),
      path: 'metadata.name',
      message: `preset "${name}" is defined twice`,
      hint: 'rename one of them',
    });
  }
  policies.set(name, d.value);
}

/** Semantic checks the schema alone cannot make: presets exist, every pool ends up with metrics. */
export function checkPodAutoscaler(
  d: ParsedDocument & { kind: 'PodAutoscaler' },
  policies: ReadonlyMap<string, Policy>,
): DocumentError[] {
  const { errors } = resolveAll(d.value.spec, policies);
  return errors.map((e) => ({
    file: d.file,
    ...d.locate(parsePath(e.path)),
    path: e.path,
    message: e.message,
    hint: e.hint,
  }));
}
