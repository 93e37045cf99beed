/**
 * The simulator's own reader/writer of Beken CRC blocks (32 data bytes + CRC-16/CMS big-endian,
 * bk7231-protocol.md §8). Deliberately independent of firmware/: the virtual chip must judge
 * flash content by itself, so a bug in the rig's codec cannot hide behind the same bug here.
 */

export const BLOCK_DATA = 32;
export const BLOCK = 34;

/** CRC-16/CMS table (poly 0x8005, init 0xFFFF, no reflection, no xorout). */
const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
    t[n] = c;
  }
  return t;
})();

export function crc16CmsFast(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ data[i]!) & 0xff]!;
  return crc;
}

/** `data` (a multiple of 32 bytes) stored as CRC blocks. */
export function toBlocks(data: Uint8Array): Uint8Array {
  if (data.length % BLOCK_DATA !== 0) throw new RangeError(`CRC-block data must be a multiple of ${BLOCK_DATA} bytes, got ${data.length}`);
  const n = data.length / BLOCK_DATA;
  const out = new Uint8Array(n * BLOCK);
  for (let b = 0; b < n; b++) {
    out.set(data.subarray(b * BLOCK_DATA, (b + 1) * BLOCK_DATA), b * BLOCK);
    const crc = crc16CmsFast(data, b * BLOCK_DATA, (b + 1) * BLOCK_DATA);
    out[b * BLOCK + BLOCK_DATA] = crc >> 8;
    out[b * BLOCK + BLOCK_DATA + 1] = crc & 0xff;
  }
  return out;
}

/** The stored block at `at` carries the right CRC. */
export function blockValid(stored: Uint8Array, at: number): boolean {
  const crc = crc16CmsFast(stored, at, at + BLOCK_DATA);
  return stored[at + BLOCK_DATA] === crc >> 8 && stored[at + BLOCK_DATA + 1] === (crc & 0xff);
}

export function allFF(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0xff) return false;
  return true;
}

/** The data bytes of stored blocks [0, blocks) (CRCs dropped). */
export function blockData(stored: Uint8Array, blocks: number): Uint8Array {
  const out = new Uint8Array(blocks * BLOCK_DATA);
  for (let b = 0; b < blocks; b++) out.set(stored.subarray(b * BLOCK, b * BLOCK + BLOCK_DATA), b * BLOCK_DATA);
  return out;
}
