/**
 * Deterministic synthetic OpenBeken images (real binaries are not available to the rig's tests).
 *
 * Shape of a real release: a QIO is the bootloader area (bootloader code in CRC blocks, then 0xFF fill up to
 * 0x11000) followed by the app; a UA is the same app alone. The app is stored in 34-byte CRC blocks; its
 * content is encrypted code, i.e. near-uniform bytes, ending with a few blocks of 0xFF padding data.
 * The bootloader depends on the chip only, the app on (chip, version, seed), so a QIO and a UA of the same
 * release share their app bytes, as real releases do.
 *
 * The first 64 data bytes of every app are a build record, so that a virtual chip can tell what it would run
 * (real images carry their identity inside the encrypted code; the simulator cannot decrypt, so the synthetic
 * ones carry it in the clear). The simulator parses it with its own reader (sim/bk7231/boot-image.ts):
 *   [0, 8)   ASCII "SYNBUILD"
 *   [8, 12)  u32 LE: the app's data length in bytes (all data blocks, this record and padding included)
 *   [12, 16) 0
 *   [16, 64) ASCII "<vendor>/<chip>/<version>[/<variant>]", NUL-padded, e.g. "OpenBeken/BK7231N/1.18.42/tuyaMCU"
 */
import { addBlockCrcs, BLOCK_BYTES, BLOCK_DATA_BYTES, writeBlock } from './crc-blocks.ts';
import { FLASH_LAYOUTS, SECTOR_BYTES, type BekenChip } from './flash-layout.ts';
import { mulberry32U32 } from '../rig/core/prng.ts';

export interface SyntheticImageOptions {
  chip: BekenChip;
  kind: 'qio' | 'ua';
  /** e.g. '1.18.42'; goes into the file name. */
  version: string;
  seed: number;
  /** Stored app size in bytes, rounded down to whole 34-byte blocks. Default: about 0.98–1.05 MB from the seed. */
  appBytes?: number;
  /** Feature variant (`tuyaMCU`, `sensors`, …): goes into the name and the build record. Default: the plain build. */
  variant?: string;
}

export interface SyntheticImage {
  name: string;
  bytes: Uint8Array;
  chip: BekenChip;
  kind: 'qio' | 'ua';
  version: string;
  variant?: string;
  /** Flash address of bytes[0] (QIO: 0x0, UA: 0x11000). */
  flashOffset: number;
}

/** Stored bootloader code size per chip (whole blocks); the rest of 0x0–0x11000 is 0xFF fill. */
const BOOTLOADER_BLOCKS: Readonly<Record<BekenChip, number>> = { BK7231N: 1100, BK7231T: 1290 };
/** App padding blocks (32 × 0xFF data + CRC) at the end of every app. */
const APP_PAD_BLOCKS = 40;

/** FNV-1a 32-bit of a string: turns (chip, version, seed) into a PRNG seed. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const prng = mulberry32U32;

function randomBytes(next: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const v = next();
    out[i] = v & 0xff;
    if (i + 1 < length) out[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < length) out[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < length) out[i + 3] = v >>> 24;
  }
  return out;
}

/** Magic of the build record at the start of a synthetic app's data. */
export const BUILD_RECORD_MAGIC = 'SYNBUILD';
export const BUILD_RECORD_BYTES = 64;

/** Write the build record (see the file comment) over the first 64 data bytes. */
function writeBuildRecord(data: Uint8Array, buildId: string): void {
  const id = new TextEncoder().encode(buildId);
  if (id.length > BUILD_RECORD_BYTES - 16) throw new RangeError(`build id "${buildId}" is longer than ${BUILD_RECORD_BYTES - 16} bytes`);
  const record = new Uint8Array(BUILD_RECORD_BYTES);
  record.set(new TextEncoder().encode(BUILD_RECORD_MAGIC), 0);
  new DataView(record.buffer).setUint32(8, data.length, true);
  record.set(id, 16);
  data.set(record, 0);
}

/**
 * `blocks` blocks of code-like data, the last APP_PAD_BLOCKS of them 0xFF padding, stored with CRCs; with a
 * build id (and room for it) the data starts with the build record.
 */
function makeApp(next: () => number, blocks: number, buildId?: string): Uint8Array {
  const pad = Math.min(APP_PAD_BLOCKS, Math.floor(blocks / 4));
  const data = new Uint8Array(blocks * BLOCK_DATA_BYTES).fill(0xff);
  data.set(randomBytes(next, (blocks - pad) * BLOCK_DATA_BYTES));
  if (buildId !== undefined && blocks * BLOCK_DATA_BYTES >= 2 * BUILD_RECORD_BYTES) writeBuildRecord(data, buildId);
  return addBlockCrcs(data);
}

function makeBootloaderArea(chip: BekenChip): Uint8Array {
  const area = new Uint8Array(FLASH_LAYOUTS[chip].appOffset).fill(0xff);
  const code = randomBytes(prng(fnv1a(`bootloader/${chip}`)), BOOTLOADER_BLOCKS[chip] * BLOCK_DATA_BYTES);
  area.set(addBlockCrcs(code));
  return area;
}

export function syntheticImageName(chip: BekenChip, kind: 'qio' | 'ua', version: string, variant?: string): string {
  return `Open${chip}_${kind.toUpperCase()}_${version}${variant ? `_${variant}` : ''}.bin`;
}

