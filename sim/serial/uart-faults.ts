import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import { mulberry32 } from '../../rig/core/prng.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from './uart-device.ts';

/**
 * Line faults of a UART link (cable, adapter, EMI), injected between the wire and a device. All
 * rates are probabilities per byte (or per reply) and are drawn from one seeded generator, so a
 * seed reproduces a run exactly. Nothing here knows the protocol except the stale LinkCheck reply,
 * which is the one stray frame the BK7231 link is known to produce (bk7231-protocol.md §5).
 */
export interface UartFaultOptions {
  seed?: number;
  /** Per byte and direction: one random bit of the byte is flipped. */
  byteErrorRate?: number;
  /** Per byte and direction: the byte is lost. */
  dropRate?: number;
  /** Per byte and direction: the byte arrives twice. */
  duplicateRate?: number;
  /** Per device transmission (a reply): it is lost whole (a meter that does not answer: the host times out). */
  replyLossRate?: number;
  /** Per device transmission (a reply): replaced by as many random bytes (a device answering garbage). */
  garbageRate?: number;
  /** Per device transmission (a reply): it is held back `delayMs` (a USB latency spike). */
  delayRate?: number;
  delayMs?: number;
  /**
   * Per device transmission: a reply delayed past the host's timeout (`lateReplyMs`), and everything
   * the device sends after it waits behind it: a UART and its USB adapter keep their byte order, so
   * the host later reads the late answers in order, one or more requests behind.
   */
  lateReplyRate?: number;
  lateReplyMs?: number;
  /** Per device transmission: a stale LinkCheck reply arrives `staleDelayMs` after it. */
  staleLinkCheckRate?: number;
  staleDelayMs?: number;
  /** Which direction the byte faults hit. Default both. */
  direction?: 'both' | 'to-device' | 'to-host';
}

export interface UartFaultCounters {
  flipped: number;
  dropped: number;
  duplicated: number;
  delayed: number;
  /** Transmissions that opened a late-reply hold (lateReplyRate or delayNextReply). */
  late: number;
  staleLinkChecks: number;
  repliesLost: number;
  garbled: number;
}

/** What the BK7231 ROM answers to LinkCheck; arrives late when the host spammed LinkChecks. */
export const STALE_LINKCHECK_REPLY = Uint8Array.of(0x04, 0x0e, 0x05, 0x01, 0xe0, 0xfc, 0x01, 0x00);

const RATE_KEYS = ['byteErrorRate', 'dropRate', 'duplicateRate', 'replyLossRate', 'garbageRate', 'delayRate', 'lateReplyRate', 'staleLinkCheckRate'] as const;

/** Refuse rates outside [0, 1] and negative delays (a jig file's `faults.uart` block comes through here). */
export function validateUartFaults(opts: UartFaultOptions, where = 'faults.uart'): UartFaultOptions {
  for (const k of RATE_KEYS) {
    const v = opts[k];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) throw new ConfigError(`${where}.${k} must be a probability in [0, 1], got ${String(v)}`, { step: 'faults', key: k });
  }
  for (const k of ['delayMs', 'lateReplyMs', 'staleDelayMs'] as const) {
    const v = opts[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw new ConfigError(`${where}.${k} must be a non-negative number of ms, got ${String(v)}`, { step: 'faults', key: k });
  }
  if (opts.direction !== undefined && !['both', 'to-device', 'to-host'].includes(opts.direction)) {
    throw new ConfigError(`${where}.direction must be both, to-device or to-host, got ${String(opts.direction)}`, { step: 'faults', key: 'direction' });
  }
  return opts;
}

/**
 * A VirtualUartDevice seen through a faulty line: wraps the real device, corrupts what passes in
 * either direction. Modelled arrival times are kept (a dropped byte simply never arrives).
 */
export class FaultyUart implements VirtualUartDevice {
  readonly inner: VirtualUartDevice;
  readonly counters: UartFaultCounters = { flipped: 0, dropped: 0, duplicated: 0, delayed: 0, late: 0, staleLinkChecks: 0, repliesLost: 0, garbled: 0 };
  readonly #opts: Required<Omit<UartFaultOptions, 'seed'>>;
  readonly #rnd: () => number;
  #clock: Clock | undefined;
  #tx: UartTx | undefined;
  #enabled = true;
  /** Until when the to-host line is held by a late reply (everything sent meanwhile queues behind it). */
  #heldUntil = -Infinity;
  /** A late reply asked for by a test: the next transmission waits this long. */
  #lateNext = 0;

