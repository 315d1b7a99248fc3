/**
 * A failure boundary in time: each pool's and each PodAutoscaler's work gets its own deadline, so one
 * tenant's slow endpoint or API call can only hold up that tenant.
 */

/** Thrown by withDeadline; its message names what ran out of time. */
export class DeadlineError extends Error {}

/**
 * Settles like `work`, or rejects with a DeadlineError after `ms`. The work itself is not cancelled (a
 * promise cannot be); callers keep a busy flag so late work is never started twice. A late rejection
 * of `work` is swallowed here rather than becoming an unhandled rejection.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  work.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DeadlineError(`${what} did not finish within ${Math.round(ms / 100) / 10}s`)),
      ms,
    );
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
