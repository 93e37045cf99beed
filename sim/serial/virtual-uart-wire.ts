import type { Clock } from '../../rig/core/clock.ts';
import { TransportError } from '../../rig/core/errors.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from './uart-device.ts';

/** 8N1: start bit, 8 data bits, stop bit. */
export const BITS_PER_BYTE = 10;

/** Time (ms) that `bytes` bytes occupy on a wire running at `baud`. */
export function wireTimeMs(bytes: number, baud: number): number {
  return (bytes * BITS_PER_BYTE * 1000) / baud;
}

/** A UART receiver still frames correctly within a few percent of baud error. */
const BAUD_TOLERANCE = 0.03;

export function baudRatesMatch(txBaud: number, rxBaud: number): boolean {
  return Math.abs(rxBaud / txBaud - 1) <= BAUD_TOLERANCE;
}

/**
 * What a receiver at `rxBaud` decodes from `bytes` sent at `txBaud`: `count` bytes of deterministic
 * noise (xorshift32 seeded by FNV-1a over the bytes and both rates). 0x01 and 0x04 (the BK7231
 * command/response leads) are never emitted, so garbage cannot start a valid frame by accident.
 */
export function garbleBytes(bytes: Uint8Array, txBaud: number, rxBaud: number, count: number): Uint8Array {
  let h = 0x811c9dc5;
  const mix = (v: number): void => {
    h ^= v & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const b of bytes) mix(b);
  for (const r of [txBaud, rxBaud]) for (let s = 0; s < 32; s += 8) mix(r >>> s);
  let x = h || 0x9e3779b9;
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    let v = x >>> 24;
    if (v === 0x01 || v === 0x04) v ^= 0x80;
    out[i] = v;
  }
  return out;
}

export interface WireCounters {
  /** Bytes the host transmitted that reached the device's RX (garbled or not). */
  hostToDevice: number;
  /** Bytes the device transmitted that reached an open host port (garbled or not). */
  deviceToHost: number;
  /** Garbage bytes the device received because of a baud mismatch. */
  garbledToDevice: number;
  /** Garbage bytes the host received because of a baud mismatch. */
  garbledToHost: number;
  /** Device bytes that arrived while no host had the port open. */
  droppedToHost: number;
}

export interface VirtualUartWireOptions {
  clock: Clock;
  device: VirtualUartDevice;
  /** Route host DTR/RTS to the device (a real USB-UART). A pty has no modem lines. */
  modemLines?: boolean;
  /**
   * The host always listens and transmits at the device's current rate (a pty cannot tell us the
   * client's baud), so nothing is ever garbled.
   */
  hostFollowsDevice?: boolean;
  /** Delivery granularity in wire time (at least one byte per delivery). Default 1 ms. */
  chunkMs?: number;
}

/** `atMs`: modelled time the chunk's last byte has arrived (not the time the callback runs). */
type Deliver = (chunk: Uint8Array, txBaud: number, startIndex: number, endIndex: number, total: number, atMs: number) => void;

/**
 * One direction of the wire: bytes are serialised after whatever is still being transmitted and
 * handed over in ~chunkMs slices at absolute times on the ideal timeline, so late timer callbacks
 * (real-time jitter) never push later bytes back. Each slice carries its modelled arrival time:
 * under a real clock the callback may run late, and a device that models its own busy periods
 * must compare against the ideal time, not the time the callback happens to run.
 */
class Lane {
  #busyUntil = 0;
  readonly #clock: Clock;
  readonly #chunkMs: number;
  readonly #pending: Set<() => void>;

  constructor(clock: Clock, chunkMs: number, pending: Set<() => void>) {
    this.#clock = clock;
    this.#chunkMs = chunkMs;
    this.#pending = pending;
  }

