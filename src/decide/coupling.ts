/**
 * Prefill and decode as one decision. Each pool decides on its own signals; a coupled pair then keeps its
 * ratio inside a band, `min ≤ prefill groups / decode groups ≤ max`, because a prefill pool that outgrows its
 * decode pool fills KV transfers nobody can take, and one that shrinks under it starves decode of work
 * (the disaggregation papers size the two together: DistServe, https://arxiv.org/abs/2401.09670).
 *
 * The ratio counts groups, not GPUs: with 16-GPU prefill and 32-GPU decode groups, a ratio of 2 is equal GPUs.
 *
 *   reconcile: raise the short side into the band (up to its maxReplicas); if a bound stops it, lower the
 *              long side to the band's edge (never below its minReplicas). A want is never cut while raising
 *              the other pool can repair the band: a short pool breaks latency, a long one only costs GPUs.
 *   order:     two objects cannot change at once, so the writes are ordered. Each write moves its pool as far
 *              toward the target as the band allows against the other pool's count at that moment, so every
 *              observed pair is inside the band; what is left is written on the next tick. When no write can
 *              move inside the band (a band narrower than one group), both are written, raising side first,
 *              and a failed second write is undone by a compensating write of the first.
 *
 * Pure: counts in, counts and reasons out.
 */

/** Prefill groups per decode group. */
export interface RatioBand {
  readonly min: number;
  readonly max: number;
}

export interface Pair {
  readonly prefill: number;
  readonly decode: number;
}

/** One pool's want after its own pipeline, with the bounds the repair must respect. */
export interface CoupledWant {
  readonly want: number;
  readonly minReplicas: number;
  /** 0 means unbounded. */
  readonly maxReplicas: number;
}

export interface CouplingOutcome {
  readonly prefill: number;
  readonly decode: number;
  /** Whether the pair ends inside the band (false only when the pools' bounds exclude it). */
  readonly inBand: boolean;
  /** What was repaired and why; one phrase per pool, null for a pool left as it wanted. */
  readonly prefillReason: string | null;
  readonly decodeReason: string | null;
}

const EPS = 1e-9;
const MAX_SCAN = 4096;

/** Fewest prefill groups the band allows beside `decode` decode groups. */
export function prefillFloor(band: RatioBand, decode: number): number {
  return Math.max(0, Math.ceil(band.min * decode - EPS));
}

/** Most prefill groups the band allows beside `decode` decode groups. */
export function prefillCeiling(band: RatioBand, decode: number): number {
  return Math.max(0, Math.floor(band.max * decode + EPS));
}

/** Fewest decode groups the band allows beside `prefill` prefill groups. */
export function decodeFloor(band: RatioBand, prefill: number): number {
  return Math.max(0, Math.ceil(prefill / band.max - EPS));
}

/** Most decode groups the band allows beside `prefill` prefill groups (unbounded when min is 0). */
export function decodeCeiling(band: RatioBand, prefill: number): number {
  return band.min <= 0 ? Number.POSITIVE_INFINITY : Math.floor(prefill / band.min + EPS);
}

export function inBand(band: RatioBand, pair: Pair): boolean {
  return pair.prefill >= prefillFloor(band, pair.decode) && pair.prefill <= prefillCeiling(band, pair.decode);
}

function bound(max: number): number {
  return max > 0 ? max : Number.POSITIVE_INFINITY;
}

/**
 * The in-band pair nearest to (p, d) (fewest groups moved) with p' in `pRange` and d' in `dRange`, scanning d'
 * and taking the p' nearest to p that the band allows beside it; null when there is none.
 */
