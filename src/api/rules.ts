import type { z } from 'zod';

/**
 * Cross-field rules, defined once: each has a CEL expression for the CRD's
 * x-kubernetes-validations (enforced by the API server) and a TypeScript check with the same meaning
 * (enforced by `kvpa validate` and the controller). A test evaluates both on the same documents.
 */

export interface CrossFieldRule<T> {
  /** CEL, evaluated with `self` bound to the object the rule is attached to. */
  readonly cel: string;
  /** Shown by the API server and by `kvpa validate`; it names the field and the fix. */
  readonly message: string;
  /** Path below the object the rule is attached to, for field-path errors (CRD `fieldPath`). */
  readonly fieldPath?: string;
  /**
   * Where a broken rule is broken, below the object it is attached to, for `kvpa validate` and the
   * controller: CEL's fieldPath is one static path and cannot name a list element, this can (e.g.
   * ['pools', 0, 'metrics', 1]). Only consulted when `check` fails; empty falls back to fieldPath.
   */
  readonly locate?: (self: T) => readonly (readonly (string | number)[])[];
  /** CEL cost is bounded with maxItems on lists; the TypeScript twin is the reference meaning. */
  readonly check: (self: T) => boolean;
}

/** The CRD form of a rule list. */
export function toValidations<T>(rules: readonly CrossFieldRule<T>[]): Record<string, string>[] {
  return rules.map((r) => ({
    rule: r.cel,
    message: r.message,
    ...(r.fieldPath !== undefined ? { fieldPath: r.fieldPath } : {}),
  }));
}

/** A zod schema that enforces `rules` in TypeScript and carries them as CEL for the CRD. */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly CrossFieldRule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const rule of rules) {
      if (rule.check(value)) continue;
      const located = rule.locate?.(value) ?? [];
      for (const path of located.length > 0 ? located : [fieldPathToPath(rule.fieldPath)]) {
        ctx.addIssue({ code: 'custom', message: rule.message, path: [...path] });
      }
    }
  }) as unknown as S;
  return refined.meta({ 'x-kubernetes-validations': toValidations(rules) }) as S;
}

function fieldPathToPath(fieldPath: string | undefined): string[] {
  return fieldPath === undefined ? [] : fieldPath.split('.').filter((p) => p.length > 0);
}
