import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PoolSample, type StackSample, summarizePools, timelinePanels, writeReport } from './report.ts';

function pool(
  spec: number | null,
  ready: number | null,
  mode: 'Stable' | 'Panic' | null = 'Stable',
): PoolSample {
  return {
    specGroups: spec,
    readyGroups: ready,
    recommendedGroups: spec,
    mode,
    kvCacheUsage: 0.5,
    requestsWaiting: 0,
    signalWants: { kvCacheUtilization: spec, runningRequests: null },
  };
}
const samples: StackSample[] = [
  { atSeconds: 0, loadRequestsPerSecond: 20, pools: { decode: pool(1, 1) } },
  { atSeconds: 10, loadRequestsPerSecond: 100, pools: { decode: pool(2, 1, 'Panic') } },
  { atSeconds: 20, loadRequestsPerSecond: 100, pools: { decode: pool(2, 2, 'Panic') } },
  { atSeconds: 30, loadRequestsPerSecond: 15, pools: { decode: pool(null, null) } },
  { atSeconds: 40, loadRequestsPerSecond: 15, pools: { decode: pool(1, 1) } },
];

describe('stack report', () => {
  it('counts scale-ups and downs from spec changes, skips unknown samples, and integrates GPU-hours', () => {
    const [decode] = summarizePools(samples, { decode: 32 });
    expect(decode).toMatchObject({
      name: 'decode',
      scaleUps: 1,
      scaleDowns: 1,
      peakGroups: 2,
      panicSeconds: 20,
    });
    // 1×10 s + 2×10 s + 2×10 s + 0 (unknown) ×10 s, at 32 GPUs
    expect(decode?.gpuHours).toBeCloseTo((50 * 32) / 3600, 9);
  });

  it('draws unknown values as gaps (null), never as zero', () => {
    const [panel] = timelinePanels(samples, 't');
    const spec = panel?.series.find((s) => s.kind === 'desired');
    expect(spec?.points[3]?.value).toBeNull();
    expect(
      panel?.series.find((s) => s.name === 'runningRequests wants')?.points.every((p) => p.value === null),
    ).toBe(true);
  });

  it('writes the report, the SVG and the events', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kvpa-report-'));
    const { report, timeline } = writeReport(dir, {
      samples,
      kpis: {
        arrived: 10,
        completed: 9,
        dropped: 1,
        ttftSeconds: { p50: 0.5, p90: 1, p99: 2 },
        tpotSeconds: { p50: 0.04, p90: 0.05, p99: 0.07 },
        sloAttainment: 0.9,
      },
      events: ['decode ScaledUp 1 → 2'],
      gpusPerGroup: { decode: 32 },
      settings: { trace: 'x.csv' },
    });
    const md = readFileSync(report, 'utf8');
    expect(md).toContain('| 10 | 9 | 1 | 90.00 % |');
    expect(md).toContain('| decode | 1 | 1 | 2 | 20 |');
    expect(readFileSync(timeline, 'utf8')).toContain('<svg');
    expect(readFileSync(path.join(dir, 'events.log'), 'utf8')).toContain('ScaledUp');
  });
});
