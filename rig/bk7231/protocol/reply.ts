/** Matching a parsed reply against the request that is waiting for it, and decoding payloads. */
import type { Bk7231Reply } from './parser.ts';
import type { ReplySpec } from './frame.ts';

/**
 * 'match': the awaited reply. 'other': a frame for something else (stale LinkCheck reply, a late
 * reply to an earlier request) that the caller should skip.
 */
export function classifyReply(reply: Bk7231Reply, spec: ReplySpec): 'match' | 'other' {
  if (reply.form !== spec.form || reply.code !== spec.code) return 'other';
  if (!spec.payloadLengths.includes(reply.payload.length)) return 'other';
  for (let i = 0; i < spec.echo.length; i++) if (reply.payload[i] !== spec.echo[i]) return 'other';
  return 'match';
}

export function readU32le(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
}

/** ReadReg / WriteReg reply payload: addr32 value32. */
export function decodeRegister(reply: Bk7231Reply): { address: number; value: number } {
  return { address: readU32le(reply.payload, 0), value: readU32le(reply.payload, 4) };
}

/** CheckCRC reply payload: raw crc32 (no final xor). */
export function decodeCrc(reply: Bk7231Reply): number {
  return readU32le(reply.payload, 0);
}

/** FlashRead4K payload after the echoed address. */
export function decodeRead4K(reply: Bk7231Reply): Uint8Array {
  return reply.payload.subarray(4);
}

/** FlashReadSR payload: spi_cmd value. */
export function decodeStatusRegister(reply: Bk7231Reply): number {
  return reply.payload[1]!;
}

export interface JedecId {
  manufacturer: number;
  type: number;
  capacity: number;
}

/** GetMID: the last three payload bytes are MFR TYPE CAP (LEN 6 has one junk byte in front). */
export function decodeJedecId(reply: Bk7231Reply): JedecId {
  const p = reply.payload;
  const n = p.length;
  return { manufacturer: p[n - 3]!, type: p[n - 2]!, capacity: p[n - 1]! };
}
