import { describe, expect, it } from 'vitest';
import { DeadlineError, type PendingCall, trackCalls, withDeadline } from './deadline.ts';

describe('a pool that outlives its deadline says which call it waits on', () => {
  const target = () => {
    let release: () => void = () => {};
    return {
      namespace: 'ns',
      ref: { kind: 'LeaderWorkerSet', name: 'a' },
      read: async () => ({ groups: 2 }),
      write: (_groups: number) =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
      release: () => release(),
    };
  };

  it('a write that hangs past 50 ms is named: "writing the count of LeaderWorkerSet ns/a"; a finished read leaves nothing', async () => {
    const pending: PendingCall = { waitingOn: null };
    const raw = target();
    const t = trackCalls(raw, pending);
    await expect(t.read()).resolves.toEqual({ groups: 2 });
    expect(pending.waitingOn).toBeNull();
    const writing = t.write(3);
    expect(pending.waitingOn).toBe('writing the count of LeaderWorkerSet ns/a');
    await expect(withDeadline(writing, 50, 'pool a')).rejects.toBeInstanceOf(DeadlineError);
    expect(pending.waitingOn).toBe('writing the count of LeaderWorkerSet ns/a');
    raw.release();
    await writing;
    expect(pending.waitingOn).toBeNull();
    // Plain properties pass through untouched.
    expect(t.ref.name).toBe('a');
  });
});
