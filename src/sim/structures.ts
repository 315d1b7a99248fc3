/**
 * Allocation-free containers for the simulator's hot path: a binary min-heap on a float key with two integer
 * payloads, and a growable ring-buffer deque of integers. Both store plain numbers in typed arrays, so the
 * event loop creates no per-request objects or closures.
 */

/** Binary min-heap keyed by a float, carrying two int32 payloads. Ties pop in unspecified order. */
export class MinHeap {
  private keys: Float64Array;
  private a: Int32Array;
  private b: Int32Array;
  size = 0;

  constructor(capacity = 64) {
    this.keys = new Float64Array(capacity);
    this.a = new Int32Array(capacity);
    this.b = new Int32Array(capacity);
  }

  push(key: number, a: number, b = 0): void {
    if (this.size === this.keys.length) this.grow();
    const keys = this.keys;
    const pa = this.a;
    const pb = this.b;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const parentKey = keys[parent] as number;
      if (parentKey <= key) break;
      keys[i] = parentKey;
      pa[i] = pa[parent] as number;
      pb[i] = pb[parent] as number;
      i = parent;
    }
    keys[i] = key;
    pa[i] = a;
    pb[i] = b;
  }

  /** Key of the minimum; +Infinity when empty. */
  peekKey(): number {
    return this.size > 0 ? (this.keys[0] as number) : Number.POSITIVE_INFINITY;
  }

  peekA(): number {
    return this.a[0] as number;
  }

  peekB(): number {
    return this.b[0] as number;
  }

  /** Removes the minimum (read it first with peekKey/peekA/peekB). */
  pop(): void {
    const n = --this.size;
    if (n <= 0) return;
    const keys = this.keys;
    const pa = this.a;
    const pb = this.b;
    const key = keys[n] as number;
    const va = pa[n] as number;
    const vb = pb[n] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && (keys[right] as number) < (keys[child] as number)) child = right;
      if ((keys[child] as number) >= key) break;
      keys[i] = keys[child] as number;
      pa[i] = pa[child] as number;
      pb[i] = pb[child] as number;
      i = child;
    }
    keys[i] = key;
    pa[i] = va;
    pb[i] = vb;
  }

  clear(): void {
    this.size = 0;
  }

  private grow(): void {
    const capacity = this.keys.length * 2;
    const keys = new Float64Array(capacity);
    keys.set(this.keys);
    const a = new Int32Array(capacity);
    a.set(this.a);
    const b = new Int32Array(capacity);
    b.set(this.b);
    this.keys = keys;
    this.a = a;
    this.b = b;
  }
}

/** Growable ring-buffer deque of int32 values. */
export class IntDeque {
  private items: Int32Array;
  private head = 0;
  length = 0;

  constructor(capacity = 16) {
    this.items = new Int32Array(capacity);
  }

  pushBack(value: number): void {
    if (this.length === this.items.length) this.grow();
    this.items[(this.head + this.length) & (this.items.length - 1)] = value;
    this.length++;
  }

  pushFront(value: number): void {
    if (this.length === this.items.length) this.grow();
    this.head = (this.head - 1) & (this.items.length - 1);
    this.items[this.head] = value;
    this.length++;
  }

  /** The front value; the deque must not be empty. */
  peekFront(): number {
    return this.items[this.head] as number;
  }

  popFront(): number {
    const value = this.items[this.head] as number;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.length--;
    return value;
  }

  /** The i-th value from the front. */
  at(i: number): number {
    return this.items[(this.head + i) & (this.items.length - 1)] as number;
  }

  private grow(): void {
    // Capacity stays a power of two so that wrapping is a mask.
    const items = new Int32Array(Math.max(16, this.items.length * 2));
    for (let i = 0; i < this.length; i++) items[i] = this.at(i);
    this.items = items;
    this.head = 0;
  }
}
