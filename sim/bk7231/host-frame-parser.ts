/**
 * Chip-side parser for host command frames, fed one byte at a time like the bootloader's UART
 * receive callback (l_boot `boot_uart_data_callback`, bk7231-protocol.md §2.1-2.2 and §14.1):
 *
 *   HEAD --01--> E0 --E0--> FC --FC--> LEN --(1..FE)--> BODY
 *                                         \--FF--> F4 --F4--> LEN_LO --> LEN_HI --(1..max)--> BODY
 *
 * Any mismatch returns to HEAD and the mismatching byte is NOT re-examined (so `01 01 E0 FC ..`
 * loses the frame, as on the real bootloader). LEN 0 is rejected. BODY collects LEN bytes:
 * the command code followed by its payload. Pure: no time, no I/O.
 */

export type FrameForm = 'short' | 'long';

export interface HostFrame {
  form: FrameForm;
  /** Command code (first body byte). */
  code: number;
  /** Body bytes after the code. */
  payload: Uint8Array;
}

/** A frame whose body is still arriving. */
export interface PartialHostFrame {
  form: FrameForm;
  declaredLength: number;
  /** Body bytes so far (code first). A view: valid until the next push(). */
  body: Uint8Array;
}

const enum S {
  Head,
  E0,
  Fc,
  Len,
  F4,
  LenLo,
  LenHi,
  Body,
}

/**
 * ASSUMPTION: the ROM's frame buffer. A declared length above it is rejected like LEN 0 (the ROM
 * source is not public); the largest real frame is FlashWrite4K with LEN 0x1005.
 */
export const DEFAULT_MAX_BODY_BYTES = 0x1100;

export class HostFrameParser {
  readonly #maxBody: number;
  #state = S.Head;
  #form: FrameForm = 'short';
  #lenLo = 0;
  #len = 0;
  #body: Uint8Array;
  #got = 0;
  /** Frames whose declared length was 0 or too large (diagnostics). */
  rejectedLengths = 0;

  constructor(options: { maxBodyBytes?: number } = {}) {
    this.#maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#body = new Uint8Array(this.#maxBody);
  }

  /** Forget any partial frame (reset of the chip). */
  reset(): void {
    this.#state = S.Head;
    this.#got = 0;
  }

  /** Body bytes of the frame being received so far; -1 when no frame body is under way (cheap: no copy). */
  get pendingBodyLength(): number {
    return this.#state === S.Body ? this.#got : -1;
  }

  pending(): PartialHostFrame | undefined {
    if (this.#state !== S.Body) return undefined;
    return { form: this.#form, declaredLength: this.#len, body: this.#body.subarray(0, this.#got) };
  }

  /** Feed one byte; returns a frame when this byte completed one. */
  push(byte: number): HostFrame | undefined {
    switch (this.#state) {
      case S.Head:
        if (byte === 0x01) this.#state = S.E0;
        return undefined;
      case S.E0:
        this.#state = byte === 0xe0 ? S.Fc : S.Head;
        return undefined;
      case S.Fc:
        this.#state = byte === 0xfc ? S.Len : S.Head;
        return undefined;
      case S.Len:
        if (byte === 0xff) {
          this.#state = S.F4;
        } else {
          this.#form = 'short';
          this.#startBody(byte);
        }
        return undefined;
      case S.F4:
        this.#state = byte === 0xf4 ? S.LenLo : S.Head;
        return undefined;
      case S.LenLo:
        this.#lenLo = byte;
        this.#state = S.LenHi;
        return undefined;
      case S.LenHi:
        this.#form = 'long';
        this.#startBody(this.#lenLo | (byte << 8));
        return undefined;
      case S.Body: {
        this.#body[this.#got++] = byte;
        if (this.#got < this.#len) return undefined;
        this.#state = S.Head;
        return { form: this.#form, code: this.#body[0]!, payload: this.#body.slice(1, this.#len) };
      }
    }
  }

  #startBody(length: number): void {
    if (length === 0 || length > this.#maxBody) {
      this.rejectedLengths++;
      this.#state = S.Head;
      return;
    }
    this.#len = length;
    this.#got = 0;
    this.#state = S.Body;
  }
}
