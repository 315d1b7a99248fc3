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

/** What a pool is waiting on: the scale-target call in flight, for a deadline's message. */
export interface PendingCall {
  waitingOn: string | null;
}

const CALL_VERBS: Record<string, string> = {
  read: 'reading',
  write: 'writing the count of',
  writeRemoving: 'writing the count of',
  writeJoint: 'writing the counts of',
  heads: 'listing the pods of',
  setServing: 'setting routing on a pod of',
};

/**
 * The target with each of its calls recorded in `pending` while it runs ("writing the count of
 * LeaderWorkerSet ns/a"), so a pool that outlives its deadline can say which call it is stuck in.
 */
export function trackCalls<
  T extends { readonly namespace: string; readonly ref: { kind: string; name: string } },
>(target: T, pending: PendingCall): T {
  const what = `${target.ref.kind} ${target.namespace}/${target.ref.name}`;
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop);
      const verb = typeof prop === 'string' ? CALL_VERBS[prop] : undefined;
      if (verb === undefined || typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const label = `${verb} ${what}`;
        pending.waitingOn = label;
        return Promise.resolve(value.apply(t, args)).finally(() => {
          if (pending.waitingOn === label) pending.waitingOn = null;
        });
      };
    },
  });
}
