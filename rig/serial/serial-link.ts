import { SerialPortStream } from '@serialport/stream';
import type { BindingInterface } from '@serialport/bindings-interface' with { 'resolution-mode': 'require' }; // its exports map has no ESM types
import type { Clock } from '../core/clock.ts';
import { TimeoutError, TransportError } from '../core/errors.ts';
import { hex } from '../core/hex.ts';
import type { Logger } from '../core/log.ts';
import { openFailureMessage, vanishedPortError } from '../endpoints/serial-port.ts';
import { ByteQueue } from './byte-queue.ts';
import { nativeSerialBinding } from './native-binding.ts';

export interface SerialLinkOptions {
  path: string;
  baudRate: number;
  clock: Clock;
  /** Defaults to serialport's native binding for this OS. */
  binding?: BindingInterface;
  log?: Logger;
  /**
   * Is the device still there (the endpoint's check, rig/endpoints)? While a read waits it is
   * asked every `vanishCheckMs`, and the link fails if the device vanished: a pty whose master
   * died makes the native binding spin on EOF without ever reporting an error. Absent for
   * endpoints whose binding reports unplugs itself.
   */
  present?: () => boolean;
  vanishCheckMs?: number;
}

interface Waiter {
  /** Returns true once satisfied (it resolved its promise). */
  check(): boolean;
  fail(err: Error): void;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Host-side byte pipe over any SerialPortStream: buffered input with exact-length and
 * until-pattern reads whose timeouts run on the link's Clock (so they work in virtual time).
 * One read at a time; bytes nobody has read stay buffered (and are reported in TimeoutErrors).
 */
export class SerialLink {
  readonly path: string;
  readonly clock: Clock;
  readonly #port: SerialPortStream;
  readonly #log: Logger | undefined;
  readonly #rx = new ByteQueue();
  readonly #taps = new Set<(bytes: Uint8Array) => void>();
  #waiter: Waiter | null = null;
  #baud: number;
  #lines = { dtr: true, rts: true };
  #lastRxAt: number;
  readonly #vanishCheckMs: number;
  readonly #present: (() => boolean) | undefined;
  /** Set once the port is gone (closed by us, unplugged, errored). */
  #dead: TransportError | null = null;

  private constructor(port: SerialPortStream, o: SerialLinkOptions) {
    this.path = o.path;
    this.clock = o.clock;
    this.#port = port;
    this.#log = o.log;
    this.#baud = o.baudRate;
    this.#lastRxAt = o.clock.now();
    this.#vanishCheckMs = o.vanishCheckMs ?? 250;
    this.#present = o.present;
    port.on('data', (chunk: Buffer) => this.#onData(chunk));
    port.on('close', (err: Error | null) => {
      if (!this.#dead) {
        this.#kill(
          new TransportError(`serial port ${this.path} closed unexpectedly${err ? `: ${err.message}` : ''}`, {
            path: this.path,
          }, { cause: err ?? undefined }),
        );
      }
    });
    port.on('error', (err: Error) => {
      this.#log?.warn({ path: this.path, err: err.message }, 'serial port error');
      if (!this.#dead) {
        this.#kill(new TransportError(`serial port ${this.path} failed: ${err.message}`, { path: this.path }, { cause: err }));
      }
    });
  }

  static async open(o: SerialLinkOptions): Promise<SerialLink> {
    const binding = o.binding ?? nativeSerialBinding();
    let port: SerialPortStream;
    try {
      port = new SerialPortStream({ binding, path: o.path, baudRate: o.baudRate, autoOpen: false });
    } catch (err) {
      throw new TransportError(`cannot open ${o.path}: ${describe(err)}`, { path: o.path }, { cause: err });
    }
    await new Promise<void>((resolve, reject) => {
      port.open((err) => {
        if (err) reject(new TransportError(openFailureMessage(o.path, err), { path: o.path, baudRate: o.baudRate }, { cause: err }));
        else resolve();
      });
    });
    o.log?.debug({ path: o.path, baudRate: o.baudRate }, 'serial link open');
    return new SerialLink(port, o);
  }

  baudRate(): number {
    return this.#baud;
  }

  isOpen(): boolean {
    return this.#dead === null;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.#assertAlive('write');
    // hex() of a 4 KiB frame costs more than the write itself: only when someone traces.
    if (this.#log?.isLevelEnabled('trace')) this.#log.trace({ path: this.path, tx: hex(bytes) }, 'tx');
    await new Promise<void>((resolve, reject) => {
      this.#port.write(Buffer.from(bytes), (err) => {
        if (err) reject(new TransportError(`write to ${this.path} failed: ${err.message}`, { path: this.path }, { cause: err }));
        else resolve();
      });
    });
  }

  /** Exactly n bytes, or TimeoutError carrying what did arrive (those bytes stay buffered). */
  read(n: number, timeoutMs: number): Promise<Uint8Array> {
    return this.#wait(
      timeoutMs,
      () => (this.#rx.length >= n ? this.#rx.consume(n) : null),
      () => new TimeoutError(`read on ${this.path}: wanted ${n} bytes, got ${this.#rx.length} in ${timeoutMs} ms`, {
        path: this.path,
        bytesSeen: this.#rx.peek(),
        expected: `${n} bytes`,
      }),
    );
  }

  /** Everything up to and including the first occurrence of pattern. */
  readUntil(pattern: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (pattern.length === 0) throw new TypeError('readUntil needs a non-empty pattern');
    let scanned = 0;
    return this.#wait(
      timeoutMs,
      () => {
        const at = this.#rx.indexOf(pattern, scanned);
        if (at < 0) {
          // Resume scanning where a match could still start.
          scanned = Math.max(0, this.#rx.length - pattern.length + 1);
          return null;
        }
        return this.#rx.consume(at + pattern.length);
      },
      () => new TimeoutError(`read on ${this.path}: pattern ${hex(pattern)} not seen in ${timeoutMs} ms`, {
        path: this.path,
        bytesSeen: this.#rx.peek(),
        expected: hex(pattern),
      }),
    );
  }

