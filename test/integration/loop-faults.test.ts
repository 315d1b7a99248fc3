// Fault tests of the loop's own machinery against the real API server: a Lease call that hangs, a
// leading callback that throws, a watch whose restarts fail for a while, and a loop that stops
// ticking. The API server is reached through a TCP proxy on 127.0.0.1 that the test can freeze
// (connections accepted, nothing forwarded) or make refuse (connections closed at once).
import net from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scaleTargetFor } from '../../src/actuate/targets.ts';
import { loadPolicies } from '../../src/api/documents.ts';
import { Controller } from '../../src/control/controller.ts';
import { LeaderElector } from '../../src/control/leader.ts';
import { ManualSignalSource, type SignalSource } from '../../src/control/signals.ts';
import { ControllerMetrics, startMetricsServer } from '../../src/report/metrics.ts';
import { kubeConfigWithToken } from '../harness/cluster.ts';
import { customPath, RawApi } from './actuate-fixtures.ts';

const cluster = inject('cluster');
const direct = kubeConfigWithToken(cluster, cluster.adminToken);
const api = new RawApi(cluster);
const LWS = 'leaderworkerset.sigs.k8s.io';
const silent = pino({ level: process.env.KVPA_TEST_LOG ?? 'silent' });
let ns = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

type ProxyMode = 'pass' | 'freeze' | 'refuse';

/** A TCP proxy to the API server; TLS passes through untouched (the serving cert names 127.0.0.1). */
async function apiProxy(): Promise<{ server: string; mode(m: ProxyMode): void; close(): Promise<void> }> {
  const target = new URL(cluster.server);
  let mode: ProxyMode = 'pass';
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const proxy = net.createServer((client) => {
    track(client);
    if (mode === 'refuse') return void client.destroy();
    if (mode === 'freeze') return; // accepted, never answered
    const upstream = net.connect(Number(target.port), target.hostname);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as net.AddressInfo).port;
  return {
    server: `https://127.0.0.1:${port}`,
    mode(m) {
      mode = m;
      // Open keep-alive connections would carry on regardless; cut them so the new mode applies.
      if (m !== 'pass') for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => proxy.close(() => r()));
    },
  };
}

async function lws(name: string, replicas: number, readyGroups: number): Promise<void> {
  await api.create(customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets'), {
    apiVersion: 'leaderworkerset.x-k8s.io/v1',
    kind: 'LeaderWorkerSet',
    metadata: { name },
    spec: {
      replicas,
      leaderWorkerTemplate: {
        size: 1,
        workerTemplate: { spec: { containers: [{ name: 'e', image: 'x' }] } },
      },
    },
  });
  for (let g = 0; g < readyGroups; g++) {
    await api.pod(
      ns,
      `${name}-${g}`,
      {
        [`${LWS}/name`]: name,
        [`${LWS}/group-index`]: String(g),
        [`${LWS}/worker-index`]: '0',
        [`${LWS}/group-key`]: `k-${name}-${g}`,
      },
      true,
    );
  }
}

async function podAutoscaler(name: string): Promise<void> {
  await api.create(customPath('kvpa.io', 'v1alpha1', ns, 'podautoscalers'), {
    apiVersion: 'kvpa.io/v1alpha1',
    kind: 'PodAutoscaler',
    metadata: { name },
    spec: {
      mode: 'Apply',
      metricsSource: { pods: { port: 8000 } },
      pools: [
        {
          name: 'decode',
          scaleTargetRef: { apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet', name },
          minReplicas: 1,
          maxReplicas: 8,
          metrics: [{ type: 'kvCacheUtilization', target: 0.7 }],
          stableWindowSeconds: 6,
          scaleDownDelaySeconds: 0,
          tickSeconds: 1,
        },
      ],
    },
  });
}

const replicasOf = async (name: string) =>
  (
    (await api.ok('GET', `${customPath('leaderworkerset.x-k8s.io', 'v1', ns, 'leaderworkersets')}/${name}`))
      .spec as { replicas: number }
  ).replicas;

function controllerOn(kc: typeof direct, signals: SignalSource, observer?: ControllerMetrics): Controller {
  return new Controller({
    kubeConfig: kc,
    signals,
    policies: loadPolicies().policies,
    targetFor: (namespace, ref) => scaleTargetFor(kc, namespace, ref),
    logger: silent,
    namespace: ns,
    sampleIntervalMs: 200,
    ...(observer !== undefined ? { observer } : {}),
  });
}

/** The other tenant: a pool fed 0.95 per ready group, so 2 → 3 shows a controller deciding and writing. */
async function loadedPool(name: string, signals: ManualSignalSource): Promise<void> {
  await lws(name, 2, 2);
  await podAutoscaler(name);
  signals.set(`${ns}/${name}/decode`, 'kvCacheUtilization', 1.9);
}

beforeAll(async () => {
  ns = (
    (
      await api.create('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { generateName: 'kvpa-loop-' },
      })
    ).metadata as { name: string }
  ).name;
});

