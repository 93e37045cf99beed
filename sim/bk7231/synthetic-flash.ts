import { crc32 } from 'node:zlib';
import { ConfigError } from '../../rig/core/errors.ts';
import { mulberry32 } from '../../rig/core/prng.ts';
import { crc16CmsFast } from './beken-blocks.ts';

/**
 * Deterministic factory content for a virtual CB2S flash: a synthetic bootloader at 0x0 and the
 * RF calibration TLV sector holding the unit's MAC (bk7231-protocol.md §8, §9). The bytes are
 * invented; only the structure the tools look at is real.
 */

// Deliberately independent of the host's firmware/flash-layout.ts and firmware/crc16.ts: a shared mistake would pass both sides.
export const BOOTLOADER_ADDR = 0x0;
export const BOOTLOADER_BYTES = 0x11000;
/** RF/MAC TLV sector on BK7231N (0x1E0000 on BK7231T). */
export const RF_SECTOR_ADDR = 0x1d0000;
/** MAC bytes inside the RF sector (after tag 0x11111102, len 6 at 0x1C..0x23). */
export const RF_MAC_OFFSET = 0x24;
/**
 * Standard CRC-32 of bootloader bytes 0..0x100 (257 bytes, the N ROM's inclusive end) of the
 * real "BK7231N 1.0.1" bootloader (bk7231tools BkBootloaderType). The synthetic bootloader is
 * patched to produce it so that fingerprinting host code identifies the chip.
 */
export const BK7231N_1_0_1_FINGERPRINT_CRC = 0xe14191ba;
/** Beken-style OUI used for derived MACs. */
export const DEFAULT_MAC_PREFIX = [0xc8, 0x47, 0x8c] as const;

/** Deterministic [0,1) generator: the seed fully determines a unit's content. */
export const seededRandom = mulberry32;

export function macFromSeed(seed: number): Uint8Array {
  const rnd = seededRandom(seed ^ 0x4d4143);
  return Uint8Array.from([...DEFAULT_MAC_PREFIX, ...[0, 1, 2].map(() => Math.floor(rnd() * 256))]);
}

/** "C8:47:8C:01:02:03" or "c8478c010203" -> 6 bytes. */
export function parseMac(text: string): Uint8Array {
  const clean = text.replace(/[:\-\s]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(clean)) throw new ConfigError(`invalid MAC "${text}"`, { step: 'sim-bk7231' });
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

/** CRC-16/CMS (poly 0x8005, init 0xFFFF, no reflection, no xorout): the image block check (the sim's one table). */
export const crc16Cms = (data: Uint8Array): number => crc16CmsFast(data);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
const CRC_INDEX_BY_TOP = (() => {
  const inv = new Uint8Array(256);
  for (let n = 0; n < 256; n++) inv[CRC_TABLE[n]! >>> 24] = n;
  return inv;
})();

/**
 * Overwrite data[at..at+3] so that the standard CRC-32 of `data` becomes `target` (4 free bytes
 * can steer a CRC-32 register to any value: walk the wanted final register back through the
 * suffix to find the four table indices, then pick bytes that select them).
 */
export function forceCrc32(data: Uint8Array, at: number, target: number): void {
  let reg = ~target >>> 0;
  for (let i = data.length - 1; i >= at + 4; i--) {
    const k = CRC_INDEX_BY_TOP[reg >>> 24]!;
    reg = ((((reg ^ CRC_TABLE[k]!) << 8) | (k ^ data[i]!)) >>> 0);
  }
  const idx: number[] = [];
  for (let i = 3; i >= 0; i--) {
    const k = CRC_INDEX_BY_TOP[reg >>> 24]!;
    idx[i] = k;
    reg = ((reg ^ CRC_TABLE[k]!) << 8) >>> 0;
  }
  let c = ~crc32(data.subarray(0, at)) >>> 0;
  for (let i = 0; i < 4; i++) {
    data[at + i] = (idx[i]! ^ c) & 0xff;
    c = (CRC_TABLE[idx[i]!]! ^ (c >>> 8)) >>> 0;
  }
  if (crc32(data) >>> 0 !== target >>> 0) {
    throw new ConfigError('CRC forcing failed (internal)', { step: 'sim-bk7231', expected: target.toString(16) });
  }
}

/**
 * 0x11000 bytes laid out like a Beken bootloader partition: 32 data bytes + CRC-16/CMS (big
 * endian) per 34-byte block; the first 257 bytes reproduce the BK7231N 1.0.1 fingerprint CRC.
 */
export function syntheticBootloader(seed: number): Uint8Array {
  const rnd = seededRandom(seed ^ 0x426f6f74);
  const out = new Uint8Array(BOOTLOADER_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  const blockChecks = (): void => {
    for (let block = 0; block < out.length; block += 34) {
      const crc = crc16Cms(out.subarray(block, block + 32));
      out[block + 32] = crc >> 8;
      out[block + 33] = crc & 0xff;
    }
  };
  blockChecks();
  // Steer bytes 0xFC..0xFF: data of block 7, whose CRC-16 (0x10E) lies outside the 257-byte
  // window, so re-running the block checks afterwards keeps the fingerprint.
  const window = out.slice(0, 0x101);
  forceCrc32(window, 0xfc, BK7231N_1_0_1_FINGERPRINT_CRC);
  out.set(window, 0);
  blockChecks();
  return out;
}

/**
 * RF calibration sector (4 KiB): "TLV\0", LE32 length of what follows the 8-byte header, an
 * invented calibration tag 0x11111101 (12 bytes) so that the MAC tag lands where the tools look
 * (0x11111102, len 6 at 0x1C, MAC at 0x24), then 0xFF.
 */
export function rfSector(mac: Uint8Array, seed: number): Uint8Array {
  if (mac.length !== 6) throw new ConfigError(`MAC must be 6 bytes, got ${mac.length}`, { step: 'sim-bk7231' });
  const rnd = seededRandom(seed ^ 0x52466361);
  const out = new Uint8Array(0x1000).fill(0xff);
  const dv = new DataView(out.buffer);
  out.set([0x54, 0x4c, 0x56, 0x00], 0);
  dv.setUint32(0x08, 0x11111101, true);
  dv.setUint32(0x0c, 12, true);
  for (let i = 0; i < 12; i++) out[0x10 + i] = Math.floor(rnd() * 256);
  dv.setUint32(0x1c, 0x11111102, true);
  dv.setUint32(0x20, 6, true);
  out.set(mac, RF_MAC_OFFSET);
  dv.setUint32(0x04, RF_MAC_OFFSET + 6 - 8, true);
  return out;
}
