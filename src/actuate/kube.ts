/**
 * Thin access to the API server for the adapters: typed clients, error mapping (404 → TargetNotFoundError,
 * 409 → ConflictError) and the two patch bodies that carry a resourceVersion precondition.
 */
import {
  AppsV1Api,
  type Configuration,
  CoreV1Api,
  CustomObjectsApi,
  createConfiguration,
  type HttpLibrary,
  IsomorphicFetchHttpLibrary,
  type KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  type RequestContext,
  type ResponseBody,
  ResponseContext,
  ServerConfiguration,
  setHeaderMiddleware,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';
import type { ScaleTargetRef } from '../api/podautoscaler.ts';
import { ConflictError, TargetNotFoundError } from './types.ts';

/** Field manager recorded in managedFields, so a user can see which fields kvpa owns. */
export const FIELD_MANAGER = 'kvpa';

export interface Gvr {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

export interface KubeClients {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;
}

/** One API call, body included; a healthy API server answers in milliseconds. */
export const DEFAULT_KUBE_DEADLINE_MS = 10_000;

/**
 * A middleware that gives every request its own total deadline. client-node 2.x sends through undici,
 * whose only limits are idle timers (300 s); the signal set here aborts the request and the body read
 * (ResponseContext.body.text() reads under the same signal) when the deadline passes.
 */
export function deadlineMiddleware(deadlineMs: number): ObservableMiddleware {
  return {
    pre: (request: RequestContext) => {
      request.setSignal(AbortSignal.timeout(deadlineMs));
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
}

/**
 * The most bytes one Kubernetes response body may hold. A list of every pod of a large namespace is a
 * few MiB; 64 MiB leaves room for the biggest list kvpa sends and still bounds what a broken or hostile
 * API server (or a proxy in front of it) can make the controller hold in memory.
 */
export const DEFAULT_KUBE_MAX_BODY_BYTES = 64 * 1024 * 1024;

/** A Kubernetes response body larger than the cap; the message names the cap and the request. */
export class KubeBodyTooLargeError extends Error {
  override name = 'KubeBodyTooLargeError';
  constructor(
    readonly url: string,
    readonly maxBytes: number,
    detail: string,
  ) {
    super(`Kubernetes API ${url}: response body ${detail} the cap of ${formatBytes(maxBytes)}`);
  }
}

function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB (${bytes} bytes)` : `${bytes} bytes`;
}

/** Where a request went, for messages: origin and path, never the query (it may hold a selector). */
function requestWhere(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url;
  }
}

/** `source` passed through unchanged until it has carried more than `maxBytes`, then an error. */
function cappedStream(
  source: ReadableStream<Uint8Array>,
  maxBytes: number,
  tooLarge: () => Error,
): ReadableStream<Uint8Array> {
  let bytes = 0;
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength;
        // Erroring the transform cancels the source, which closes the connection.
        if (bytes > maxBytes) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
}

async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<Buffer> {
  if (stream === null) return Buffer.alloc(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks);
    chunks.push(value);
  }
}

/**
 * The response with a body that fails once it outgrows `maxBytes`, whichever way the client reads it
 * (text, binary or stream). Bytes are counted as fetch hands them over, after decompression, so a gzip
 * bomb stops at the cap too; a declared content-length over the cap (never more than the decoded
 * size) fails before any byte is read.
 */
export function capResponse(response: ResponseContext, maxBytes: number, url: string): ResponseContext {
  const where = requestWhere(url);
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.body
      .stream()
      ?.cancel()
      .catch(() => undefined);
    throw new KubeBodyTooLargeError(where, maxBytes, `of ${declared} bytes (content-length) exceeds`);
  }
  let stream: ReadableStream<Uint8Array> | null | undefined;
  const capped = (): ReadableStream<Uint8Array> | null => {
    if (stream === undefined) {
      const source = response.body.stream();
      stream =
        source === null
          ? null
          : cappedStream(source, maxBytes, () => new KubeBodyTooLargeError(where, maxBytes, 'exceeds'));
    }
    return stream;
  };
  const body: ResponseBody = {
    text: async () => (await readAll(capped())).toString('utf8'),
    binary: () => readAll(capped()),
    stream: capped,
  };
  return new ResponseContext(response.httpStatusCode, response.headers, body);
}

/**
 * client-node's own HTTP library (undici fetch) with every response body capped at `maxBytes`. It sits
 * under the middleware, so the deadline's signal still covers the request and the capped body read.
 */
export function cappedHttpLibrary(
  maxBytes: number,
  inner: HttpLibrary = new IsomorphicFetchHttpLibrary(),
): HttpLibrary {
  return {
    send: (request: RequestContext) =>
      inner.send(request).pipe((response) => capResponse(response, maxBytes, request.getUrl())),
  };
}

/**
 * `kc.makeApiClient(Api)` with a total deadline and a body cap on every call: the same configuration
 * client-node builds (the cluster's server, the KubeConfig as authenticator) plus the deadline
 * middleware and the capped HTTP library. Every request the controller and the CLI send to the API
 * server goes through here; only the informer's watch stream (client-node's Watch) does not.
 */
export function boundedApiClient<T>(
  kc: KubeConfig,
  api: new (config: Configuration) => T,
  deadlineMs = DEFAULT_KUBE_DEADLINE_MS,
  maxBodyBytes = DEFAULT_KUBE_MAX_BODY_BYTES,
): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster: set current-context');
  return new api(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kc },
      httpApi: cappedHttpLibrary(maxBodyBytes),
      middleware: [setHeaderMiddleware('User-Agent', 'kvpa'), deadlineMiddleware(deadlineMs)],
    }),
  );
}

export function kubeClients(kubeConfig: KubeConfig, deadlineMs = DEFAULT_KUBE_DEADLINE_MS): KubeClients {
  return {
    core: boundedApiClient(kubeConfig, CoreV1Api, deadlineMs),
    apps: boundedApiClient(kubeConfig, AppsV1Api, deadlineMs),
    custom: boundedApiClient(kubeConfig, CustomObjectsApi, deadlineMs),
  };
}

export const mergePatchOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
export const jsonPatchOptions = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

/** A merge patch for `/scale`: the resourceVersion makes the API server answer 409 if the object moved. */
export function scalePatch(groups: number, resourceVersion: string): object {
  return { metadata: { resourceVersion }, spec: { replicas: groups } };
}

export type JsonPatchOp =
  | { op: 'test'; path: string; value: unknown }
  | { op: 'replace' | 'add'; path: string; value: unknown };

/**
 * A JSON patch that sets one list element's replicas. Setting metadata.resourceVersion to the value read
 * turns the write into a compare-and-swap (409 if anyone wrote since); the `test` on the element's name
 * guards the index even if the precondition were ever dropped. Nothing else in the object is touched.
 */
export function listElementReplicasPatch(
  listPath: string,
  index: number,
  nameField: string,
  name: string,
  groups: number,
  resourceVersion: string,
): JsonPatchOp[] {
  return [
    { op: 'test', path: `${listPath}/${index}/${nameField}`, value: name },
    { op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion },
    { op: 'add', path: `${listPath}/${index}/replicas`, value: groups },
  ];
}

/**
 * The HTTP status of a failed API call, or undefined when there was no HTTP answer. Only 100–599
 * counts: a deadline's DOMException carries a numeric `code` too (23, TIMEOUT_ERR).
 */
export function httpStatusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && code >= 100 && code <= 599 ? code : undefined;
}

function bodyText(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') return body;
  if (body === undefined) return (err as { message?: string }).message ?? String(err);
  return JSON.stringify(body);
}

/** Message of a Kubernetes Status body when there is one, else the raw text (for error messages). */
export function apiErrorMessage(err: unknown): string {
  const text = bodyText(err);
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: fall through
  }
  return text.slice(0, 500);
}

/**
 * Runs a call on the target object itself and maps its failures: 404 → TargetNotFoundError,
 * 409 (or a failed JSON-patch `test`) → ConflictError; anything else is rethrown with the object named.
 */
export async function onTarget<T>(
  ref: ScaleTargetRef,
  namespace: string,
  action: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const status = httpStatusOf(err);
    if (status === 404) throw new TargetNotFoundError(ref, namespace);
    const message = apiErrorMessage(err);
    if (status === 409) throw new ConflictError(ref, namespace, message);
    if (status === 422 && /test operation|testing value/i.test(message)) {
      throw new ConflictError(ref, namespace, message);
    }
    throw new Error(
      `${action} ${ref.kind} ${namespace}/${ref.name} failed (HTTP ${status ?? '?'}): ${message}`,
      { cause: err },
    );
  }
}

/**
 * GETs a related object (a DGD, its PCSG or LWS, a KServe owner); undefined when the API answers one of
 * `absentOn` (404 by default: it is gone; 403 too where reading it is optional), any other failure thrown.
 */
export async function getCustomOrUndefined<T>(
  clients: KubeClients,
  gvr: Gvr,
  namespace: string,
  name: string,
  absentOn: readonly number[] = [404],
): Promise<T | undefined> {
  try {
    return (await clients.custom.getNamespacedCustomObject({ ...gvr, namespace, name })) as T;
  } catch (err) {
    const status = httpStatusOf(err);
    if (status !== undefined && absentOn.includes(status)) return undefined;
    throw err;
  }
}

/** Lists objects the target owns; a missing CRD (404) is reported as such, not as a missing target. */
export async function listRelated<T>(what: string, namespace: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const status = httpStatusOf(err);
    const hint = status === 404 ? ': is its CRD installed?' : status === 403 ? ': grant kvpa list on it' : '';
    throw new Error(
      `listing ${what} in ${namespace} failed (HTTP ${status ?? '?'})${hint}: ${apiErrorMessage(err)}`,
      { cause: err },
    );
  }
}

export async function listPods(
  clients: KubeClients,
  namespace: string,
  labelSelector: string,
): Promise<V1Pod[]> {
  const list = await listRelated(`pods (${labelSelector})`, namespace, () =>
    clients.core.listNamespacedPod({ namespace, labelSelector }),
  );
  return list.items;
}

export async function listCustom<T>(
  clients: KubeClients,
  gvr: Gvr,
  namespace: string,
  labelSelector: string,
): Promise<T[]> {
  const list = (await listRelated(`${gvr.plural}.${gvr.group} (${labelSelector})`, namespace, () =>
    clients.custom.listNamespacedCustomObject({ ...gvr, namespace, labelSelector }),
  )) as { items?: T[] };
  return list.items ?? [];
}

/** `a=b,c=d` from a label map (values are label-safe by construction, so no escaping is needed). */
export function selectorOf(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
