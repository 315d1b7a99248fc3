import { describe, expect, it } from 'vitest';
import { type PoolView, renderLine, renderView } from './view.ts';

const decode: PoolView = {
  name: 'decode',
  specGroups: 2,
  readyGroups: 1,
  mode: 'Panic',
  recommendedGroups: 2,
  kvCacheUsage: 0.834,
  requestsWaiting: 12,
  requestsRunning: 5400,
  decisionSummary: '1 → 2 groups (panic): runningRequests stable 5400 panic 5600 target 4086/group',
};
const prefill: PoolView = {
  name: 'prefill',
  specGroups: null,
  readyGroups: null,
  mode: null,
  recommendedGroups: null,
  kvCacheUsage: null,
  requestsWaiting: null,
  requestsRunning: null,
  decisionSummary: null,
};

describe('live view', () => {
  it('shows groups, mode, load and the last decision of each pool; missing values are a dash, never 0', () => {
    const text = renderView({
      elapsedSeconds: 75,
      loadRequestsPerSecond: 99.5,
      pools: [prefill, decode],
      recentEvents: [],
    });
    expect(text).toContain('01:15 elapsed');
    expect(text).toContain('load 99.5 req/s');
    expect(text).toMatch(/decode\s+1\/2\s+2\s+Panic\s+83 %\s+12\s+5400/);
    expect(text).toMatch(/prefill\s+—\/—\s+—\s+—\s+—/);
    expect(text).toContain('decode: 1 → 2 groups (panic)');
    expect(text).toContain('prefill: no decision yet');
    expect(text).toContain('(none yet)');
  });

  it('keeps the newest eight events and clips long lines to the width', () => {
    const events = Array.from({ length: 12 }, (_, i) => `event ${i} ${'x'.repeat(200)}`);
    const text = renderView(
      { elapsedSeconds: 0, loadRequestsPerSecond: 0, pools: [], recentEvents: events },
      80,
    );
    expect(text).not.toContain('event 3 ');
    expect(text).toContain('event 4 ');
    expect(text).toContain('event 11 ');
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
  });

  it('has a one-line form for logs', () => {
    expect(
      renderLine({ elapsedSeconds: 5, loadRequestsPerSecond: 20, pools: [decode], recentEvents: [] }),
    ).toBe('[00:05] load 20.0/s | decode 1/2 Panic kv 83 % q 12');
  });
});
