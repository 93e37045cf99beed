import type { Clock } from '../../rig/core/clock.ts';
import type { Quantity } from '../../rig/meter/reference-meter.ts';
import { DisplayUpdate, type DisplayedValues, type TimedSource } from '../mains/display-update.ts';
import { InstrumentError, seedFromSerial, type AccuracyClass, type InstrumentErrors } from '../mains/instrument-error.ts';
import type { UartTx, VirtualUartDevice } from '../serial/uart-device.ts';
import {
  formatNr3,
  matchChoice,
  ScpiError,
  SCPI_ILLEGAL_PARAMETER,
  SCPI_MISSING_PARAMETER,
  SCPI_SETTINGS_CONFLICT,
} from './scpi-parser.ts';
import { parseBoolean, ScpiInstrument, type ScpiCall } from './scpi-instrument.ts';

/** Numeric functions this twin computes (a subset of the WT310E's). */
export const WT_FUNCTIONS = ['U', 'I', 'P', 'S', 'Q', 'LAMBda', 'PHI', 'FU', 'FI', 'WP'] as const;
export const WT_VOLTAGE_RANGES = [15, 30, 60, 150, 300, 600];
export const WT_CURRENT_RANGES = [0.5, 1, 2, 5, 10, 20];
const DEFAULT_ITEMS = ['U', 'I', 'P', 'S', 'Q', 'LAMBDA', 'PHI', 'FU', 'FI', 'WP'];

/**
 * Stated accuracy at 45–66 Hz, PF 1 (instruments.md §B2: active power ±(0.1 % rdg + 0.05 % rng));
 * voltage and current taken as the same figure and frequency as 0.06 % rdg (UNCERTAIN, as the rig's
 * table). S, Q, λ and φ are computed from the instrument's own U, I and P, so their errors follow.
 */
export const WT310E_ACCURACY_CLASS: AccuracyClass = {
  volts: { pctOfReading: 0.1, pctOfRange: 0.05 },
  amps: { pctOfReading: 0.1, pctOfRange: 0.05 },
  watts: { pctOfReading: 0.1, pctOfRange: 0.05 },
  hz: { pctOfReading: 0.06 },
};

/** Data update interval, ms: the WT310E's factory default of 250 ms (not in instruments.md: UNCERTAIN). */
export const WT310E_UPDATE_INTERVAL_MS = 250;

export interface VirtualWt310eOptions {
  /** The circuit at the meter (a mains branch's source answers for past moments too). */
  source: TimedSource;
  /** Seeds this instrument's error. */
  serial?: string;
  /** The clock for the update interval when the twin is not attached as a UART (TCP, USBTMC). */
  clock?: Clock;
  /** Data update interval, ms (default WT310E_UPDATE_INTERVAL_MS; 0 = every query samples now). */
  updateIntervalMs?: number;
  /** Fixed systematic errors instead of ones drawn within the class from the serial (noise still applies). */
  errors?: InstrumentErrors;
  /**
   * A perfect instrument (no drawn error, no noise, no update interval unless one is given). Only for
   * tests of the SCPI wire format and the client's decoding.
   */
  ideal?: boolean;
  firmware?: string;
  /** RS-232 rate when used as a VirtualUartDevice. */
  baudRate?: number;
  /** Delay before a serial reply, ms. */
  turnaroundMs?: number;
}

type IntegratorState = 'RESET' | 'START' | 'STOP';

function requireParam(call: ScpiCall, i = 0): string {
  const p = call.params[i];
  if (p === undefined) throw new ScpiError(SCPI_MISSING_PARAMETER, 'Missing parameter');
  return p;
}

/** `300`, `300V`, `0.5A`, `500MA` -> number in base units. */
function parseRangeValue(p: string, unit: 'V' | 'A'): number {
  const m = /^([0-9.]+(?:E[+-]?\d+)?)\s*(M?)(V|A)?$/i.exec(p.trim());
  if (!m || (m[3] && m[3].toUpperCase() !== unit)) throw new ScpiError(SCPI_ILLEGAL_PARAMETER, 'Illegal parameter value');
  return Number(m[1]) * (m[2] ? 1e-3 : 1);
}

/**
 * A Yokogawa WT310E twin (instruments.md §B2): `*IDN?`, `*RST`, `*CLS`, `*OPC?`, `:SYSTem:ERRor?`,
 * `:COMMunicate:HEADer`, `:NUMeric:FORMat ASCii|FLOat`, `:NUMeric:NORMal:NUMber|ITEM<k>|VALue?`,
 * `:INPut:VOLTage|CURRent:RANGe|AUTO`, `:INTEGrate:STARt|STOP|RESet|STATe?`. Element 1 only.
 * Speak to it with handleMessage(), over TCP (serveScpiTcp) or as a VirtualUartDevice (RS-232).
 */
