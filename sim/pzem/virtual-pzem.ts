import type { Clock } from '../../rig/core/clock.ts';
import type { Measurement, Quantity } from '../../rig/meter/reference-meter.ts';
import { DisplayUpdate, type TimedSource } from '../mains/display-update.ts';
import { InstrumentError, seedFromSerial, type AccuracyClass, type InstrumentErrors } from '../mains/instrument-error.ts';
import type { UartTx, VirtualUartDevice } from '../serial/uart-device.ts';
import { crcOk, withCrc } from './modbus-crc.ts';
import { encodePzemRegisters, PZEM_INPUT_REGISTER_COUNT } from './pzem-registers.ts';

/** Modbus exception codes the device uses. */
export const MODBUS_ILLEGAL_FUNCTION = 0x01;
export const MODBUS_ILLEGAL_ADDRESS = 0x02;
export const MODBUS_ILLEGAL_VALUE = 0x03;

const GENERAL_ADDRESS = 0xf8;
const BROADCAST_ADDRESS = 0x00;
const FN_READ_HOLDING = 0x03;
const FN_READ_INPUT = 0x04;
const FN_WRITE_SINGLE = 0x06;
const FN_CALIBRATE = 0x41;
const FN_RESET_ENERGY = 0x42;
const REG_ALARM_THRESHOLD = 0x0001;
const REG_ADDRESS = 0x0002;

/** Per-unit measurement error: reported = true * (1 + gain) + offset, before quantisation. */
export type PzemErrorModel = Partial<Record<Quantity, { gain?: number; offset?: number }>>;

/** Stated accuracy (instruments.md §B1): ±0.5 % for V, I, P, E and frequency, ±1 % for PF. */
export const PZEM_ACCURACY_CLASS: AccuracyClass = {
  volts: { pctOfReading: 0.5 },
  amps: { pctOfReading: 0.5 },
  watts: { pctOfReading: 0.5 },
  wh: { pctOfReading: 0.5 },
  hz: { pctOfReading: 0.5 },
  pf: { pctOfReading: 1 },
};

/** How often the module refreshes its registers, ms: not stated in instruments.md (UNCERTAIN). */
export const PZEM_UPDATE_INTERVAL_MS = 1000;

export interface VirtualPzemOptions {
  /** The circuit at the meter (a mains branch's source answers for past moments too). */
  source: TimedSource;
  /** Seeds this unit's error (a PZEM reports no serial; the jig file names it). Default `pzem@<address>`. */
  serial?: string;
  /** Register refresh interval, ms (default PZEM_UPDATE_INTERVAL_MS; 0 = every read samples now). */
  updateIntervalMs?: number;
  /**
   * A perfect instrument (no drawn error, no noise, and no update interval unless one is given; an
   * explicit errorModel still applies). Only for tests of the wire encoding itself, which compare
   * register bytes with the reference's literal frames.
   */
  ideal?: boolean;
  /** Slave address 0x01..0xF7 (factory default 0x01). */
  address?: number;
  /** Power-alarm threshold, W. */
  alarmThresholdW?: number;
  /** Fixed systematic errors instead of ones drawn within the class from the serial (noise still applies). */
  errorModel?: PzemErrorModel;
  /** Silence between the end of a request and the start of the reply, ms. */
  turnaroundMs?: number;
  /**
   * Address byte of replies to the general address 0xF8. UNCERTAIN which one a real unit sends;
   * 'request' echoes 0xF8 (what a client configured with 0xF8 expects), 'own' sends the slave address.
   */
  generalReplyAddress?: 'request' | 'own';
}

/** Expected request length by function code once the first two bytes are known (undefined: wait for silence). */
function requestLength(fn: number): number | undefined {
  switch (fn) {
    case FN_READ_HOLDING:
    case FN_READ_INPUT:
    case FN_WRITE_SINGLE:
      return 8;
    case FN_RESET_ENERGY:
    case FN_CALIBRATE:
      return 4;
    default:
      return undefined;
  }
}

