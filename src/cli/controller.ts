/**
 * `kvpa controller`: runs the controller against a cluster. Wires the edges together: kubeconfig,
 * presets, scale-target adapters, signal sources, Grafana annotations (token from a Secret), leader
 * election, and shutdown on SIGINT/SIGTERM.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { type Level, pino } from 'pino';
import { boundedApiClient, httpStatusOf } from '../actuate/kube.ts';
import { scaleTargetFor } from '../actuate/targets.ts';
import { BUNDLED_POLICY_DIR, formatError, loadPolicies } from '../api/documents.ts';
import {
  type AnnotationSink,
  Controller,
  type ControllerObserver,
  type ControllerOptions,
} from '../control/controller.ts';
import { LeaderElector } from '../control/leader.ts';
import { RoutingSignalSource } from '../control/sources.ts';
import { HostAllowlist } from '../observe/http.ts';
import { PodsSignalSource } from '../observe/pods-control.ts';
import {
  configFromSpec,
  GrafanaAnnotator,
  GrafanaTokenError,
  grantedSecretValue,
  type SecretKeyRef,
  type SecretObject,
  TOKEN_GRANT_LABEL,
} from '../report/grafana.ts';
import { ControllerMetrics, startMetricsServer } from '../report/metrics.ts';
import { loadKubeConfig } from './kubeconfig.ts';
import {
  EXIT,
  namespaceFlag,
  numberFlag,
  type Output,
  parseFlags,
  policiesFlag,
  stringFlag,
  UsageError,
} from './shell.ts';

/** pino's levels, quietest last. */
const LOG_LEVELS: readonly (Level | 'silent')[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

export const CONTROLLER_USAGE = `Usage: kvpa controller [--kubeconfig FILE] [--namespace NS] [--leader-elect]
                       [--lease-namespace NS] [--metrics-port PORT] [--metrics-address ADDR]
                       [--allowed-hosts LIST] [--policies DIR] [--log-level LEVEL]

Watches PodAutoscalers (all namespaces unless --namespace) and scales their pools.
  --leader-elect       run as one of several replicas; only the Lease holder acts
  --lease-namespace    where the Lease lives (default: the pod's namespace, else kvpa-system)
  --metrics-port       serve the controller's own metrics on this port (/metrics, /healthz)
  --metrics-address    the address it listens on (default 127.0.0.1; 0.0.0.0 in a pod)
  --allowed-hosts      comma-separated hosts a Grafana token may be sent to, over https:
                       host, host:port or *.domain; http://host:port allows plain http there.
                       Empty (the default): no PodAutoscaler's token is sent anywhere.
  --log-level LEVEL    ${LOG_LEVELS.join(', ')} (default info)
`;

/**
 * Reads one key of a Secret in the PodAutoscaler's namespace, only if its owner granted it (the
 * kvpa.io/grafana-token=true label; RBAC must allow the read too). The value is never logged.
 */
export function secretReader(kc: KubeConfig, namespace: string) {
  const core = boundedApiClient(kc, CoreV1Api);
  return async (ref: SecretKeyRef): Promise<string | undefined> => {
    let secret: SecretObject;
    try {
      secret = await core.readNamespacedSecret({ name: ref.name, namespace });
    } catch (err) {
      const status = httpStatusOf(err);
      if (status === 403 || status === 404) {
        // One text for both: a PodAutoscaler author must not learn which Secrets exist.
        throw new GrafanaTokenError(
          `Secret ${namespace}/${ref.name} is not readable by kvpa (HTTP ${status}): the namespace owner binds ClusterRole kvpa-grafana-token-reader there, and labels the Secret ${TOKEN_GRANT_LABEL}=true`,
        );
      }
      throw err;
    }
    return grantedSecretValue(secret, ref);
  };
}

/** The controller's own metrics and /healthz on --metrics-port, at --metrics-address. */
async function serveMetrics(
  port: number,
  host: string,
): Promise<{ metrics: ControllerMetrics; close(): Promise<void> }> {
  const metrics = new ControllerMetrics({ processMetrics: true });
  const server = await startMetricsServer(metrics, { port, host, health: () => metrics.liveness.check() });
  return { metrics, close: () => server.close() };
}

/** serveMetrics, with a port that cannot be bound reported against --metrics-port. */
async function serveMetricsOn(port: number, host: string): ReturnType<typeof serveMetrics> {
  try {
    return await serveMetrics(port, host);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new UsageError(`--metrics-port ${port}: cannot listen there (${code}); choose a free port`);
  }
}

/**
 * The controller as `kvpa controller` wires it: scale targets through the workload's own API, signals
 * routed per PodAutoscaler, Grafana annotations with the token from a Secret. `signals` is replaceable
 * so a harness can reach emulated engines whose pod IPs are not routable (bench/latency.ts).
 */
export function createController(
  kc: KubeConfig,
  o: {
    policies: ControllerOptions['policies'];
    logger: ControllerOptions['logger'];
    identity: string;
    namespace?: string;
    observer?: ControllerObserver;
    signals?: ControllerOptions['signals'];
    /** Where Grafana tokens may go (--allowed-hosts); nowhere when unset. */
    allowedHosts?: HostAllowlist;
  },
): Controller {
  return new Controller({
    kubeConfig: kc,
    signals:
      o.signals ??
      new RoutingSignalSource(
        new PodsSignalSource({
          onFailure: (pod, url, detail) => o.logger.warn({ pod, url, detail }, 'pod scrape failed'),
        }),
        {
          onFailure: (address, detail) => o.logger.warn({ address, detail }, 'prometheus query failed'),
        },
      ),
    policies: o.policies,
    targetFor: (namespace, ref) => scaleTargetFor(kc, namespace, ref),
    logger: o.logger,
    ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
    hostname: o.identity,
    annotationsFor: (pa, spec): AnnotationSink | null => {
      if (spec.grafana === undefined) return null;
      return new GrafanaAnnotator(
        configFromSpec(spec.grafana, secretReader(kc, pa.metadata?.namespace ?? 'default')),
        { logger: o.logger, allowedHosts: o.allowedHosts ?? new HostAllowlist([]) },
      );
    },
    ...(o.observer !== undefined ? { observer: o.observer } : {}),
  });
}

export async function runController(argv: readonly string[], io: Output): Promise<number> {
  const { values } = parseFlags(argv, {
    kubeconfig: { type: 'string' },
    namespace: { type: 'string' },
    'leader-elect': { type: 'boolean' },
    'lease-namespace': { type: 'string' },
    'metrics-port': { type: 'string' },
    'metrics-address': { type: 'string' },
    'allowed-hosts': { type: 'string' },
    policies: { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(CONTROLLER_USAGE);
    return EXIT.ok;
  }
  const metricsPort = numberFlag(values, 'metrics-port', {
    min: 1,
    max: 65535,
    integer: true,
    example: 9090,
  });
  const level = stringFlag(values, 'log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(
      `--log-level ${JSON.stringify(level)}: not a level; use one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const namespace = namespaceFlag(values, 'namespace');
  const leaseNamespace = namespaceFlag(values, 'lease-namespace');
  const metricsAddress = stringFlag(values, 'metrics-address') ?? '127.0.0.1';
  if (isIP(metricsAddress) === 0) {
    throw new UsageError(
      `--metrics-address ${JSON.stringify(metricsAddress)}: not an IP address; use 127.0.0.1, 0.0.0.0 or ::`,
    );
  }
  let allowedHosts: HostAllowlist;
  try {
    const list = stringFlag(values, 'allowed-hosts') ?? '';
    allowedHosts = new HostAllowlist(list.split(',').filter((h) => h.trim() !== ''));
  } catch (e) {
    throw new UsageError(
      `${(e as Error).message}; write e.g. --allowed-hosts grafana.example.com,*.grafana.net,http://127.0.0.1:3000`,
    );
  }
  const logger = pino({ level });
  // A stray rejection in a library callback (a watch's reconnect, say) is logged, never the end of
  // every tenant's autoscaling; /healthz catches a loop that stops ticking.
  process.on('unhandledRejection', (err) => logger.error({ err: String(err) }, 'unhandled rejection'));
  const kc = loadKubeConfig(stringFlag(values, 'kubeconfig'));
  const { policies, errors } = loadPolicies(policiesFlag(values) ?? BUNDLED_POLICY_DIR);
  if (errors.length > 0) {
    for (const e of errors) io.err(formatError(e));
    return EXIT.failed;
  }
  // Heard from here on, so a SIGTERM while the loop starts (the first lists, the Lease) is a clean shutdown
  // once the start is done, not the default kill.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const metrics = metricsPort !== undefined ? await serveMetricsOn(metricsPort, metricsAddress) : null;
  // POD_NAME (downward API in deploy/) names the replica in the Lease and in Events.
  const identity = process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
  const controller = createController(kc, {
    policies,
    logger,
    identity,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(metrics !== null ? { observer: metrics.metrics } : {}),
    allowedHosts,
  });
  // /healthz watches the loop only where it is meant to run: on the leader, or everywhere without election.
  const startLoop = async () => {
    metrics?.metrics.liveness.expect(true);
    await controller.start();
  };
  const stopLoop = async () => {
    metrics?.metrics.liveness.expect(false);
    await controller.stop();
  };

  let elector: LeaderElector | null = null;
  if (values['leader-elect']) {
    elector = new LeaderElector({
      kubeConfig: kc,
      namespace: leaseNamespace ?? process.env.POD_NAMESPACE ?? 'kvpa-system',
      name: 'kvpa-controller',
      identity,
      logger,
    });
    elector.start({ onStartedLeading: startLoop, onStoppedLeading: stopLoop });
  } else {
    await startLoop();
  }
  logger.info(
    { identity, leaderElect: elector !== null, namespace: namespace ?? '(all)' },
    'kvpa controller started',
  );

  await stopped;
  logger.info('shutting down');
  if (elector !== null) await elector.stop(true);
  else await stopLoop();
  await metrics?.close();
  return 0;
}
