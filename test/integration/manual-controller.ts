/** The manual-clock controller the drain integration tests drive, one tick per step. */
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import { Controller } from '../../src/control/controller.ts';
import { ManualSignalSource } from '../../src/control/signals.ts';

/**
 * A controller whose clock and ticks the test drives: `step` moves its clock and runs one tick; the signals
 * are set by hand (ManualSignalSource).
 */
export function manualController(kubeConfig: KubeConfig, namespace: string, startMs: number) {
  let nowMs = startMs;
  const signals = new ManualSignalSource();
  const controller = new Controller({
    kubeConfig,
    signals,
    policies: loadPolicies().policies,
    targetFor: (namespace, ref) => scaleTargetFor(kubeConfig, namespace, ref),
    logger: pino({ level: 'silent' }),
    namespace,
    nowMs: () => nowMs,
    sampleIntervalMs: 3_600_000, // ticks come from the test
  });
  return {
    controller,
    signals,
    nowSeconds: () => nowMs / 1000,
    async step(seconds = 1) {
      nowMs += seconds * 1000;
      await controller.tick();
    },
    async waitFor(paName: string) {
      for (let i = 0; i < 100; i++) {
        if (controller.watched().some((key) => key.endsWith(`/${paName}`))) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the watch never saw ${paName}`);
    },
  };
}

/** Ticks one second at a time (at most 15) until `probe` gives a value: a new pool holds in panic first. */
export async function stepUntil<T>(
  h: ReturnType<typeof manualController>,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  for (let i = 0; i < 15; i++) {
    await h.step();
    const value = await probe();
    if (value !== undefined) return value;
  }
  throw new Error('nothing changed after 15 ticks');
}
