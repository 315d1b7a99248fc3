import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildCrd, structuralProblems } from './crd.ts';
import { CRD_PATH, crdYaml } from './crd-file.ts';
import { PodAutoscalerSpecSchema } from './podautoscaler.ts';

const repoRoot = resolve(import.meta.dirname, '../..');

type Node = Record<string, unknown>;
const child = (n: unknown, ...keys: string[]): Node =>
  keys.reduce<Node>((acc, k) => (acc[k] as Node) ?? {}, (n as Node) ?? {});

function everyNode(n: unknown, visit: (node: Node, path: string) => void, path = ''): void {
  if (typeof n !== 'object' || n === null) return;
  const node = n as Node;
  visit(node, path);
  for (const [name, c] of Object.entries(child(node, 'properties'))) everyNode(c, visit, `${path}.${name}`);
  if (node.items) everyNode(node.items, visit, `${path}[]`);
}

describe('the PodAutoscaler CRD', () => {
  const crd = buildCrd();
  const version = (child(crd, 'spec').versions as Node[])[0] ?? {};
  const root = child(version, 'schema', 'openAPIV3Schema');

  it('is current: crds/ holds exactly what npm run gen:crds writes', () => {
    const committed = readFileSync(resolve(repoRoot, CRD_PATH), 'utf8');
    expect(committed, 'crds/podautoscalers.kvpa.io.yaml is stale: run npm run gen:crds').toBe(crdYaml());
  });

  it('is a structural schema: a type on every node, no $ref or junctors', () => {
    expect(structuralProblems(root as never)).toEqual([]);
    // and the checker itself catches each kind of problem
    expect(structuralProblems({ properties: { a: { $ref: '#/x' } } } as never)).toHaveLength(3);
  });

  it('names the resource as the API says: kvpa.io/v1alpha1 podautoscalers, short name kvpa, namespaced', () => {
    const spec = child(crd, 'spec');
    expect(spec.group).toBe('kvpa.io');
    expect(child(spec, 'names')).toMatchObject({
      kind: 'PodAutoscaler',
      plural: 'podautoscalers',
      shortNames: ['kvpa'],
    });
    expect(spec.scope).toBe('Namespaced');
    expect(version.subresources).toEqual({ status: {} });
  });

  it('describes every spec field so kubectl explain helps', () => {
    const undescribed: string[] = [];
    everyNode(child(root, 'properties', 'spec'), (node, path) => {
      if (path !== '' && typeof node.description !== 'string') undescribed.push(`spec${path}`);
    });
    // leaf enums like status True/False excepted, every spec node says what it is for
    expect(undescribed.filter((p) => !p.endsWith('[]'))).toEqual([]);
  });

  it('carries the cross-field rules as CEL', () => {
    const spec = child(root, 'properties', 'spec');
    const rules = (n: Node) =>
      ((n['x-kubernetes-validations'] as { rule: string }[] | undefined) ?? []).map((r) => r.rule);
    expect(rules(spec).join(' ')).toContain('exists_one(q, q.name == p.name)');
    const pool = child(spec, 'properties', 'pools', 'items');
    expect(rules(pool)).toContain('!has(self.minReplicas) || self.minReplicas <= self.maxReplicas');
    expect(rules(child(pool, 'properties', 'scaleTargetRef')).join(' ')).toContain(
      "self.kind != 'RayCluster'",
    );
  });

  it('defaults mode to DryRun, and leaves behaviour fields to the policy preset', () => {
    const props = child(root, 'properties', 'spec', 'properties');
    expect(child(props, 'mode').default).toBe('DryRun');
    const poolProps = child(props, 'pools', 'items', 'properties');
    for (const field of ['stableWindowSeconds', 'scaleDownDelaySeconds', 'metrics', 'maxScaleUpRate']) {
      expect(child(poolProps, field).default, field).toBeUndefined();
    }
  });

  it('prints each pool’s groups, the mode and the age in kubectl get', () => {
    const columns = (version.additionalPrinterColumns as Node[]).map((c) => c.jsonPath);
    expect(columns).toEqual(
      expect.arrayContaining(['.status.groups', '.status.mode', '.metadata.creationTimestamp']),
    );
  });

  it('bounds every integer as zod does, so the API server refuses what kvpa validate refuses', () => {
    const unbounded: string[] = [];
    everyNode(root, (node, path) => {
      if (node.type !== 'integer') return;
      if (typeof node.minimum !== 'number' || typeof node.maximum !== 'number') unbounded.push(path);
    });
    expect(unbounded).toEqual([]);

    // maxReplicas has no bound of its own: the int32 range is the one zod enforces, and the CRD says it.
    const pool = child(root, 'properties', 'spec', 'properties', 'pools', 'items');
    expect(child(pool, 'properties', 'maxReplicas')).toMatchObject({ minimum: 1, maximum: 2147483647 });
    const spec = (maxReplicas: number) => ({
      metricsSource: { prometheus: { address: 'http://p:9090' } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'd' },
          maxReplicas,
        },
      ],
    });
    expect(PodAutoscalerSpecSchema.safeParse(spec(2147483647)).success).toBe(true);
    expect(PodAutoscalerSpecSchema.safeParse(spec(2147483648)).success).toBe(false);
    expect(PodAutoscalerSpecSchema.safeParse(spec(3000000000)).success).toBe(false);
  });

  it('round-trips through YAML unchanged', () => {
    expect(parse(crdYaml())).toEqual(crd);
  });
});