/**
 * A PZEM-004T v3.0 on a 9600 8N1 TTL UART: a Modbus-RTU slave (instruments.md §B1). Requests are
 * delimited byte by byte, by expected length and by the 3.5-character silence on the clock; frames with a
 * bad CRC or for another address are ignored, broadcast (0x00) writes are executed without reply.
 */
export class VirtualPzem implements VirtualUartDevice {
  #tx?: UartTx;
  #clock?: Clock;
  #rx: number[] = [];
  #lastRxAt = Number.NEGATIVE_INFINITY;
  #cancelSilence?: () => void;
  #address: number;
  #alarmThresholdW: number;
  #energyOffsetWh = 0;
  readonly #opts: VirtualPzemOptions;
  readonly #error: InstrumentError;
  readonly #display: DisplayUpdate;
  /** Requests answered, for tests. */
  requests = 0;

  constructor(opts: VirtualPzemOptions) {
    this.#opts = opts;
    this.#address = opts.address ?? 0x01;
    this.#alarmThresholdW = opts.alarmThresholdW ?? 2300;
    const seed = seedFromSerial(opts.serial ?? `pzem@${this.#address}`);
    const fixed: InstrumentErrors | undefined = opts.errorModel
      ? Object.fromEntries(Object.entries(opts.errorModel).map(([q, e]) => [q, { gain: e?.gain ?? 0, rangeFraction: 0, absolute: e?.offset ?? 0 }]))
      : opts.ideal
        ? {}
        : undefined;
    this.#error = new InstrumentError({ seed, accuracy: PZEM_ACCURACY_CLASS, ...(fixed ? { errors: fixed } : {}), ...(opts.ideal ? { noiseShare: 0 } : {}) });
    const intervalMs = opts.updateIntervalMs ?? (opts.ideal ? 0 : PZEM_UPDATE_INTERVAL_MS);
    this.#display = new DisplayUpdate(opts.source, { intervalMs, phaseMs: (seed % 1000) * (intervalMs / 1000) });
  }

  /** The unit's true errors and update interval (for benches; the rig never sees them). */
  truth(): { errors: InstrumentErrors; updateIntervalMs: number; phaseMs: number; systematic: (q: Quantity, value: number) => number } {
    return {
      errors: this.#error.errors,
      updateIntervalMs: this.#display.intervalMs,
      phaseMs: this.#display.phaseMs,
      systematic: (q, value) => this.#error.systematic(q, value),
    };
  }

  baudRate(): number {
    return 9600;
  }

  get address(): number {
    return this.#address;
  }

  get alarmThresholdW(): number {
    return this.#alarmThresholdW;
  }

  /** 3.5 characters of 10 bits (8N1) at 9600 baud. */
  silenceMs(): number {
    return (3.5 * 10 * 1000) / this.baudRate();
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
  }

