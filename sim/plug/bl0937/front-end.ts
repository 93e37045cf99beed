import { mulberry32 } from '../../../rig/core/prng.ts';
import type { Bl0937Defects } from './defects.ts';

/**
 * The BL0937's transfer constants and the analog front end that feeds it (openbeken-bl0937.md §3.2,
 * §3.3): V(V) = mains / divider at VP, V(I) = load current × shunt at IP/IN, and
 *   F_CF = 1721506·V(V)·V(I)·PF/Vref²,  F_CF1(SEL low) = 94638·V(I)/Vref,  F_CF1(SEL high) = 15397·V(V)/Vref.
 */
export const BL0937_CF_CONSTANT = 1721506;
export const BL0937_CF1_CURRENT_CONSTANT = 94638;
export const BL0937_CF1_VOLTAGE_CONSTANT = 15397;

export interface Bl0937FrontEnd {
  /** Shunt in the load path, ohm. */
  shuntOhms: number;
  /** Mains-to-VP voltage divider ratio. */
  dividerRatio: number;
  /** The chip's internal reference (its gain), V. */
  vrefVolts: number;
}

/**
 * Nominal parts: the datasheet's 1 mΩ shunt and 1.218 V reference, and the divider that OpenBeken's
 * default voltage factor implies (about 1675:1). OpenBeken's three defaults are then not mutually
 * consistent (its P default reads about 13 % high), as on a real plug.
 */
export const BL0937_NOMINAL_FRONT_END: Readonly<Bl0937FrontEnd> = { shuntOhms: 0.001, dividerRatio: 1675, vrefVolts: 1.218 };

/** Hz per unit of each measured quantity for a front end, at the linear point (no nonlinearity). */
export interface Bl0937Transfer {
  hzPerWatt: number;
  hzPerVolt: number;
  hzPerAmp: number;
}

export function transferOf(fe: Bl0937FrontEnd): Bl0937Transfer {
  return {
    hzPerWatt: (BL0937_CF_CONSTANT * fe.shuntOhms) / (fe.dividerRatio * fe.vrefVolts ** 2),
    hzPerVolt: BL0937_CF1_VOLTAGE_CONSTANT / (fe.dividerRatio * fe.vrefVolts),
    hzPerAmp: (BL0937_CF1_CURRENT_CONSTANT * fe.shuntOhms) / fe.vrefVolts,
  };
}

/**
 * One unit's parts: shunt, divider and reference each drawn uniformly within ±tolerance of nominal
 * from the unit's seed, then the injected part defects applied (a divider error scales the voltage at
 * VP, a shunt error the shunt).
 */
export function drawFrontEnd(seed: number, tolerance: number, nominal: Bl0937FrontEnd, defects: Bl0937Defects = {}): Bl0937FrontEnd {
  const rnd = mulberry32(seed ^ 0x0b10937);
  const spread = (): number => 1 + tolerance * (2 * rnd() - 1);
  const shunt = nominal.shuntOhms * spread();
  const divider = nominal.dividerRatio * spread();
  const vref = nominal.vrefVolts * spread();
  return {
    shuntOhms: shunt * (1 + (defects.shuntError ?? 0)),
    dividerRatio: divider / (1 + (defects.dividerError ?? 0)),
    vrefVolts: vref,
  };
}
