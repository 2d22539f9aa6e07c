/**
 * One scheduler for all the transaction timers of an engine, instead of a Node `Timeout` per timer: under load a
 * gateway holds two pending timers per transaction (tens of thousands), and every retransmission and expiry armed and
 * cleared one. Here a timer is a plain object in the bucket of its slot (SLOT_MS wide), cancelling it unlinks it
 * (O(1)), and one Node timer is armed for the earliest slot that has entries.
 *
 * - A timer fires at the end of the slot its due time falls in: up to one slot late, never early. Slots are counted
 *   from the moment the wheel last went from empty to busy, so under fake timers a 500 ms timer set then fires at
 *   exactly 500 ms (durations that are multiples of the slot stay exact).
 * - The Node timer is looked up at call time (globalThis.setTimeout, as vitest fake timers replace it) and is not
 *   unref'd: a pending retransmission or timeout must fire even if nothing else keeps the process alive. It is
 *   cleared as soon as no entry is pending, so an idle wheel never keeps the process alive.
 * - Time is performance.now() (monotonic: a wall-clock step must not fire or stall every SIP timer), never less than
 *   the last slot run, so a clock that does not move (faked setTimeout, real clock) still advances slot by slot.
 */

export const SLOT_MS = 10;

/** A pending callback. Plain data: the wheel links it into its slot's bucket. */
export interface WheelEntry {
  /** undefined once fired or cancelled. */
  fn: (() => void) | undefined;
  slot: number;
  bucket: Bucket | undefined;
  prev: WheelEntry | undefined;
  next: WheelEntry | undefined;
}

interface Bucket {
  head: WheelEntry | undefined;
  tail: WheelEntry | undefined;
}

export class TimerWheel {
  readonly #slotMs: number;
  /** Entries by slot number; a bucket is removed as soon as it is empty. */
  readonly #buckets = new Map<number, Bucket>();
  /** Slot numbers that got a bucket, smallest first; a slot emptied by cancels stays until it is reached. */
  readonly #slots = new SlotHeap();
  #pending = 0;
  /** Clock reading of slot 0. */
  #origin = 0;
  /** The last slot run: new entries go to later slots only. */
  #fired = -1;
  #running = false;
  #armedSlot = Number.POSITIVE_INFINITY;
  #handle: ReturnType<typeof setTimeout> | undefined;

  constructor(slotMs = SLOT_MS) {
    this.#slotMs = slotMs;
  }

  /** Entries not yet fired or cancelled. */
  get size(): number {
    return this.#pending;
  }