  receive(bytes: Uint8Array, atMs?: number): void {
    const clock = this.#clock;
    if (!clock) return;
    // Frame gaps are judged on the wire's modelled timeline, so event-loop lag is not a gap.
    const now = atMs ?? clock.now();
    // A gap of 3.5 characters ends whatever was pending: a partial frame is dropped, a complete one handled.
    if (this.#rx.length && now - this.#lastRxAt >= this.silenceMs()) this.#endOfFrame();
    this.#lastRxAt = now;
    for (const b of bytes) {
      this.#rx.push(b);
      const need = this.#rx.length >= 2 ? requestLength(this.#rx[1]!) : undefined;
      if (need !== undefined && this.#rx.length >= need) this.#endOfFrame();
    }
    this.#cancelSilence?.();
    this.#cancelSilence = this.#rx.length ? clock.at(now + this.silenceMs(), () => this.#endOfFrame()) : undefined;
  }

  hostClosed(): void {
    this.#rx = [];
  }

  #endOfFrame(): void {
    this.#cancelSilence?.();
    this.#cancelSilence = undefined;
    const frame = Uint8Array.from(this.#rx);
    this.#rx = [];
    if (frame.length >= 4 && crcOk(frame)) this.#handle(frame);
  }

  #handle(frame: Uint8Array): void {
    const addr = frame[0]!;
    const fn = frame[1]!;
    if (addr !== this.#address && addr !== GENERAL_ADDRESS && addr !== BROADCAST_ADDRESS) return;
    const replyAddr = addr === GENERAL_ADDRESS && this.#opts.generalReplyAddress === 'own' ? this.#address : addr;
    const reply = this.#execute(fn, frame);
    if (addr === BROADCAST_ADDRESS || !reply) return;
    this.requests++;
    this.#send(withCrc([replyAddr, ...reply]));
  }

  /** Returns the reply without address and CRC. */
  #execute(fn: number, f: Uint8Array): number[] | undefined {
    const word = (i: number): number => (f[i]! << 8) | f[i + 1]!;
    const exception = (code: number): number[] => [fn | 0x80, code];
    const words = (regs: number[]): number[] => [fn, regs.length * 2, ...regs.flatMap((r) => [r >>> 8, r & 0xff])];
    switch (fn) {
      case FN_READ_INPUT: {
        if (f.length !== 8) return exception(MODBUS_ILLEGAL_VALUE);
        const start = word(2);
        const count = word(4);
        if (count < 1 || count > PZEM_INPUT_REGISTER_COUNT) return exception(MODBUS_ILLEGAL_VALUE);
        if (start + count > PZEM_INPUT_REGISTER_COUNT) return exception(MODBUS_ILLEGAL_ADDRESS);
        return words(this.#inputRegisters().slice(start, start + count));
      }
      case FN_READ_HOLDING: {
        if (f.length !== 8) return exception(MODBUS_ILLEGAL_VALUE);
        const start = word(2);
        const count = word(4);
        if (count < 1 || count > 2) return exception(MODBUS_ILLEGAL_VALUE);
        if (start < REG_ALARM_THRESHOLD || start + count > REG_ADDRESS + 1) return exception(MODBUS_ILLEGAL_ADDRESS);
        const holding = [this.#alarmThresholdW, this.#address];
        return words(holding.slice(start - 1, start - 1 + count));
      }
      case FN_WRITE_SINGLE: {
        if (f.length !== 8) return exception(MODBUS_ILLEGAL_VALUE);
        const reg = word(2);
        const value = word(4);
        if (reg === REG_ALARM_THRESHOLD) this.#alarmThresholdW = value;
        else if (reg === REG_ADDRESS) {
          if (value < 0x01 || value > 0xf7) return exception(MODBUS_ILLEGAL_VALUE);
          this.#address = value;
        } else return exception(MODBUS_ILLEGAL_ADDRESS);
        return Array.from(f.subarray(1, 6)); // echo of function, register and value
      }
      case FN_RESET_ENERGY:
        this.#energyOffsetWh = this.#opts.source().wh;
        return [fn];
      default:
        // 0x41 (factory calibration) included: this twin refuses it, so nobody can rely on it.
        return exception(MODBUS_ILLEGAL_FUNCTION);
    }
  }

  /** What the module shows now: its last register refresh, through its own errors. */
  reading(): Measurement {
    const m = this.#display.current(this.#clock?.now());
    const e = this.#error;
    const k = m.update;
    const volts = e.reading('volts', m.volts, 0, k);
    const amps = e.reading('amps', m.amps, 0, k);
    const watts = e.reading('watts', m.watts, 0, k);
    const pf = e.reading('pf', m.pf, 0, k);
    const wh = (m.wh - this.#energyOffsetWh) + e.systematic('wh', m.wh - this.#energyOffsetWh);
    return { volts, amps, watts, pf: Math.min(1, Math.max(0, pf)), hz: e.reading('hz', m.hz, 0, k), wh };
  }

  #inputRegisters(): number[] {
    const measured = this.reading();
    return encodePzemRegisters({ ...measured, alarm: measured.watts >= this.#alarmThresholdW });
  }

  #send(bytes: Uint8Array): void {
    const clock = this.#clock;
    const tx = this.#tx;
    if (!clock || !tx) return;
    clock.at(clock.now() + (this.#opts.turnaroundMs ?? 20), () => tx.send(bytes));
  }
}
