import { describe, expect, it } from 'vitest';
import {
  type FrontierPoint,
  formatFrontierTable,
  gpuHoursAtSlo,
  paretoFrontier,
  spread,
  sweepJobs,
} from './frontier.ts';
import { frontierSvg } from './frontier-svg.ts';
import { knobbedName, parseKnobbedName } from './policies/knobs.ts';

const p = (policy: string, sloAttainment: number, gpuHours: number, knobs = {}): FrontierPoint => ({
  policy,
  knobs,
  sloAttainment,
  gpuHours,
});

describe('the frontier sweep and its reading', () => {
  it('8 points per knob: knative sweeps 8 targets (1 = its defaults, plain name) and 8 delays = 16 runs; static is 1', () => {
    const jobs = sweepJobs('knative');
    expect(jobs).toHaveLength(16);
    expect(jobs.filter((j) => j.runName === 'knative')).toHaveLength(1);
    expect(jobs.map((j) => j.runName)).toContain('knative@target=0.5');
    expect(jobs.map((j) => j.runName)).toContain('knative@delay=1800');
    expect(sweepJobs('static')).toEqual([{ policy: 'static', knobs: {}, runName: 'static' }]);
    expect(
      sweepJobs('dynamo')
        .map((j) => j.knobs.delay)
        .filter((d) => d !== undefined),
    ).not.toContain(0);
  });
  it('spread takes evenly spaced values with both ends: 3 of 8 → first, middle, last', () => {
    expect(spread([1, 2, 3, 4, 5, 6, 7, 8], 3)).toEqual([1, 5, 8]);
    expect(spread([1, 2], 8)).toEqual([1, 2]);
  });
  it('Pareto: of (90 %, 10), (95 %, 12), (93 %, 15), (99 %, 20) the point (93 %, 15) is dominated', () => {
    const pts = [p('a', 0.9, 10), p('a', 0.95, 12), p('a', 0.93, 15), p('a', 0.99, 20)];
    expect(paretoFrontier(pts).map((x) => x.gpuHours)).toEqual([10, 12, 20]);
  });
  it('fewest GPU-hours at a level: 95 % needs 12; 99 % needs 20; 99.5 % is not reached', () => {
    const pts = [p('a', 0.9, 10), p('a', 0.95, 12), p('a', 0.99, 20)];
    expect(gpuHoursAtSlo(pts, 0.95)?.gpuHours).toBe(12);
    expect(gpuHoursAtSlo(pts, 0.99)?.gpuHours).toBe(20);
    expect(gpuHoursAtSlo(pts, 0.995)).toBeUndefined();
  });
  it('the table has static’s level first, then 99 % and 95 %, with the knobs of the cheapest point', () => {
    const table = formatFrontierTable([
      p('static', 0.998, 30),
      p('knative', 0.96, 12, { target: 1.5 }),
      p('knative', 0.991, 25, { delay: 600 }),
    ]);
    const lines = table.split('\n');
    expect(lines[0]).toContain("GPU-h at static's 99.80 %");
    const knative = lines.find((l) => l.startsWith('| knative')) ?? '';
    expect(knative).toContain('not reached');
    expect(knative).toContain('25.0 (delay=600)');
    expect(knative).toContain('12.0 (target=1.5)');
  });
  it('knob names round-trip: knative@target=0.8+delay=300; a bad knob names the fix', () => {
    expect(knobbedName('knative', { target: 0.8, delay: 300 })).toBe('knative@target=0.8+delay=300');
    expect(parseKnobbedName('knative@target=0.8+delay=300')).toEqual({
      base: 'knative',
      knobs: { target: 0.8, delay: 300 },
    });
    expect(() => parseKnobbedName('knative@speed=2')).toThrow(/name@target=X\+delay=S/);
  });
  it('the SVG draws one frontier path per policy and a dot per point', () => {
    const svg = frontierSvg([p('static', 0.998, 30), p('knative', 0.96, 12), p('knative', 0.99, 25)], 't');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg.match(/<circle /g)).toHaveLength(3);
  });
});