describe('leader election faults', () => {
  const proxies: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
  });

  it('a hanging Lease call: the leader gives up within the renew deadline, and a standby takes over and scales 2 → 3', async () => {
    const proxy = await apiProxy();
    proxies.push(proxy);
    const events: string[] = [];
    const options = {
      namespace: ns,
      name: 'hang-lease',
      leaseDurationSeconds: 3,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: 0.25,
      logger: silent,
    };
    const hung = new LeaderElector({
      ...options,
      kubeConfig: kubeConfigWithToken(
        { server: proxy.server, caCertPath: cluster.caCertPath },
        cluster.adminToken,
      ),
      identity: 'hung',
    });
    hung.start({
      onStartedLeading: async () => void events.push('hung:start'),
      onStoppedLeading: async () => void events.push('hung:stop'),
    });
    await until('hung leads', () => hung.isLeader);
    const signals = new ManualSignalSource();
    const standbyController = controllerOn(direct, signals);
    const standby = new LeaderElector({ ...options, kubeConfig: direct, identity: 'standby' });
    standby.start({
      onStartedLeading: async () => {
        events.push('standby:start');
        await standbyController.start();
      },
      onStoppedLeading: () => standbyController.stop(),
    });
    try {
      await loadedPool('ha', signals);
      await sleep(1000);
      expect(standby.isLeader).toBe(false);
      const frozenAt = performance.now();
      proxy.mode('freeze'); // every Lease call of `hung` now hangs
      await until('hung gives up', () => events.includes('hung:stop'), 10_000);
      // renew deadline 2 s, calls cut at 1 s each: without a deadline the call would hang for 300 s
      expect(performance.now() - frozenAt).toBeLessThan(5_000);
      await until('the standby leads', () => standby.isLeader, 10_000);
      await until('the standby scaled the pool', async () => (await replicasOf('ha')) === 3);
      expect(events.indexOf('hung:stop')).toBeLessThan(events.indexOf('standby:start'));
    } finally {
      await standby.stop(true);
      proxy.mode('refuse');
      await hung.stop(false);
    }
  });

  it('a standby whose wall clock runs 1 h ahead does not steal a live lease; it takes over 3 s after renewals stop', async () => {
    const options = {
      kubeConfig: direct,
      namespace: ns,
      name: 'skew-lease',
      leaseDurationSeconds: 3,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: 0.25,
      logger: silent,
    };
    const holder = new LeaderElector({ ...options, identity: 'holder' });
    holder.start({ onStartedLeading: async () => {}, onStoppedLeading: async () => {} });
    await until('the holder leads', () => holder.isLeader);
    // By the wall clock the holder's renewTime is always an hour old: judged that way, it has expired.
    const skewed = new LeaderElector({ ...options, identity: 'skewed', nowMs: () => Date.now() + 3_600_000 });
    skewed.start({ onStartedLeading: async () => {}, onStoppedLeading: async () => {} });
    try {
      await sleep(4000); // more than a lease duration of renewals observed
      expect(skewed.isLeader).toBe(false);
      expect(holder.isLeader).toBe(true);
      const stoppedAt = performance.now();
      await holder.stop(false); // dies without handing the lease back
      await until('the skewed standby takes over', () => skewed.isLeader, 10_000);
      expect(performance.now() - stoppedAt).toBeGreaterThan(2500);
    } finally {
      await skewed.stop(true);
      await holder.stop(false);
    }
  });

  it('a leading callback that throws is logged, not an unhandled rejection; the lease goes back and the healthy replica scales 2 → 3', async () => {
    const logLines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => logLines.push(l) });
    const options = {
      kubeConfig: direct,
      namespace: ns,
      name: 'throw-lease',
      leaseDurationSeconds: 3,
      renewDeadlineSeconds: 2,
      retryPeriodSeconds: 0.25,
      logger,
    };
    let attempts = 0;
    const broken = new LeaderElector({ ...options, identity: 'broken' });
    broken.start({
      onStartedLeading: async () => {
        attempts++;
        throw new Error('cannot start: simulated');
      },
      onStoppedLeading: async () => {},
    });
    await until('the broken replica tried', () => attempts >= 1);
    const signals = new ManualSignalSource();
    const healthyController = controllerOn(direct, signals);
    const healthy = new LeaderElector({ ...options, identity: 'healthy' });
    healthy.start({
      onStartedLeading: () => healthyController.start(),
      onStoppedLeading: () => healthyController.stop(),
    });
    try {
      await loadedPool('after-throw', signals);
      // the broken one hands the lease back each time, so the healthy one wins a round soon
      await until('the healthy replica leads', () => healthy.isLeader, 15_000);
      await until('the healthy replica scaled the pool', async () => (await replicasOf('after-throw')) === 3);
      expect(logLines.join('\n')).toContain('starting as leader failed; giving the lease back');
      expect(broken.isLeader).toBe(false);
    } finally {
      await healthy.stop(true);
      await broken.stop(false);
    }
  });
});

