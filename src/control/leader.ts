/**
 * Leader election through a coordination.k8s.io/v1 Lease, in the manner of client-go's
 * leaderelection (k8s.io/client-go/tools/leaderelection/leaderelection.go): acquire when the lease is
 * free or expired, renew every retry period, and give up leadership when a renewal has not succeeded
 * within the renew deadline. Every update carries the resourceVersion it read, so two candidates can
 * never both win.
 *
 * Expiry is judged as client-go does, by the local monotonic clock: a candidate notes WHEN it last saw
 * the lease record change (holder or renewTime) and deems it expired leaseDuration after that, never
 * by comparing the holder's renewTime with its own wall clock (clocks of two nodes disagree). Every
 * Lease call has a deadline, every error is caught and retried next period, and a failing callback
 * is logged and ends leadership: nothing here can become an unhandled rejection.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { boundedApiClient } from '../actuate/kube.ts';

export interface LeaderElectionOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSeconds?: number;
  readonly renewDeadlineSeconds?: number;
  readonly retryPeriodSeconds?: number;
  readonly logger: Logger;
  /** Wall clock, for the times written into the Lease. */
  readonly nowMs?: () => number;
  /** Monotonic clock, for every judgement of elapsed time (performance.now by default). */
  readonly monoMs?: () => number;
  /** Deadline of one Lease call; half the renew deadline by default, so a round fits in it. */
  readonly callDeadlineMs?: number;
}

export interface LeaderCallbacks {
  onStartedLeading(): Promise<void>;
  onStoppedLeading(): Promise<void>;
}

function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The lease record as last observed, and when (monotonic) it last changed. */
interface Observed {
  readonly record: string;
  readonly atMonoMs: number;
}

/**
 * What proves the holder alive when it changes (client-go compares the whole record): every renewal is
 * an update, so a new resourceVersion; the holder and renewTime are kept for a server that reuses one.
 */
function recordOf(lease: V1Lease): string {
  const s = lease.spec ?? {};
  const renewedMs = s.renewTime ? new Date(s.renewTime).getTime() : 0;
  return JSON.stringify([lease.metadata?.resourceVersion ?? '', s.holderIdentity ?? '', renewedMs]);
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly now: () => number;
  private readonly mono: () => number;
  private readonly leaseSeconds: number;
  private readonly renewDeadlineSeconds: number;
  private readonly retryMs: number;
  private leading = false;
  private stopped = false;
  private lastRenewMonoMs = 0;
  private observed: Observed | null = null;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly options: LeaderElectionOptions) {
    this.now = options.nowMs ?? Date.now;
    this.mono = options.monoMs ?? (() => performance.now());
    this.leaseSeconds = options.leaseDurationSeconds ?? 15;
    this.renewDeadlineSeconds = options.renewDeadlineSeconds ?? 10;
    this.retryMs = (options.retryPeriodSeconds ?? 2) * 1000;
    this.api = boundedApiClient(
      options.kubeConfig,
      CoordinationV1Api,
      options.callDeadlineMs ?? Math.max(500, (this.renewDeadlineSeconds * 1000) / 2),
    );
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Runs until stop(); calls back on every change of leadership. The loop never rejects. */
  start(callbacks: LeaderCallbacks): void {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          await this.round(callbacks);
        } catch (err) {
          // round() catches its own calls; this is the last net, so the loop always goes on.
          this.options.logger.error({ err: String(err) }, 'leader election round failed');
        }
        await this.pause(this.retryMs);
      }
      if (this.leading) await this.stopLeading(callbacks, 'stopped');
    })();
  }

  /** One acquire-or-renew and what it means for leadership. */
  private async round(callbacks: LeaderCallbacks): Promise<void> {
    const held = await this.tryAcquireOrRenew();
    const nowMono = this.mono();
    if (held) this.lastRenewMonoMs = nowMono;
    if (!this.leading && held && !this.stopped) {
      this.leading = true;
      this.options.logger.info(
        { identity: this.options.identity, lease: this.options.name },
        'became leader',
      );
      try {
        await callbacks.onStartedLeading();
      } catch (err) {
        // Holding the lease without acting would stall every pool: hand it back so a standby (or this
        // replica, next round) starts afresh.
        this.options.logger.error({ err: String(err) }, 'starting as leader failed; giving the lease back');
        await this.stopLeading(callbacks, 'start failed');
        await this.release();
      }
    } else if (this.leading && !held && nowMono - this.lastRenewMonoMs > this.renewDeadlineSeconds * 1000) {
      await this.stopLeading(callbacks, 'lost leadership');
    }
  }

  private async stopLeading(callbacks: LeaderCallbacks, why: string): Promise<void> {
    this.leading = false;
    this.options.logger.warn(
      { identity: this.options.identity, lease: this.options.name, why },
      'not leading',
    );
    try {
      await callbacks.onStoppedLeading();
    } catch (err) {
      this.options.logger.error({ err: String(err) }, 'stopping as leader failed');
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Stops competing. With release, a held lease is handed back at once so a standby takes over quickly. */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const wasLeading = this.leading;
    await this.loop;
    if (release && wasLeading) await this.release();
  }

  private async release(): Promise<void> {
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.options.identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: new V1MicroTime(0),
      };
      await this.api.replaceNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
        body: lease,
      });
    } catch (err) {
      this.options.logger.warn({ err: String(err) }, 'releasing the lease failed; it will expire');
    }
  }

  private async read(): Promise<V1Lease | null> {
    try {
      return await this.api.readNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
      });
    } catch (err) {
      if (httpStatus(err) === 404) return null;
      throw err;
    }
  }

  /** One round: true when this candidate holds the lease after it. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { identity, name, namespace } = this.options;
    // Lease times are MicroTime: the API server wants six fractional digits, which a plain Date lacks.
    const now = new V1MicroTime(this.now());
    try {
      const lease = await this.read();
      if (lease === null) {
        await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: this.leaseSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const record = recordOf(lease);
      const nowMono = this.mono();
      if (this.observed?.record !== record) this.observed = { record, atMonoMs: nowMono };
      // Expired: the record has not changed for a lease duration of OUR monotonic time.
      const expired =
        nowMono - this.observed.atMonoMs > (spec.leaseDurationSeconds ?? this.leaseSeconds) * 1000;
      if (holder !== '' && holder !== identity && !expired) return false;
      const takingOver = holder !== identity;
      lease.spec = {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: this.leaseSeconds,
        renewTime: now,
        ...(takingOver ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      };
      // replace carries metadata.resourceVersion: a concurrent update makes this a 409, not a second leader.
      await this.api.replaceNamespacedLease({ name, namespace, body: lease });
      return true;
    } catch (err) {
      if (httpStatus(err) !== 409) {
        this.options.logger.warn({ identity, err: String(err) }, 'lease round failed');
      }
      return false;
    }
  }
}
