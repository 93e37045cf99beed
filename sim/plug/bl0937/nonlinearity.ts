import { mulberry32 } from '../../../rig/core/prng.ts';

/** The chip's three measuring channels. */
export type Bl0937Channel = 'power' | 'voltage' | 'current';
export const BL0937_CHANNELS: readonly Bl0937Channel[] = ['power', 'voltage', 'current'];

/** Datasheet: nonlinear error < ±0.5 % over a 2500:1 dynamic range (openbeken-bl0937.md §3.1). */
export const BL0937_DATASHEET_NONLINEARITY = 0.005;
export const BL0937_DYNAMIC_RANGE = 2500;
/** Full-scale pin signal per channel, V rms: 30 A on 1 mΩ at IP/IN; VP taken as 0.5 V (UNCERTAIN). */
const FULL_SCALE_VOLTS: Record<Bl0937Channel, number> = { power: 0.03, voltage: 0.5, current: 0.03 };

/**
 * How a unit's nonlinearity is drawn: a number is a bound (each channel's peak error is drawn
 * uniformly in [0, bound]); an object fixes the peak error exactly (a bench injecting a 0.8–1.5 %
 * fault), optionally with the shape's Chebyshev coefficients [c1, c2, c3].
 */
export type NonlinearitySpec = number | { amplitude: number; shape?: readonly [number, number, number] };

/** Chebyshev polynomials T1..T3: each bounded by 1 on [-1, 1]. */
function chebyshev(w: number): [number, number, number] {
  return [w, 2 * w * w - 1, 4 * w * w * w - 3 * w];
}

/**
 * One unit's relative frequency error as a smooth function of signal level: a Chebyshev series in
 * the log of the level across the 2500:1 range, scaled so its peak over the range is the unit's
 * amplitude. Outside the range the error holds the end value.
 */
export class Bl0937Nonlinearity {
  readonly #coeffs: Record<Bl0937Channel, [number, number, number]>;
  /** Peak |relative error| of each channel over the dynamic range. */
  readonly amplitude: Record<Bl0937Channel, number>;

  constructor(seed: number, spec: NonlinearitySpec = BL0937_DATASHEET_NONLINEARITY) {
    const rnd = mulberry32(seed ^ 0x5eed1170);
    const coeffs = {} as Record<Bl0937Channel, [number, number, number]>;
    const amplitude = {} as Record<Bl0937Channel, number>;
    for (const ch of BL0937_CHANNELS) {
      const drawn: [number, number, number] = [2 * rnd() - 1, 2 * rnd() - 1, 2 * rnd() - 1];
      const shape = typeof spec === 'number' ? drawn : ([...(spec.shape ?? drawn)] as [number, number, number]);
      const amp = typeof spec === 'number' ? spec * rnd() : spec.amplitude;
      let peak = 0;
      for (let i = 0; i <= 200; i++) {
        const t = chebyshev(-1 + i / 100);
        peak = Math.max(peak, Math.abs(shape[0] * t[0] + shape[1] * t[1] + shape[2] * t[2]));
      }
      const k = peak > 0 ? amp / peak : 0;
      coeffs[ch] = [shape[0] * k, shape[1] * k, shape[2] * k];
      amplitude[ch] = peak > 0 ? amp : 0;
    }
    this.#coeffs = coeffs;
    this.amplitude = amplitude;
  }

  /** Relative error of the channel's output frequency at pin signal `signalVolts` (rms). */
  relativeError(channel: Bl0937Channel, signalVolts: number): number {
    const x = Math.abs(signalVolts);
    if (!(x > 0)) return 0;
    const w = Math.min(1, Math.max(-1, 1 + (2 * Math.log(x / FULL_SCALE_VOLTS[channel])) / Math.log(BL0937_DYNAMIC_RANGE)));
    const c = this.#coeffs[channel];
    const t = chebyshev(w);
    return c[0] * t[0] + c[1] * t[1] + c[2] * t[2];
  }
}
