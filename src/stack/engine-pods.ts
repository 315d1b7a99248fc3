/**
 * Pod → engine wiring for the live stack: watches LWS leader pods in a namespace and keeps `LiveEngines`'
 * groups equal to the Ready ones, then writes each leader's metrics port into an annotation so that
 * Prometheus' Kubernetes SD can find it (kwok pod IPs are not reachable; the engines listen on loopback).
 *
 * A pod is a serving leader when it carries `leaderworkerset.sigs.k8s.io/worker-index=0`, a pool role label
 * (`llm-d.ai/role` = prefill | decode, as KServe sets it), its containers run (ContainersReady=True) and it has
 * no deletion timestamp. It is routed (sent new requests) only while it is Ready with every readiness gate True,
 * as a Service routes only to Ready endpoints: kwok has no kubelet to fold the gates into Ready, so the check is
 * made here. A deleted leader's engine dies with its in-flight requests.
 * The pure half (`servingLeaders`, `annotationsToWrite`) decides; `EnginePodWatch` only moves data.
 */
import {
  CoreV1Api,
  type Informer,
  type KubeConfig,
  makeInformer,
  type ObjectCache,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Pool } from '../sim/policies/types.ts';
import { type EngineRef, POOLS } from './engines.ts';

export const LEADER_LABEL = 'leaderworkerset.sigs.k8s.io/worker-index';
export { ROLE_LABEL } from './demo.ts';

import { ROLE_LABEL } from './demo.ts';
export const METRICS_PORT_ANNOTATION = 'kvpa.io/emulated-metrics-port';
export const FIELD_MANAGER = 'kvpa-engines';

/** What the watch needs of `LiveEngines`. */
export interface EngineGroups {
  syncGroups(pool: Pool, refs: readonly EngineRef[], namespace?: string): Promise<void>;
  metricsPort(namespace: string, pod: string): number | undefined;
}

// ------------------------------------------------------------------ pure parts

const conditionTrue = (pod: V1Pod, type: string) =>
  pod.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;

/** The pool a pod serves as a running leader (routed or not), or undefined. */
export function servingPool(pod: V1Pod, roleLabel = ROLE_LABEL): Pool | undefined {
  const labels = pod.metadata?.labels ?? {};
  if (labels[LEADER_LABEL] !== '0') return undefined;
  if (isTerminating(pod)) return undefined;
  if (!conditionTrue(pod, 'ContainersReady') && !conditionTrue(pod, 'Ready')) return undefined;
  const role = labels[roleLabel];
  return role === 'prefill' || role === 'decode' ? role : undefined;
}

/** The pod receives new requests: Ready, and every readiness gate's condition True. */
export function routable(pod: V1Pod): boolean {
  if (!conditionTrue(pod, 'Ready')) return false;
  return (pod.spec?.readinessGates ?? []).every((g) => conditionTrue(pod, g.conditionType));
}

/** The serving leaders by pool, with whether each is routed, sorted by name so the engines see a stable order. */
export function servingLeaders(pods: readonly V1Pod[], roleLabel = ROLE_LABEL): Record<Pool, EngineRef[]> {
  const out: Record<Pool, EngineRef[]> = { prefill: [], decode: [] };
  for (const pod of pods) {
    const pool = servingPool(pod, roleLabel);
    const name = pod.metadata?.name;
    const namespace = pod.metadata?.namespace;
    if (pool === undefined || name === undefined || namespace === undefined) continue;
    out[pool].push({ namespace, pod: name, routable: routable(pod) });
  }
  for (const pool of POOLS) out[pool].sort((a, b) => a.pod.localeCompare(b.pod));
  return out;
}

/**
 * Annotation writes that make every pod's annotation match its engine: the port for a serving leader whose
 * engine listens, `null` (remove) for a pod that still carries one but no longer serves, so that Prometheus
 * stops scraping it. Pure.
 */
