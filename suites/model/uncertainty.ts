import { ConfigError } from '../../rig/core/errors.ts';

/**
 * Uncertainty budget of one measurement (GUM type B terms): each contribution is a half-width or an
 * expanded figure with a distribution; dividing by the distribution's divisor gives its standard
 * uncertainty, the root sum of squares the combined standard uncertainty u, and U = k·u.
 */
export type Distribution = 'normal' | 'rectangular' | 'triangular' | 'u-shaped';

/** Default divisors. `normal` assumes the value already is a standard uncertainty; give `divisor`
 * (the certificate's k) when it is an expanded one. */
export const DIVISORS: Readonly<Record<Distribution, number>> = {
  normal: 1,
  rectangular: Math.sqrt(3),
  triangular: Math.sqrt(6),
  'u-shaped': Math.sqrt(2),
};

/** A contribution as declared before measuring; its value arrives with the measurement. */
export interface ContributionSpec {
  name: string;
  distribution: Distribution;
  divisor?: number;
}

export interface UncertaintySpec {
  /** Coverage factor for U (default 2, ≈95 % for a normal distribution). */
  k?: number;
  contributions: ContributionSpec[];
}

export interface Contribution {
  name: string;
  distribution: Distribution;
  divisor: number;
  /** As given (half-width, or expanded value). */
  value: number;
  /** Standard uncertainty of this term: value / divisor. */
  u: number;
}

export interface CombinedUncertainty {
  contributions: Contribution[];
  /** Combined standard uncertainty. */
  u: number;
  k: number;
  /** Expanded uncertainty k·u. */
  U: number;
}

export const DEFAULT_COVERAGE_FACTOR = 2;

/** Combine the declared terms with their values; a declared term without a value, or a value for an
 * undeclared term, is a suite bug and throws. */
export function combineUncertainty(spec: UncertaintySpec | undefined, values: Readonly<Record<string, number>>, where: string): CombinedUncertainty {
  const k = spec?.k ?? DEFAULT_COVERAGE_FACTOR;
  const declared = spec?.contributions ?? [];
  for (const name of Object.keys(values)) {
    if (!declared.some((c) => c.name === name)) throw new ConfigError(`${where}: uncertainty contribution '${name}' was not declared`, { step: where });
  }
  const contributions = declared.map((c): Contribution => {
    const value = values[c.name];
    if (value === undefined) throw new ConfigError(`${where}: declared uncertainty contribution '${c.name}' has no value`, { step: where });
    if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${where}: uncertainty contribution '${c.name}' is ${value}, not a finite value >= 0`, { step: where });
    const divisor = c.divisor ?? DIVISORS[c.distribution];
    return { name: c.name, distribution: c.distribution, divisor, value, u: value / divisor };
  });
  const u = Math.sqrt(contributions.reduce((s, c) => s + c.u * c.u, 0));
  return { contributions, u, k, U: k * u };
}
