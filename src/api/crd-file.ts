/** The CRD as the YAML file committed in crds/. */
import { stringify } from 'yaml';
import { buildCrd } from './crd.ts';

export const CRD_PATH = 'crds/podautoscalers.kvpa.io.yaml';

export function crdYaml(): string {
  const header = '# Generated from src/api/podautoscaler.ts by `npm run gen:crds`. Do not edit by hand.\n';
  return header + stringify(buildCrd(), { lineWidth: 0 });
}