  /** Clock time at which the last queued byte has arrived. */
  idleAt(): number {
    return Math.max(this.#busyUntil, this.#clock.now());
  }

  transmit(bytes: Uint8Array, baud: number, deliver: Deliver): number {
    const data = bytes.slice();
    const byteMs = wireTimeMs(1, baud);
    const start = Math.max(this.#clock.now(), this.#busyUntil);
    const perChunk = Math.max(1, Math.floor(this.#chunkMs / byteMs));
    for (let i = 0; i < data.length; i += perChunk) {
      const s = i;
      const e = Math.min(data.length, i + perChunk);
      const at = start + e * byteMs;
      const cancel = this.#clock.at(at, () => {
        this.#pending.delete(cancel);
        deliver(data.subarray(s, e), baud, s, e, data.length, at);
      });
      this.#pending.add(cancel);
    }
    this.#busyUntil = start + data.length * byteMs;
    return this.#busyUntil;
  }
}

/**
 * The virtual wire between a host port and a VirtualUartDevice, with 8N1 timing and baud-mismatch
 * garbling in both directions. The device is connected once, when the wire is created; host ports
 * come and go (hostOpen/hostClose), like a USB-UART adapter being opened and closed by programs.
 */
export class VirtualUartWire {
  readonly clock: Clock;
  readonly device: VirtualUartDevice;
  readonly routesModemLines: boolean;
  readonly #followDevice: boolean;
  readonly #pending = new Set<() => void>();
  readonly #toDevice: Lane;
  readonly #toHost: Lane;
  #hostBaud = 115200;
  #receiver: ((bytes: Uint8Array) => void) | null = null;
  /** Bumped on every host open/close so bytes in flight towards a closed session are dropped. */
  #session = 0;
  #disposed = false;
  readonly #counters: WireCounters = {
    hostToDevice: 0,
    deviceToHost: 0,
    garbledToDevice: 0,
    garbledToHost: 0,
    droppedToHost: 0,
  };

  constructor(options: VirtualUartWireOptions) {
    this.clock = options.clock;
    this.device = options.device;
    this.routesModemLines = options.modemLines ?? false;
    this.#followDevice = options.hostFollowsDevice ?? false;
    const chunkMs = options.chunkMs ?? 1;
    this.#toDevice = new Lane(this.clock, chunkMs, this.#pending);
    this.#toHost = new Lane(this.clock, chunkMs, this.#pending);
    const tx: UartTx = { send: (bytes) => this.#deviceSend(bytes) };
    this.device.connect(tx, this.clock);
  }

  hostBaud(): number {
    return this.#followDevice ? this.device.baudRate() : this.#hostBaud;
  }

  setHostBaud(baud: number): void {
    if (!Number.isFinite(baud) || baud <= 0) throw new TypeError(`invalid baud rate ${baud}`);
    this.#hostBaud = baud;
  }

  isHostOpen(): boolean {
    return this.#receiver !== null;
  }

  /** A host port opened: from now on device bytes go to `receive`. */
  hostOpen(baud: number, receive: (bytes: Uint8Array) => void): void {
    if (this.#receiver) throw new TransportError('virtual UART already has a host attached', { baudRate: baud });
    this.setHostBaud(baud);
    this.#session++;
    this.#receiver = receive;
  }

  /** The host port closed: bytes still in flight to it are lost; the device is told. */
  hostClose(): void {
    if (!this.#receiver) return;
    this.#session++;
    this.#receiver = null;
    this.device.hostClosed?.();
  }

  /** Transmit from the host at its current baud. Returns the clock time the last byte arrives. */
  hostWrite(bytes: Uint8Array): number {
    this.#assertLive();
    return this.#toDevice.transmit(bytes, this.hostBaud(), (chunk, txBaud, s, e, total, atMs) => {
      const rx = this.device.baudRate();
      const out = this.#decode(chunk, txBaud, rx, s, e, total);
      if (out.length === 0) return;
      this.#counters.hostToDevice += out.length;
      if (out !== chunk) this.#counters.garbledToDevice += out.length;
      this.device.receive(out, atMs);
    });
  }

  /** When everything the host has written so far will have reached the device. */
  hostTxIdleAt(): number {
    return this.#toDevice.idleAt();
  }

  /** Host DTR/RTS changed. Throws if this wiring has no modem lines (a pty). */
  setModemLines(lines: ModemLines): void {
    if (!this.routesModemLines) {
      throw new TransportError('this virtual UART has no modem lines (DTR/RTS are not wired)', { lines });
    }
    this.device.modemLines?.({ ...lines });
  }

  counters(): WireCounters {
    return { ...this.#counters };
  }

  /** Cancel everything in flight; the wire is unusable afterwards. */
  dispose(): void {
    this.#disposed = true;
    this.hostClose();
    for (const cancel of this.#pending) cancel();
    this.#pending.clear();
  }

  #deviceSend(bytes: Uint8Array): void {
    if (this.#disposed) return;
    const session = this.#session;
    this.#toHost.transmit(bytes, this.device.baudRate(), (chunk, txBaud, s, e, total) => {
      const receiver = this.#receiver;
      if (!receiver || session !== this.#session) {
        this.#counters.droppedToHost += chunk.length;
        return;
      }
      const out = this.#decode(chunk, txBaud, this.hostBaud(), s, e, total);
      if (out.length === 0) return;
      this.#counters.deviceToHost += out.length;
      if (out !== chunk) this.#counters.garbledToHost += out.length;
      receiver(out);
    });
  }

  /**
   * Bytes [s, e) of a `total`-byte transmission as the receiver decodes them. On a mismatch the
   * garbage count is scaled by rx/tx over the whole transmission (cumulative rounding per slice),
   * with at least one byte per transmission.
   */
  #decode(chunk: Uint8Array, txBaud: number, rxBaud: number, s: number, e: number, total: number): Uint8Array {
    if (baudRatesMatch(txBaud, rxBaud)) return chunk;
    const ratio = rxBaud / txBaud;
    let count = Math.round(e * ratio) - Math.round(s * ratio);
    if (e === total && Math.round(total * ratio) === 0) count = 1;
    return count > 0 ? garbleBytes(chunk, txBaud, rxBaud, count) : new Uint8Array(0);
  }

  #assertLive(): void {
    if (this.#disposed) throw new TransportError('virtual UART wire was disposed');
  }
}
