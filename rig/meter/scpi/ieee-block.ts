import { ProtocolError } from '../../core/errors.ts';

/**
 * IEEE 488.2 definite-length arbitrary block: `#<n><len><data>`, where <n> (1–9) is the number of
 * digits of <len> and <len> is the byte count of <data>. `#0` (indefinite length) runs to the terminator
 * and is not supported here. Pure functions: bytes in, values out.
 */
const HASH = 0x23;
const ZERO = 0x30;

export interface BlockParse {
  data: Uint8Array;
  /** Index just past the block. */
  end: number;
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= ZERO && b <= ZERO + 9;
}

/**
 * Parse the block starting at `offset` (which must hold '#'). Returns undefined while more bytes are
 * needed; throws ProtocolError for a malformed header.
 */
export function parseDefiniteLengthBlock(buf: Uint8Array, offset = 0): BlockParse | undefined {
  if (buf.length <= offset) return undefined;
  if (buf[offset] !== HASH) throw new ProtocolError(`block must start with '#'`, { bytesSeen: buf.subarray(offset, offset + 12), expected: '#<n><len><data>' });
  if (buf.length <= offset + 1) return undefined;
  const n = buf[offset + 1]! - ZERO;
  if (!isDigit(buf[offset + 1]) || n === 0) {
    throw new ProtocolError(`block header '#${String.fromCharCode(buf[offset + 1]!)}' is not a definite length (#1..#9)`, {
      bytesSeen: buf.subarray(offset, offset + 12),
      expected: '#<1-9><len>',
    });
  }
  const lenStart = offset + 2;
  if (buf.length < lenStart + n) return undefined;
  let len = 0;
  for (let i = lenStart; i < lenStart + n; i++) {
    if (!isDigit(buf[i])) throw new ProtocolError('block length has a non-digit', { bytesSeen: buf.subarray(offset, lenStart + n), expected: `${n} digits` });
    len = len * 10 + (buf[i]! - ZERO);
  }
  const dataStart = lenStart + n;
  if (buf.length < dataStart + len) return undefined;
  return { data: buf.subarray(dataStart, dataStart + len), end: dataStart + len };
}

/** Encode `data` as a definite-length block with the fewest length digits. */
export function encodeDefiniteLengthBlock(data: Uint8Array): Uint8Array {
  const len = String(data.length);
  const head = new TextEncoder().encode(`#${len.length}${len}`);
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/**
 * Length of the first complete response message in `buf` (including its terminator), or undefined.
 * Definite-length blocks are skipped whole, so a terminator byte inside binary data does not end the
 * message. A block starts where '#' follows the start of the message or a separator (',' ';').
 */
export function responseMessageLength(buf: Uint8Array, terminator = 0x0a): number | undefined {
  let atElementStart = true;
  for (let i = 0; i < buf.length; ) {
    const b = buf[i]!;
    if (b === terminator) return i + 1;
    if (b === HASH && atElementStart && isDigit(buf[i + 1]) && buf[i + 1] !== ZERO) {
      const block = parseDefiniteLengthBlock(buf, i);
      if (!block) return undefined;
      i = block.end;
      atElementStart = false;
      continue;
    }
    atElementStart = b === 0x2c || b === 0x3b || b === 0x20;
    i++;
  }
  return undefined;
}