  /** Run `fn` once, `ms` from now (rounded up to the end of its slot). */
  schedule(ms: number, fn: () => void): WheelEntry {
    const now = this.#pending === 0 && !this.#running ? this.#restart() : this.#now();
    const at = now + Math.max(0, ms) - this.#origin;
    const slot = Math.max(this.#fired + 1, Math.ceil(at / this.#slotMs));
    let bucket = this.#buckets.get(slot);
    if (!bucket) {
      bucket = { head: undefined, tail: undefined };
      this.#buckets.set(slot, bucket);
      this.#slots.push(slot);
    }
    const entry: WheelEntry = { fn, slot, bucket, prev: bucket.tail, next: undefined };
    if (bucket.tail) bucket.tail.next = entry;
    else bucket.head = entry;
    bucket.tail = entry;
    this.#pending++;
    if (!this.#running && slot < this.#armedSlot) this.#arm();
    return entry;
  }

  /** Forget an entry; nothing happens if it already fired or was cancelled. */
  cancel(entry: WheelEntry): void {
    if (entry.fn === undefined) return;
    entry.fn = undefined;
    this.#unlink(entry);
    this.#pending--;
    if (this.#pending === 0 && !this.#running) this.#disarm();
  }

  /** Drop every entry without running it. */
  clear(): void {
    for (const bucket of this.#buckets.values()) {
      for (let e = bucket.head; e; e = e.next) e.fn = undefined;
    }
    this.#buckets.clear();
    this.#pending = 0;
    if (!this.#running) this.#disarm();
  }

  #now(): number {
    return Math.max(performance.now(), this.#origin + this.#fired * this.#slotMs);
  }

  /** The wheel was idle: count slots from now (returned). */
  #restart(): number {
    this.#disarm();
    this.#buckets.clear();
    this.#slots.clear();
    this.#fired = -1;
    this.#origin = performance.now();
    return this.#origin;
  }

  #unlink(entry: WheelEntry): void {
    const bucket = entry.bucket;
    if (!bucket) return;
    if (entry.prev) entry.prev.next = entry.next;
    else bucket.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else bucket.tail = entry.prev;
    entry.prev = undefined;
    entry.next = undefined;
    entry.bucket = undefined;
    if (bucket.head === undefined && this.#buckets.get(entry.slot) === bucket) this.#buckets.delete(entry.slot);
  }

  /** Arm the Node timer for the earliest slot with entries (or clear it when there is none). */
  #arm(): void {
    let slot = this.#slots.peek();
    while (slot !== undefined && !this.#buckets.has(slot)) {
      this.#slots.pop();
      slot = this.#slots.peek();
    }
    if (slot === undefined || this.#pending === 0) {
      this.#disarm();
      return;
    }
    if (slot === this.#armedSlot && this.#handle !== undefined) return;
    if (this.#handle !== undefined) clearTimeout(this.#handle);
    const delay = Math.max(0, Math.ceil(this.#origin + slot * this.#slotMs - this.#now()));
    this.#armedSlot = slot;
    this.#handle = setTimeout(() => this.#tick(slot), delay);
  }

  #disarm(): void {
    if (this.#handle !== undefined) clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#armedSlot = Number.POSITIVE_INFINITY;
  }

  /** The Node timer fired: run every slot up to the armed one, or further if the loop was late. */
  #tick(armed: number): void {
    this.#handle = undefined;
    this.#armedSlot = Number.POSITIVE_INFINITY;
    const reached = Math.max(armed, Math.floor((performance.now() - this.#origin) / this.#slotMs));
    this.#running = true;
    let failure: { error: unknown } | undefined;
    try {
      for (let slot = this.#slots.peek(); slot !== undefined && slot <= reached; slot = this.#slots.peek()) {
        this.#slots.pop();
        const bucket = this.#buckets.get(slot);
        if (!bucket) continue;
        this.#buckets.delete(slot);
        this.#fired = Math.max(this.#fired, slot);
        const error = this.#runBucket(bucket);
        failure ??= error;
      }
    } finally {
      this.#running = false;
      this.#arm();
    }
    // Like a throwing setTimeout callback: the error still surfaces, after the other entries ran.
    if (failure) throw failure.error;
  }

  /** Run a bucket's entries in the order they were scheduled; returns the first error thrown. */
  #runBucket(bucket: Bucket): { error: unknown } | undefined {
    let failure: { error: unknown } | undefined;
    for (let entry = bucket.head; entry; entry = bucket.head) {
      const fn = entry.fn;
      entry.fn = undefined;
      this.#unlink(entry);
      this.#pending--;
      try {
        fn?.();
      } catch (error) {
        failure ??= { error };
      }
    }
    return failure;
  }
}

/** Binary min-heap of slot numbers. */
class SlotHeap {
  readonly #items: number[] = [];

  peek(): number | undefined {
    return this.#items[0];
  }

  clear(): void {
    this.#items.length = 0;
  }

  push(value: number): void {
    const items = this.#items;
    let i = items.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = items[parent] as number;
      if (above <= value) break;
      items[i] = above;
      i = parent;
    }
    items[i] = value;
  }

  pop(): number | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && (items[right] as number) < (items[left] as number) ? right : left;
      if ((items[child] as number) >= last) break;
      items[i] = items[child] as number;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
