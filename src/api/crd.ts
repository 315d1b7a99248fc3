/**
 * Generates the PodAutoscaler CustomResourceDefinition from the zod schemas, so the API has one
 * definition. zod's OpenAPI 3.0 output is turned into a Kubernetes structural schema: every node has
 * a type, no $ref, no additionalProperties beside properties, and CEL rules carried through.
 */
import { z } from 'zod';
import {
  API_GROUP,
  API_VERSION,
  KIND,
  PLURAL,
  PodAutoscalerSpecSchema,
  PodAutoscalerStatusSchema,
} from './podautoscaler.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonSchemaNode = { [key: string]: Json };

/** Lists whose items are keyed by name/type: the API server then rejects duplicates and merges by key. */
const LIST_MAP_KEYS: Record<string, string> = {
  'spec.pools': 'name',
  'status.pools': 'name',
  'status.conditions': 'type',
};

function isObject(x: Json | undefined): x is { [key: string]: Json } {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Rewrites one zod JSON-schema node (and its children) into structural form. */
export function toStructural(node: JsonSchemaNode, path: string): JsonSchemaNode {
  const out: JsonSchemaNode = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema' || key === 'id') continue;
    if (key === 'additionalProperties' && value === false) continue;
    // Every bound zod emits is kept, the int32 and safe-integer ones of an unbounded int too: they are
    // what kvpa enforces, so the API server must refuse what the controller would mark InvalidSpec.
    // The API server checks date-time itself; zod's long regex would only make errors unreadable.
    if (key === 'pattern' && node.format === 'date-time') continue;
    if (key === 'properties' && isObject(value)) {
      const props: JsonSchemaNode = {};
      for (const [name, child] of Object.entries(value)) {
        if (isObject(child)) props[name] = toStructural(child, path === '' ? name : `${path}.${name}`);
      }
      out.properties = props;
      continue;
    }
    if (key === 'items' && isObject(value)) {
      out.items = toStructural(value, path);
      continue;
    }
    out[key] = value;
  }
  const listKey = LIST_MAP_KEYS[path];
  if (listKey !== undefined && out.type === 'array') {
    out['x-kubernetes-list-type'] = 'map';
    out['x-kubernetes-list-map-keys'] = [listKey];
  }
  return out;
}

/** Problems that would make the API server reject the schema as non-structural. Empty when fine. */
export function structuralProblems(node: Json, path = '<root>'): string[] {
  if (!isObject(node)) return [];
  const problems: string[] = [];
  if (typeof node.type !== 'string') problems.push(`${path}: no type`);
  for (const banned of ['$ref', 'oneOf', 'anyOf', 'allOf', 'not', 'const', '$defs', 'definitions']) {
    if (banned in node) problems.push(`${path}: ${banned} is not allowed in a structural schema`);
  }
  if ('additionalProperties' in node && 'properties' in node) {
    problems.push(`${path}: additionalProperties and properties are mutually exclusive`);
  }
  if (node.type === 'array' && !isObject(node.items)) problems.push(`${path}: array without items`);
  const props = node.properties;
  if (isObject(props)) {
    for (const [name, child] of Object.entries(props))
      problems.push(...structuralProblems(child, `${path}.${name}`));
  }
  if (isObject(node.items)) problems.push(...structuralProblems(node.items, `${path}[]`));
  return problems;
}

function jsonSchemaOf(schema: z.ZodType, path: string): JsonSchemaNode {
  const raw = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' });
  return toStructural(raw as JsonSchemaNode, path);
}

export function buildCrd(): JsonSchemaNode {
  const spec = jsonSchemaOf(PodAutoscalerSpecSchema, 'spec');
  const status = jsonSchemaOf(PodAutoscalerStatusSchema, 'status');
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${PLURAL}.${API_GROUP}`,
      annotations: { 'kvpa.io/generated-by': 'npm run gen:crds (src/api/crd.ts); do not edit' },
    },
    spec: {
      group: API_GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: 'podautoscaler',
        shortNames: ['kvpa'],
        categories: ['autoscaling'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            {
              name: 'Groups',
              type: 'string',
              jsonPath: '.status.groups',
              description: 'Ready/desired groups per pool.',
            },
            {
              name: 'Mode',
              type: 'string',
              jsonPath: '.status.mode',
              description: 'Stable, Panic or DryRun.',
            },
            {
              name: 'Ready',
              type: 'string',
              jsonPath: ".status.conditions[?(@.type=='Ready')].status",
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'PodAutoscaler scales the multi-node replica groups of LLM serving pools (prefill, decode) on KV-cache and queue signals, KPA-style.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'kvpa.io/v1alpha1' },
                kind: { type: 'string', description: 'PodAutoscaler' },
                metadata: { type: 'object' },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  };
}
