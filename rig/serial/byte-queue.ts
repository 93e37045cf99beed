/**
 * Growable FIFO of bytes with O(1) amortised append and consume: one backing buffer with a read
 * offset; space is reclaimed by compacting when the consumed prefix is at least as long as the live part.
 */
export class ByteQueue {
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(initialCapacity = 4096) {
    this.#buf = new Uint8Array(Math.max(16, initialCapacity));
  }

  get length(): number {
    return this.#end - this.#start;
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.#end + bytes.length > this.#buf.length) this.#makeRoom(bytes.length);
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
  }

  /** View of the queued bytes (valid until the next push/consume; copy it to keep it). */
  view(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** Copy of the queued bytes. */
  peek(): Uint8Array {
    return this.view().slice();
  }

  /** Remove and return the first n bytes (fewer if fewer are queued). */
  consume(n: number): Uint8Array {
    const k = Math.min(Math.max(0, n), this.length);
    const out = this.#buf.slice(this.#start, this.#start + k);
    this.#start += k;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return out;
  }

  /** Copy up to target.length bytes into target at offset, remove them, return how many. */
  consumeInto(target: Uint8Array, offset: number, max: number): number {
    const k = Math.min(max, this.length);
    target.set(this.#buf.subarray(this.#start, this.#start + k), offset);
    this.#start += k;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return k;
  }

  /** Remove and return everything. */
  clear(): Uint8Array {
    return this.consume(this.length);
  }

  /** Index (relative to the queue head) of the first occurrence of pattern at or after `from`, or -1. */
  indexOf(pattern: Uint8Array, from = 0): number {
    const len = this.length;
    const m = pattern.length;
    if (m === 0) return Math.min(Math.max(0, from), len);
    const buf = this.#buf;
    const base = this.#start;
    const first = pattern[0];
    outer: for (let i = Math.max(0, from); i + m <= len; i++) {
      if (buf[base + i] !== first) continue;
      for (let j = 1; j < m; j++) if (buf[base + i + j] !== pattern[j]) continue outer;
      return i;
    }
    return -1;
  }

  #makeRoom(extra: number): void {
    const live = this.length;
    const need = live + extra;
    // Compact only when the consumed prefix pays for copying the live bytes (amortised O(1)).
    if (need <= this.#buf.length && this.#start >= live) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let cap = this.#buf.length;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#start = 0;
    this.#end = live;
  }
}
