/**
 * Pure planning of a flash write: which erases, which 4K writes, which CRC checks.
 * Works on whole 4 KiB sectors; the flasher pads a partial tail sector before planning.
 */
import { FlashError, ImageError } from '../core/errors.ts';
import { BK7231N_PARTITIONS } from '../../firmware/flash-layout.ts';
import { BLOCK_SIZE, EraseOpcode, SECTOR_SIZE } from './protocol/commands.ts';

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
  /** Sectors erased and not written because their data is all 0xFF. */
  skippedBlank: number[];
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
    const erases = eraseSteps(sectors);
    const writes: SectorWrite[] = [];
    const skippedBlank: number[] = [];
    for (const s of sectors) {
      const data = image.subarray(s - offset, s - offset + SECTOR_SIZE);
      if (isBlank(data)) skippedBlank.push(s);
      else writes.push({ address: s, data });
    }
    return { erases, writes, skippedBlank, verify: image.length ? [{ start: offset, end }] : [] };
  }
}

export function sectorAddresses(start: number, length: number): number[] {
  const out: number[] = [];
  for (let a = start; a < start + length; a += SECTOR_SIZE) out.push(a);
  return out;
}

/** 64K erases where all 16 sectors of an aligned block are listed, 4K erases for the rest. */
export function eraseSteps(sortedSectors: readonly number[]): EraseStep[] {
  const set = new Set(sortedSectors);
  const out: EraseStep[] = [];
  const done = new Set<number>();
  for (const s of sortedSectors) {
    if (done.has(s)) continue;
    const block = s - (s % BLOCK_SIZE);
    let whole = true;
    for (let a = block; a < block + BLOCK_SIZE; a += SECTOR_SIZE) if (!set.has(a)) whole = false;
    if (whole) {
      out.push({ op: EraseOpcode.Block64K, address: block, size: BLOCK_SIZE });
      for (let a = block; a < block + BLOCK_SIZE; a += SECTOR_SIZE) done.add(a);
    } else {
      out.push({ op: EraseOpcode.Sector4K, address: s, size: SECTOR_SIZE });
      done.add(s);
    }
  }
  return out;
}
