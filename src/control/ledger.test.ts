import { describe, expect, it } from 'vitest';
import { accrue, ledgerStatus, resumeLedger, startLedger } from './ledger.ts';

const T0 = '2026-12-01T00:00:00.000Z';

describe('dry-run ledger', () => {
  it('an hour at 4 recommended against 6 held, 16 GPUs a group: 4 and 6 group-hours, 64 and 96 GPU-hours', () => {
    let l = accrue(startLedger(T0), 0, 4, 6, 16); // opens: nothing accrued yet
    for (let t = 60; t <= 3600; t += 60) l = accrue(l, t, 4, 6, 16);
    expect(ledgerStatus(l)).toEqual({
      since: T0,
      recommendedGroupHours: 4,
      actualGroupHours: 6,
      gpusPerGroup: 16,
      recommendedGpuHours: 64,
      actualGpuHours: 96,
    });
  });

  it('one tick without the GPUs per group drops the GPU-hours for good: a partial sum would read as a saving', () => {
    let l = accrue(startLedger(T0), 0, 2, 2, 16);
    l = accrue(l, 1800, 2, 2, 16);
    l = accrue(l, 1801, 2, 2, null);
    l = accrue(l, 3600, 2, 2, 16);
    const s = ledgerStatus(l);
    expect(s.recommendedGroupHours).toBe(2);
    expect(s.recommendedGpuHours).toBeUndefined();
    expect(s.actualGpuHours).toBeUndefined();
  });

  it('resumed from status after 10 min down: the downtime counts on neither side', () => {
    let l = accrue(startLedger(T0), 0, 3, 5, 32);
    l = accrue(l, 3600, 3, 5, 32);
    const resumed = resumeLedger(ledgerStatus(l));
    if (resumed === null) throw new Error('expected a ledger');
    let r = accrue(resumed, 4200, 3, 5, 32); // the first tick after the restart accrues nothing
    r = accrue(r, 7800, 3, 5, 32);
    expect(ledgerStatus(r)).toMatchObject({
      since: T0,
      recommendedGroupHours: 6,
      actualGroupHours: 10,
      recommendedGpuHours: 192,
      actualGpuHours: 320,
    });
  });

  it('no ledger in status resumes nothing', () => {
    expect(resumeLedger(undefined)).toBeNull();
  });
});
