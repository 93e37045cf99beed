import { ConfigError } from '../../rig/core/errors.ts';
import { FLASH_PARTS, DEFAULT_FLASH_PART, type FlashPart } from './flash-parts.ts';

/** Page size of every supported SPI NOR part. */
export const FLASH_PAGE_BYTES = 256;

/**
 * Byte the BK7231 SPI controller samples while the flash does not drive DO (during the opcode
 * of a raw transaction, or for opcodes the part ignores). ASSUMPTION: 0x00; no source shows it.
 */
export const MISO_IDLE = 0x00;

export interface SpiFlashOptions {
  /** Part model (ID, size, SR shape); default TH25Q16HB. */
  part?: FlashPart;
  /** Override the JEDEC ID reported by 0x9F (size still comes from the part). */
  jedecId?: readonly [number, number, number];
  /** Initial SR1 | SR2 << 8, e.g. 0x4004 (CMP + BP0 set: protected). Default 0x0000. */
  initialSr?: number;
}

/**
 * Functional model of an SPI NOR flash as the BK7231 ROM drives it: no timing here (the chip
 * model charges the part's durations), only what the array and status registers do.
 * Protection is the reference's simplification (bk7231-protocol.md §14.5): if any bit of the
 * part's protect mask is set, erase and program do nothing at all, silently.
 */
export class SpiFlash {
  readonly part: FlashPart;
  readonly size: number;
  readonly jedecId: readonly [number, number, number];
  readonly #array: Uint8Array;
  #sr1: number;
  #sr2: number;
  #sr3 = 0x00;

  constructor(options: SpiFlashOptions = {}) {
    this.part = options.part ?? FLASH_PARTS[DEFAULT_FLASH_PART];
    this.size = this.part.sizeBytes;
    if (this.size <= 0 || (this.size & (this.size - 1)) !== 0) {
      throw new ConfigError(`flash size must be a power of two, got ${this.size}`, { step: 'sim-flash', part: this.part.name });
    }
    this.jedecId = options.jedecId ?? this.part.jedecId;
    const sr = options.initialSr ?? 0;
    // WIP/WEL (SR1 bits 0-1) are volatile status, never stored.
    this.#sr1 = sr & 0xfc;
    this.#sr2 = this.part.srBytes === 2 ? (sr >> 8) & 0xff : 0;
    this.#array = new Uint8Array(this.size).fill(0xff);
  }

  /** SR1 | SR2 << 8 (SR2 is 0 on 1-byte parts). */
  get statusRegister(): number {
    return this.#sr1 | (this.#sr2 << 8);
  }

  isProtected(): boolean {
    return (this.statusRegister & this.part.protectMask) !== 0;
  }

  /** Address bits above the part's size are ignored (the array aliases every `size` bytes). */
  wrap(address: number): number {
    return (address >>> 0) & (this.size - 1);
  }

