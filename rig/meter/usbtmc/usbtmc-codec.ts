import { ProtocolError } from '../../core/errors.ts';

/**
 * USBTMC bulk framing and class requests (instruments.md §B3; USBTMC 1.0 spec structures as in
 * tinyusb's usbtmc.h). Pure functions: bytes in, bytes or values out.
 */
export const USBTMC_HEADER_SIZE = 12;

export const USBTMC_MSG_DEV_DEP_MSG_OUT = 1;
export const USBTMC_MSG_REQUEST_DEV_DEP_MSG_IN = 2;
/** Bulk-IN replies to REQUEST_DEV_DEP_MSG_IN carry MsgID 2 too. */
export const USBTMC_MSG_DEV_DEP_MSG_IN = 2;

/** Interface class / subclass that identify a USBTMC interface; protocol 0 = USBTMC, 1 = USB488. */
export const USBTMC_INTERFACE_CLASS = 0xfe;
export const USBTMC_INTERFACE_SUBCLASS = 0x03;

/** bmRequestType for class requests: device-to-host, class, recipient interface / endpoint. */
export const USBTMC_REQTYPE_INTERFACE_IN = 0xa1;
export const USBTMC_REQTYPE_ENDPOINT_IN = 0xa2;

export const USBTMC_REQUEST = {
  INITIATE_ABORT_BULK_OUT: 1,
  CHECK_ABORT_BULK_OUT_STATUS: 2,
  INITIATE_ABORT_BULK_IN: 3,
  CHECK_ABORT_BULK_IN_STATUS: 4,
  INITIATE_CLEAR: 5,
  CHECK_CLEAR_STATUS: 6,
  GET_CAPABILITIES: 7,
  INDICATOR_PULSE: 64,
} as const;

export const USBTMC_STATUS = { SUCCESS: 0x01, PENDING: 0x02, FAILED: 0x80 } as const;

const EOM = 0x01;
const TERM_CHAR_ENABLED = 0x02;

/** bTag sequence 1..255, never 0: `(last % 255) + 1`. */
export function nextTag(last: number): number {
  return (last % 255) + 1;
}

function header(msgId: number, tag: number, transferSize: number, attributes: number, termChar = 0): Uint8Array {
  if (!Number.isInteger(tag) || tag < 1 || tag > 255) throw new RangeError(`bTag must be 1..255, got ${tag}`);
  const h = new Uint8Array(USBTMC_HEADER_SIZE);
  const v = new DataView(h.buffer);
  h[0] = msgId;
  h[1] = tag;
  h[2] = ~tag & 0xff;
  v.setUint32(4, transferSize, true);
  h[8] = attributes;
  h[9] = termChar;
  return h;
}

/** DEV_DEP_MSG_OUT: header + payload + zero padding to a multiple of 4. */
export function encodeDevDepMsgOut(tag: number, payload: Uint8Array, eom: boolean): Uint8Array {
  const padded = (payload.length + 3) & ~3;
  const out = new Uint8Array(USBTMC_HEADER_SIZE + padded);
  out.set(header(USBTMC_MSG_DEV_DEP_MSG_OUT, tag, payload.length, eom ? EOM : 0));
  out.set(payload, USBTMC_HEADER_SIZE);
  return out;
}

/** REQUEST_DEV_DEP_MSG_IN: ask for up to `maxSize` bytes, optionally ending at `termChar`. */
export function encodeRequestDevDepMsgIn(tag: number, maxSize: number, termChar?: number): Uint8Array {
  return header(USBTMC_MSG_REQUEST_DEV_DEP_MSG_IN, tag, maxSize, termChar === undefined ? 0 : TERM_CHAR_ENABLED, termChar ?? 0);
}

/**
 * Split a message into DEV_DEP_MSG_OUT transfers of at most `maxTransferSize` payload bytes, each with
 * the next bTag after `lastTag`; EOM only on the last. Returns the transfers and the last tag used.
 */
