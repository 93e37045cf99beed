/**
 * What every reference meter (PZEM-004T, SCPI power analyzer, ...) offers the suites: one reading of the
 * mains quantities, the instrument's stated accuracy so a caller can put an uncertainty on each value,
 * who the instrument is (for the test report's traceability line), and energy reset.
 */

/** Quantities a reference meter reports. */
export type Quantity = 'volts' | 'amps' | 'watts' | 'pf' | 'hz' | 'wh';
export const QUANTITIES: readonly Quantity[] = ['volts', 'amps', 'watts', 'pf', 'hz', 'wh'];

/** The physical values at one instant (also what simulators are fed by the virtual mains network). */
export interface Measurement {
  volts: number;
  amps: number;
  watts: number;
  pf: number;
  hz: number;
  /** Energy accumulated since the meter's counter was last reset, Wh. */
  wh: number;
}

/** A measurement source for simulated meters: called at the instant the meter samples. */
export type MeasurementSource = () => Measurement;

export interface MeterReading extends Omit<Measurement, 'wh'> {
  /** Energy, Wh; undefined when the instrument does not integrate. */
  wh?: number;
  /** Clock time (ms) at which the reading was taken. */
  timestamp: number;
  /** Ranges in use when the reading was taken, for range-relative accuracy terms. */
  ranges?: Partial<Record<Quantity, number>>;
}

/**
 * Stated accuracy of one quantity: ±(pctOfReading % of |value| + pctOfRange % of range + absolute).
 * `range` is the default full scale when the reading carries none.
 */
export interface AccuracySpec {
  pctOfReading: number;
  pctOfRange?: number;
  range?: number;
  absolute?: number;
  /** Where the figure comes from (datasheet section), printed in reports. */
  source: string;
}

export type AccuracyTable = Partial<Record<Quantity, AccuracySpec>>;

/** Half-width of the stated accuracy band for `value`, in the quantity's unit. */
export function accuracyBand(spec: AccuracySpec, value: number, range?: number): number {
  const r = range ?? spec.range ?? 0;
  return (Math.abs(value) * spec.pctOfReading) / 100 + ((spec.pctOfRange ?? 0) * r) / 100 + (spec.absolute ?? 0);
}

export interface MeterIdentity {
  kind: 'pzem004t' | 'scpi';
  manufacturer: string;
  model: string;
  /** Instrument serial: from the instrument when it reports one, else from the jig file. */
  serial?: string;
  firmware?: string;
  /** From the jig file (ISO date); instruments do not report it. */
  calibrationDate?: string;
}

export interface ReferenceMeter {
  read(): Promise<MeterReading>;
  /**
   * Stated accuracy half-width for `value` of `quantity` (same unit). Range-relative terms use the
   * ranges of the last reading. Throws InstrumentError for a quantity the instrument does not specify.
   */
  uncertainty(quantity: Quantity, value: number): number;
  readonly accuracy: AccuracyTable;
  /**
   * How often the instrument completes a measurement, ms: a reading shows the last one completed,
   * the mean over an interval this long that ended up to this long before the query. Undefined:
   * not stated (a caller then assumes a reading shows the present).
   */
  readonly updateIntervalMs?: number;
  identity(): Promise<MeterIdentity>;
  /** Zero the energy counter / integrator. */
  resetEnergy(): Promise<void>;
  close(): Promise<void>;
}
