import { ConfigError } from '../../../rig/core/errors.ts';

/** Metering faults a virtual plug can carry (issue 7's injectable defects). */
export interface Bl0937Defects {
  /** CF not connected to the module: no power pulses reach P7. */
  cfOpen?: boolean;
  /** CF1 not connected: no voltage/current pulses reach P6. */
  cf1Open?: boolean;
  /** SEL does not follow the firmware: the chip stays in one CF1 mode. */
  selStuck?: 'high' | 'low';
  /** Relative error of the voltage at VP (a wrong divider resistor): -0.2 reads 20 % low. */
  dividerError?: number;
  /** Relative error of the shunt resistance: +0.1 reads current and power 10 % high. */
  shuntError?: number;
}

/** Defect names as a jig file or test spells them. */
export const BL0937_DEFECT_NAMES = ['cf-open', 'cf1-open', 'sel-stuck-high', 'sel-stuck-low', 'divider-off-20', 'shunt-off-10'] as const;
export type Bl0937DefectName = (typeof BL0937_DEFECT_NAMES)[number];

export function bl0937Defects(names: readonly string[]): Bl0937Defects {
  const d: Bl0937Defects = {};
  for (const name of names) {
    switch (name as Bl0937DefectName) {
      case 'cf-open': d.cfOpen = true; break;
      case 'cf1-open': d.cf1Open = true; break;
      case 'sel-stuck-high': d.selStuck = 'high'; break;
      case 'sel-stuck-low': d.selStuck = 'low'; break;
      case 'divider-off-20': d.dividerError = -0.2; break;
      case 'shunt-off-10': d.shuntError = 0.1; break;
      default:
        throw new ConfigError(`unknown BL0937 defect "${name}"`, { step: 'bl0937', known: [...BL0937_DEFECT_NAMES] });
    }
  }
  return d;
}