export function splitDevDepMsgOut(payload: Uint8Array, maxTransferSize: number, lastTag: number): { transfers: Uint8Array[]; lastTag: number } {
  if (maxTransferSize < 1) throw new RangeError('maxTransferSize must be >= 1');
  const transfers: Uint8Array[] = [];
  let tag = lastTag;
  let offset = 0;
  do {
    const chunk = payload.subarray(offset, offset + maxTransferSize);
    offset += chunk.length;
    tag = nextTag(tag);
    transfers.push(encodeDevDepMsgOut(tag, chunk, offset >= payload.length));
  } while (offset < payload.length);
  return { transfers, lastTag: tag };
}

export interface DevDepMsgInHeader {
  tag: number;
  /** Payload bytes of this message part (may span several bulk-IN reads). */
  transferSize: number;
  eom: boolean;
  /** Payload bytes present in this first bulk-IN transfer (at most transferSize; padding dropped). */
  data: Uint8Array;
}

/** Parse the first bulk-IN transfer of a reply; validates MsgID, bTag and ~bTag. */
export function parseDevDepMsgIn(buf: Uint8Array, expectedTag: number): DevDepMsgInHeader {
  if (buf.length < USBTMC_HEADER_SIZE) {
    throw new ProtocolError(`bulk-IN transfer of ${buf.length} bytes is shorter than the 12-byte header`, { step: 'usbtmc-read', bytesSeen: buf });
  }
  const ctx = { step: 'usbtmc-read', bytesSeen: buf.subarray(0, USBTMC_HEADER_SIZE) };
  if (buf[0] !== USBTMC_MSG_DEV_DEP_MSG_IN) throw new ProtocolError(`bulk-IN MsgID ${buf[0]} is not DEV_DEP_MSG_IN (2)`, { ...ctx, expected: 'MsgID 2' });
  if (buf[1] !== expectedTag) throw new ProtocolError(`bulk-IN bTag ${buf[1]} does not match request ${expectedTag}`, { ...ctx, expected: `bTag ${expectedTag}` });
  if (buf[2] !== (~buf[1]! & 0xff)) throw new ProtocolError('bulk-IN bTagInverse is not ~bTag', ctx);
  const transferSize = new DataView(buf.buffer, buf.byteOffset, buf.length).getUint32(4, true);
  const data = buf.subarray(USBTMC_HEADER_SIZE, USBTMC_HEADER_SIZE + transferSize);
  return { tag: buf[1]!, transferSize, eom: (buf[8]! & EOM) !== 0, data };
}

export interface UsbtmcCapabilities {
  status: number;
  /** bcdUSBTMC, e.g. 0x0100. */
  bcdUsbtmc: number;
  indicatorPulse: boolean;
  talkOnly: boolean;
  listenOnly: boolean;
  termChar: boolean;
  /** USB488 subclass fields (zero on a plain USBTMC device). */
  bcdUsb488: number;
  usb488InterfaceCapabilities: number;
  usb488DeviceCapabilities: number;
}

/** GET_CAPABILITIES reply (0x18 bytes). */
export function parseCapabilities(buf: Uint8Array): UsbtmcCapabilities {
  if (buf.length < 0x18) throw new ProtocolError(`GET_CAPABILITIES reply has ${buf.length} bytes, expected 24`, { step: 'usbtmc-capabilities', bytesSeen: buf });
  if (buf[0] !== USBTMC_STATUS.SUCCESS) throw new ProtocolError(`GET_CAPABILITIES status 0x${buf[0]!.toString(16)}`, { step: 'usbtmc-capabilities', bytesSeen: buf });
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  return {
    status: buf[0]!,
    bcdUsbtmc: v.getUint16(2, true),
    indicatorPulse: (buf[4]! & 0x04) !== 0,
    talkOnly: (buf[4]! & 0x02) !== 0,
    listenOnly: (buf[4]! & 0x01) !== 0,
    termChar: (buf[5]! & 0x01) !== 0,
    bcdUsb488: v.getUint16(12, true),
    usb488InterfaceCapabilities: buf[14]!,
    usb488DeviceCapabilities: buf[15]!,
  };
}
