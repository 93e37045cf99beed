/**
 * SPI NOR parts found on BK7231N modules, keyed by JEDEC ID (MFR TYPE CAP), with what unprotect
 * needs: how many status-register bytes, which opcodes read them, and the block-protect mask
 * (BP bits, plus CMP for 2-byte parts) that must read back as zero.
 */
// Written twice on purpose (host; the chip's parts are sim/bk7231/flash-parts.ts); each side is tested against the reference's literal traces.
import { FlashError } from '../core/errors.ts';
import { SpiOpcode } from './protocol/commands.ts';
import type { JedecId } from './protocol/reply.ts';

export interface FlashPart {
  name: string;
  jedec: readonly [number, number, number];
  sizeBytes: number;
  /** Status-register bytes written by WRSR (0x01). */
  srBytes: 1 | 2;
  /** Opcode reading each SR byte, low byte first. */
  readSrOpcodes: readonly number[];
  /** Protection bits: (SR & protectMask) === 0 means unprotected. */
  protectMask: number;
  /** Typical erase durations, only used to choose between erase sizes. */
  eraseTimes: EraseTimes;
}

export interface EraseTimes {
  sector4kMs: number;
  block32kMs: number;
  block64kMs: number;
}

/**
 * Typical 4K/32K/64K erase times of 2 MiB 3 V SPI NOR parts (Winbond W25Q16JV datasheet: tSE 45 ms,
 * tBE1 120 ms, tBE2 150 ms). Used for every part here: no TH25Q16HB datasheet figures are at hand,
 * and only the ratios matter for choosing erase sizes (a 32K erase beats three 4K erases).
 */
export const TYPICAL_ERASE_TIMES: EraseTimes = { sector4kMs: 45, block32kMs: 120, block64kMs: 150 };

const TWO_BYTE = { srBytes: 2, readSrOpcodes: [SpiOpcode.ReadSR1, SpiOpcode.ReadSR2], protectMask: 0x407c } as const;
const ONE_BYTE = { srBytes: 1, readSrOpcodes: [SpiOpcode.ReadSR1], protectMask: 0x3c } as const;

const part = (name: string, jedec: readonly [number, number, number], kind: typeof TWO_BYTE | typeof ONE_BYTE): FlashPart => ({
  name,
  jedec,
  sizeBytes: 1 << jedec[2],
  ...kind,
  eraseTimes: TYPICAL_ERASE_TIMES,
});

export const FLASH_PARTS: readonly FlashPart[] = [
  part('TH25Q16HB', [0xeb, 0x60, 0x15], TWO_BYTE),
  part('TH25Q80HB', [0xeb, 0x60, 0x14], TWO_BYTE),
  part('GD25Q16', [0xc8, 0x40, 0x15], TWO_BYTE),
  part('GD25Q80', [0xc8, 0x40, 0x14], TWO_BYTE),
  part('GD25Q32', [0xc8, 0x40, 0x16], TWO_BYTE),
  part('XT25F16B', [0x0b, 0x40, 0x15], TWO_BYTE),
  part('XT25F08B', [0x0b, 0x40, 0x14], TWO_BYTE),
  // Beken's list treats Puya P25Q16 as a 2-byte-SR part (bk7231tools' own table says 1).
  part('P25Q16HB', [0x85, 0x42, 0x15], TWO_BYTE),
  part('P25Q16HBK', [0x85, 0x20, 0x15], TWO_BYTE),
  part('EN25QH16B', [0x1c, 0x70, 0x15], ONE_BYTE),
];

export function jedecHex(id: JedecId): string {
  return [id.manufacturer, id.type, id.capacity].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(' ');
}

export function findFlashPart(id: JedecId): FlashPart | undefined {
  return FLASH_PARTS.find((p) => p.jedec[0] === id.manufacturer && p.jedec[1] === id.type && p.jedec[2] === id.capacity);
}

/** The part for an ID, or a FlashError naming the unknown ID. */
export function flashPartFor(id: JedecId): FlashPart {
  const p = findFlashPart(id);
  if (!p) throw new FlashError(`unknown SPI flash part, JEDEC ID ${jedecHex(id)}: no status-register table to unprotect it`, { phase: 'identify', jedecId: jedecHex(id) });
  return p;
}
