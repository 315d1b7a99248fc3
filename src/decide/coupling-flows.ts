/**
 * A coupling band derived from the token flows (spec.coupling.ratio.fromFlows) in place of a fixed one. Each
 * pool's work, in groups, is its flow against one group's capacity:
 *
 *   prefill work = prompt tokens/s × (1 + prefill headroom) ÷ prompt tokens/s one prefill group serves
 *   decode work  = generated tokens/s × (1 + decode headroom) ÷ generated tokens/s one decode group serves
 *   ratio        = prefill work ÷ decode work;   band = ratio × [1 − tolerance, 1 + tolerance]
 *
 * The flows are the stable window's demand of each pool's work signal (served plus queue growth, src/decide/
 * work.ts, without the clearance of a backlog, which is transient) and the capacities are the ones the pools
 * size with (measured once enough samples exist, else configured). With equal headrooms the ratio is the
 * plain one, flows over capacities; the headrooms are in it because each pool sizes with its own.
 *
 * Missing is its own state: when either pool's signal is not `ok` (no data, stale, no quorum…), has no
 * capacity, or its flow is under one group of work, there is no band, never a ratio of 0 or a default. Under
 * one group of work both pools sit at their floor anyway, and a ratio of two thin flows is noise that would
 * only buy idle groups.
 *
 * Smoothing: the windows already average over the stable window (60 s to minutes) and the capacity is a
 * median, so the ratio moves slowly; on top, the centre is kept while the new ratio is within half the
 * tolerance of it (a dead band), so the band edges do not chatter across a group boundary with the noise of
 * the windows. A band that goes off forgets its centre: no ratio is carried across a gap in the data.
 *
 * Pure: readings in, a band or the reason there is none out.
 */
import { type CoupledWant, type CouplingOutcome, type RatioBand, reconcileBand } from './coupling.ts';
import type { SignalExplanation } from './types.ts';

/** One pool's flow as its decision read it, or why it cannot be used. */
export type PoolFlow =
  | {
      readonly ok: true;
      readonly signal: string;
      /** Demand over the stable window, tokens/s. */
      readonly tokensPerSecond: number;
      /** Tokens/s one group serves, and where that figure came from. */
      readonly capacityPerGroup: number;
      readonly capacitySource: 'configured' | 'measured' | 'pinned';
      /** The share kept above demand (0.25 for 25 %). */
      readonly headroom: number;
    }
  | { readonly ok: false; readonly signal: string; readonly why: string };

/** The work signal `signal` of a decision's explanation as a flow; `headroom` is the pool's (0.25 for 25 %). */
export function flowOf(signals: readonly SignalExplanation[], signal: string, headroom: number): PoolFlow {
  const s = signals.find((x) => x.name === signal);
  if (s === undefined) return { ok: false, signal, why: `no ${signal} signal` };
  if (s.state !== 'ok' || s.stableTotal === undefined) {
    return {
      ok: false,
      signal,
      why: `${signal} ${s.state}${s.detail !== undefined ? ` (${s.detail})` : ''}`,
    };
  }
  const capacity = s.capacity;
  if (capacity === undefined || !(capacity.usedPerSecond > 0) || !Number.isFinite(capacity.usedPerSecond)) {
    return { ok: false, signal, why: `${signal} has no capacity per group` };
  }
  const flow = s.stableTotal - (s.clearancePerSecond ?? 0);
  if (!Number.isFinite(flow) || !(headroom >= 0)) {
    return { ok: false, signal, why: `${signal} flow is not a number` };
  }
  return {
    ok: true,
    signal,
    tokensPerSecond: Math.max(0, flow),
    capacityPerGroup: capacity.usedPerSecond,
    capacitySource: capacity.source,
    headroom,
  };
}

/** Groups of work for a flow, as the pool's own sizing counts them. */
function workGroups(f: PoolFlow & { ok: true }): number {
  return (f.tokensPerSecond * (1 + f.headroom)) / f.capacityPerGroup;
}

