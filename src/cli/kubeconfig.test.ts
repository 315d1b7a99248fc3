import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { httpStatusOf, KubeBodyTooLargeError } from '../actuate/kube.ts';
import { clusterReadError, clusterTransportError, loadKubeConfig } from './kubeconfig.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'kvpa-kubeconfig-'));
const file = path.join(dir, 'kc.yaml');
writeFileSync(
  file,
  'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\ncurrent-context: x\n',
);
const kc = loadKubeConfig(file);
const read = { what: 'the PodAutoscalers of --namespace a', fix: 'check --namespace' };
const fetchFailed = (cause: unknown) => new TypeError('fetch failed', { cause });
const socketError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('clusterReadError', () => {
  it('a deadline: the server, the deadline, the kubeconfig and the fix', () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(clusterReadError(timeout, kc, read).message).toBe(
      `the API server at https://10.0.0.1:6443 did not answer within 10 s while reading the PodAutoscalers of --namespace a; check the server URL in --kubeconfig ${file} and that the cluster is up`,
    );
    // Also when an adapter wrapped it, and with undici's own connect timer.
    const wrapped = new Error('read LeaderWorkerSet a/x failed', { cause: timeout });
    expect(clusterTransportError(wrapped, kc, { what: 'x', deadlineMs: 4000 })?.message).toContain(
      'did not answer within 4 s',
    );
    const connect = fetchFailed(socketError('UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error'));
    expect(clusterReadError(connect, kc, read).message).toContain('did not answer within 10 s');
  });

  it('a refused connection and a failed TLS handshake name the cause', () => {
    const refused = fetchFailed(socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:6443'));
    expect(clusterReadError(refused, kc, read).message).toBe(
      `the API server at https://10.0.0.1:6443 is unreachable (ECONNREFUSED) while reading the PodAutoscalers of --namespace a; check the server URL in --kubeconfig ${file} and that the cluster is up`,
    );
    const tls = fetchFailed(socketError('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'));
    expect(clusterReadError(tls, kc, read).message).toContain(
      `failed the TLS handshake (DEPTH_ZERO_SELF_SIGNED_CERT) while reading the PodAutoscalers of --namespace a; check the server URL (https, the right port) and certificate-authority-data in --kubeconfig ${file}`,
    );
  });

  it('an oversized body names the cap', () => {
    const big = new KubeBodyTooLargeError('https://10.0.0.1:6443/apis/x', 1024, 'exceeds');
    expect(clusterReadError(big, kc, read).message).toContain('exceeds the cap of 1024 bytes while reading');
  });

  it("an HTTP error keeps the API server's message and gives the caller's fix", () => {
    const forbidden = new ApiException(403, 'Forbidden', { message: 'podautoscalers is forbidden' }, {});
    expect(clusterReadError(forbidden, kc, read).message).toBe(
      'the API server at https://10.0.0.1:6443 answered HTTP 403 while reading the PodAutoscalers of --namespace a: podautoscalers is forbidden; check --namespace',
    );
    expect(clusterTransportError(forbidden, kc, read)).toBeNull();
  });

  it('anything else passes through unchanged (an exec credential plugin that failed, say)', () => {
    const plugin = socketError('ENOENT', 'spawnSync aws ENOENT');
    expect(clusterReadError(plugin, kc, read)).toBe(plugin);
  });
});

describe('httpStatusOf', () => {
  it("is an HTTP status only: a deadline's DOMException code (23) is not one", () => {
    expect(httpStatusOf(new DOMException('timeout', 'TimeoutError'))).toBeUndefined();
    expect(httpStatusOf(new ApiException(404, 'Not Found', {}, {}))).toBe(404);
  });
});
