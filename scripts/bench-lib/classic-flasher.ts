/**
 * BASELINE for benchmarks only: the classic bk7231tools-style scheme. Per 4 KiB sector: erase 4K,
 * Write4K (skipped when the data is all 0xFF), CheckCRC of that sector; one command in flight,
 * default 115200 baud. Uses the same link/identify/unprotect as Bk7231Flasher so that only the
 * write algorithm and the rate differ.
 */
import { FlashError, ImageError } from '../../rig/core/errors.ts';
import { Bk7231Flasher, BOOT_BAUD, type Bk7231FlasherOptions, type ChipInfo, type FlashProgress } from '../../rig/bk7231/flasher.ts';
import { isBlank } from '../../rig/bk7231/planner.ts';
import { EraseOpcode, SECTOR_SIZE } from '../../rig/bk7231/protocol/commands.ts';
import { crc32Raw } from '../../rig/bk7231/protocol/crc32.ts';
import * as F from '../../rig/bk7231/protocol/frame.ts';
import { decodeCrc } from '../../rig/bk7231/protocol/reply.ts';

const BLANK_SECTOR_CRC = crc32Raw(new Uint8Array(SECTOR_SIZE).fill(0xff));

export interface ClassicFlasherOptions extends Omit<Bk7231FlasherOptions, 'fallbackBaudRates'> {
  /** Retries per sector (each re-erases), as bk7231tools. Default 3. */
  sectorRetries?: number;
  /**
   * CheckCRC each sector first and skip erasing it when it is already blank, as bk7231tools does
   * (issue 6 §5 measured it beating a flasher without this on a blank chip). Default false.
   */
  skipBlankErase?: boolean;
}

export class ClassicBk7231Flasher {
  readonly #inner: Bk7231Flasher;
  readonly #retries: number;
  readonly #skipBlankErase: boolean;

  constructor(opts: ClassicFlasherOptions) {
    this.#skipBlankErase = opts.skipBlankErase ?? false;
    const baud = opts.baudRate ?? BOOT_BAUD;
    this.#inner = new Bk7231Flasher({ ...opts, baudRate: baud, fallbackBaudRates: [] });
    this.#retries = opts.sectorRetries ?? 3;
  }

  get commandsSent(): number {
    return this.#inner.channel.commandsSent;
  }

  async connect(): Promise<ChipInfo> {
    const info = await this.#inner.connect();
    await this.#inner.unprotect();
    return info;
  }

  /** Image at a 4K-aligned offset; a partial last sector is padded with 0xFF (as the classic tools do). */
  async write(image: Uint8Array, offset: number, onProgress?: (p: FlashProgress) => void): Promise<void> {
    if (offset % SECTOR_SIZE !== 0) throw new ImageError(`offset 0x${offset.toString(16)} is not 4 KiB aligned`, { address: offset });
    const ch = this.#inner.channel;
    const total = Math.ceil(image.length / SECTOR_SIZE) * SECTOR_SIZE;
    for (let pos = 0; pos < total; pos += SECTOR_SIZE) {
      const address = offset + pos;
      const data = new Uint8Array(SECTOR_SIZE).fill(0xff);
      data.set(image.subarray(pos, pos + SECTOR_SIZE));
      const want = crc32Raw(data);
      const crcNow = async (): Promise<number> => decodeCrc(await ch.transact(F.checkCrc(address, address + SECTOR_SIZE - 1), { phase: 'verify', address, operationMs: 1000 }));
      let blankNow = this.#skipBlankErase && (await crcNow()) === BLANK_SECTOR_CRC;
      for (let attempt = 0; ; attempt++) {
        if (!blankNow) await ch.transact(F.flashErase(EraseOpcode.Sector4K, address), { phase: 'erase', address, operationMs: 1000 });
        blankNow = false; // a retry always erases
        if (!isBlank(data)) await ch.transact(F.flashWrite4K(address, data), { phase: 'write', address, operationMs: 200 });
        if ((await crcNow()) === want) break;
        if (attempt >= this.#retries) throw new FlashError(`sector 0x${address.toString(16)} CRC mismatch after ${this.#retries} retries`, { phase: 'verify', address });
      }
      onProgress?.({ phase: 'write', done: pos + SECTOR_SIZE, total });
    }
  }

  async reboot(): Promise<void> {
    await this.#inner.reboot();
  }
}
