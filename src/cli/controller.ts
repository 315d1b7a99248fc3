/**
 * `kvpa controller`: runs the controller against a cluster. Wires the edges together: kubeconfig,
 * presets, scale-target adapters, signal sources, Grafana annotations (token from a Secret), leader
 * election, and shutdown on SIGINT/SIGTERM.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { boundedApiClient, httpStatusOf } from '../actuate/kube.ts';
import { scaleTargetFor } from '../actuate/targets.ts';
import { BUNDLED_POLICY_DIR, loadPolicies } from '../api/documents.ts';
import {
  type AnnotationSink,
  Controller,
  type ControllerObserver,
  type ControllerOptions,
} from '../control/controller.ts';
import { LeaderElector } from '../control/leader.ts';
import { RoutingSignalSource } from '../control/sources.ts';
import { HostAllowlist } from '../observe/http.ts';
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
import { formatError, type Output } from './validate.ts';

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
      new RoutingSignalSource(undefined, {
        onFailure: (address, detail) => o.logger.warn({ address, detail }, 'prometheus query failed'),
      }),
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
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
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
      },
    }));
  } catch (e) {
    io.err(`kvpa controller: ${(e as Error).message}\n\n${CONTROLLER_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(CONTROLLER_USAGE);
    return 0;
  }
  const metricsPort = values['metrics-port'] === undefined ? undefined : Number(values['metrics-port']);
  if (
    metricsPort !== undefined &&
    !(Number.isInteger(metricsPort) && metricsPort > 0 && metricsPort < 65536)
  ) {
    io.err(
      `kvpa controller: --metrics-port must be a port number (1-65535), got ${JSON.stringify(values['metrics-port'])}`,
    );
    return 2;
  }
  const metricsAddress = String(values['metrics-address'] ?? '127.0.0.1');
  if (isIP(metricsAddress) === 0) {
    io.err(
      `kvpa controller: --metrics-address must be an IP address (127.0.0.1, 0.0.0.0, ::), got ${JSON.stringify(metricsAddress)}`,
    );
    return 2;
  }
  let allowedHosts: HostAllowlist;
  try {
    const list = String(values['allowed-hosts'] ?? '');
    allowedHosts = new HostAllowlist(list.split(',').filter((h) => h.trim() !== ''));
  } catch (e) {
    io.err(`kvpa controller: ${(e as Error).message}`);
    return 2;
  }
  const logger = pino({ level: String(values['log-level'] ?? 'info') });
  // A stray rejection in a library callback (a watch's reconnect, say) is logged, never the end of
  // every tenant's autoscaling; /healthz catches a loop that stops ticking.
  process.on('unhandledRejection', (err) => logger.error({ err: String(err) }, 'unhandled rejection'));
  const kc = new KubeConfig();
  try {
    if (typeof values.kubeconfig === 'string') kc.loadFromFile(values.kubeconfig);
    else kc.loadFromDefault();
  } catch (e) {
    io.err(`kvpa controller: cannot load the kubeconfig: ${(e as Error).message}`);
    return 1;
  }
  const { policies, errors } = loadPolicies(
    typeof values.policies === 'string' ? values.policies : BUNDLED_POLICY_DIR,
  );
  if (errors.length > 0) {
    for (const e of errors) io.err(formatError(e));
    return 1;
  }
  const metrics = metricsPort !== undefined ? await serveMetrics(metricsPort, metricsAddress) : null;
  // POD_NAME (downward API in deploy/) names the replica in the Lease and in Events.
  const identity = process.env.POD_NAME ?? `${hostname()}-${process.pid}`;
  const controller = createController(kc, {
    policies,
    logger,
    identity,
    ...(typeof values.namespace === 'string' ? { namespace: values.namespace } : {}),
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
      namespace: String(values['lease-namespace'] ?? process.env.POD_NAMESPACE ?? 'kvpa-system'),
      name: 'kvpa-controller',
      identity,
      logger,
    });
    elector.start({ onStartedLeading: startLoop, onStoppedLeading: stopLoop });
  } else {
    await startLoop();
  }
  logger.info(
    { identity, leaderElect: elector !== null, namespace: values.namespace ?? '(all)' },
    'kvpa controller started',
  );

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  logger.info('shutting down');
  if (elector !== null) await elector.stop(true);
  else await stopLoop();
  await metrics?.close();
  return 0;
}