export function makeSyntheticImage(options: SyntheticImageOptions): SyntheticImage {
  const { chip, kind, version, seed, variant } = options;
  if (variant !== undefined && !/^[A-Za-z0-9]+$/.test(variant)) throw new RangeError(`variant "${variant}" must be letters and digits`);
  const next = prng(fnv1a(`app/${chip}/${version}/${seed}${variant ? `/${variant}` : ''}`));
  const defaultBytes = 980_000 + (next() % 70_000);
  const appBlocks = Math.floor((options.appBytes ?? defaultBytes) / BLOCK_BYTES);
  if (appBlocks < 1) throw new RangeError(`appBytes must be at least ${BLOCK_BYTES}`);
  const app = makeApp(next, appBlocks, `OpenBeken/${chip}/${version}${variant ? `/${variant}` : ''}`);
  const layout = FLASH_LAYOUTS[chip];
  let bytes = app;
  if (kind === 'qio') {
    bytes = new Uint8Array(layout.appOffset + app.length);
    bytes.set(makeBootloaderArea(chip));
    bytes.set(app, layout.appOffset);
  }
  return {
    name: syntheticImageName(chip, kind, version, variant),
    bytes,
    chip,
    kind,
    version,
    ...(variant ? { variant } : {}),
    flashOffset: kind === 'qio' ? 0 : layout.appOffset,
  };
}

export interface SectorVariantOptions {
  /** How many app sectors to change (spread over the app), or the flash addresses of the sectors. */
  sectors: number | readonly number[];
  seed: number;
  /** Version for the variant's name; default `<base version>-d<seed>`. */
  version?: string;
}

export interface SectorVariant extends SyntheticImage {
  /** Flash addresses of the 4 KiB sectors whose bytes differ from the base, ascending. */
  changedSectors: number[];
}

/**
 * A copy of `base` with new code in a few blocks of some app sectors (CRCs kept valid), for
 * differential-flash tests: only `changedSectors` need rewriting.
 */
export function makeSectorVariant(base: SyntheticImage, options: SectorVariantOptions): SectorVariant {
  const layout = FLASH_LAYOUTS[base.chip];
  const bytes = Uint8Array.from(base.bytes);
  const imageEnd = base.flashOffset + bytes.length;
  const firstAppSector = layout.appOffset;
  const lastSector = Math.floor((imageEnd - 1) / SECTOR_BYTES) * SECTOR_BYTES;
  const next = prng(fnv1a(`variant/${base.name}/${options.seed}`));

  let targets: number[];
  if (typeof options.sectors === 'number') {
    const count = options.sectors;
    const span = (lastSector - firstAppSector) / SECTOR_BYTES;
    targets = Array.from({ length: count }, (_, i) =>
      firstAppSector + Math.floor(((i + 0.5) * span) / count) * SECTOR_BYTES);
  } else {
    targets = [...options.sectors];
  }
  for (const sector of targets) {
    if (sector % SECTOR_BYTES !== 0 || sector < firstAppSector || sector > lastSector) {
      throw new RangeError(`sector 0x${sector.toString(16)} is not an app sector of ${base.name}`);
    }
    // Rewrite up to 3 whole blocks inside the sector (block grid is aligned to file offset 0), never the
    // build record's two blocks at the start of the app.
    const fileStart = sector - base.flashOffset;
    const fileEnd = Math.min(fileStart + SECTOR_BYTES, bytes.length);
    const recordEnd = layout.appOffset - base.flashOffset + 2 * BLOCK_BYTES;
    let at = Math.max(Math.ceil(fileStart / BLOCK_BYTES) * BLOCK_BYTES, recordEnd);
    for (let n = 0; n < 3 && at + BLOCK_BYTES <= fileEnd; n++, at += BLOCK_BYTES * 7) {
      writeBlock(bytes, at, randomBytes(next, BLOCK_DATA_BYTES));
    }
  }

  const changedSectors: number[] = [];
  for (let s = Math.floor(base.flashOffset / SECTOR_BYTES) * SECTOR_BYTES; s < imageEnd; s += SECTOR_BYTES) {
    const from = Math.max(0, s - base.flashOffset);
    const to = Math.min(bytes.length, s + SECTOR_BYTES - base.flashOffset);
    for (let i = from; i < to; i++) {
      if (bytes[i] !== base.bytes[i]) {
        changedSectors.push(s);
        break;
      }
    }
  }
  const version = options.version ?? `${base.version}-d${options.seed}`;
  return { ...base, name: syntheticImageName(base.chip, base.kind, version, base.variant), version, bytes, changedSectors };
}

export const BENCH_IMAGE_BYTES = 0x100000;

/**
 * Exactly 1 MiB UA image for throughput benches: whole CRC blocks, then 0xFF padding to 1 MiB
 * (1 MiB is not a multiple of 34). Written at 0x11000 it ends at 0x111000, inside the app partition.
 */
export function makeBenchImage(seed = 1, chip: BekenChip = 'BK7231N'): SyntheticImage {
  const version = '0.0.0-bench';
  const bytes = new Uint8Array(BENCH_IMAGE_BYTES).fill(0xff);
  bytes.set(makeApp(prng(fnv1a(`bench/${chip}/${seed}`)), Math.floor(BENCH_IMAGE_BYTES / BLOCK_BYTES)));
  return { name: syntheticImageName(chip, 'ua', version), bytes, chip, kind: 'ua', version, flashOffset: FLASH_LAYOUTS[chip].appOffset };
}
