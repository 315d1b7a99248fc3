/**
 * A stand-in for Prometheus' Kubernetes service discovery (role `pod`) when the binary has none (Debian's
 * 2.42 build): watches pods and writes, to a file_sd file, the targets and `__meta_kubernetes_*` labels that
 * Kubernetes SD would have produced. The scrape job's relabelling is the same in both cases, so Prometheus
 * still does the keeping, the address rewrite and the label mapping.
 *
 * `podTargetGroups` follows Kubernetes SD's pod role: pods without an IP are skipped; each container port is
 * a target `<podIP>:<port>`, and a container without ports is one target `<podIP>`; labels and annotations
 * appear as `_label_`/`_labelpresent_` and `_annotation_`/`_annotationpresent_` with sanitised names.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import {
  CoreV1Api,
  type Informer,
  KubeConfig,
  makeInformer,
  type ObjectCache,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';

export interface FileSdGroup {
  readonly targets: string[];
  readonly labels: Record<string, string>;
}

function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** What Kubernetes SD (role pod) would discover for one pod. Pure. */
export function podTargetGroups(pod: V1Pod): FileSdGroup[] {
  const ip = pod.status?.podIP;
  if (ip === undefined || ip === '') return [];
  const meta = pod.metadata ?? {};
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'unknown';
  const podLabels: Record<string, string> = {
    __meta_kubernetes_namespace: meta.namespace ?? '',
    __meta_kubernetes_pod_name: meta.name ?? '',
    __meta_kubernetes_pod_ip: ip,
    __meta_kubernetes_pod_ready: ready.toLowerCase(),
    __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
    __meta_kubernetes_pod_node_name: pod.spec?.nodeName ?? '',
    __meta_kubernetes_pod_host_ip: pod.status?.hostIP ?? '',
    __meta_kubernetes_pod_uid: meta.uid ?? '',
  };
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    podLabels[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
    podLabels[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
  }
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    podLabels[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
    podLabels[`__meta_kubernetes_pod_annotationpresent_${sanitize(k)}`] = 'true';
  }
  const out: FileSdGroup[] = [];
  const add = (c: V1Container, init: boolean) => {
    const base = {
      ...podLabels,
      __meta_kubernetes_pod_container_name: c.name,
      __meta_kubernetes_pod_container_init: String(init),
    };
    const ports = c.ports ?? [];
    if (ports.length === 0) {
      out.push({ targets: [ip], labels: base });
      return;
    }
    for (const p of ports) {
      out.push({
        targets: [`${ip}:${p.containerPort}`],
        labels: {
          ...base,
          __meta_kubernetes_pod_container_port_name: p.name ?? '',
          __meta_kubernetes_pod_container_port_number: String(p.containerPort),
          __meta_kubernetes_pod_container_port_protocol: p.protocol ?? 'TCP',
        },
      });
    }
  };
  for (const c of pod.spec?.containers ?? []) add(c, false);
  for (const c of pod.spec?.initContainers ?? []) add(c, true);
  return out;
}

export interface PodSdBridgeOptions {
  readonly apiServer: string;
  readonly caFile: string;
  readonly tokenFile: string;
  readonly namespaces: readonly string[];
  /** Only pods with `<leaderLabel>=0`, as the native job's selector asks. */
  readonly leaderLabel: string;
  readonly file: string;
  readonly onError?: (err: unknown) => void;
}

/** Watches the namespaces and keeps `file` equal to what Kubernetes SD would discover. */
export async function startPodSdBridge(options: PodSdBridgeOptions): Promise<{ stop(): Promise<void> }> {
  const token = (await readFile(options.tokenFile, 'utf8')).trim();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'sd', server: options.apiServer, caFile: options.caFile, skipTLSVerify: false }],
    users: [{ name: 'sd', token }],
    contexts: [{ name: 'sd', cluster: 'sd', user: 'sd' }],
    currentContext: 'sd',
  });
  const core = kc.makeApiClient(CoreV1Api);
  const selector = `${options.leaderLabel}=0`;
  let stopped = false;
  let writing: Promise<void> = Promise.resolve();
  const informers: (Informer<V1Pod> & ObjectCache<V1Pod>)[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const write = () => {
    // Serialised, and each write takes the latest lists: the last event always wins.
    writing = writing.then(async () => {
      if (stopped) return;
      const groups = informers.flatMap((i) => i.list().flatMap(podTargetGroups));
      await writeFile(`${options.file}.tmp`, JSON.stringify(groups));
      await rename(`${options.file}.tmp`, options.file);
    });
    writing = writing.catch((err: unknown) => options.onError?.(err));
  };

  for (const namespace of options.namespaces) {
    const informer = makeInformer<V1Pod>(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      () => core.listNamespacedPod({ namespace, labelSelector: selector }),
      selector,
    );
    for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, write);
    informer.on('connect', write);
    informer.on('error', (err: unknown) => {
      options.onError?.(err);
      if (stopped) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        informer.start().catch((e: unknown) => options.onError?.(e));
      }, 1000);
      timers.add(timer);
    });
    informers.push(informer);
  }
  await Promise.all(informers.map((i) => i.start()));
  write();
  await writing;
  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(informers.map((i) => i.stop()));
      await writing;
    },
  };
}
