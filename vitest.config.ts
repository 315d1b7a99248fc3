import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/integration/**', 'test/e2e/**', '**/node_modules/**'],
        },
      },
      {
        // Runs against a real etcd + kube-apiserver started once by the globalSetup; the first run on a
        // machine builds the binaries (scripts/build-k8s.sh), which can take 20+ minutes.
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/harness/build-dist.ts', 'test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The whole live stack (kvpa up): its own control plane, workload controllers, Prometheus and
        // the kvpa controller process. Run on its own after the others (npm test), so it has the cores.
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/harness/build-dist.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
