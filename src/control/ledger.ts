/**
 * The dry-run ledger: what the recommendation would have spent against what the target actually held,
 * in group-hours and GPU-hours, since dry-run began. Pure: the controller passes time and the target's
 * state in, and keeps the published form in status so a restarted or failed-over controller resumes it.
 *
 * - Each tick accrues the time since the previous one at this tick's counts (a step function, as
 *   `backtest` sums it).
 * - GPU-hours need the GPUs of one group (from the pod templates). They are shown only while every
 *   tick since `since` knew that figure: a partial sum would read as a saving, so unknown stays absent.
 * - Time with no controller running is not counted on either side: what would have been recommended
 *   then is unknown, and leaving it out of both keeps the comparison fair.
 */
import type { PodAutoscalerStatus } from '../api/podautoscaler.ts';

type PoolStatus = NonNullable<PodAutoscalerStatus['pools']>[number];
export type LedgerStatus = NonNullable<PoolStatus['dryRunLedger']>;

export interface LedgerAccount {
  readonly since: string;
  /** The previous tick's time; null right after a start or resume (the next tick accrues nothing). */
  readonly lastAtSeconds: number | null;
  readonly recommendedGroupSeconds: number;
  readonly actualGroupSeconds: number;
  /** null once any tick did not know the GPUs per group. */
  readonly gpu: { readonly recommendedSeconds: number; readonly actualSeconds: number } | null;
  /** GPUs of one group at the last tick, null when the target does not say. */
  readonly gpusPerGroup: number | null;
}

export function startLedger(nowIso: string): LedgerAccount {
  return {
    since: nowIso,
    lastAtSeconds: null,
    recommendedGroupSeconds: 0,
    actualGroupSeconds: 0,
    gpu: { recommendedSeconds: 0, actualSeconds: 0 },
    gpusPerGroup: null,
  };
}

/** The ledger a previous controller left in status, to go on from (null when there is none). */
export function resumeLedger(status: PoolStatus['dryRunLedger'] | undefined): LedgerAccount | null {
  if (status === undefined) return null;
  const known = status.recommendedGpuHours !== undefined && status.actualGpuHours !== undefined;
  return {
    since: status.since,
    lastAtSeconds: null,
    recommendedGroupSeconds: status.recommendedGroupHours * 3600,
    actualGroupSeconds: status.actualGroupHours * 3600,
    gpu: known
      ? {
          recommendedSeconds: (status.recommendedGpuHours ?? 0) * 3600,
          actualSeconds: (status.actualGpuHours ?? 0) * 3600,
        }
      : null,
    gpusPerGroup: status.gpusPerGroup ?? null,
  };
}

/** One tick: the time since the previous tick at this tick's recommended and actual group counts. */
export function accrue(
  l: LedgerAccount,
  nowSeconds: number,
  recommendedGroups: number,
  actualGroups: number,
  gpusPerGroup: number | null,
): LedgerAccount {
  const dt = l.lastAtSeconds === null ? 0 : Math.max(0, nowSeconds - l.lastAtSeconds);
  const gpu =
    l.gpu === null || gpusPerGroup === null
      ? null
      : {
          recommendedSeconds: l.gpu.recommendedSeconds + dt * recommendedGroups * gpusPerGroup,
          actualSeconds: l.gpu.actualSeconds + dt * actualGroups * gpusPerGroup,
        };
  return {
    since: l.since,
    lastAtSeconds: nowSeconds,
    recommendedGroupSeconds: l.recommendedGroupSeconds + dt * recommendedGroups,
    actualGroupSeconds: l.actualGroupSeconds + dt * actualGroups,
    gpu,
    gpusPerGroup,
  };
}

/** Hours to 3 decimals (3.6 s): precise enough to compare, short enough to read. */
function hours(seconds: number): number {
  return Math.round(seconds / 3.6) / 1000;
}

/** The ledger as status shows it; GPU-hours only while known throughout. */
export function ledgerStatus(l: LedgerAccount): LedgerStatus {
  return {
    since: l.since,
    recommendedGroupHours: hours(l.recommendedGroupSeconds),
    actualGroupHours: hours(l.actualGroupSeconds),
    ...(l.gpusPerGroup !== null ? { gpusPerGroup: l.gpusPerGroup } : {}),
    ...(l.gpu !== null
      ? { recommendedGpuHours: hours(l.gpu.recommendedSeconds), actualGpuHours: hours(l.gpu.actualSeconds) }
      : {}),
  };
}
