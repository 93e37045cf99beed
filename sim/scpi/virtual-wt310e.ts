import type { Clock } from '../../rig/core/clock.ts';
import type { Measurement, MeasurementSource } from '../../rig/meter/reference-meter.ts';
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

export interface VirtualWt310eOptions {
  source: MeasurementSource;
  serial?: string;
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

  constructor(opts: VirtualWt310eOptions) {
    this.#opts = opts;
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
    const v = Math.abs(this.#opts.source()[key]);
    return ranges.find((r) => v <= r) ?? ranges[ranges.length - 1]!;
  }

  #integrate(to: IntegratorState): void {
    const i = this.#integ;
    const wh = this.#opts.source().wh;
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

  #value(fn: string, m: Measurement): number {
    const s = m.pf > 0 ? Math.abs(m.watts) / m.pf : m.volts * m.amps;
    switch (fn) {
      case 'U': return m.volts;
      case 'I': return m.amps;
      case 'P': return m.watts;
      case 'S': return s;
      case 'Q': return Math.sqrt(Math.max(0, s * s - m.watts * m.watts));
      case 'LAMBDA': return m.pf;
      case 'PHI': return (Math.acos(Math.min(1, Math.max(-1, m.pf))) * 180) / Math.PI;
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
    const m = this.#opts.source();
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
