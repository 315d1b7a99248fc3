/**
 * The in-memory decider of one pool: its signal windows and decision state. It owns no I/O; the
 * caller feeds it samples and the target's counts, and it returns an explained decision. The
 * controller, the lab (`kvpa simulate`), `kvpa decide`, `recommend` and `backtest` all run this one
 * runner, so what the lab measures is what the controller does.
 */
import { decide, initialState } from './kpa.ts';
import { type SignalWindowSpec, SignalWindows } from './signal-windows.ts';
import type { DeciderSpec, DeciderState, Decision, SignalReading, SignalState } from './types.ts';

/** One signal of one pool at one instant. `total` is Σ over ready groups, present iff state is ok. */
export interface PoolSample {
  readonly name: string;
  readonly state: SignalState;
  readonly total?: number;
  readonly detail?: string;
}

export class PoolRunner {
  /** Created at the first decision, when the target's counts are known (restart safety needs them). */
  private state: DeciderState | null = null;
  private readonly windows: Map<string, SignalWindows>;

  constructor(
    readonly spec: DeciderSpec,
    signals: readonly SignalWindowSpec[],
  ) {
    this.windows = new Map(signals.map((s) => [s.name, new SignalWindows(s)]));
  }

  /**
   * Starts the decider with known counts before the first decision (a scenario's `initialReadyGroups`);
   * otherwise the first decision starts it from the counts it is given.
   */
  start(nowSeconds: number, readyGroups: number, requestedGroups = 0): void {
    this.state = initialState(this.spec, readyGroups, nowSeconds, requestedGroups);
  }

  /** Records this instant's samples; samples that did not pass the quality gate are not recorded. */
  record(samples: readonly PoolSample[], nowSeconds: number): void {
    for (const s of samples) {
      if (s.state === 'ok' && s.total !== undefined) this.windows.get(s.name)?.record(nowSeconds, s.total);
    }
  }

  /** Refills the windows from history (restart recovery); returns how many samples were recorded. */
  backfill(history: ReadonlyMap<string, readonly { atSeconds: number; total: number }[]>): number {
    let recorded = 0;
    for (const [name, points] of history) {
      const w = this.windows.get(name);
      if (w === undefined) continue;
      for (const p of points) if (w.record(p.atSeconds, p.total)) recorded++;
    }
    return recorded;
  }

  /**
   * Decides at `nowSeconds`. A signal whose latest sample failed the gate is passed on in that state
   * (so the decision holds), even if its window still has older data.
   */
  decide(
    nowSeconds: number,
    readyGroups: number,
    requestedGroups: number | undefined,
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
    return this.decideReadings(nowSeconds, readyGroups, requestedGroups, readings);
  }

  /** Decides from readings already aggregated (a scenario's stable and panic totals). */
  decideReadings(
    nowSeconds: number,
    readyGroups: number,
    requestedGroups: number | undefined,
    readings: readonly SignalReading[],
  ): Decision {
    const state = this.state ?? initialState(this.spec, readyGroups, nowSeconds, requestedGroups ?? 0);
    const out = decide(
      this.spec,
      state,
      { readyGroups, ...(requestedGroups !== undefined ? { requestedGroups } : {}), signals: readings },
      nowSeconds,
    );
    this.state = out.state;
    return out.decision;
  }

  get deciderState(): DeciderState | null {
    return this.state;
  }
}

/**
 * The count to write to the target, or undefined to leave it: a valid decision that differs from the
 * requested count, or an invalid one (no usable signal) that raises it (the missing-data fallback).
 * An invalid decision never lowers a pool.
 */
export function groupsToWrite(decision: Decision, requestedGroups: number): number | undefined {
  const desired = decision.desiredGroups;
  if (desired === requestedGroups) return undefined;
  return decision.valid || desired > requestedGroups ? desired : undefined;
}
