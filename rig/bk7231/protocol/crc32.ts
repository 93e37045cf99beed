/**
 * The chip's CheckCRC value: reflected CRC-32 (poly 0xEDB88320), init 0xFFFFFFFF and NO final
 * xor. It equals the bitwise NOT of the usual (zlib) CRC-32.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export const CRC32_RAW_INIT = 0xffffffff;

/** Continue a raw CRC over more bytes (start with CRC32_RAW_INIT). */
export function crc32RawUpdate(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** Raw CRC of a buffer, as the chip reports it. */
export function crc32Raw(data: Uint8Array): number {
  return crc32RawUpdate(CRC32_RAW_INIT, data);
}

/** Standard (zlib) CRC-32 of a buffer. */
export function crc32Standard(data: Uint8Array): number {
  return ~crc32Raw(data) >>> 0;
}

/** Incremental raw CRC, for data that arrives in chunks. */
export class Crc32Raw {
  #crc = CRC32_RAW_INIT;
  update(data: Uint8Array): this {
    this.#crc = crc32RawUpdate(this.#crc, data);
    return this;
  }
  /** Raw value (what CheckCRC returns). */
  raw(): number {
    return this.#crc;
  }
  /** Standard CRC-32 of everything so far. */
  standard(): number {
    return ~this.#crc >>> 0;
  }
}

/** Raw CRC of an erased 4 KiB sector (0x0EAB98F5). */
export const CRC32_RAW_ERASED_4K = crc32Raw(new Uint8Array(0x1000).fill(0xff));
