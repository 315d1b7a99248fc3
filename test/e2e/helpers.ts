import type { Behavior } from '../../src/api/podautoscaler.ts';
import type { Stack } from '../../src/stack/up.ts';

/** Helpers of the end-to-end tests: every wait is bounded and names what it waited for. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 500 ms until it returns a value (not undefined, null or false), or throws at the timeout. */
export async function until<T>(
  what: string,
  timeoutSeconds: number,
  probe: () => Promise<T | undefined | null | false>,
): Promise<T> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutSeconds} s waiting for ${what}`);
    await sleep(500);
  }
}

/**
 * Pins the stack's decode pool at `groups` (min = max, which the decider's bounds stage applies last, so each
 * edit is one scale step) and sets preset overrides for every pool.
 */
export async function pinDecode(stack: Stack, groups: number, overrides: Behavior): Promise<void> {
  await stack.editPodAutoscaler((pa) => ({
    ...pa,
    spec: {
      ...pa.spec,
      policyRef: {
        ...pa.spec.policyRef,
        name: pa.spec.policyRef?.name ?? 'deepseek-r1-disaggregated',
        overrides: { ...pa.spec.policyRef?.overrides, ...overrides },
      },
      pools: pa.spec.pools.map((p) =>
        p.name === 'decode' ? { ...p, minReplicas: groups, maxReplicas: groups } : p,
      ),
    },
  }));
}