describe('watch and liveness faults', () => {
  it('a watch whose restarts fail for 4 s is retried until it works, and then sees a new PodAutoscaler', async () => {
    const proxy = await apiProxy();
    const signals = new ManualSignalSource();
    const viaProxy = kubeConfigWithToken(
      { server: proxy.server, caCertPath: cluster.caCertPath },
      cluster.adminToken,
    );
    const controller = controllerOn(viaProxy, signals);
    proxy.mode('refuse');
    try {
      await controller.start(); // resolves although the first list fails
      await sleep(4000); // restarts at 1 s, 2 s… all refused
      proxy.mode('pass');
      await loadedPool('rewatch', signals);
      await until(
        'the watch is back',
        () => controller.watched().some((k) => k.endsWith('/rewatch')),
        15_000,
      );
      await until('the pool scaled', async () => (await replicasOf('rewatch')) === 3);
    } finally {
      await controller.stop();
      await proxy.close();
    }
  });

  it('/healthz stays 200 while a source never answers (its deadline keeps ticks going), 503 once the loop stops', async () => {
    let release: (() => void) | null = null;
    let hang = false;
    const manual = new ManualSignalSource();
    const signals: SignalSource = {
      sample: async (requests, nowSeconds) => {
        if (hang) await new Promise<void>((r) => (release = r));
        return manual.sample(requests, nowSeconds);
      },
    };
    const metrics = new ControllerMetrics({
      processMetrics: false,
      // 15 × 200 ms = 3 s: a healthy tick here (several API calls) takes well under that
      liveness: { tickPeriodMs: 200, maxMissedTicks: 15 },
    });
    const controller = controllerOn(direct, signals, metrics);
    const server = await startMetricsServer(metrics, { port: 0, health: () => metrics.liveness.check() });
    const healthz = async () => (await fetch(`http://127.0.0.1:${server.port}/healthz`)).status;
    metrics.liveness.expect(true);
    await controller.start();
    let stopped = false;
    try {
      await loadedPool('wedge', manual);
      await until('the pool scaled', async () => (await replicasOf('wedge')) === 3);
      expect(await healthz()).toBe(200);
      // A hung source is one tenant's problem: the pool's deadline ends its wait, the loop ticks on.
      hang = true;
      const seen = new Set<number>();
      const untilMs = Date.now() + 5_000;
      while (Date.now() < untilMs) {
        seen.add(await healthz());
        await new Promise((r) => setTimeout(r, 250));
      }
      expect([...seen]).toEqual([200]);
      hang = false;
      (release as (() => void) | null)?.();
      // A loop that stops ticking while it is meant to run is what liveness catches.
      await controller.stop();
      stopped = true;
      await until('/healthz fails', async () => (await healthz()) === 503, 10_000);
      await controller.start();
      stopped = false;
      await until('/healthz recovers', async () => (await healthz()) === 200, 5_000);
    } finally {
      hang = false;
      (release as (() => void) | null)?.();
      if (!stopped) await controller.stop();
      await server.close();
    }
  });
});