  read(address: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let a = this.wrap(address);
    for (let i = 0; i < length; ) {
      const n = Math.min(length - i, this.size - a);
      out.set(this.#array.subarray(a, a + n), i);
      i += n;
      a = 0;
    }
    return out;
  }

  /**
   * Erase the 4K/32K/64K unit containing `address` (low address bits ignored, as the part does).
   * Returns false when protection suppressed it.
   */
  erase(address: number, unitBytes: 4096 | 32768 | 65536): boolean {
    if (this.isProtected()) return false;
    const start = this.wrap(address) & ~(unitBytes - 1);
    this.#array.fill(0xff, start, start + unitBytes);
    return true;
  }

  /**
   * An erase cut short by a power loss (fault injection): the first `fraction` of the unit's
   * sectors are erased, the sector at the cut only in its first half (a real interrupted erase
   * leaves cells in between; half-erased is the simplest state no CRC of the old or new content
   * matches). Returns false when protection suppressed it.
   */
  eraseInterrupted(address: number, unitBytes: 4096 | 32768 | 65536, fraction: number): boolean {
    if (this.isProtected()) return false;
    const start = this.wrap(address) & ~(unitBytes - 1);
    const done = Math.floor(unitBytes * fraction);
    const whole = done - (done % 4096);
    this.#array.fill(0xff, start, start + whole);
    if (whole < unitBytes) this.#array.fill(0xff, start + whole, start + whole + 2048);
    return true;
  }

  /**
   * Page program: ANDs the data into the array. The column wraps inside the 256-byte page of
   * `address`; with more than 256 bytes only the last 256 stay in the part's page latch.
   * Returns false when protection suppressed it.
   */
  program(address: number, data: Uint8Array): boolean {
    if (this.isProtected()) return false;
    const a = this.wrap(address);
    const page = a & ~(FLASH_PAGE_BYTES - 1);
    const skip = Math.max(0, data.length - FLASH_PAGE_BYTES);
    let col = (a + skip) & (FLASH_PAGE_BYTES - 1);
    for (let i = skip; i < data.length; i++) {
      this.#array[page + col] &= data[i]!;
      col = (col + 1) & (FLASH_PAGE_BYTES - 1);
    }
    return true;
  }

  /** Status read opcodes: 0x05 SR1, 0x35 SR2, 0x15 SR3. Others read as MISO_IDLE. */
  readStatus(opcode: number): number {
    switch (opcode) {
      case 0x05:
        return this.#sr1;
      case 0x35:
        return this.part.srBytes === 2 ? this.#sr2 : MISO_IDLE;
      case 0x15:
        return this.part.srBytes === 2 ? this.#sr3 : MISO_IDLE;
      default:
        return MISO_IDLE;
    }
  }

  /**
   * Status write opcodes: 0x01 WRSR (1 byte: SR1; 2 bytes: SR1 then SR2 on 2-byte parts),
   * 0x31 SR2, 0x11 SR3. Unknown opcodes are ignored, as the part would.
   */
  writeStatus(opcode: number, values: Uint8Array): void {
    if (values.length === 0) return;
    switch (opcode) {
      case 0x01:
        this.#sr1 = values[0]! & 0xfc;
        if (values.length >= 2 && this.part.srBytes === 2) this.#sr2 = values[1]!;
        return;
      case 0x31:
        if (this.part.srBytes === 2) this.#sr2 = values[0]!;
        return;
      case 0x11:
        if (this.part.srBytes === 2) this.#sr3 = values[0]!;
        return;
      default:
        return;
    }
  }

  /**
   * Full-duplex raw transaction (what the ROM's FlashGetMID command does): returns one byte per
   * byte clocked out. Supports the read-type opcodes 0x9F (JEDEC ID), 0x05/0x35/0x15 (status,
   * repeated) and 0x03 (read data); everything else reads MISO_IDLE.
   */
  transfer(tx: Uint8Array): Uint8Array {
    const rx = new Uint8Array(tx.length).fill(MISO_IDLE);
    if (tx.length === 0) return rx;
    const op = tx[0]!;
    if (op === 0x9f) {
      for (let i = 1; i < tx.length && i <= 3; i++) rx[i] = this.jedecId[i - 1]!;
    } else if (op === 0x05 || op === 0x35 || op === 0x15) {
      rx.fill(this.readStatus(op), 1);
    } else if (op === 0x03 && tx.length > 4) {
      const addr = (tx[1]! << 16) | (tx[2]! << 8) | tx[3]!;
      rx.set(this.read(addr, tx.length - 4), 4);
    }
    return rx;
  }

  /** Back door for building initial content: overwrites (no AND, ignores protection). */
  load(address: number, data: Uint8Array): void {
    let a = this.wrap(address);
    for (let i = 0; i < data.length; ) {
      const n = Math.min(data.length - i, this.size - a);
      this.#array.set(data.subarray(i, i + n), a);
      i += n;
      a = 0;
    }
  }
}