export class VirtualWt310e implements VirtualUartDevice {
  readonly scpi = new ScpiInstrument();
  readonly #opts: VirtualWt310eOptions;
  #format: 'ASCII' | 'FLOAT' = 'ASCII';
  #count = 10;
  #items: string[] = [...DEFAULT_ITEMS];
  #range = { volts: 300, amps: 20, autoV: true, autoI: true };
  #integ: { state: IntegratorState; accumulatedWh: number; startWh: number } = { state: 'RESET', accumulatedWh: 0, startWh: 0 };
  #tx?: UartTx;
  #clock?: Clock;
  #rx = '';
  readonly #error: InstrumentError;
  readonly #display: DisplayUpdate;

  constructor(opts: VirtualWt310eOptions) {
    this.#opts = opts;
    this.#clock = opts.clock;
    const seed = seedFromSerial(opts.serial ?? 'C2QD00001');
    const fixed = opts.errors ?? (opts.ideal ? {} : undefined);
    this.#error = new InstrumentError({ seed, accuracy: WT310E_ACCURACY_CLASS, ...(fixed ? { errors: fixed } : {}), ...(opts.ideal ? { noiseShare: 0 } : {}) });
    const intervalMs = opts.updateIntervalMs ?? (opts.ideal ? 0 : WT310E_UPDATE_INTERVAL_MS);
    this.#display = new DisplayUpdate(opts.source, { intervalMs, phaseMs: (seed % 1000) * (intervalMs / 1000) });
    const s = this.scpi;
    s.addCommon('IDN', { query: () => `YOKOGAWA,WT310E,${opts.serial ?? 'C2QD00001'},${opts.firmware ?? 'F1.03'}` });
    s.addCommon('RST', { set: () => this.#reset() });
    s.add(':NUMeric:FORMat', {
      set: (c) => {
        const f = matchChoice(requireParam(c), ['ASCii', 'FLOat']);
        if (!f) throw new ScpiError(SCPI_ILLEGAL_PARAMETER, 'Illegal parameter value');
        this.#format = f as 'ASCII' | 'FLOAT';
      },
      query: () => (this.#format === 'ASCII' ? 'ASC' : 'FLO'),
    });
    s.add(':NUMeric:NORMal:NUMber', {
      set: (c) => {
        const n = Number(requireParam(c));
        if (!Number.isInteger(n) || n < 1 || n > 255) throw new ScpiError(SCPI_ILLEGAL_PARAMETER, 'Illegal parameter value');
        this.#count = n;
      },
      query: () => String(this.#count),
    });
    s.add(':NUMeric:NORMal:ITEM#', {
      set: (c) => {
        const k = c.suffixes[0]!;
        const fn = matchChoice(requireParam(c), WT_FUNCTIONS);
        const element = c.params[1] === undefined ? 1 : Number(c.params[1]);
        if (!fn || element !== 1 || k < 1 || k > 255) throw new ScpiError(SCPI_ILLEGAL_PARAMETER, 'Illegal parameter value');
        this.#items[k - 1] = fn;
      },
      query: (c) => `${this.#items[c.suffixes[0]! - 1] ?? 'NONE'},1`,
    });
    s.add(':NUMeric:NORMal:VALue', { query: (c) => this.#values(c) });
    for (const [node, key, ranges, unit] of [
      ['VOLTage', 'volts', WT_VOLTAGE_RANGES, 'V'],
      ['CURRent', 'amps', WT_CURRENT_RANGES, 'A'],
    ] as const) {
      const auto = key === 'volts' ? 'autoV' : 'autoI';
      s.add(`:INPut:${node}:RANGe`, {
        set: (c) => {
          const v = parseRangeValue(requireParam(c), unit);
          if (!ranges.includes(v)) throw new ScpiError(SCPI_ILLEGAL_PARAMETER, 'Illegal parameter value');
          this.#range[key] = v;
          this.#range[auto] = false;
        },
        query: () => formatNr3(this.#currentRange(key)),
      });
      s.add(`:INPut:${node}:AUTO`, {
        set: (c) => (this.#range[auto] = parseBoolean(c.params)),
        query: () => (this.#range[auto] ? '1' : '0'),
      });
    }
    s.add(':INTEGrate:STARt', { set: () => this.#integrate('START') });
    s.add(':INTEGrate:STOP', { set: () => this.#integrate('STOP') });
    s.add(':INTEGrate:RESet', { set: () => this.#integrate('RESET') });
    s.add(':INTEGrate:STATe', { query: () => ({ RESET: 'RES', START: 'STAR', STOP: 'STOP' })[this.#integ.state] });
  }

  /** The instrument's true errors and update interval (for benches; the rig never sees them). */
  truth(): { errors: InstrumentErrors; updateIntervalMs: number; phaseMs: number; systematic: (q: Quantity, value: number, range: number) => number } {
    return {
      errors: this.#error.errors,
      updateIntervalMs: this.#display.intervalMs,
      phaseMs: this.#display.phaseMs,
      systematic: (q, value, range) => this.#error.systematic(q, value, range),
    };
  }

  /** Execute one program message (no terminator); returns the response bytes, if any. */
  handleMessage(message: string): Uint8Array | undefined {
    return this.scpi.handleMessage(message);
  }

  // ---- VirtualUartDevice (RS-232 option): LF-terminated messages ----

  baudRate(): number {
    return this.#opts.baudRate ?? 9600;
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
  }

  #shown(): DisplayedValues {
    return this.#display.current(this.#clock?.now());
  }

  receive(bytes: Uint8Array): void {
    this.#rx += new TextDecoder('latin1').decode(bytes);
    for (let nl = this.#rx.indexOf('\n'); nl >= 0; nl = this.#rx.indexOf('\n')) {
      const message = this.#rx.slice(0, nl).replace(/\r$/, '');
      this.#rx = this.#rx.slice(nl + 1);
      const reply = this.handleMessage(message);
      const clock = this.#clock;
      const tx = this.#tx;
      if (reply && clock && tx) {
        const framed = new Uint8Array(reply.length + 1);
        framed.set(reply);
        framed[reply.length] = 0x0a;
        clock.at(clock.now() + (this.#opts.turnaroundMs ?? 5), () => tx.send(framed));
      }
    }
  }

  hostClosed(): void {
    this.#rx = '';
  }

  // ---- model ----

  #reset(): void {
    this.#format = 'ASCII';
    this.#count = 10;
    this.#items = [...DEFAULT_ITEMS];
    this.#range = { volts: 300, amps: 20, autoV: true, autoI: true };
    this.scpi.headerOn = false;
  }

  #currentRange(key: 'volts' | 'amps'): number {
    const auto = key === 'volts' ? this.#range.autoV : this.#range.autoI;
    if (!auto) return this.#range[key];
    const ranges = key === 'volts' ? WT_VOLTAGE_RANGES : WT_CURRENT_RANGES;
    const v = Math.abs(this.#shown()[key]);
    return ranges.find((r) => v <= r) ?? ranges[ranges.length - 1]!;
  }

  #integrate(to: IntegratorState): void {
    const i = this.#integ;
    const wh = this.#measured().wh;
    if (to === 'START') {
      if (i.state === 'START') throw new ScpiError(SCPI_SETTINGS_CONFLICT, 'Settings conflict; integration running');
      i.startWh = wh;
    } else if (to === 'STOP') {
      if (i.state !== 'START') throw new ScpiError(SCPI_SETTINGS_CONFLICT, 'Settings conflict; integration not running');
      i.accumulatedWh += wh - i.startWh;
    } else {
      if (i.state === 'START') throw new ScpiError(SCPI_SETTINGS_CONFLICT, 'Settings conflict; stop integration first');
      i.accumulatedWh = 0;
    }
    i.state = to;
  }

  /** One update's values as the instrument computes them: U, I, P through its errors; S, Q, λ, φ from those. */
  #measured(): { u: number; i: number; p: number; s: number; hz: number; wh: number } {
    const d = this.#shown();
    const e = this.#error;
    const ur = this.#currentRange('volts');
    const ir = this.#currentRange('amps');
    const u = e.reading('volts', d.volts, ur, d.update);
    const i = e.reading('amps', d.amps, ir, d.update);
    const p = e.reading('watts', d.watts, ur * ir, d.update);
    // S from the true apparent power scaled by the U and I errors (a non-sinusoidal S is not U·I here).
    const s = d.volts > 0 && d.amps > 0 ? d.va * (u / d.volts) * (i / d.amps) : u * i;
    return { u, i, p, s, hz: e.reading('hz', d.hz, 0, d.update), wh: d.wh + e.systematic('watts', d.wh, 0) };
  }

  #value(fn: string, m: { u: number; i: number; p: number; s: number; hz: number; wh: number }): number {
    const lambda = m.s > 0 ? Math.min(1, Math.max(-1, m.p / m.s)) : 0;
    switch (fn) {
      case 'U': return m.u;
      case 'I': return m.i;
      case 'P': return m.p;
      case 'S': return m.s;
      case 'Q': return Math.sqrt(Math.max(0, m.s * m.s - m.p * m.p));
      case 'LAMBDA': return lambda;
      case 'PHI': return (Math.acos(lambda) * 180) / Math.PI;
      case 'FU':
      case 'FI': return m.hz;
      case 'WP': {
        const i = this.#integ;
        return i.accumulatedWh + (i.state === 'START' ? m.wh - i.startWh : 0);
      }
      default: return Number.NaN; // item NONE
    }
  }

  #values(c: ScpiCall): string | Uint8Array {
    const m = this.#measured();
    let items = this.#items.slice(0, this.#count);
    if (c.params.length) {
      const k = Number(c.params[0]);
      if (!Number.isInteger(k) || k < 1 || k > this.#count) throw new ScpiError(SCPI_ILLEGAL_PARAMETER, 'Illegal parameter value');
      items = [this.#items[k - 1] ?? 'NONE'];
    }
    const values = items.map((fn) => this.#value(fn, m));
    if (this.#format === 'ASCII') return values.map((v) => (Number.isNaN(v) ? 'NAN' : formatNr3(v))).join(',');
    // FLOat: IEEE 754 single precision, big-endian, in a '#4nnnn' block.
    const data = new Uint8Array(values.length * 4);
    const view = new DataView(data.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, false));
    const head = new TextEncoder().encode(`#4${String(data.length).padStart(4, '0')}`);
    const out = new Uint8Array(head.length + data.length);
    out.set(head);
    out.set(data, head.length);
    return out;
  }
}
