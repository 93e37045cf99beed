/**
 * Classify a firmware file before UART flashing and refuse the ones that must not be written.
 *
 * Kinds: `qio` = full-flash image from 0x0 (bootloader area 0x0–0x11000 + app), `ua` = app partition only
 * (written at 0x11000), `raw` = bytes not in Beken CRC-block format (only with `allowRaw`).
 *
 * Policy (errors refuse the image; warnings are reported and the image may be written):
 * - error: empty; larger than the flash; would reach the RF calibration sector; RBL header / RBL or UG name
 *   (OTA packages); another platform or the other BK7231 chip by name; a QIO with an all-0xFF bootloader
 *   area or no app after it; any corrupt CRC block (a damaged file; the chip fetches code through these
 *   CRCs); asking a UA/raw image or a BK7231T to write the bootloader.
 * - error unless `allowRaw` (`--raw`, then a warning): non-Beken content; content contradicting the name (a
 *   QIO-named file without bootloader + 0xFF fill + app code at 0x11000, e.g. a UA, whose first 68 KiB
 *   would be dropped, or a bootloader alone; a UA-named file laid out as a QIO); an incomplete app (its
 *   last whole CRC block is code, not the 0xFF padding a release app ends with: the file was cut short).
 * - warning: size not a whole number of 34-byte CRC blocks with non-0xFF tail (last bytes unverifiable);
 *   kind or chip inferred from content because the name does not say; app reaching into the OTA
 *   partition; an OpenBeken variant built without the BL0937 driver.
 * The QIO/UA layout and the padding end are heuristics [INFER] that every release image satisfies.
 * Sizes that are not multiples of 256 or 4 KiB are fine: the flasher pads the last sector with 0xFF and the
 * image ends below the RF sector, so padding never touches it.
 */
import { createHash } from 'node:crypto';
import { ImageError } from '../rig/core/errors.ts';
import { hex } from '../rig/core/hex.ts';
import { BLOCK_BYTES, BLOCK_DATA_BYTES, isValidBlock, scanBlocks, type BlockScan } from './crc-blocks.ts';
import { FLASH_LAYOUTS, type BekenChip } from './flash-layout.ts';
import { parseImageName, VARIANTS_WITHOUT_BL0937, type ParsedImageName } from './image-name.ts';

export type ImageKind = 'qio' | 'ua' | 'raw';

/** "RBL\0": header magic of RT-Thread OTA packages (`.rbl`), also inside OpenBeken UG files. */
export const RBL_MAGIC = Uint8Array.of(0x52, 0x42, 0x4c, 0x00);

/** At least this fraction of checked blocks must be valid to call content Beken-format (random data ≈ 0). */
const BEKEN_FORMAT_MIN_FRACTION = 0.5;

export interface ClassifyImageOptions {
  /** File name or path (used for the name checks and in every message). */
  name: string;
  bytes: Uint8Array;
  targetChip: BekenChip;
  /** Accept content that is not in Beken CRC-block format (bench patterns); it will not boot. */
  allowRaw?: boolean;
}

export interface WritePlan {
  /** Flash address of bytes[0]. */
  offset: number;
  bytes: Uint8Array;
  /** Flash address one past the last byte. */
  end: number;
}

export interface ImageInfo {
  name: string;
  kind: ImageKind;
  /** Chip the image is for, if known from the name (undefined: not stated). */
  chip?: BekenChip;
  version?: string;
  variant?: string;
  size: number;
  /** Lower-case hex SHA-256 of the whole file. */
  sha256: string;
  /** Flash address written by default: 0x11000 for both QIO (bootloader skipped) and UA. */
  defaultOffset: number;
  /** CRC-block check of the app part (QIO: from 0x11000 in the file; UA/raw: whole file). */
  appBlocks: BlockScan;
  /** CRC-block check of the bootloader area (QIO only). */
  bootloaderBlocks?: BlockScan;
  warnings: string[];
  /** The bytes and flash address to write. `writeBootloader` (QIO on BK7231N only) writes from 0x0. */
  bytesToWrite(writeBootloader?: boolean): WritePlan;
}

function hasRblMagic(bytes: Uint8Array): boolean {
  return bytes.length >= RBL_MAGIC.length && RBL_MAGIC.every((b, i) => bytes[i] === b);
}

function isAllFF(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0xff) return false;
  return true;
}

/** A block of 0xFF fill: erased (34 × 0xFF) or 32 × 0xFF data with its CRC. */
function isFillBlock(bytes: Uint8Array, at: number): boolean {
  return isAllFF(bytes, at, at + BLOCK_DATA_BYTES) && (isAllFF(bytes, at, at + BLOCK_BYTES) || isValidBlock(bytes, at));
}

