// The metric fixtures kept in the repository (test/fixtures/metrics; sources in its README).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const metricsFixtureDir = path.join(repoRoot, 'test/fixtures/metrics');

export const FIXTURES = {
  vllmEngineLabel: 'vllm-v1-engine-label.txt',
  vllmDocsInvalid: 'vllm-v1-docs-design-example.txt',
  sglangDocs: 'sglang-docs-production-metrics.txt',
  sglangDpPriority: 'sglang-dp-priority.txt',
  sglangPpCopies: 'sglang-pp-copies.txt',
  trtllm: 'trtllm-openai-server.txt',
  dynamoFrontend: 'dynamo-frontend.txt',
  dynamoWorker: 'dynamo-worker.txt',
} as const;

export function readMetricsFixture(file: string): string {
  return readFileSync(path.join(metricsFixtureDir, file), 'utf8');
}