export function annotationsToWrite(
  pods: readonly V1Pod[],
  portOf: (namespace: string, pod: string) => number | undefined,
  roleLabel = ROLE_LABEL,
): { namespace: string; pod: string; port: number | null }[] {
  const out: { namespace: string; pod: string; port: number | null }[] = [];
  for (const pod of pods) {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const serving = servingPool(pod, roleLabel) !== undefined;
    const port = serving ? portOf(namespace, name) : undefined;
    const current = pod.metadata?.annotations?.[METRICS_PORT_ANNOTATION];
    if (port !== undefined && current !== String(port)) out.push({ namespace, pod: name, port });
    // A terminating pod is left alone: it is going, and a write would only race its deletion.
    else if (!serving && current !== undefined && !isTerminating(pod))
      out.push({ namespace, pod: name, port: null });
  }
  return out;
}

function isTerminating(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;
}

// ------------------------------------------------------------------ the watch

export interface EnginePodWatchOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly engines: EngineGroups;
  readonly roleLabel?: string;
  /** Watch errors and failed writes (the watch restarts by itself). Default: ignore. */
  readonly onError?: (err: unknown) => void;
  readonly restartDelayMs?: number;
}

export class EnginePodWatch {
  private readonly informer: Informer<V1Pod> & ObjectCache<V1Pod>;
  private readonly core: CoreV1Api;
  private readonly options: EnginePodWatchOptions;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** One reconcile at a time; events during one mark it dirty so it runs again. */
  private running: Promise<void> | undefined;
  private dirty = false;

  constructor(options: EnginePodWatchOptions) {
    this.options = options;
    const kc = options.kubeConfig;
    this.core = kc.makeApiClient(CoreV1Api);
    const ns = options.namespace;
    this.informer = makeInformer<V1Pod>(
      kc,
      `/api/v1/namespaces/${ns}/pods`,
      () => this.core.listNamespacedPod({ namespace: ns, labelSelector: `${LEADER_LABEL}=0` }),
      `${LEADER_LABEL}=0`,
    );
    const changed = () => this.schedule();
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', changed);
    this.informer.on('connect', changed); // after a relist, deletes missed while away are caught here
    this.informer.on('error', (err: unknown) => {
      this.options.onError?.(err);
      if (this.stopped) return;
      this.restartTimer = setTimeout(() => {
        this.informer.start().catch((e: unknown) => this.options.onError?.(e));
      }, options.restartDelayMs ?? 1000);
    });
  }

  async start(): Promise<void> {
    await this.informer.start();
    this.schedule();
  }

  /** Resolves when the reconcile in progress (and any it queued) is done: for tests. */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** Stops watching and removes this namespace's groups from the engines. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    await this.informer.stop();
    await this.settled();
    for (const pool of POOLS) await this.options.engines.syncGroups(pool, [], this.options.namespace);
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.dirty = true;
      return;
    }
    this.running = (async () => {
      do {
        this.dirty = false;
        try {
          await this.reconcile();
        } catch (err) {
          this.options.onError?.(err);
        }
      } while (this.dirty && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async reconcile(): Promise<void> {
    const { engines, namespace, roleLabel } = this.options;
    const pods = this.informer.list(namespace);
    const leaders = servingLeaders(pods, roleLabel);
    for (const pool of POOLS) await engines.syncGroups(pool, leaders[pool], namespace);
    const writes = annotationsToWrite(pods, (ns, pod) => engines.metricsPort(ns, pod), roleLabel);
    await Promise.all(
      writes.map(async (w) => {
        try {
          await this.core.patchNamespacedPod(
            {
              name: w.pod,
              namespace: w.namespace,
              // Merge patch: null deletes the key.
              body: {
                metadata: {
                  annotations: { [METRICS_PORT_ANNOTATION]: w.port === null ? null : String(w.port) },
                },
              },
              fieldManager: FIELD_MANAGER,
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
        } catch (err) {
          // A pod deleted meanwhile is not an error: its delete event removes the group.
          if ((err as { code?: number }).code !== 404) this.options.onError?.(err);
        }
      }),
    );
  }
}
