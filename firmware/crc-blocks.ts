/**
 * Beken "CRC block" storage format: every 32 data bytes are followed by their CRC-16/CMS,
 * big-endian, so the stored (physical) image is made of 34-byte blocks
 * (bk7231-protocol.md §8). Pure codec: bytes in, bytes/statistics out.
 */
import { crc16Cms } from './crc16.ts';

export const BLOCK_DATA_BYTES = 32;
export const BLOCK_BYTES = 34;

/** Store `data` as CRC blocks. `data.length` must be a multiple of 32 (pad first; the packager does too). */
export function addBlockCrcs(data: Uint8Array): Uint8Array {
  if (data.length % BLOCK_DATA_BYTES !== 0) {
    throw new RangeError(`CRC-block data must be a multiple of ${BLOCK_DATA_BYTES} bytes, got ${data.length}`);
  }
  const blocks = data.length / BLOCK_DATA_BYTES;
  const out = new Uint8Array(blocks * BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    writeBlock(out, b * BLOCK_BYTES, data.subarray(b * BLOCK_DATA_BYTES, (b + 1) * BLOCK_DATA_BYTES));
  }
  return out;
}

/** Write one block (32 data bytes + big-endian CRC) into `target` at `offset`. */
export function writeBlock(target: Uint8Array, offset: number, data32: Uint8Array): void {
  target.set(data32, offset);
  const crc = crc16Cms(data32);
  target[offset + BLOCK_DATA_BYTES] = crc >> 8;
  target[offset + BLOCK_DATA_BYTES + 1] = crc & 0xff;
}

/** True if the 34 bytes at `offset` are 32 data bytes followed by their correct CRC. */
export function isValidBlock(bytes: Uint8Array, offset: number): boolean {
  const crc = crc16Cms(bytes, offset, offset + BLOCK_DATA_BYTES);
  return bytes[offset + BLOCK_DATA_BYTES] === crc >> 8 && bytes[offset + BLOCK_DATA_BYTES + 1] === (crc & 0xff);
}

function isAllFF(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0xff) return false;
  return true;
}

export interface BlockScan {
  /** Complete 34-byte blocks in the range. */
  blocks: number;
  valid: number;
  /** Blocks that are 34 × 0xFF: erased flash / padding, neither valid nor invalid. */
  erased: number;
  invalid: number;
  /** Offset (absolute) of the first invalid block, if any. */
  firstInvalidAt?: number;
  /** Bytes after the last complete block (not checkable). */
  tailBytes: number;
  /** True if those tail bytes are all 0xFF (plain padding). */
  tailIsPadding: boolean;
  /** valid / (blocks - erased); 0 if every block is erased. Random data gives ≈ 1/65536. */
  validFraction: number;
}

/** Check the CRC blocks of `bytes[start, end)`; `start` must be block-aligned in the image. */
export function scanBlocks(bytes: Uint8Array, start = 0, end = bytes.length): BlockScan {
  const blocks = Math.floor((end - start) / BLOCK_BYTES);
  let valid = 0;
  let erased = 0;
  let firstInvalidAt: number | undefined;
  for (let b = 0; b < blocks; b++) {
    const at = start + b * BLOCK_BYTES;
    if (isValidBlock(bytes, at)) valid++;
    else if (isAllFF(bytes, at, at + BLOCK_BYTES)) erased++;
    else firstInvalidAt ??= at;
  }
  const tailStart = start + blocks * BLOCK_BYTES;
  const checked = blocks - erased;
  return {
    blocks,
    valid,
    erased,
    invalid: checked - valid,
    firstInvalidAt,
    tailBytes: end - tailStart,
    tailIsPadding: isAllFF(bytes, tailStart, end),
    validFraction: checked === 0 ? 0 : valid / checked,
  };
}