function nearestInBand(
  band: RatioBand,
  p: number,
  d: number,
  pRange: readonly [number, number],
  dRange: readonly [number, number],
): Pair | null {
  let best: Pair | null = null;
  let bestCost = Number.POSITIVE_INFINITY;
  for (let dd = dRange[0]; dd <= dRange[1]; dd++) {
    if (Math.abs(dd - d) >= bestCost) {
      if (dd > d) break;
      continue;
    }
    const lo = Math.max(pRange[0], prefillFloor(band, dd));
    const hi = Math.min(pRange[1], prefillCeiling(band, dd));
    if (lo > hi) continue;
    const pp = Math.min(Math.max(p, lo), hi);
    const cost = Math.abs(pp - p) + Math.abs(dd - d);
    if (cost < bestCost) {
      best = { prefill: pp, decode: dd };
      bestCost = cost;
    }
  }
  return best;
}

/**
 * The pair both pools should have: their own wants when inside the band; else the nearest in-band pair that
 * only raises (fewest groups added, within each maxReplicas); else, where a maxReplicas stops every raise, the
 * short side at its maxReplicas and the long side lowered the least that the band needs (never below its
 * minReplicas). A want is never cut while a raise can repair the band: a short pool breaks latency, a long one
 * only costs GPUs. When the bounds exclude the band, the pair goes as near it as they allow.
 */
export function reconcileBand(band: RatioBand, prefill: CoupledWant, decode: CoupledWant): CouplingOutcome {
  const p = prefill.want;
  const d = decode.want;
  const ratio = `band [${band.min}, ${band.max}] prefill per decode`;
  if (inBand(band, { prefill: p, decode: d })) {
    return { prefill: p, decode: d, inBand: true, prefillReason: null, decodeReason: null };
  }
  const pMax = Math.max(p, bound(prefill.maxReplicas));
  const dMax = Math.max(d, bound(decode.maxReplicas));
  const short = p < prefillFloor(band, d) ? 'prefill' : 'decode';
  // Enough decode groups to carry prefill up to its floor beside d at the band's top, and two more.
  // (At most MAX_SCAN groups beyond the want: no pool has that many, and a band of max 0 needs infinitely many.)
  const dScan = Math.min(
    dMax,
    d + MAX_SCAN,
    Math.max(d, decodeFloor(band, Math.max(p, prefillFloor(band, d)))) + 2,
  );
  let pair = nearestInBand(band, p, d, [p, pMax], [d, dScan]);
  if (pair === null && short === 'prefill' && Number.isFinite(pMax)) {
    // Prefill at its maxReplicas; decode lowered to the most the band allows beside it.
    const dd = Math.max(decode.minReplicas, Math.min(d, decodeCeiling(band, pMax)));
    pair = { prefill: pMax, decode: dd };
  } else if (pair === null && short === 'decode' && Number.isFinite(dMax)) {
    const pp = Math.max(prefill.minReplicas, Math.min(p, prefillCeiling(band, dMax)));
    pair = { prefill: pp, decode: dMax };
  }
  const final = pair ?? { prefill: p, decode: d };
  const ok = inBand(band, final);
  const excluded = ok ? '' : ` (the pools' bounds exclude the ${ratio})`;
  const reason = (from: number, to: number, other: string, stopper: string, stopperMax: number) =>
    to === from
      ? ok
        ? null
        : `kept ${from}${excluded}`
      : to > from
        ? `raised ${from} → ${to} to stay in the ${ratio} beside ${other}${excluded}`
        : `lowered ${from} → ${to}: ${stopper} is at maxReplicas ${stopperMax}${excluded}`;
  return {
    prefill: final.prefill,
    decode: final.decode,
    inBand: ok,
    prefillReason: reason(p, final.prefill, `${final.decode} decode`, 'decode', final.decode),
    decodeReason: reason(d, final.decode, `${final.prefill} prefill`, 'prefill', final.prefill),
  };
}

export type CoupledPool = 'prefill' | 'decode';

export interface CoupledWrite {
  readonly pool: CoupledPool;
  readonly from: number;
  readonly to: number;
}

export interface WritePlan {
  /** At most one write per pool, in order. Empty when the pair is already where it should be. */
  readonly writes: readonly CoupledWrite[];
  /** True when the state after the first write alone may be outside the band: undo it if the second fails. */
  readonly compensate: boolean;
  /** The pair after every write lands; equals `target` unless the band made it stop part-way. */
  readonly reaches: Pair;
  readonly reason: string;
}

