/**
 * The one place the controller changes a target: read, decide, write once guarded by the read's
 * resourceVersion; on a conflict re-read and decide again (someone else wrote, so the decision's input
 * changed). No write when the decision equals spec.
 */
import { ConflictError, type ScaleTarget, type TargetState } from './types.ts';

export interface ApplyResult {
  /** spec groups at the last read. */
  readonly from: number;
  /** groups decided at the last read. */
  readonly to: number;
  readonly wrote: boolean;
  /** reads made (1 unless conflicts forced a re-read). */
  readonly attempts: number;
}

export const DEFAULT_APPLY_ATTEMPTS = 3;

/**
 * Throws the last ConflictError after maxAttempts conflicts in a row (another writer keeps winning: the
 * controller should report it, not spin), and TargetNotFoundError / other errors at once.
 */
export async function applyGroups(
  target: ScaleTarget,
  decide: (state: TargetState) => number,
  maxAttempts: number = DEFAULT_APPLY_ATTEMPTS,
): Promise<ApplyResult> {
  let lastConflict: ConflictError | undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const state = await target.read();
    const to = decide(state);
    if (to === state.specGroups) return { from: state.specGroups, to, wrote: false, attempts: attempt };
    try {
      await target.write(to, state.resourceVersion);
      return { from: state.specGroups, to, wrote: true, attempts: attempt };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      lastConflict = err;
    }
  }
  throw new ConflictError(
    target.ref,
    target.namespace,
    `still conflicting after ${maxAttempts} attempts (another writer keeps changing it; last: ${lastConflict?.message})`,
  );
}
