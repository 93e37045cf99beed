import type { Duplex } from 'node:stream';
import { connect } from 'node:net';
import type { Clock } from '../../core/clock.ts';
import { InstrumentError, TransportError } from '../../core/errors.ts';
import { responseMessageLength } from './ieee-block.ts';
import type { ScpiTransport } from './scpi-transport.ts';

const LF = 0x0a;

/**
 * Newline-terminated SCPI over any byte stream: a TCP socket (`node:net`) or a SerialPortStream
 * (RS-232 option; native binding or the virtual bus). Responses are split at the terminator, skipping
 * definite-length blocks; one receive at a time; timeouts run on the Clock.
 */
export class StreamScpiTransport implements ScpiTransport {
  readonly address: string;
  readonly #stream: Duplex;
  readonly #clock: Clock;
  #rx: Uint8Array = new Uint8Array(0);
  #wake: (() => void) | null = null;
  #dead: Error | null = null;

  constructor(stream: Duplex, clock: Clock, address: string) {
    this.#stream = stream;
    this.#clock = clock;
    this.address = address;
    stream.on('data', (chunk: Buffer) => {
      const next = new Uint8Array(this.#rx.length + chunk.length);
      next.set(this.#rx);
      next.set(chunk, this.#rx.length);
      this.#rx = next;
      this.#notify();
    });
    const die = (why: string) => (err?: Error | null) => {
      this.#dead ??= new TransportError(`${address}: ${why}${err ? `: ${err.message}` : ''}`, { instrument: address }, { cause: err ?? undefined });
      this.#notify();
    };
    stream.on('error', die('stream error'));
    stream.on('close', die('connection closed'));
    stream.on('end', die('connection closed by instrument'));
  }

  async send(message: Uint8Array): Promise<void> {
    if (this.#dead) throw this.#dead;
    const framed = new Uint8Array(message.length + 1);
    framed.set(message);
    framed[message.length] = LF;
    await new Promise<void>((resolve, reject) => {
      this.#stream.write(Buffer.from(framed), (err) => (err ? reject(new TransportError(`${this.address}: write failed: ${err.message}`, {}, { cause: err })) : resolve()));
    });
  }

  async receive(timeoutMs: number): Promise<Uint8Array> {
    if (this.#wake) throw new TransportError(`${this.address}: overlapping receives`);
    const deadline = this.#clock.now() + timeoutMs;
    const ac = new AbortController();
    let timedOut = false;
    const timer = this.#clock.sleepUntil(deadline, ac.signal).then(
      () => {
        timedOut = true;
        this.#notify();
      },
      () => undefined,
    );
    try {
      for (;;) {
        let end: number | undefined;
        try {
          end = responseMessageLength(this.#rx, LF);
        } catch (e) {
          const seen = this.#rx;
          this.#rx = new Uint8Array(0);
          throw new InstrumentError(`${this.address}: malformed response: ${(e as Error).message}`, { bytesSeen: seen }, { cause: e });
        }
        if (end !== undefined) {
          const msg = this.#rx.slice(0, end - 1);
          this.#rx = this.#rx.slice(end);
          // RS-232 instruments may terminate with CR LF.
          return msg.length && msg[msg.length - 1] === 0x0d ? msg.subarray(0, msg.length - 1) : msg;
        }
        if (this.#dead) throw this.#dead;
        if (timedOut) {
          throw new InstrumentError(`${this.address}: no complete response within ${timeoutMs} ms`, { bytesSeen: this.#rx.slice(), expected: 'response ending in LF' });
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      this.#wake = null;
      ac.abort();
      await timer;
    }
  }

  discardInput(): void {
    this.#rx = new Uint8Array(0);
  }

  async close(): Promise<void> {
    this.#dead ??= new TransportError(`${this.address}: closed`);
    // A SerialPort stream is released only by its own close(): destroy() leaves the binding open, and
    // whoever opens the same port next (jig check reads the meter, then opens the station) finds it busy.
    const port = this.#stream as Duplex & { isOpen?: boolean; close?: (cb: (err?: Error | null) => void) => void };
    if (port.isOpen === true && typeof port.close === 'function') {
      await new Promise<void>((resolve) => port.close!(() => resolve()));
    }
    await new Promise<void>((resolve) => {
      if (this.#stream.destroyed) resolve();
      else this.#stream.end(() => resolve());
      this.#stream.once('close', () => resolve());
    });
    this.#stream.destroy();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }
}

/** Connect to `host:port` (SCPI raw socket, usually 5025 or 23 for Telnet-style instruments). */
export async function connectTcpScpi(host: string, port: number, clock: Clock, connectTimeoutMs = 3000): Promise<StreamScpiTransport> {
  const address = `tcp://${host}:${port}`;
  const socket = connect({ host, port, noDelay: true });
  const ac = new AbortController();
  try {
    await Promise.race([
      new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', (err) => reject(new TransportError(`${address}: cannot connect: ${err.message}`, { instrument: address }, { cause: err })));
      }),
      clock.sleep(connectTimeoutMs, ac.signal).then(() => {
        throw new TransportError(`${address}: connect timed out after ${connectTimeoutMs} ms`, { instrument: address });
      }),
    ]);
  } catch (e) {
    socket.destroy();
    throw e;
  } finally {
    ac.abort();
  }
  return new StreamScpiTransport(socket, clock, address);
}
