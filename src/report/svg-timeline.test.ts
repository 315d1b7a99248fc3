import { describe, expect, it } from 'vitest';
import { renderTimelineSvg, timeTicks } from './svg-timeline.ts';

describe('time axis', () => {
  it('utc: an hour from 10:00 gets a tick every 10 minutes, labelled as times of day', () => {
    const from = Date.parse('2026-11-23T10:00:00Z') / 1000;
    expect(timeTicks(from, from + 3600, 'utc').map((t) => t.label)).toEqual([
      '10:00',
      '10:10',
      '10:20',
      '10:30',
      '10:40',
      '10:50',
      '11:00',
    ]);
  });

  it('minutes: 15 min from 0.21 s gets a tick every 2 minutes from the first sample, 0 … 14', () => {
    const ticks = timeTicks(0.21, 900.21, 'minutes');
    expect(ticks.map((t) => t.label)).toEqual(['0', '2', '4', '6', '8', '10', '12', '14']);
    expect(ticks[1]?.atSeconds).toBeCloseTo(120.21, 6);
  });

  it('a run measured from its start is never drawn as a 1970 date', () => {
    const svg = renderTimelineSvg([
      {
        title: 'kvpa up · decode',
        fromSeconds: 0.21,
        toSeconds: 300.21,
        timeAxis: 'minutes',
        series: [{ name: 'ready groups', kind: 'actual', points: [{ atSeconds: 0.21, value: 1 }] }],
      },
    ]);
    expect(svg).toContain('minutes since the start');
    expect(svg).not.toContain('1970');
  });
});
