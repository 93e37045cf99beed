/**
 * Builders for every host -> chip frame the flasher uses. Each builder returns the bytes to send
 * and the reply it must be matched against, so the flasher never guesses lengths.
 *
 *   short: 01 E0 FC <LEN8> <CMD> <payload>            LEN8  = 1 + payload
 *   long:  01 E0 FC FF F4 <LEN16 LE> <CMD> <payload>  LEN16 = 1 + payload
 */
import { EraseOpcode, LINK_CHECK_REPLY_CODE, LongCommand, REBOOT_MAGIC, SECTOR_SIZE, ShortCommand, SpiOpcode, FLASH_WRITE_MAX } from './commands.ts';

export type FrameForm = 'short' | 'long';

/** What the reply to a request must look like. Lengths count the payload after CODE (short) or after STATUS (long). */
export interface ReplySpec {
  form: FrameForm;
  code: number;
  /** Accepted payload lengths. */
  payloadLengths: readonly number[];
  /** Expected prefix of the payload (the chip echoes address/arguments). */
  echo: Uint8Array;
}

export interface Bk7231Request {
  /** Command name for logs and errors. */
  name: string;
  bytes: Uint8Array;
  /** null when the chip does not answer (Reboot). */
  reply: ReplySpec | null;
}

const HEADER = [0x01, 0xe0, 0xfc] as const;
/** Short-form LEN counts CMD + payload in one byte; 0xFF is the long-form escape. */
const SHORT_MAX_PAYLOAD = 0xfe - 1;

export function shortFrame(cmd: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (payload.length > SHORT_MAX_PAYLOAD) return longFrame(cmd, payload);
  const out = new Uint8Array(5 + payload.length);
  out.set(HEADER, 0);
  out[3] = 1 + payload.length;
  out[4] = cmd;
  out.set(payload, 5);
  return out;
}

export function longFrame(cmd: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const len = 1 + payload.length;
  if (len > 0xffff) throw new RangeError(`long frame payload too large: ${payload.length} bytes`);
  const out = new Uint8Array(8 + payload.length);
  out.set(HEADER, 0);
  out[3] = 0xff;
  out[4] = 0xf4;
  out[5] = len & 0xff;
  out[6] = len >>> 8;
  out[7] = cmd;
  out.set(payload, 8);
  return out;
}

export function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function checkAddress(name: string, addr: number): void {
  if (!Number.isInteger(addr) || addr < 0 || addr > 0xffffffff) throw new RangeError(`${name}: address out of range: ${addr}`);
}

export function linkCheck(): Bk7231Request {
  return {
    name: 'LinkCheck',
    bytes: shortFrame(ShortCommand.LinkCheck),
    reply: { form: 'short', code: LINK_CHECK_REPLY_CODE, payloadLengths: [1], echo: Uint8Array.of(0x00) },
  };
}

export function writeReg(addr: number, value: number): Bk7231Request {
  checkAddress('WriteReg', addr);
  const args = concat(u32le(addr), u32le(value));
  // Reply code 0x01 like LinkCheck's; the 8-byte payload tells them apart.
  return { name: 'WriteReg', bytes: shortFrame(ShortCommand.WriteReg, args), reply: { form: 'short', code: ShortCommand.WriteReg, payloadLengths: [8], echo: args } };
}

export function readReg(addr: number): Bk7231Request {
  checkAddress('ReadReg', addr);
  const a = u32le(addr);
  return { name: 'ReadReg', bytes: shortFrame(ShortCommand.ReadReg, a), reply: { form: 'short', code: ShortCommand.ReadReg, payloadLengths: [8], echo: a } };
}

export function reboot(): Bk7231Request {
  return { name: 'Reboot', bytes: shortFrame(ShortCommand.Reboot, Uint8Array.of(REBOOT_MAGIC)), reply: null };
}

/** delayMs: how long the chip waits at the new rate before echoing (the host switches meanwhile). */
export function setBaudRate(baud: number, delayMs: number): Bk7231Request {
  if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 255) throw new RangeError(`SetBaudRate: delay must be 0..255 ms, got ${delayMs}`);
  const args = concat(u32le(baud), Uint8Array.of(delayMs));
  return { name: 'SetBaudRate', bytes: shortFrame(ShortCommand.SetBaudRate, args), reply: { form: 'short', code: ShortCommand.SetBaudRate, payloadLengths: [5], echo: args } };
}