  available(): number {
    return this.#rx.length;
  }

  peek(): Uint8Array {
    return this.#rx.peek();
  }

  discardInput(): Uint8Array {
    return this.#rx.clear();
  }

  /**
   * Wait until the line has been quiet for quietMs (or maxMs passed) and return everything that
   * was received (and discarded) meanwhile, including what was already buffered.
   */
  async drainInput(quietMs: number, maxMs: number): Promise<Uint8Array> {
    this.#assertAlive('drainInput');
    const start = this.clock.now();
    const deadline = start + maxMs;
    const drained = new ByteQueue();
    drained.push(this.#rx.clear());
    const quietAt = (): number => Math.max(this.#lastRxAt, start) + quietMs;
    for (;;) {
      const until = Math.min(quietAt(), deadline);
      if (until > this.clock.now()) await this.clock.sleepUntil(until);
      this.#assertAlive('drainInput');
      drained.push(this.#rx.clear());
      const now = this.clock.now();
      if (now >= deadline || now >= quietAt()) return drained.clear();
    }
  }

  /** Raw tap on every received chunk (tracing, streaming parsers). Returns the unsubscribe. */
  onData(cb: (bytes: Uint8Array) => void): () => void {
    this.#taps.add(cb);
    return () => {
      this.#taps.delete(cb);
    };
  }

  async setBaudRate(baud: number): Promise<void> {
    this.#assertAlive('setBaudRate');
    await new Promise<void>((resolve, reject) => {
      this.#port.update({ baudRate: baud }, (err) => {
        if (err) reject(new TransportError(`cannot set ${this.path} to ${baud} baud: ${err.message}`, { path: this.path, baudRate: baud }, { cause: err }));
        else resolve();
      });
    });
    this.#baud = baud;
  }

  /** Drive DTR/RTS (unspecified lines keep their level). Ptys have no modem lines. */
  async setModemLines(lines: { dtr?: boolean; rts?: boolean }): Promise<void> {
    this.#assertAlive('setModemLines');
    const next = { dtr: lines.dtr ?? this.#lines.dtr, rts: lines.rts ?? this.#lines.rts };
    await new Promise<void>((resolve, reject) => {
      this.#port.set(next, (err) => {
        if (err) {
          reject(new TransportError(
            `cannot drive DTR/RTS on ${this.path} (a pty or an adapter without modem lines?): ${err.message}`,
            { path: this.path, lines: next },
            { cause: err },
          ));
        } else resolve();
      });
    });
    this.#lines = next;
  }

  async close(): Promise<void> {
    if (!this.#dead) this.#kill(new TransportError(`serial link ${this.path} was closed`, { path: this.path }));
    // A link killed by a port 'error' still holds the device open: release it here too.
    if (!this.#port.isOpen) return;
    await new Promise<void>((resolve, reject) => {
      this.#port.close((err) => {
        if (err) reject(new TransportError(`closing ${this.path} failed: ${err.message}`, { path: this.path }, { cause: err }));
        else resolve();
      });
    });
  }

  #onData(chunk: Buffer): void {
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#lastRxAt = this.clock.now();
    if (this.#log?.isLevelEnabled('trace')) this.#log.trace({ path: this.path, rx: hex(bytes) }, 'rx');
    this.#rx.push(bytes);
    for (const tap of this.#taps) tap(bytes);
    if (this.#waiter?.check()) this.#waiter = null;
  }

  #wait(timeoutMs: number, take: () => Uint8Array | null, timeout: () => TimeoutError): Promise<Uint8Array> {
    if (this.#waiter) {
      return Promise.reject(new TransportError(`concurrent reads on ${this.path} are not supported`, { path: this.path }));
    }
    const now = take();
    if (now) return Promise.resolve(now);
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise<Uint8Array>((resolve, reject) => {
      const stopWatch = this.#watchForVanish();
      const cancelTimer = this.clock.at(this.clock.now() + timeoutMs, () => {
        if (this.#waiter !== waiter) return;
        this.#waiter = null;
        stopWatch();
        reject(timeout());
      });
      const waiter: Waiter = {
        check: () => {
          const got = take();
          if (!got) return false;
          cancelTimer();
          stopWatch();
          resolve(got);
          return true;
        },
        fail: (err) => {
          cancelTimer();
          stopWatch();
          reject(err);
        },
      };
      this.#waiter = waiter;
    });
  }

  /** Poll for the device node while a read waits; returns the stop function. */
  #watchForVanish(): () => void {
    const every = this.#vanishCheckMs;
    const present = this.#present;
    if (!present || !(every > 0)) return () => undefined;
    let cancel: () => void;
    const tick = (): void => {
      if (present()) {
        cancel = this.clock.at(this.clock.now() + every, tick);
        return;
      }
      this.#kill(vanishedPortError(this.path));
      // Closing stops the native binding's read loop.
      if (this.#port.isOpen) this.#port.close(() => undefined);
    };
    cancel = this.clock.at(this.clock.now() + every, tick);
    return () => cancel();
  }

  #kill(err: TransportError): void {
    this.#dead = err;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.fail(err);
  }

  #assertAlive(op: string): void {
    if (this.#dead) {
      throw new TransportError(`${op} on ${this.path}: ${this.#dead.message}`, { path: this.path }, { cause: this.#dead });
    }
  }
}
