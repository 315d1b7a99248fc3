import { describe, expect, it } from 'vitest';
import { trendWindowSeconds } from './resolve.ts';

describe('the trend window a pool resolves to', () => {
  it('is half the horizon, at least 300 s: a 600 s horizon reads 300 s, a 2,400 s one 1,200 s, none 300 s', () => {
    expect(trendWindowSeconds({ horizonSeconds: 600 })).toBe(300);
    expect(trendWindowSeconds({ horizonSeconds: 2400 })).toBe(1200);
    expect(trendWindowSeconds({ horizonSeconds: 0 })).toBe(300);
  });
});
