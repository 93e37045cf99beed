/**
 * Pure planning of a flash write: which erases, which 4K writes, which CRC checks.
 * Works on whole 4 KiB sectors; the flasher pads a partial tail sector before planning.
 */
import { FlashError, ImageError } from '../core/errors.ts';
import { BK7231N_PARTITIONS } from '../../firmware/flash-layout.ts';
import { TYPICAL_ERASE_TIMES, type EraseTimes } from './flash-parts.ts';
import { BLOCK_SIZE, EraseOpcode, HALF_BLOCK_SIZE, SECTOR_SIZE } from './protocol/commands.ts';

export interface AddressRange {
  start: number;
  /** Exclusive. */
  end: number;
  name?: string;
}

/** BK7231N regions a normal write must not touch. */
export const BOOTLOADER_REGION: AddressRange = BK7231N_PARTITIONS.bootloader;
export const RF_CALIBRATION_REGION: AddressRange = BK7231N_PARTITIONS.rf;

export interface EraseStep {
  op: EraseOpcode;
  address: number;
  size: number;
}

export interface SectorWrite {
  address: number;
  /** 4096 bytes (a view into the image). */
  data: Uint8Array;
}

export interface FlashPlan {
  erases: EraseStep[];
  writes: SectorWrite[];
  /** Sectors not written because their data is all 0xFF. */
  skippedBlank: number[];
  /** Sectors of the plan that need no erase because the chip already holds 0xFF there. */
  alreadyBlank: number[];
  /** Ranges to check with CheckCRC afterwards (whole-sector multiples). */
  verify: AddressRange[];
}

export interface PlanInput {
  /** Length must be a multiple of 4096. */
  image: Uint8Array;
  /** 4K-aligned. */
  offset: number;
  flashSize: number;
  /** Addresses of the sectors to rewrite (from a diff); all sectors of the image when absent. */
  sectors?: readonly number[];
  /** Sectors known to hold only 0xFF now (from CheckCRC): no erase needed, and harmless to erase. */
  blank?: ReadonlySet<number>;
  /** Erase durations used to pick the cheapest cover; default: typical datasheet figures. */
  eraseTimes?: EraseTimes;
  /** Use 32 KiB erases (opcode 0x52) where they are cheaper. Default true. */
  erase32k?: boolean;
  protectedRegions?: readonly AddressRange[];
}

export function isBlank(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0xff) return false;
  return true;
}

export function overlaps(a: AddressRange, b: AddressRange): boolean {
  return a.start < b.end && b.start < a.end;
}

export class FlashPlanner {
  plan(input: PlanInput): FlashPlan {
    const { image, offset, flashSize } = input;
    if (offset % SECTOR_SIZE !== 0) throw new ImageError(`offset 0x${offset.toString(16)} is not 4 KiB aligned`, { address: offset });
    if (image.length % SECTOR_SIZE !== 0) throw new ImageError(`image length ${image.length} is not a multiple of 4096`, { address: offset });
    if (offset + image.length > flashSize) {
      throw new ImageError(`image 0x${offset.toString(16)}+0x${image.length.toString(16)} does not fit in 0x${flashSize.toString(16)} bytes of flash`, { address: offset });
    }
    const end = offset + image.length;
    const sectors = [...new Set(input.sectors ?? sectorAddresses(offset, image.length))].sort((a, b) => a - b);
    for (const s of sectors) {
      if (s % SECTOR_SIZE !== 0 || s < offset || s >= end) throw new ImageError(`sector 0x${s.toString(16)} is not a sector of the image`, { address: s });
      for (const r of input.protectedRegions ?? []) {
        if (overlaps({ start: s, end: s + SECTOR_SIZE }, r)) {
          throw new FlashError(`refusing to modify protected region ${r.name ?? ''} 0x${r.start.toString(16)}..0x${r.end.toString(16)} (sector 0x${s.toString(16)})`, {
            phase: 'plan',
            address: s,
            region: r.name,
          });
        }
      }
    }
    const blank = input.blank ?? new Set<number>();
    const must = sectors.filter((s) => !blank.has(s));
    const free = new Set([...sectors, ...blank]);
    const erases = eraseCover(must, free, input.eraseTimes ?? TYPICAL_ERASE_TIMES, input.erase32k ?? true);
    const writes: SectorWrite[] = [];
    const skippedBlank: number[] = [];
    for (const s of sectors) {
      const data = image.subarray(s - offset, s - offset + SECTOR_SIZE);
      if (isBlank(data)) skippedBlank.push(s);
      else writes.push({ address: s, data });
    }
    const alreadyBlank = sectors.filter((s) => blank.has(s));
    return { erases, writes, skippedBlank, alreadyBlank, verify: image.length ? [{ start: offset, end }] : [] };
  }
}

export function sectorAddresses(start: number, length: number): number[] {
  const out: number[] = [];
  for (let a = start; a < start + length; a += SECTOR_SIZE) out.push(a);
  return out;
}

/**
 * Cheapest erase cover of the `must` sectors with aligned 4K/32K/64K erases. A 32K or 64K erase
 * may only span sectors that must be erased or are `free` (blank now, or rewritten anyway);
 * everything else in its span would be lost. Units nest, so each 64K block is decided alone:
 * per 32K half the cheaper of one 32K erase and its 4K erases, then one 64K erase if cheaper still.
 */
export function eraseCover(must: readonly number[], free: ReadonlySet<number>, times: EraseTimes, allow32k = true): EraseStep[] {
  const mustSet = new Set(must);
  const erasable = (start: number, size: number): boolean => {
    for (let a = start; a < start + size; a += SECTOR_SIZE) if (!mustSet.has(a) && !free.has(a)) return false;
    return true;
  };
  const blocks = [...new Set(must.map((s) => s - (s % BLOCK_SIZE)))].sort((a, b) => a - b);
  const out: EraseStep[] = [];
  for (const block of blocks) {
    const halves = [block, block + HALF_BLOCK_SIZE].map((half) => {
      const sectors = sectorAddresses(half, HALF_BLOCK_SIZE).filter((s) => mustSet.has(s));
      const asSectors = sectors.map((address): EraseStep => ({ op: EraseOpcode.Sector4K, address, size: SECTOR_SIZE }));
      const sectorMs = sectors.length * times.sector4kMs;
      if (sectors.length > 0 && allow32k && times.block32kMs < sectorMs && erasable(half, HALF_BLOCK_SIZE)) {
        return { ms: times.block32kMs, steps: [{ op: EraseOpcode.Block32K, address: half, size: HALF_BLOCK_SIZE }] as EraseStep[] };
      }
      return { ms: sectorMs, steps: asSectors };
    });
    const halvesMs = halves[0]!.ms + halves[1]!.ms;
    if (times.block64kMs < halvesMs && erasable(block, BLOCK_SIZE)) out.push({ op: EraseOpcode.Block64K, address: block, size: BLOCK_SIZE });
    else out.push(...halves[0]!.steps, ...halves[1]!.steps);
  }
  return out;
}