  constructor(inner: VirtualUartDevice, options: UartFaultOptions) {
    validateUartFaults(options);
    this.inner = inner;
    this.#rnd = mulberry32(options.seed ?? 1);
    this.#opts = {
      byteErrorRate: options.byteErrorRate ?? 0,
      dropRate: options.dropRate ?? 0,
      duplicateRate: options.duplicateRate ?? 0,
      replyLossRate: options.replyLossRate ?? 0,
      garbageRate: options.garbageRate ?? 0,
      delayRate: options.delayRate ?? 0,
      delayMs: options.delayMs ?? 0,
      lateReplyRate: options.lateReplyRate ?? 0,
      lateReplyMs: options.lateReplyMs ?? 0,
      staleLinkCheckRate: options.staleLinkCheckRate ?? 0,
      staleDelayMs: options.staleDelayMs ?? 5,
      direction: options.direction ?? 'both',
    };
  }

  /** Switch the faults off (or on again) mid-run, e.g. to compare with a clean line. */
  setEnabled(on: boolean): void {
    this.#enabled = on;
  }

  /** The device's next transmission, and all after it, arrive `ms` later (a reply past the host's timeout). */
  delayNextReply(ms: number): void {
    if (!(Number.isFinite(ms) && ms > 0)) throw new RangeError(`delayNextReply: ms must be positive, got ${ms}`);
    this.#lateNext = ms;
  }

  baudRate(): number {
    return this.inner.baudRate();
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
    this.inner.connect({ send: (bytes) => this.#toHost(bytes) }, clock);
  }

  receive(bytes: Uint8Array, atMs?: number): void {
    const out = this.#hits('to-device') ? this.#corrupt(bytes) : bytes;
    if (out.length > 0) this.inner.receive(out, atMs);
  }

  modemLines(lines: ModemLines): void {
    this.inner.modemLines?.(lines);
  }

  hostClosed(): void {
    this.inner.hostClosed?.();
  }

  #hits(dir: 'to-device' | 'to-host'): boolean {
    return this.#enabled && (this.#opts.direction === 'both' || this.#opts.direction === dir);
  }

  #toHost(bytes: Uint8Array): void {
    const clock = this.#clock!;
    const wire = this.#tx!;
    // Behind a late reply everything waits its turn, in order.
    const tx = { send: (b: Uint8Array) => (clock.now() < this.#heldUntil ? clock.at(this.#heldUntil, () => wire.send(b)) : wire.send(b)) };
    const lateMs = this.#lateNext > 0 ? this.#lateNext : this.#enabled && this.#opts.lateReplyRate > 0 && this.#rnd() < this.#opts.lateReplyRate ? this.#opts.lateReplyMs : 0;
    if (lateMs > 0) {
      this.#lateNext = 0;
      this.counters.late++;
      this.#heldUntil = Math.max(this.#heldUntil, clock.now() + lateMs);
    }
    if (!this.#enabled) {
      tx.send(bytes);
      return;
    }
    const o = this.#opts;
    if (o.replyLossRate > 0 && this.#rnd() < o.replyLossRate) {
      this.counters.repliesLost++;
      return;
    }
    let out = this.#hits('to-host') ? this.#corrupt(bytes) : bytes;
    if (o.garbageRate > 0 && this.#rnd() < o.garbageRate) {
      this.counters.garbled++;
      out = Uint8Array.from(out, () => Math.floor(this.#rnd() * 256));
    }
    if (o.delayRate > 0 && this.#rnd() < o.delayRate) {
      this.counters.delayed++;
      // A latency spike holds this reply and whatever follows it: a UART/USB FIFO never lets a later
      // reply overtake an earlier one.
      this.#heldUntil = Math.max(this.#heldUntil, clock.now() + o.delayMs);
    }
    if (out.length > 0) tx.send(out);
    if (o.staleLinkCheckRate > 0 && this.#rnd() < o.staleLinkCheckRate) {
      this.counters.staleLinkChecks++;
      clock.at(clock.now() + o.staleDelayMs, () => tx.send(STALE_LINKCHECK_REPLY));
    }
  }

  /** Per byte: flip one bit, drop, or duplicate (each drawn independently, in that order). */
  #corrupt(bytes: Uint8Array): Uint8Array {
    const o = this.#opts;
    if (o.byteErrorRate === 0 && o.dropRate === 0 && o.duplicateRate === 0) return bytes;
    let out: number[] | undefined;
    for (let i = 0; i < bytes.length; i++) {
      let b = bytes[i]!;
      let changed = false;
      if (o.byteErrorRate > 0 && this.#rnd() < o.byteErrorRate) {
        b ^= 1 << Math.floor(this.#rnd() * 8);
        this.counters.flipped++;
        changed = true;
      }
      const drop = o.dropRate > 0 && this.#rnd() < o.dropRate;
      const dup = !drop && o.duplicateRate > 0 && this.#rnd() < o.duplicateRate;
      if (drop) this.counters.dropped++;
      if (dup) this.counters.duplicated++;
      if (!changed && !drop && !dup && !out) continue;
      out ??= Array.from(bytes.subarray(0, i));
      if (!drop) out.push(b);
      if (dup) out.push(b);
    }
    return out ? Uint8Array.from(out) : bytes;
  }
}