/**
 * Heuristic [INFER]: a QIO has bootloader code at 0x0, 0xFF fill up to the app offset and app code right
 * after it. A UA is app code throughout, so this boundary is unlikely to line up at exactly 0x11000.
 */
export function looksLikeQio(bytes: Uint8Array, appOffset: number): boolean {
  return (
    bytes.length >= appOffset + BLOCK_BYTES &&
    !isFillBlock(bytes, 0) &&
    isFillBlock(bytes, appOffset - BLOCK_BYTES) &&
    !isFillBlock(bytes, appOffset)
  );
}

function percent(fraction: number): string {
  return (fraction * 100).toFixed(1) + '%';
}

function chipFromName(parsed: ParsedImageName | undefined): BekenChip | undefined {
  return parsed && !parsed.foreign ? parsed.chip : undefined;
}

export function classifyImage(options: ClassifyImageOptions): ImageInfo {
  const { name, bytes, targetChip } = options;
  const layout = FLASH_LAYOUTS[targetChip];
  const size = bytes.length;
  const fail = (problem: string, context: Record<string, unknown> = {}): never => {
    throw new ImageError(`${name}: ${problem}`, { step: 'classify-image', image: name, size, targetChip, ...context });
  };
  const warnings: string[] = [];
  /** Refused unless the caller explicitly accepts odd content (`allowRaw`); then only a warning. */
  const unlessRaw = (problem: string, context: Record<string, unknown> = {}): void => {
    if (!options.allowRaw) fail(`${problem}; refusing to flash it (--raw writes it anyway)`, context);
    warnings.push(problem);
  };

  if (size === 0) fail('file is empty');
  const parsed = parseImageName(name);

  // OTA packages and other platforms first: their size/content rules are not ours.
  if (hasRblMagic(bytes)) {
    fail('is an RBL OTA package (header "RBL\\0" at offset 0); use the OTA update path, not UART flashing', {
      bytesSeen: bytes.subarray(0, 4),
      expected: 'Beken QIO/UA image',
    });
  }
  if (parsed?.packaging === 'rbl' || parsed?.packaging === 'ug') {
    fail(`is an OpenBeken ${parsed.packaging.toUpperCase()} OTA package by name; UART flashing needs the QIO or UA image`);
  }
  if (parsed?.foreign) fail(`is firmware for ${parsed.platform}, not ${targetChip}`, { imageChip: parsed.platform });
  const namedChip = chipFromName(parsed);
  if (namedChip && namedChip !== targetChip) {
    fail(`is a ${namedChip} image; the target is ${targetChip} (wrong chip: it will not boot)`, { imageChip: namedChip });
  }
  if (size > layout.flashSize) {
    fail(`is ${size} bytes, larger than the ${layout.flashSize / 0x100000} MiB flash`, { limit: layout.flashSize });
  }

  // Kind: name first, content otherwise.
  const qioLayout = looksLikeQio(bytes, layout.appOffset);
  let kind: ImageKind;
  if (parsed?.packaging === 'qio' || parsed?.packaging === 'ua') {
    kind = parsed.packaging;
    if (kind === 'ua' && qioLayout) {
      unlessRaw(
        'is named UA but its content is a QIO image (bootloader, then 0xFF fill up to 0x11000): written at 0x11000 ' +
          'it would put the bootloader into the app partition',
      );
    }
  } else {
    kind = qioLayout ? 'qio' : 'ua';
  }

  const appStart = kind === 'qio' ? layout.appOffset : 0;
  if (kind === 'qio' && size <= layout.appOffset) {
    fail(`is a QIO image of ${size} bytes: nothing after the 0x${layout.appOffset.toString(16)}-byte bootloader area`);
  }
  if (kind === 'qio' && isAllFF(bytes, 0, layout.appOffset)) {
    fail('is a QIO image whose bootloader area (0x0–0x11000) is all 0xFF', { address: 0 });
  }
  if (parsed?.packaging === 'qio' && !qioLayout) {
    const at = `0x${layout.appOffset.toString(16)}`;
    if (isFillBlock(bytes, layout.appOffset)) {
      unlessRaw(`is named QIO but has no app code at ${at} (0xFF from there on): a bootloader alone, not a firmware`, { address: layout.appOffset });
    } else {
      unlessRaw(
        `is named QIO but no 0xFF fill ends a bootloader area at ${at}: the content is laid out like a UA image (app code from ` +
          `offset 0), and as a QIO its first ${layout.appOffset / 1024} KiB would be dropped`,
        { address: layout.appOffset },
      );
    }
  }

  const appBlocks = scanBlocks(bytes, appStart, size);
  const bootloaderBlocks = kind === 'qio' ? scanBlocks(bytes, 0, layout.appOffset) : undefined;
  const beken = appBlocks.validFraction >= BEKEN_FORMAT_MIN_FRACTION;
  if (appBlocks.valid + appBlocks.invalid === 0) fail('app area is empty (all 0xFF)', { address: appStart });

  if (!beken) {
    const what = `only ${percent(appBlocks.validFraction)} of ${appBlocks.blocks - appBlocks.erased} CRC blocks are valid`;
    if (!options.allowRaw) {
      fail(`is not a Beken-format image (${what}); refusing to flash bytes that cannot boot`, {
        validFraction: appBlocks.validFraction,
      });
    }
    kind = 'raw';
    warnings.push(`not a Beken-format image (${what}): written as raw bytes at 0x${layout.appOffset.toString(16)}`);
  } else {
    for (const [area, scan] of [['app', appBlocks], ['bootloader', bootloaderBlocks]] as const) {
      if (scan && scan.invalid > 0) {
        const at = scan.firstInvalidAt ?? 0;
        fail(
          `${scan.invalid} of ${scan.blocks - scan.erased} CRC blocks in the ${area} area are corrupt ` +
            `(first at file offset 0x${at.toString(16)}): the file is damaged`,
          { address: at, bytesSeen: bytes.subarray(at, at + BLOCK_BYTES), validFraction: scan.validFraction },
        );
      }
    }
    if (!appBlocks.tailIsPadding) {
      warnings.push(
        `size ${size} is not a whole number of ${BLOCK_BYTES}-byte CRC blocks: the last ${appBlocks.tailBytes} bytes ` +
          `(${hex(bytes.subarray(size - appBlocks.tailBytes))}) cannot be verified`,
      );
    }
    const lastBlockAt = appStart + (appBlocks.blocks - 1) * BLOCK_BYTES;
    if (appBlocks.blocks > 0 && !isFillBlock(bytes, lastBlockAt)) {
      unlessRaw(
        `app is incomplete: the file ends in code (CRC block at file offset 0x${lastBlockAt.toString(16)}) without the 0xFF ` +
          `padding a release app ends with; the file was cut short`,
        { address: lastBlockAt },
      );
    }
    if (parsed?.packaging !== 'qio' && parsed?.packaging !== 'ua') {
      warnings.push(`kind ${kind.toUpperCase()} inferred from content (the name does not say QIO or UA)`);
    }
  }
  if (!namedChip) warnings.push(`chip not stated by the name; assuming ${targetChip}`);

  // Where it lands. A QIO occupies [0, size) whether or not the bootloader part is written.
  const end = kind === 'qio' ? size : layout.appOffset + size;
  if (end > layout.rfOffset) {
    fail(
      `would occupy flash up to 0x${end.toString(16)}, over the RF calibration sector at 0x${layout.rfOffset.toString(16)} ` +
        `(at most ${layout.rfOffset - (kind === 'qio' ? 0 : layout.appOffset)} bytes for a ${kind.toUpperCase()} image)`,
      { address: layout.rfOffset },
    );
  }
  if (end > layout.appEnd) {
    warnings.push(
      `extends to 0x${end.toString(16)}, past the app partition end 0x${layout.appEnd.toString(16)} into the OTA partition`,
    );
  }
  if (parsed?.variant && VARIANTS_WITHOUT_BL0937.includes(parsed.variant.toLowerCase())) {
    warnings.push(`variant "${parsed.variant}" is built without the BL0937 driver: no power metering on this plug`);
  }

  const finalKind = kind;
  return {
    name,
    kind: finalKind,
    chip: namedChip,
    version: parsed?.version,
    variant: parsed?.variant,
    size,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    defaultOffset: layout.appOffset,
    appBlocks,
    bootloaderBlocks,
    warnings,
    bytesToWrite(writeBootloader = false): WritePlan {
      if (writeBootloader) {
        if (finalKind !== 'qio') fail(`is a ${finalKind.toUpperCase()} image: it has no bootloader to write`);
        if (layout.bootloaderIsDownloader) {
          fail(`${targetChip}: the bootloader is the only UART downloader; overwriting it can brick the chip`);
        }
        return { offset: 0, bytes, end: size };
      }
      const data = bytes.subarray(appStart);
      return { offset: layout.appOffset, bytes: data, end: layout.appOffset + data.length };
    },
  };
}
