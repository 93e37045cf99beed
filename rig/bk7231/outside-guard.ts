/**
 * The guard of the flash outside an image: the ROM protocol has no checksum, so a flipped address
 * bit on the line erases or programs another sector than the one asked for. The guard takes the
 * chip's CRC of every range outside the image before writing, proves each one unchanged afterwards,
 * and restores a changed range only from content it knows independently of that CRC:
 * - blank: the range's CRC before writing equals the CRC of erased flash (computed here): erase it;
 * - copy: a CRC-checked copy of the chip's content from before the write (the station's stock
 *   backup) whose CRC equals the chip's for the range: erase and reprogram the changed sectors;
 * - rf-copy: the RF/MAC sector as read (CRC-checked) at connect.
 * Every restore is proved by the chip's CRC of the whole range. A changed range with none of these
 * fails the write naming its region: nothing can tell what it held.
 */
import { BK7231N_PARTITIONS } from '../../firmware/flash-layout.ts';
import { FlashError } from '../core/errors.ts';
import { BLOCK_SIZE, SECTOR_SIZE } from './protocol/commands.ts';
import { crc32Raw } from './protocol/crc32.ts';

/** Flash content from before this write, e.g. the stock backup; `offset` is its flash address. */
export interface FlashCopy {
  offset: number;
  data: Uint8Array;
}

export type RestoreSource = 'blank' | 'copy' | 'rf-copy';

/** One range outside the image that a stray write changed and the guard put back (proved by CRC). */
export interface OutsideRestore {
  region: FlashRegion;
  start: number;
  length: number;
  source: RestoreSource;
  /** Sectors erased (and reprogrammed, unless blank) to restore it. */
  sectors: number[];
  /** The chip's CRC of the range after the restore: the one it had before the write. */
  crc: number;
  /** Model-clock span of the restore (its erase/program commands fall inside it). */
  fromMs: number;
  toMs: number;
}

/** What the guard needs of the chip; the flasher supplies it (bounded retries included). */
export interface GuardedChip {
  crc(start: number, length: number): Promise<number>;
  /** Erase the 4K sector and program `data` into it (nothing programmed when data is all 0xFF). */
  rewriteSector(address: number, data: Uint8Array): Promise<void>;
  now(): number;
}

/** BK7231N flash regions as the soak and the error messages name them (bk7231-protocol.md §8). */
export type FlashRegion = 'bootloader' | 'app' | 'OTA/download' | 'RF/MAC' | 'config/KV' | 'Tuya storage' | 'beyond flash';
const P = BK7231N_PARTITIONS;
/** Tuya's storage partition, 0x1ED000 +0x13000 (libretiny beken-7231n-tuya.json). */
const TUYA_STORAGE_START = 0x1ed000;
const REGION_STARTS: ReadonlyArray<readonly [number, FlashRegion]> = [
  [P.bootloader.start, 'bootloader'],
  [P.app.start, 'app'],
  [P.ota.start, 'OTA/download'],
  [P.rf.start, 'RF/MAC'],
  [P.rf.end, 'config/KV'],
  [TUYA_STORAGE_START, 'Tuya storage'],
];

export function flashRegionOf(address: number, flashSize: number): FlashRegion {
  if (address >= flashSize) return 'beyond flash';
  let region: FlashRegion = 'bootloader';
  for (const [start, name] of REGION_STARTS) if (address >= start) region = name;
  return region;
}

/**
 * Which ranges a check CRCs. 'all' after any line irregularity. 'protected' (the bootloader and the
 * RF/MAC sector only) when the channel's line record shows that, since the snapshot, every command
 * got the reply that echoes its own code, address and erase size, with no timeout, no skipped or
 * garbled frame and nothing drained: the chip then ran exactly the erases and writes the flasher
 * planned, all inside the image. A stray needs the chip to receive another address (its reply then
 * echoes that address: a skipped frame and a timeout) or to parse a command out of a frame it lost
 * sync in (the lost frame's reply is missing). What the record cannot see is a request bit and the
 * same bit of its reply's echo both flipped, or a stray's whole reply lost without a trace; the two
 * regions nothing can rebuild are CRC-proved anyway.
 */
