/**
 * Incremental parser for chip -> host frames. Bytes may arrive in any split; garbage, stale
 * replies and truncated frames are expected on a real link.
 *
 *   short: 04 0E <LEN8> 01 E0 FC <CODE> <payload>                      LEN8  = 4 + payload
 *   long:  04 0E FF 01 E0 FC F4 <LEN16 LE> <CODE> <STATUS> <payload>   LEN16 = 2 + payload
 */
import type { FrameForm } from './frame.ts';

export interface Bk7231Reply {
  form: FrameForm;
  code: number;
  /** Long replies only. */
  status?: number;
  /** Bytes after CODE (short) or after STATUS (long). */
  payload: Uint8Array;
  /** The whole frame as received. */
  raw: Uint8Array;
}

const SHORT_HEADER = 7; // 04 0E LEN 01 E0 FC CODE
const LONG_HEADER = 11; // 04 0E FF 01 E0 FC F4 L L CODE STATUS

export class Bk7231ReplyParser {
  #buf = new Uint8Array(0);
  #garbage = 0;

  /** Bytes thrown away while resynchronising (for diagnostics). */
  get discardedBytes(): number {
    return this.#garbage;
  }

  /** Bytes held back: a frame that has started but not finished, or a lone 04 at the end. */
  get pending(): Uint8Array {
    return this.#buf.slice();
  }

  /** Feed received bytes; returns every frame completed by them, in order. */
  push(bytes: Uint8Array): Bk7231Reply[] {
    if (bytes.length) {
      const next = new Uint8Array(this.#buf.length + bytes.length);
      next.set(this.#buf, 0);
      next.set(bytes, this.#buf.length);
      this.#buf = next;
    }
    const out: Bk7231Reply[] = [];
    let pos = 0;
    for (;;) {
      const start = this.#findStart(pos);
      this.#garbage += start - pos;
      pos = start;
      const r = this.#tryFrame(pos);
      if (r === 'need-more') break;
      if (r === 'bad') {
        // Not a frame after all: skip this 04 and keep scanning.
        pos++;
        this.#garbage++;
        continue;
      }
      out.push(r);
      pos += r.raw.length;
    }
    this.#buf = this.#buf.slice(pos);
    return out;
  }

  /**
   * Give up on the frame in progress (its tail was lost). Drops its first byte and rescans the rest,
   * so a complete frame that arrived inside the announced length is still found.
   * Returns the frames found and the bytes that were held (for error context).
   */
  abandonPending(): { dropped: Uint8Array; frames: Bk7231Reply[] } {
    const held = this.#buf;
    this.#buf = new Uint8Array(0);
    if (held.length === 0) return { dropped: held, frames: [] };
    this.#garbage++;
    return { dropped: held, frames: this.push(held.subarray(1)) };
  }

  reset(): void {
    this.#buf = new Uint8Array(0);
  }

  /** Index of the next possible frame start (04 0E, or a trailing 04), or buf.length. */
  #findStart(from: number): number {
    const b = this.#buf;
    for (let i = from; i < b.length; i++) {
      if (b[i] !== 0x04) continue;
      if (i + 1 === b.length || b[i + 1] === 0x0e) return i;
    }
    return b.length;
  }

  #tryFrame(pos: number): Bk7231Reply | 'need-more' | 'bad' {
    const b = this.#buf;
    const avail = b.length - pos;
    if (avail < 3) return 'need-more';
    const len8 = b[pos + 2]!;
    // Check the fixed header bytes as soon as they arrive so garbage is rejected early.
    const fixed = len8 === 0xff ? [0x01, 0xe0, 0xfc, 0xf4] : [0x01, 0xe0, 0xfc];
    for (let k = 0; k < fixed.length; k++) {
      if (avail <= 3 + k) return 'need-more';
      if (b[pos + 3 + k] !== fixed[k]) return 'bad';
    }
    if (len8 !== 0xff) {
      if (len8 < 4) return 'bad';
      const total = len8 + 3;
      if (avail < total) return 'need-more';
      const raw = b.slice(pos, pos + total);
      return { form: 'short', code: raw[6]!, payload: raw.subarray(SHORT_HEADER), raw };
    }
    if (avail < 9) return 'need-more';
    const len16 = b[pos + 7]! | (b[pos + 8]! << 8);
    if (len16 < 2) return 'bad';
    const total = len16 + 9;
    if (avail < total) return 'need-more';
    const raw = b.slice(pos, pos + total);
    return { form: 'long', code: raw[9]!, status: raw[10]!, payload: raw.subarray(LONG_HEADER), raw };
  }
}
