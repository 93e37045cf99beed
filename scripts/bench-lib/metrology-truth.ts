import type { Quantity } from '../../rig/meter/reference-meter.ts';
import type { Bl0937Input, Bl0937Truth } from '../../sim/plug/bl0937/bl0937-chip.ts';
import { OBK_BL0937_DEFAULT_CAL } from '../../sim/plug/bl0937/obk-bl0937-driver.ts';
import { WT_CURRENT_RANGES, WT_VOLTAGE_RANGES } from '../../sim/scpi/virtual-wt310e.ts';

/**
 * What only the simulator knows about a unit, turned into errors for scoring: the plug's reading
 * without jitter or quantization (its factor times the chip's true output frequency) against the
 * true value, and the reference instrument's own systematic error. The rig never sees any of this.
 */

/** The factors OpenBeken applies (a stored 0 means its default), as float32 like the firmware. */
export interface CalFactors {
  voltage: number;
  current: number;
  power: number;
}

export function effectiveCal(stored: CalFactors): CalFactors {
  const pick = (v: number, d: number): number => Math.fround(Object.is(v, 0) ? d : v);
  return { voltage: pick(stored.voltage, OBK_BL0937_DEFAULT_CAL.voltage), current: pick(stored.current, OBK_BL0937_DEFAULT_CAL.current), power: pick(stored.power, OBK_BL0937_DEFAULT_CAL.power) };
}

/** The true electrical input at a point: the plug input's voltage, the load current and power behind the relay. */
export interface TrueInput extends Bl0937Input {
  pf: number;
}

/** Relative errors of V, I, P (fractions) and the absolute error of the PF the plug derives from them. */
export interface TrueErrors {
  volts: number;
  amps: number;
  watts: number;
  pf: number;
}

/**
 * The unit's true error at an input: OpenBeken shows count·factor per second, and the count rate
 * is the chip's frequency, so the reading without noise is factor × frequency.
 */
export function trueErrorsAt(chip: Pick<Bl0937Truth, 'frequency'>, cal: CalFactors, input: TrueInput): TrueErrors {
  const rel = (shown: number, truth: number): number => (truth > 0 ? shown / truth - 1 : shown);
  const volts = rel(cal.voltage * chip.frequency('voltage', input), input.volts);
  const amps = rel(cal.current * chip.frequency('current', input), input.amps);
  const watts = rel(cal.power * chip.frequency('power', input), input.watts);
  // PF = P / (V·I) in the firmware.
  const pf = input.pf * ((1 + watts) / ((1 + volts) * (1 + amps))) - input.pf;
  return { volts, amps, watts, pf };
}

/** The range a WT310E on auto-range uses for a value: the smallest that holds it. */
export function wtAutoRange(ranges: readonly number[], value: number): number {
  return ranges.find((r) => Math.abs(value) <= r) ?? ranges[ranges.length - 1]!;
}

/** The range-relative part of an instrument's error at an input (the WT310E's; the PZEM has no ranges). */
export function referenceRanges(kind: 'wt310e' | 'pzem004t', input: TrueInput): Partial<Record<Quantity, number>> {
  if (kind === 'pzem004t') return {};
  const v = wtAutoRange(WT_VOLTAGE_RANGES, input.volts);
  const i = wtAutoRange(WT_CURRENT_RANGES, input.amps);
  return { volts: v, amps: i, watts: v * i };
}

/** The reference's own systematic relative error of each quantity at an input. */
export function referenceErrorsAt(systematic: (q: Quantity, value: number, range: number) => number, ranges: Partial<Record<Quantity, number>>, input: TrueInput): Pick<TrueErrors, 'volts' | 'amps' | 'watts'> {
  const rel = (q: 'volts' | 'amps' | 'watts'): number => (input[q] > 0 ? systematic(q, input[q], ranges[q] ?? 0) / input[q] : 0);
  return { volts: rel('volts'), amps: rel('amps'), watts: rel('watts') };
}
