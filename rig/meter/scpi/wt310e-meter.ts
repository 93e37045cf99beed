import type { Clock } from '../../core/clock.ts';
import { InstrumentError } from '../../core/errors.ts';
import { accuracyBand, type AccuracyTable, type MeterIdentity, type MeterReading, type Quantity, type ReferenceMeter } from '../reference-meter.ts';
import type { ScpiClient, ScpiIdentity } from './scpi-client.ts';

const IM = 'IM WT310E-02EN §7.3.2, 45–66 Hz, PF=1 (instruments.md §B2)';
const UNVERIFIED = 'UNCERTAIN: assumed equal to the power figure; check the WT310E datasheet before using for acceptance';

/**
 * Stated accuracy. Power is from the manual; the other quantities are assumptions flagged in `source`.
 * Range terms use the ranges of the last reading (power range = voltage range × current range).
 */
export const WT310E_ACCURACY: AccuracyTable = {
  watts: { pctOfReading: 0.1, pctOfRange: 0.05, source: IM },
  volts: { pctOfReading: 0.1, pctOfRange: 0.05, source: UNVERIFIED },
  amps: { pctOfReading: 0.1, pctOfRange: 0.05, source: UNVERIFIED },
  wh: { pctOfReading: 0.1, pctOfRange: 0.05, source: UNVERIFIED },
  hz: { pctOfReading: 0.06, source: 'UNCERTAIN: not in the reference docs; check the WT310E datasheet' },
  pf: { pctOfReading: 0, absolute: 0.002, source: 'UNCERTAIN: not in the reference docs; check the WT310E datasheet' },
};

/** Numeric items read on every `:NUMeric:NORMal:VALue?`, in this order. */
export const WT310E_ITEMS = ['U', 'I', 'P', 'LAMBda', 'FU', 'WP'] as const;

/** The WT's "no data / over range" markers and non-numbers are rejected. */
function parseValue(text: string, item: string, reply: string): number {
  const v = Number(text.trim());
  if (!Number.isFinite(v) || Math.abs(v) >= 9.9e37) {
    throw new InstrumentError(`WT310E item ${item} has no valid value ("${text.trim()}")`, { step: 'wt310e-read', reply, expected: 'a number' });
  }
  return v;
}

export interface Wt310eOptions {
  clock: Clock;
  /** Input element (the WT310E has one). */
  element?: number;
  serial?: string;
  calibrationDate?: string;
}

/**
 * Yokogawa WT310E/WT300E as a reference meter (instruments.md §B2), over any SCPI transport:
 * ASCII numeric output of U, I, P, λ, fU and WP (integrated Wh) for one element.
 */
export class Wt310eMeter implements ReferenceMeter {
  readonly accuracy = WT310E_ACCURACY;
  /** The data update interval's factory default (UNCERTAIN: not in instruments.md; the rig does not set it). */
  readonly updateIntervalMs = 250;
  readonly scpi: ScpiClient;
  readonly #opts: Wt310eOptions;
  readonly #element: number;
  #idn: ScpiIdentity | undefined;
  #ranges: { volts: number; amps: number } | undefined;

  private constructor(scpi: ScpiClient, opts: Wt310eOptions) {
    this.scpi = scpi;
    this.#opts = opts;
    this.#element = opts.element ?? 1;
  }

  /** Identify, then set header off, ASCII format and the item list; fails on any queued SCPI error. */
  static async open(scpi: ScpiClient, opts: Wt310eOptions): Promise<Wt310eMeter> {
    const m = new Wt310eMeter(scpi, opts);
    m.#idn = await scpi.identify();
    await scpi.clearStatus();
    await scpi.write(':COMMunicate:HEADer OFF');
    await scpi.write(':NUMeric:FORMat ASCii');
    await scpi.write(`:NUMeric:NORMal:NUMber ${WT310E_ITEMS.length}`);
    await scpi.write(':NUMeric:NORMal:' + WT310E_ITEMS.map((fn, i) => `ITEM${i + 1} ${fn},${m.#element}`).join(';'));
    await scpi.assertNoErrors('wt310e-configure');
    return m;
  }

  async read(): Promise<MeterReading> {
    const reply = await this.scpi.query(':NUMeric:NORMal:VALue?');
    const fields = reply.split(',');
    let values: number[];
    try {
      if (fields.length !== WT310E_ITEMS.length) {
        throw new InstrumentError(`expected ${WT310E_ITEMS.length} values, got ${fields.length}`, { step: 'wt310e-read', reply });
      }
      values = fields.map((f, i) => parseValue(f, WT310E_ITEMS[i]!, reply));
    } catch (e) {
      // A reply that is not the item list: the meter's error queue usually says why; read and clear it.
      if (e instanceof InstrumentError) {
        const note = await this.scpi.drainedErrorsNote();
        if (note) throw new InstrumentError(`${e.message}${note}`, e.context, { cause: e });
      }
      throw e;
    }
    const [volts, amps, watts, pf, hz, wh] = values as [number, number, number, number, number, number];
    const timestamp = this.#opts.clock.now();
    this.#ranges = await this.#readRanges();
    const { volts: vr, amps: ir } = this.#ranges;
    return { volts, amps, watts, pf, hz, wh, timestamp, ranges: { volts: vr, amps: ir, watts: vr * ir } };
  }

  uncertainty(quantity: Quantity, value: number): number {
    const spec = this.accuracy[quantity];
    if (!spec) throw new InstrumentError(`WT310E states no accuracy for ${quantity}`, { step: 'uncertainty' });
    if (spec.pctOfRange && !this.#ranges) throw new InstrumentError(`uncertainty of ${quantity} needs the ranges: read() first`, { step: 'uncertainty' });
    const r = this.#ranges;
    const range = !r ? undefined : quantity === 'volts' ? r.volts : quantity === 'amps' ? r.amps : r.volts * r.amps;
    return accuracyBand(spec, value, range);
  }

  async identity(): Promise<MeterIdentity> {
    this.#idn ??= await this.scpi.identify();
    const serial = this.#idn.serial || this.#opts.serial;
    return {
      kind: 'scpi',
      manufacturer: this.#idn.manufacturer,
      model: this.#idn.model,
      firmware: this.#idn.firmware,
      ...(serial ? { serial } : {}),
      ...(this.#opts.calibrationDate !== undefined ? { calibrationDate: this.#opts.calibrationDate } : {}),
    };
  }

  /** Stop (if running), reset and restart the integrator, so WP counts from zero. */
  async resetEnergy(): Promise<void> {
    const state = (await this.scpi.query(':INTEGrate:STATe?')).toUpperCase();
    if (state.startsWith('STAR')) await this.scpi.write(':INTEGrate:STOP');
    await this.scpi.write(':INTEGrate:RESet');
    await this.scpi.write(':INTEGrate:STARt');
    await this.scpi.assertNoErrors('wt310e-reset-energy');
  }

  close(): Promise<void> {
    return this.scpi.close();
  }

  async #readRanges(): Promise<{ volts: number; amps: number }> {
    const num = async (q: string): Promise<number> => {
      const reply = await this.scpi.query(q);
      const v = Number(reply);
      if (!Number.isFinite(v) || v <= 0) throw new InstrumentError(`${q} answered "${reply}"`, { step: 'wt310e-ranges', expected: 'a range value' });
      return v;
    };
    return { volts: await num(':INPut:VOLTage:RANGe?'), amps: await num(':INPut:CURRent:RANGe?') };
  }
}
