import { EventEmitter } from 'node:events';
import type { SerialPortStream } from '@serialport/stream';

/** Modbus-RTU exception replies are always 5 bytes: address, function | 0x80, code, CRC. */
const EXCEPTION_LENGTH = 5;

/**
 * Reply length implied by a request, for function codes whose reply length does not depend on a byte
 * count in the reply itself. undefined: read it from the reply (functions 0x01–0x04 carry a byte count).
 */
function fixedReplyLength(request: Uint8Array): number | undefined {
  switch (request[1]) {
    case 0x05:
    case 0x06:
    case 0x0f:
    case 0x10:
      return 8;
    case 0x42: // PZEM reset energy: a good reply echoes the 4-byte request
      return 4;
    default:
      return undefined;
  }
}

/**
 * The port object modbus-serial's ModbusRTU drives (open/close/write/isOpen and 'data' events), on top of
 * any SerialPortStream: the native binding for a real adapter, VirtualSerialBus.binding for the virtual
 * jig. modbus-serial wants each 'data' event to be exactly one reply frame; a serial stream delivers
 * arbitrary chunks, so this re-frames them: skip bytes until the expected address and function (or its
 * exception), then wait for the length the function implies. Timeouts are not done here but by the caller
 * on its Clock; after one it calls abandon() so late bytes are not taken for the next reply.
 */
export class ModbusRtuStreamPort extends EventEmitter {
  readonly #stream: SerialPortStream;
  #rx: number[] = [];
  #seen: number[] = [];
  #expect: { address: number; fn: number; length?: number } | undefined;
  #lost: Error | undefined;

  constructor(stream: SerialPortStream) {
    super();
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', (err: Error) => {
      this.#lost ??= err;
      this.emit('error', err);
    });
    stream.on('close', () => this.emit('close'));
  }

  /** Why the stream failed (an unplug, a vanished device node), if it did: no reply can come. */
  get lost(): Error | undefined {
    return this.#lost;
  }

  get isOpen(): boolean {
    return this.#stream.isOpen;
  }

  /** Everything received since the last request, for error context. */
  bytesSeen(): Uint8Array {
    return Uint8Array.from(this.#seen);
  }

  open(callback: (err: Error | null) => void): void {
    if (this.#stream.isOpen) callback(null);
    else this.#stream.open((err) => callback(err ?? null));
  }

  close(callback?: (err?: Error | null) => void): void {
    if (!this.#stream.isOpen) {
      callback?.(null);
      return;
    }
    this.#stream.close((err) => callback?.(err ?? null));
  }

  write(data: Buffer): void {
    this.#rx = [];
    this.#seen = [];
    const address = data[0]!;
    // Broadcast requests are never answered.
    this.#expect = address === 0 ? undefined : { address, fn: data[1]!, length: fixedReplyLength(data) };
    this.#stream.write(data);
  }

  /** Stop waiting for the current reply (after a timeout). */
  abandon(): void {
    this.#expect = undefined;
    this.#rx = [];
  }

  #onData(chunk: Buffer): void {
    for (const b of chunk) this.#seen.push(b);
    const e = this.#expect;
    if (!e) return;
    for (const b of chunk) this.#rx.push(b);
    const rx = this.#rx;
    // Resynchronise on the reply header; anything before it is line noise.
    while (rx.length && (rx[0] !== e.address || (rx.length >= 2 && rx[1] !== e.fn && rx[1] !== (e.fn | 0x80)))) rx.shift();
    if (rx.length < 3) return;
    const need = rx[1] === (e.fn | 0x80) ? EXCEPTION_LENGTH : (e.length ?? 3 + rx[2]! + 2);
    if (rx.length < need) return;
    const frame = Buffer.from(rx.slice(0, need));
    this.abandon();
    this.emit('data', frame);
  }
}
