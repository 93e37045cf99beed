/**
 * Chip -> host reply frames of the BK7231 download protocol (bk7231-protocol.md §2.3-2.4).
 * Pure builders; the command semantics live in virtual-bk7231.ts.
 */

// Written twice on purpose (chip; the host's are rig/bk7231/protocol/commands.ts); each side is tested against the reference's literal traces.
/** Short-form command codes (host -> chip, `01 E0 FC LEN CMD ...`). */
export const ShortCmd = {
  LinkCheck: 0x00,
  WriteReg: 0x01,
  ReadReg: 0x03,
  Reboot: 0x0e,
  SetBaudRate: 0x0f,
  CheckCrc: 0x10,
} as const;

/** Long-form command codes (host -> chip, `01 E0 FC FF F4 LEN16 CMD ...`). */
export const LongCmd = {
  FlashWrite: 0x06,
  FlashWrite4K: 0x07,
  FlashRead4K: 0x09,
  FlashReadSr: 0x0c,
  FlashWriteSr: 0x0d,
  FlashGetMid: 0x0e,
  FlashErase: 0x0f,
} as const;

/** Status byte of long replies (Beken bootloader `type.h`). */
export const Status = {
  Ok: 0,
  PackLenError: 4,
  ParamError: 6,
} as const;

/** Magic argument of the Reboot command. */
export const REBOOT_MAGIC = 0xa5;

/** `04 0E LEN 01 E0 FC CODE PAYLOAD`, LEN = 4 + payload (total LEN + 3 bytes). */
export function shortReply(code: number, payload: Uint8Array | readonly number[] = []): Uint8Array {
  const out = new Uint8Array(7 + payload.length);
  out.set([0x04, 0x0e, 4 + payload.length, 0x01, 0xe0, 0xfc, code], 0);
  out.set(payload, 7);
  return out;
}

/** `04 0E FF 01 E0 FC F4 LEN16 CODE STATUS PAYLOAD`, LEN = 2 + payload (total LEN + 9 bytes). */
export function longReply(code: number, status: number, payload: Uint8Array | readonly number[] = []): Uint8Array {
  const len = 2 + payload.length;
  const out = new Uint8Array(11 + payload.length);
  out.set([0x04, 0x0e, 0xff, 0x01, 0xe0, 0xfc, 0xf4, len & 0xff, len >> 8, code, status], 0);
  out.set(payload, 11);
  return out;
}

export function le32(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return b;
}

export function readLe32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}
