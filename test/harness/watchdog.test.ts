// The watchdog is what keeps a crashed or SIGKILLed test run from leaking etcd/kube-apiserver.
// Real processes stand in for the parent and the servers; no cluster needed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startWatchdog } from './cluster.ts';

const started: number[] = [];

function spawnSleeper(): number {
  const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  child.unref();
  if (child.pid === undefined) throw new Error('could not start sleep');
  started.push(child.pid);
  return child.pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return condition();
}

afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

describe('cluster watchdog', () => {
  it('kills the recorded process groups and removes the work dir when the parent dies', async () => {
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'kvpa-watchdog-test-'));
    const parent = spawnSleeper();
    const server = spawnSleeper();
    await writeFile(path.join(workDir, 'server.pgid'), String(server));
    const watchdog = startWatchdog(workDir, parent);
    started.push(watchdog.pid);

    // While the parent lives, nothing happens.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(alive(server)).toBe(true);
    expect(existsSync(workDir)).toBe(true);

    process.kill(parent, 'SIGKILL');
    expect(await waitUntil(() => !alive(server), 5000)).toBe(true);
    expect(await waitUntil(() => !existsSync(workDir), 10_000)).toBe(true);
    expect(await waitUntil(() => !alive(watchdog.pid), 2000)).toBe(true);
  });

  it('does nothing once killed by a clean teardown', async () => {
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'kvpa-watchdog-test-'));
    const parent = spawnSleeper();
    const server = spawnSleeper();
    await writeFile(path.join(workDir, 'server.pgid'), String(server));
    const watchdog = startWatchdog(workDir, parent);
    watchdog.kill();
    expect(await waitUntil(() => !alive(watchdog.pid), 2000)).toBe(true);
    process.kill(parent, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(alive(server)).toBe(true);
    expect(existsSync(workDir)).toBe(true);
    await rm(workDir, { recursive: true, force: true });
  });
});
