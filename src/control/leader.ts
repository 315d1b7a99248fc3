/**
 * Leader election through a coordination.k8s.io/v1 Lease, in the manner of client-go's
 * leaderelection: acquire when the lease is free or expired, renew every retry period, and give up
 * leadership when a renewal has not succeeded within the renew deadline. Every update carries the
 * resourceVersion it read, so two candidates can never both win.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface LeaderElectionOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationSeconds?: number;
  readonly renewDeadlineSeconds?: number;
  readonly retryPeriodSeconds?: number;
  readonly logger: Logger;
  readonly nowMs?: () => number;
}

export interface LeaderCallbacks {
  onStartedLeading(): Promise<void>;
  onStoppedLeading(): Promise<void>;
}

function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly now: () => number;
  private readonly leaseSeconds: number;
  private readonly renewDeadlineSeconds: number;
  private readonly retryMs: number;
  private leading = false;
  private stopped = false;
  private lastRenewMs = 0;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly options: LeaderElectionOptions) {
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.now = options.nowMs ?? Date.now;
    this.leaseSeconds = options.leaseDurationSeconds ?? 15;
    this.renewDeadlineSeconds = options.renewDeadlineSeconds ?? 10;
    this.retryMs = (options.retryPeriodSeconds ?? 2) * 1000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Runs until stop(); calls back on every change of leadership. */
  start(callbacks: LeaderCallbacks): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const held = await this.tryAcquireOrRenew();
        const nowMs = this.now();
        if (held) this.lastRenewMs = nowMs;
        if (!this.leading && held) {
          this.leading = true;
          this.options.logger.info(
            { identity: this.options.identity, lease: this.options.name },
            'became leader',
          );
          await callbacks.onStartedLeading();
        } else if (this.leading && !held && nowMs - this.lastRenewMs > this.renewDeadlineSeconds * 1000) {
          this.leading = false;
          this.options.logger.warn(
            { identity: this.options.identity, lease: this.options.name },
            'lost leadership',
          );
          await callbacks.onStoppedLeading();
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.retryMs);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      if (this.leading) {
        this.leading = false;
        await callbacks.onStoppedLeading();
      }
    })();
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
      const renewedMs = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
      const expired = renewedMs + (spec.leaseDurationSeconds ?? this.leaseSeconds) * 1000 < now.getTime();
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
