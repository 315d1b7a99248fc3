/**
 * Max-over-time window for the scale-down delay, with Knative's semantics
 * (knative/serving pkg/autoscaler/aggregation/max/{window,timewindow}.go): buckets are one decision tick
 * (2 s) wide, the window holds ceil(delay / tick) buckets, and entries expire only when a value is
 * recorded. Immutable: record() returns the next state, so the decider state stays a plain value.
 */

export interface DelayWindowState {
  readonly bucketSeconds: number;
  readonly bucketCount: number;
  /** A descending deque of [bucketIndex, value]; the head is the current maximum. */
  readonly entries: ReadonlyArray<readonly [number, number]>;
}

export function newDelayWindow(delaySeconds: number, bucketSeconds: number): DelayWindowState {
  return { bucketSeconds, bucketCount: Math.ceil(delaySeconds / bucketSeconds), entries: [] };
}

/** Records `value` at `atSeconds` and returns the next state (the input is not modified). */
export function recordMax(window: DelayWindowState, atSeconds: number, value: number): DelayWindowState {
  const index = Math.floor(atSeconds / window.bucketSeconds);
  const entries = window.entries.slice();
  // A newer, larger (or equal) value makes older smaller ones irrelevant for the max.
  while (entries.length > 0 && (entries[entries.length - 1]?.[1] ?? Number.NEGATIVE_INFINITY) <= value) {
    entries.pop();
  }
  while (entries.length > 0 && index - (entries[0]?.[0] ?? index) >= window.bucketCount) entries.shift();
  const tail = entries[entries.length - 1];
  if (tail !== undefined && tail[0] === index) {
    entries[entries.length - 1] = [index, Math.max(tail[1], value)];
  } else {
    entries.push([index, value]);
  }
  return { ...window, entries };
}

/** The maximum recorded within the window, as of the last record. */
export function currentMax(window: DelayWindowState): number {
  return window.entries[0]?.[1] ?? 0;
}

/**
 * The maximum recorded in the last `spanSeconds` up to `atSeconds` (at most the window's own span): the
 * deque is ascending in time and descending in value, so the first entry inside the span is its maximum.
 */
export function maxWithin(window: DelayWindowState, atSeconds: number, spanSeconds: number): number {
  const index = Math.floor(atSeconds / window.bucketSeconds);
  const buckets = Math.min(window.bucketCount, Math.ceil(spanSeconds / window.bucketSeconds));
  for (const [i, v] of window.entries) if (index - i < buckets) return v;
  return 0;
}
