/**
 * CRC-16/CMS: poly 0x8005, init 0xFFFF, MSB-first (no reflection), no final XOR.
 * This is the per-block CRC Beken stores in app/bootloader images (bk7231-protocol.md §8).
 * Check value of ASCII "123456789" is 0xAEE7.
 */
const TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8005) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

export const CRC16_CMS_INIT = 0xffff;

/** CRC-16/CMS of `bytes[start, end)`; pass a previous result as `init` to continue a running CRC. */
export function crc16Cms(bytes: Uint8Array, start = 0, end = bytes.length, init = CRC16_CMS_INIT): number {
  let crc = init;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc;
}
