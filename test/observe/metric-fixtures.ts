// Locates the shared metric fixtures (read-only, outside the repo) for tests.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `$KVPA_SHARED_DIR/fixtures/metrics`, else `<repo>/../shared/fixtures/metrics`. */
export const metricsFixtureDir = path.resolve(
  process.env.KVPA_SHARED_DIR ?? path.resolve(repoRoot, '../shared'),
  'fixtures/metrics',
);

export const FIXTURES = {
  vllmCapture: 'vllm-v1-engine-label-capture.txt',
  vllmDocsInvalid: 'vllm-v1-docs-design-example.txt',
  sglangDocs: 'sglang-docs-production-metrics.txt',
} as const;

export function readMetricsFixture(file: string): string {
  return readFileSync(path.join(metricsFixtureDir, file), 'utf8');
}