export type DerivedBand =
  | {
      readonly on: true;
      readonly band: RatioBand;
      /** The centre in use (after the dead band) and the ratio the flows gave this time. */
      readonly ratio: number;
      readonly measured: number;
      /** e.g. "band [0.75, 1.25] prefill per decode, derived 1 ± 25 % from flows: …". */
      readonly text: string;
    }
  | { readonly on: false; readonly text: string };

/** Below one group of work on either side, the ratio is not read: see the module comment. */
export const MIN_WORK_GROUPS = 1;

/**
 * The band the flows give, or none. `previous` is the centre the last derivation used (null when there was
 * none): it is kept while the new ratio stays within tolerance / 2 of it.
 */
export function deriveBand(
  prefill: PoolFlow,
  decode: PoolFlow,
  tolerance: number,
  previous: number | null,
): DerivedBand {
  const off = (why: string): DerivedBand => ({
    on: false,
    text: `no band: ${why}; no ratio is derived from missing data, so each pool keeps its own want`,
  });
  if (!prefill.ok || !decode.ok) {
    const whys = [prefill, decode].flatMap((f, i) =>
      f.ok ? [] : [`${i === 0 ? 'prefill' : 'decode'} ${f.why}`],
    );
    return off(whys.join(', '));
  }
  if (!(tolerance > 0 && tolerance < 1)) return off(`tolerance ${tolerance} is not in (0, 1)`);
  const p = workGroups(prefill);
  const d = workGroups(decode);
  const flows = `${flowText('prompt', prefill, p)}; ${flowText('generated', decode, d)}`;
  if (!(p >= MIN_WORK_GROUPS && d >= MIN_WORK_GROUPS) || !Number.isFinite(p) || !Number.isFinite(d)) {
    return {
      on: false,
      text: `no band: ${flows}; under ${MIN_WORK_GROUPS} group of work on a side the ratio is noise, so each pool keeps its own want`,
    };
  }
  const measured = p / d;
  const kept =
    previous !== null && previous > 0 && Math.abs(measured - previous) <= (tolerance / 2) * previous;
  const ratio = kept ? previous : measured;
  const band = { min: ratio * (1 - tolerance), max: ratio * (1 + tolerance) };
  const centre = kept
    ? `${show(ratio)} (kept: ${show(measured)} now is within ±${show((100 * tolerance) / 2)} % of it)`
    : show(ratio);
  return {
    on: true,
    band,
    ratio,
    measured,
    text: `band [${show(band.min)}, ${show(band.max)}] prefill per decode, derived ${centre} ± ${show(100 * tolerance)} % from flows: ${flows}`,
  };
}

function flowText(kind: string, f: PoolFlow & { ok: true }, groups: number): string {
  const headroom = f.headroom > 0 ? ` × ${show(1 + f.headroom)} headroom` : '';
  return `${kind} ${show(f.tokensPerSecond)} tok/s ÷ ${show(f.capacityPerGroup)} per group (${f.capacitySource})${headroom} = ${show(groups)} groups`;
}

/** Three significant figures, grouped thousands: 3,000; 1.25; 0.0123. */
function show(x: number): string {
  const v = Number(x.toPrecision(3));
  return v.toLocaleString('en-US', { maximumFractionDigits: 6 });
}

/** No band at all: every pair is inside it, so planWrites writes each pool straight to its want. */
export const OPEN_BAND: RatioBand = { min: 0, max: Number.POSITIVE_INFINITY };

/** The pair both pools should have under a derived band: `reconcileBand` with it, or the wants when it is off. */
export function reconcileDerived(
  derived: DerivedBand,
  prefill: CoupledWant,
  decode: CoupledWant,
): CouplingOutcome {
  if (derived.on) return reconcileBand(derived.band, prefill, decode);
  return {
    prefill: prefill.want,
    decode: decode.want,
    inBand: true,
    prefillReason: null,
    decodeReason: null,
  };
}
