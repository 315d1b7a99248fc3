/**
 * The in-memory decider of one pool: its signal windows and decision state. It owns no I/O; the
 * controller feeds it samples and the target's counts, and it returns an explained decision.
 */
import { type ResolvedPool, toDeciderSpec } from '../api/resolve.ts';
import { decide, initialState } from '../decide/kpa.ts';
import { SignalWindows } from '../decide/signal-windows.ts';
import type { DeciderSpec, DeciderState, Decision, SignalReading } from '../decide/types.ts';
import { type PoolSample, signalName } from './signals.ts';

export class PoolRunner {
  readonly spec: DeciderSpec;
  /** Created at the first decision, when the target's counts are known (restart safety needs them). */
  private state: DeciderState | null = null;
  private readonly windows: Map<string, SignalWindows>;

  constructor(readonly pool: ResolvedPool) {
    this.spec = toDeciderSpec(pool);
    this.windows = new Map(
      pool.metrics.map((m) => {
        const name = signalName(m);
        return [
          name,
          new SignalWindows({
            name,
            targetPerGroup: m.target,
            stableWindowSeconds: pool.stableWindowSeconds,
            panicWindowPercentage: pool.panicWindowPercentage,
            aggregation: pool.aggregation,
          }),
        ];
      }),
    );
  }

  /** Records this instant's samples; samples that did not pass the quality gate are not recorded. */
  record(samples: readonly PoolSample[], nowSeconds: number): void {
    for (const s of samples) {
      if (s.state === 'ok' && s.total !== undefined) this.windows.get(s.name)?.record(nowSeconds, s.total);
    }
  }

  /**
   * Decides at `nowSeconds`. A signal whose latest sample failed the gate is passed on in that state
   * (so the decision holds), even if its window still has older data.
   */
  decide(
    nowSeconds: number,
    readyGroups: number,
    requestedGroups: number,
    latest: readonly PoolSample[],
  ): Decision {
    const latestByName = new Map(latest.map((s) => [s.name, s]));
    const readings: SignalReading[] = [...this.windows.entries()].map(([name, w]) => {
      const s = latestByName.get(name);
      if (s !== undefined && s.state !== 'ok') {
        return {
          name,
          targetPerGroup: w.spec.targetPerGroup,
          state: s.state,
          ...(s.detail !== undefined ? { detail: s.detail } : {}),
        };
      }
      return w.read(nowSeconds);
    });
    const state = this.state ?? initialState(this.spec, readyGroups, nowSeconds, requestedGroups);
    const out = decide(this.spec, state, { readyGroups, requestedGroups, signals: readings }, nowSeconds);
    this.state = out.state;
    return out.decision;
  }

  get deciderState(): DeciderState | null {
    return this.state;
  }
}
