/** Writes crds/podautoscalers.kvpa.io.yaml from the zod schemas. `--check` fails when the file is stale. */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CRD_PATH, crdYaml } from '../src/api/crd-file.ts';

const target = resolve(import.meta.dirname, '..', CRD_PATH);
const wanted = crdYaml();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== wanted) {
    process.stderr.write(`${CRD_PATH} is stale: run npm run gen:crds\n`);
    process.exit(1);
  }
} else {
  writeFileSync(target, wanted);
  process.stdout.write(`wrote ${CRD_PATH}\n`);
}