export type OutsideScope = 'all' | 'protected';
const PROTECTED_REGIONS: ReadonlySet<FlashRegion> = new Set(['bootloader', 'RF/MAC']);

/** Chip CRC answers asked for one range before two agree (a garbled reply or request must not decide). */
const MAX_CRC_ASKS = 5;
/** Restore rounds for one range (find the changed sectors, rewrite them, prove the range). */
const RESTORE_ROUNDS = 3;

interface GuardedRange {
  start: number;
  length: number;
  region: FlashRegion;
  /** The chip's CRC before writing, confirmed (by a second answer or by an independent source). */
  crc: number;
  /** Where the range's content is known from; null: only its CRC is known. */
  source: RestoreSource | null;
}

export class OutsideImageGuard {
  readonly #ranges: GuardedRange[];
  readonly #copy: FlashCopy | undefined;
  readonly #rfCopy: Uint8Array | null;

  private constructor(ranges: GuardedRange[], copy: FlashCopy | undefined, rfCopy: Uint8Array | null) {
    this.#ranges = ranges;
    this.#copy = copy;
    this.#rfCopy = rfCopy;
  }

  /** Ranges guarded, for reports: region, bounds and where each could be restored from. */
  get ranges(): ReadonlyArray<Readonly<GuardedRange>> {
    return this.#ranges;
  }

  /**
   * The chip's CRC of every range outside [offset, offset+length): 64 KiB blocks, cut further at
   * region edges, at the copy's edges and around the RF/MAC sector, so each range lies in one region
   * and is either wholly inside the copy or wholly outside it.
   */
  static async snapshot(chip: GuardedChip, o: { offset: number; length: number; flashSize: number; copy?: FlashCopy; rfCopy: Uint8Array | null }): Promise<OutsideImageGuard> {
    const end = o.offset + o.length;
    const cuts = new Set<number>([o.offset, end, ...REGION_STARTS.map(([a]) => a), P.rf.end]);
    if (o.copy) cuts.add(o.copy.offset).add(o.copy.offset + o.copy.data.length);
    for (let a = 0; a < o.flashSize; a += BLOCK_SIZE) cuts.add(a);
    const edges = [...cuts].filter((a) => a >= 0 && a <= o.flashSize).concat(o.flashSize).sort((a, b) => a - b);
    const ranges: GuardedRange[] = [];
    for (let i = 0; i + 1 < edges.length; i++) {
      const start = edges[i]!;
      const length = edges[i + 1]! - start;
      if (length <= 0 || (start >= o.offset && start < end)) continue;
      const region = flashRegionOf(start, o.flashSize);
      const known: Array<{ source: RestoreSource; crc: number }> = [];
      const fromCopy = copySlice(o.copy, start, length);
      if (fromCopy) known.push({ source: 'copy', crc: crc32Raw(fromCopy) });
      if (o.rfCopy && start === P.rf.start && length === o.rfCopy.length) known.push({ source: 'rf-copy', crc: crc32Raw(o.rfCopy) });
      known.push({ source: 'blank', crc: blankCrc(length) });
      const crc = await agreedCrc(chip, start, length, known.map((k) => k.crc));
      ranges.push({ start, length, region, crc, source: known.find((k) => k.crc === crc)?.source ?? null });
    }
    return new OutsideImageGuard(ranges, o.copy, o.rfCopy);
  }

  /** Bytes the chip CRCs for a check of `scope` (each range once, when nothing changed). */
  checkBytes(scope: OutsideScope): number {
    return this.#ranges.filter((r) => scope === 'all' || PROTECTED_REGIONS.has(r.region)).reduce((n, r) => n + r.length, 0);
  }

