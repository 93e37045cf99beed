import type { ResolvedLimits } from './limits.ts';

/** The metrological verdict of one value. */
export type Verdict = 'pass' | 'marginal' | 'fail';

/** What a marginal verdict does (plan data). */
/**
 * What a marginal result (value ± U straddles a limit) does. `retest-then-flag`: retest while attempts are
 * left, then accept with a flag — for points where the product limit is within a few U of zero (10 W,
 * 0.26 A), so scrapping every undecided unit would reject good ones and accepting silently would hide them.
 */
export type MarginalAction = 'retest' | 'fail' | 'pass-with-flag' | 'retest-then-flag';

/**
 * How the expanded uncertainty U enters the decision. `uncertainty` (guarded acceptance): accept only
 * if the whole interval value ± U lies inside the limits, reject only if it lies wholly outside,
 * otherwise marginal. `none` (simple acceptance): the value alone decides.
 */
export type GuardBand = 'uncertainty' | 'none';

/** What happens to the unit because of this value. */
export type Decision = 'accept' | 'accept-flagged' | 'retest' | 'reject';

export interface Judgement {
  verdict: Verdict;
  /** Why, in words (shown in reports). */
  reason: string;
}

/**
 * Judge `value` with expanded uncertainty U against resolved limits. For a symmetric tolerance this is
 * accept iff |value − nominal| + U ≤ tol, reject iff |value − nominal| − U ≥ tol.
 */
export function judge(value: number, U: number, limits: ResolvedLimits, o: { guardBand: GuardBand; uncertaintyTarget?: number }): Judgement {
  if (!Number.isFinite(value)) return { verdict: 'fail', reason: `value is ${value}` };
  const { low, high } = limits;
  const g = o.guardBand === 'uncertainty' ? U : 0;
  const accepted = (low === undefined || value - g >= low) && (high === undefined || value + g <= high);
  if (!accepted) {
    const rejected = (high !== undefined && value - g >= high) || (low !== undefined && value + g <= low);
    // With U = 0 every value is either accepted or rejected (at the limit itself it is accepted).
    if (rejected || g === 0) return { verdict: 'fail', reason: high !== undefined && value > high ? `above the high limit ${high}` : `below the low limit ${low}` };
    return { verdict: 'marginal', reason: `value ± U (${U.toPrecision(3)}) straddles a limit` };
  }
  if (o.uncertaintyTarget !== undefined && U > o.uncertaintyTarget) {
    return { verdict: 'marginal', reason: `U ${U.toPrecision(3)} exceeds the target ${o.uncertaintyTarget}` };
  }
  if ((limits.marginalLow !== undefined && value < limits.marginalLow) || (limits.marginalHigh !== undefined && value > limits.marginalHigh)) {
    return { verdict: 'marginal', reason: 'inside the marginal band' };
  }
  return { verdict: 'pass', reason: 'within limits' };
}

/** Apply the plan's marginal action. A retest needs an attempt left; without one it is a rejection. */
export function decide(verdict: Verdict, onMarginal: MarginalAction, attemptsLeft: number): Decision {
  if (verdict === 'pass') return 'accept';
  if (verdict === 'fail') return 'reject';
  if (onMarginal === 'pass-with-flag') return 'accept-flagged';
  if ((onMarginal === 'retest' || onMarginal === 'retest-then-flag') && attemptsLeft > 0) return 'retest';
  if (onMarginal === 'retest-then-flag') return 'accept-flagged';
  return 'reject';
}

/** Does this decision let the step pass? */
export function isAccepted(d: Decision): boolean {
  return d === 'accept' || d === 'accept-flagged';
}
