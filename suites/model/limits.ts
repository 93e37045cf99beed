import { ConfigError } from '../../rig/core/errors.ts';

/**
 * Limits as a plan writes them: an interval (low and/or high), or a nominal with a tolerance, or
 * both (the interval then clips nominal ± tolerance, e.g. a power factor never above 1). A nominal
 * the plan leaves out is supplied by the suite when it measures (the jig's mains voltage, a load's
 * rating). The marginal band is a strip inside each limit where an accepted value is flagged.
 */
export interface LimitSpec {
  low?: number;
  high?: number;
  nominal?: number;
  /** ± absolute, in the measurement's unit. Added to tolerancePct when both are given. */
  tolerance?: number;
  /** ± percent of |nominal|. */
  tolerancePct?: number;
  /** Width of the marginal band inside each limit, in the measurement's unit. */
  marginal?: number;
  /** Width of the marginal band as a percent of the span low..high (of |limit| when one-sided). */
  marginalPct?: number;
}

/** Limits after the nominal is known: what a verdict is judged against, stored with the result. */
export interface ResolvedLimits {
  low?: number;
  high?: number;
  nominal?: number;
  /** Accepted values below this (above low) are marginal. */
  marginalLow?: number;
  /** Accepted values above this (below high) are marginal. */
  marginalHigh?: number;
}

/** Turn plan limits into numbers. `nominal` is the suite's value when the plan gives none. */
export function resolveLimits(spec: LimitSpec, where: string, nominal?: number): ResolvedLimits {
  const nom = spec.nominal ?? nominal;
  let low = spec.low;
  let high = spec.high;
  if (spec.tolerance !== undefined || spec.tolerancePct !== undefined) {
    if (nom === undefined || !Number.isFinite(nom)) throw new ConfigError(`${where}: a tolerance needs a nominal value (none in the plan, none given by the suite)`, { step: where });
    const tol = (spec.tolerance ?? 0) + (Math.abs(nom) * (spec.tolerancePct ?? 0)) / 100;
    low = low === undefined ? nom - tol : Math.max(low, nom - tol);
    high = high === undefined ? nom + tol : Math.min(high, nom + tol);
  }
  if (low === undefined && high === undefined) throw new ConfigError(`${where}: limits give neither low, high nor a tolerance`, { step: where });
  if (low !== undefined && high !== undefined && low > high) throw new ConfigError(`${where}: low limit ${low} is above high limit ${high}`, { step: where });
  const out: ResolvedLimits = { ...(low !== undefined ? { low } : {}), ...(high !== undefined ? { high } : {}), ...(nom !== undefined ? { nominal: nom } : {}) };
  const span = low !== undefined && high !== undefined ? high - low : Math.abs((low ?? high)!);
  const band = spec.marginal ?? (spec.marginalPct !== undefined ? (span * spec.marginalPct) / 100 : undefined);
  if (band !== undefined && band > 0) {
    if (low !== undefined) out.marginalLow = low + band;
    if (high !== undefined) out.marginalHigh = high - band;
  }
  return out;
}