/** The farthest count toward `to` within [lo, hi]; with the current count inside [lo, hi] it never moves away. */
function toward(to: number, lo: number, hi: number): number {
  return Math.min(Math.max(to, lo), hi);
}

function stepsInBand(band: RatioBand, current: Pair, target: Pair, first: CoupledPool): CoupledWrite[] {
  const writes: CoupledWrite[] = [];
  let p = current.prefill;
  let d = current.decode;
  for (const pool of first === 'prefill'
    ? (['prefill', 'decode'] as const)
    : (['decode', 'prefill'] as const)) {
    if (pool === 'prefill') {
      const next = toward(target.prefill, prefillFloor(band, d), prefillCeiling(band, d));
      if (next !== p) writes.push({ pool, from: p, to: next });
      p = next;
    } else {
      const next = toward(target.decode, decodeFloor(band, p), decodeCeiling(band, p));
      if (next !== d) writes.push({ pool, from: d, to: next });
      d = next;
    }
  }
  return writes;
}

function after(current: Pair, writes: readonly CoupledWrite[]): Pair {
  let pair = current;
  for (const w of writes)
    pair = w.pool === 'prefill' ? { ...pair, prefill: w.to } : { ...pair, decode: w.to };
  return pair;
}

function distance(a: Pair, b: Pair): number {
  return Math.abs(a.prefill - b.prefill) + Math.abs(a.decode - b.decode);
}

/**
 * The writes that move `current` toward `target` with the band held at every observed pair. From inside the
 * band: each write goes as far as the band allows against the other pool's count at that moment, in the order
 * that gets nearer the target (prefill first on a tie). From outside it, or when the band is narrower than
 * one group: straight to the target, the raising side first, with a compensating write armed.
 */
export function planWrites(band: RatioBand, current: Pair, target: Pair): WritePlan {
  if (distance(current, target) === 0) {
    return { writes: [], compensate: false, reaches: target, reason: 'both pools already at their counts' };
  }
  if (inBand(band, current)) {
    const a = stepsInBand(band, current, target, 'prefill');
    const b = stepsInBand(band, current, target, 'decode');
    const best = distance(after(current, b), target) < distance(after(current, a), target) ? b : a;
    if (best.length > 0) {
      const reaches = after(current, best);
      const partial = distance(reaches, target) > 0;
      return {
        writes: best,
        compensate: false,
        reaches,
        reason: `${best.map((w) => w.pool).join(' then ')}, each inside the band against the other's count${partial ? `; the rest (to ${target.prefill}/${target.decode}) next tick` : ''}`,
      };
    }
    // A target outside the band (a pool held at its count) is not followed out of it.
    if (!inBand(band, target)) {
      return {
        writes: [],
        compensate: false,
        reaches: current,
        reason: `${target.prefill}/${target.decode} is outside the band: both pools hold at ${current.prefill}/${current.decode}`,
      };
    }
  }
  const raiseFirst: CoupledPool =
    target.prefill - current.prefill >= target.decode - current.decode ? 'prefill' : 'decode';
  const order: CoupledPool[] = raiseFirst === 'prefill' ? ['prefill', 'decode'] : ['decode', 'prefill'];
  const writes = order.flatMap((pool) =>
    current[pool] === target[pool] ? [] : [{ pool, from: current[pool], to: target[pool] }],
  );
  const from = inBand(band, current) ? 'the band is narrower than one group' : 'the pair is outside the band';
  return {
    writes,
    compensate: writes.length === 2 && inBand(band, current),
    reaches: target,
    reason: `${from}: ${writes.map((w) => w.pool).join(' then ')} straight to ${target.prefill}/${target.decode}${writes.length === 2 && inBand(band, current) ? ', the first undone if the second fails' : ''}`,
  };
}