/** CRC over start..endInclusive (the BK7231N ROM counts the end byte). */
export function checkCrc(start: number, endInclusive: number): Bk7231Request {
  checkAddress('CheckCRC', start);
  checkAddress('CheckCRC', endInclusive);
  if (endInclusive < start) throw new RangeError(`CheckCRC: end 0x${endInclusive.toString(16)} before start 0x${start.toString(16)}`);
  return {
    name: 'CheckCRC',
    bytes: shortFrame(ShortCommand.CheckCrc, concat(u32le(start), u32le(endInclusive))),
    reply: { form: 'short', code: ShortCommand.CheckCrc, payloadLengths: [4], echo: new Uint8Array(0) },
  };
}

export function flashRead4K(addr: number): Bk7231Request {
  checkAddress('FlashRead4K', addr);
  const a = u32le(addr);
  return { name: 'FlashRead4K', bytes: longFrame(LongCommand.FlashRead4K, a), reply: { form: 'long', code: LongCommand.FlashRead4K, payloadLengths: [4 + SECTOR_SIZE], echo: a } };
}

export function flashWrite4K(addr: number, data: Uint8Array): Bk7231Request {
  checkAddress('FlashWrite4K', addr);
  if (data.length !== SECTOR_SIZE) throw new RangeError(`FlashWrite4K needs exactly 4096 bytes, got ${data.length}`);
  const a = u32le(addr);
  return { name: 'FlashWrite4K', bytes: longFrame(LongCommand.FlashWrite4K, concat(a, data)), reply: { form: 'long', code: LongCommand.FlashWrite4K, payloadLengths: [4], echo: a } };
}

/** Up to 255 bytes (the reply's count byte cannot express 256); must not cross a 256-byte page. */
export function flashWrite(addr: number, data: Uint8Array): Bk7231Request {
  checkAddress('FlashWrite', addr);
  if (data.length < 1 || data.length > FLASH_WRITE_MAX) throw new RangeError(`FlashWrite takes 1..${FLASH_WRITE_MAX} bytes, got ${data.length}`);
  if ((addr & 0xff) + data.length > 0x100) throw new RangeError(`FlashWrite at 0x${addr.toString(16)} (+${data.length}) crosses a 256-byte page`);
  const a = u32le(addr);
  return {
    name: 'FlashWrite',
    bytes: longFrame(LongCommand.FlashWrite, concat(a, data)),
    reply: { form: 'long', code: LongCommand.FlashWrite, payloadLengths: [5], echo: concat(a, Uint8Array.of(data.length)) },
  };
}

export function flashErase(op: EraseOpcode, addr: number): Bk7231Request {
  checkAddress('FlashErase', addr);
  const args = concat(Uint8Array.of(op), u32le(addr));
  return { name: 'FlashErase', bytes: longFrame(LongCommand.FlashErase, args), reply: { form: 'long', code: LongCommand.FlashErase, payloadLengths: [5], echo: args } };
}

/** spiCmd: 0x05 (SR1), 0x35 (SR2), 0x15 (SR3). */
export function flashReadSR(spiCmd: number): Bk7231Request {
  return {
    name: 'FlashReadSR',
    bytes: longFrame(LongCommand.FlashReadSR, Uint8Array.of(spiCmd)),
    reply: { form: 'long', code: LongCommand.FlashReadSR, payloadLengths: [2], echo: Uint8Array.of(spiCmd) },
  };
}

/** Write 1 or 2 status-register bytes (low byte first) with WRSR (0x01) unless told otherwise. */
export function flashWriteSR(values: readonly number[], spiCmd: number = SpiOpcode.WriteSR): Bk7231Request {
  if (values.length !== 1 && values.length !== 2) throw new RangeError(`FlashWriteSR takes 1 or 2 bytes, got ${values.length}`);
  const args = Uint8Array.of(spiCmd, ...values.map((v) => v & 0xff));
  return { name: 'FlashWriteSR', bytes: longFrame(LongCommand.FlashWriteSR, args), reply: { form: 'long', code: LongCommand.FlashWriteSR, payloadLengths: [args.length], echo: args } };
}

/** JEDEC ID via a raw SPI transaction. The ROM answers LEN 6 (4 bytes after status); some tools expect 5. */
export function flashGetMID(): Bk7231Request {
  return {
    name: 'FlashGetMID',
    bytes: longFrame(LongCommand.FlashGetMID, Uint8Array.of(SpiOpcode.ReadJedecId, 0, 0, 0)),
    reply: { form: 'long', code: LongCommand.FlashGetMID, payloadLengths: [4, 3], echo: new Uint8Array(0) },
  };
}