  /**
   * Prove every range of `scope` unchanged ('all': every range; 'protected': the bootloader's and
   * the RF/MAC sector's, for a session whose line record proves every other range untouched, see
   * OutsideScope); restore the changed ones from their source. Returns what it
   * restored (empty when nothing had changed). Throws FlashError naming the region of a range that
   * changed and cannot be restored, or whose restore the chip's CRC does not prove.
   */
  async check(chip: GuardedChip, image: { offset: number; length: number }, scope: OutsideScope = 'all'): Promise<OutsideRestore[]> {
    const restored: OutsideRestore[] = [];
    for (const r of this.#ranges) {
      if (scope === 'protected' && !PROTECTED_REGIONS.has(r.region)) continue;
      const first = await chip.crc(r.start, r.length);
      if (first === r.crc) continue;
      // A garbled answer (or request) is no change: ask until two answers agree.
      if ((await agreedCrc(chip, r.start, r.length, [r.crc], [first])) === r.crc) continue;
      const where = `${r.region} range 0x${r.start.toString(16)}..0x${(r.start + r.length).toString(16)}`;
      const ctx = { phase: 'verify', address: r.start, region: r.region, imageStart: image.offset, imageEnd: image.offset + image.length };
      if (r.source === null) {
        throw new FlashError(`flash outside the image changed: ${where} (image 0x${image.offset.toString(16)}..0x${(image.offset + image.length).toString(16)}) differs from its CRC before writing and cannot be restored: no copy of its content (hand the flasher a full backup)`, { ...ctx, restorable: false });
      }
      const truth = this.#truth(r);
      const fromMs = chip.now();
      const sectors = new Set<number>();
      let proved = false;
      for (let round = 0; round < RESTORE_ROUNDS && !proved; round++) {
        for (let s = r.start; s < r.start + r.length; s += SECTOR_SIZE) {
          const want = truth.subarray(s - r.start, s - r.start + SECTOR_SIZE);
          if ((await chip.crc(s, SECTOR_SIZE)) === crc32Raw(want)) continue;
          await chip.rewriteSector(s, want);
          sectors.add(s);
        }
        proved = (await chip.crc(r.start, r.length)) === r.crc;
      }
      if (!proved) {
        throw new FlashError(`flash outside the image changed: ${where}; restoring it from ${r.source} did not bring back its CRC 0x${r.crc.toString(16)} after ${RESTORE_ROUNDS} rounds`, { ...ctx, source: r.source, sectors: [...sectors] });
      }
      restored.push({ region: r.region, start: r.start, length: r.length, source: r.source, sectors: [...sectors].sort((a, b) => a - b), crc: r.crc, fromMs, toMs: chip.now() });
    }
    return restored;
  }

  #truth(r: GuardedRange): Uint8Array {
    if (r.source === 'blank') return new Uint8Array(r.length).fill(0xff);
    if (r.source === 'rf-copy') return this.#rfCopy!;
    return copySlice(this.#copy, r.start, r.length)!;
  }
}

function copySlice(copy: FlashCopy | undefined, start: number, length: number): Uint8Array | undefined {
  if (!copy || start < copy.offset || start + length > copy.offset + copy.data.length) return undefined;
  return copy.data.subarray(start - copy.offset, start - copy.offset + length);
}

/**
 * The chip's CRC of a range, believed only when confirmed: equal to one of `known` (computed from
 * content known independently) or given twice. Nothing here can be faked by one flipped bit.
 */
async function agreedCrc(chip: GuardedChip, start: number, length: number, known: readonly number[], answered: readonly number[] = []): Promise<number> {
  const seen = [...answered];
  for (let i = seen.length; i < MAX_CRC_ASKS; i++) {
    const c = await chip.crc(start, length);
    if (known.includes(c) || seen.includes(c)) return c;
    seen.push(c);
  }
  throw new FlashError(`the chip's CRC of 0x${start.toString(16)}+0x${length.toString(16)} never came back the same twice in ${MAX_CRC_ASKS} asks`, { phase: 'verify', address: start, answers: seen });
}

const blankCrcs = new Map<number, number>();
/** Raw chip CRC of `length` bytes of 0xFF (what CheckCRC answers for an erased range). */
export function blankCrc(length: number): number {
  let c = blankCrcs.get(length);
  if (c === undefined) {
    c = crc32Raw(new Uint8Array(length).fill(0xff));
    blankCrcs.set(length, c);
  }
  return c;
}
