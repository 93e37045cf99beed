import { hashUnit, mulberry32 } from '../../rig/core/prng.ts';
import type { Quantity } from '../../rig/meter/reference-meter.ts';

/** A stated accuracy term: ±(pctOfReading % of |value| + pctOfRange % of range + absolute). */
export interface AccuracyTerm {
  pctOfReading: number;
  pctOfRange?: number;
  absolute?: number;
}
export type AccuracyClass = Partial<Record<Quantity, AccuracyTerm>>;

/** One instrument's systematic error of a quantity: gain·value + rangeFraction·range + absolute. */
export interface QuantityError {
  gain: number;
  rangeFraction: number;
  absolute: number;
}
export type InstrumentErrors = Partial<Record<Quantity, QuantityError>>;

export interface InstrumentErrorOptions {
  /** Seed (use seedFromSerial: the same instrument always has the same error). */
  seed: number;
  accuracy: AccuracyClass;
  /** Share of the class band the systematic error is drawn within (default 0.8). */
  systematicShare?: number;
  /** Peak reading noise as a share of the class band (default 0.2), so a reading stays within class. */
  noiseShare?: number;
  /** Use these systematic errors instead of drawing them (quantities not listed: none). */
  errors?: InstrumentErrors;
}

/** FNV-1a of a serial number: a stable per-instrument seed. */
export function seedFromSerial(serial: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < serial.length; i++) h = Math.imul(h ^ serial.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * How one reference instrument is wrong: a systematic error per quantity drawn within its stated
 * accuracy class (from its serial), plus reading noise that changes with each display update. The
 * rig only knows the class; a bench may ask for the truth.
 */
export class InstrumentError {
  readonly errors: InstrumentErrors;
  readonly #accuracy: AccuracyClass;
  readonly #noiseShare: number;
  readonly #seed: number;

  constructor(o: InstrumentErrorOptions) {
    this.#accuracy = o.accuracy;
    this.#seed = o.seed >>> 0;
    this.#noiseShare = o.noiseShare ?? 0.2;
    if (o.errors) {
      this.errors = { ...o.errors };
      return;
    }
    const share = o.systematicShare ?? 0.8;
    const rnd = mulberry32(this.#seed ^ 0x1e57e4);
    const spread = (): number => share * (2 * rnd() - 1);
    const errors: InstrumentErrors = {};
    for (const [q, a] of Object.entries(o.accuracy) as Array<[Quantity, AccuracyTerm]>) {
      errors[q] = { gain: (spread() * a.pctOfReading) / 100, rangeFraction: (spread() * (a.pctOfRange ?? 0)) / 100, absolute: spread() * (a.absolute ?? 0) };
    }
    this.errors = errors;
  }

  /** The systematic error of a reading of `value` on `range`, in the quantity's unit. */
  systematic(q: Quantity, value: number, range = 0): number {
    const e = this.errors[q];
    return e ? e.gain * value + e.rangeFraction * range + e.absolute : 0;
  }

  /** Half-width of the stated class band. */
  band(q: Quantity, value: number, range = 0): number {
    const a = this.#accuracy[q];
    return a ? (Math.abs(value) * a.pctOfReading) / 100 + ((a.pctOfRange ?? 0) * range) / 100 + (a.absolute ?? 0) : 0;
  }

  /** What the instrument shows for a true `value`: systematic error plus the noise of display update `update`. */
  reading(q: Quantity, value: number, range: number, update: number): number {
    const stream = QUANTITY_STREAM[q];
    const noise = this.#noiseShare * (2 * hashUnit(this.#seed, stream, update) - 1) * this.band(q, value, range);
    return value + this.systematic(q, value, range) + noise;
  }
}

const QUANTITY_STREAM: Record<Quantity, number> = { volts: 11, amps: 12, watts: 13, pf: 14, hz: 15, wh: 16 };
