import { percentile } from './stats.ts';

/**
 * Scoring of the metrology bench: order statistics of error magnitudes, the rig's decisions against
 * the simulator's truth, and how often the stated U covers the rig's actual error. Pure functions
 * over plain records, so they are unit-tested on hand-made data.
 */

export interface MagnitudeSummary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of |x| (NaN samples are left out). */
export function magnitudes(xs: readonly number[]): MagnitudeSummary {
  const a = xs.filter((x) => !Number.isNaN(x)).map(Math.abs);
  return { n: a.length, p50: percentile(a, 50), p95: percentile(a, 95), p99: percentile(a, 99), max: a.length ? Math.max(...a) : NaN };
}

/** One judged measurement of a unit: the rig's verdict, its limits, the true value of the same quantity. */
export interface JudgedTruth {
  verdict: 'pass' | 'marginal' | 'fail';
  low?: number;
  high?: number;
  truth: number;
}

/** The unit truly meets the limit (inclusive, as the rig accepts a value at the limit). */
export function trulyWithin(m: Pick<JudgedTruth, 'low' | 'high' | 'truth'>): boolean {
  return (m.low === undefined || m.truth >= m.low) && (m.high === undefined || m.truth <= m.high);
}

export interface UnitOutcome {
  /** The rig's final verdict on the unit. */
  verdict: 'pass' | 'fail';
  /** Some step was repeated after a marginal result. */
  retested: boolean;
  /** Every measurement the rig judged, with its truth (the last attempt of each step). */
  measurements: readonly JudgedTruth[];
  /** A measurement was not the reason the unit failed (a step error, a timeout). */
  failedOtherwise?: boolean;
}

export interface DecisionTable {
  units: number;
  /** Units truly within every limit the rig judged. */
  good: number;
  bad: number;
  trueAccept: number;
  falseAccept: number;
  /** Rejected: some value − U lay outside a limit (non-conformance proven), or a step failed otherwise. */
  trueReject: number;
  falseReject: number;
  /** Neither proven: the unit ended with a value ± U straddling a limit after its retest (not accepted). */
  marginalGood: number;
  marginalBad: number;
  /** Units with at least one retest after a marginal result. */
  retested: number;
  /** Units that failed for a reason other than a measurement (counted as rejects). */
  otherFailures: number;
  /** falseAccept / units, falseReject / good, (falseReject + marginalGood) / good (fractions). */
  falseAcceptRate: number;
  falseRejectRate: number;
  goodNotAcceptedRate: number;
}

/** How the rig ended with a unit: accepted, rejected (a fail verdict or another failure), or marginal to the end. */
export function rigOutcome(u: UnitOutcome): 'accept' | 'reject' | 'marginal' {
  if (u.verdict === 'pass') return 'accept';
  if (u.failedOtherwise || u.measurements.some((m) => m.verdict === 'fail')) return 'reject';
  return 'marginal';
}

export function decisionTable(units: readonly UnitOutcome[]): DecisionTable {
  const t = { good: 0, ta: 0, fa: 0, tr: 0, fr: 0, mg: 0, mb: 0, retested: 0, other: 0 };
  for (const u of units) {
    const isGood = u.measurements.every(trulyWithin);
    const o = rigOutcome(u);
    if (isGood) t.good++;
    if (u.retested) t.retested++;
    if (u.failedOtherwise) t.other++;
    if (o === 'accept') isGood ? t.ta++ : t.fa++;
    else if (o === 'reject') isGood ? t.fr++ : t.tr++;
    else isGood ? t.mg++ : t.mb++;
  }
  const n = units.length;
  return {
    units: n,
    good: t.good,
    bad: n - t.good,
    trueAccept: t.ta,
    falseAccept: t.fa,
    trueReject: t.tr,
    falseReject: t.fr,
    marginalGood: t.mg,
    marginalBad: t.mb,
    retested: t.retested,
    otherFailures: t.other,
    falseAcceptRate: n ? t.fa / n : NaN,
    falseRejectRate: t.good ? t.fr / t.good : NaN,
    goodNotAcceptedRate: t.good ? (t.fr + t.mg) / t.good : NaN,
  };
}

/**
 * What the rig should have measured for a relative error: it compares the plug with the reference,
 * so its error is (1 + unit's true error) / (1 + reference's true error) − 1, in percent.
 */
export function expectedRigErrorPct(unitTrue: number, referenceTrue: number): number {
  return 100 * ((1 + unitTrue) / (1 + referenceTrue) - 1);
}

/** Share of measurements whose stated U (k=2) covers the distance between the rig's value and the expected one. */
export function coverage(samples: ReadonlyArray<{ value: number; expected: number; U: number }>): { n: number; covered: number; share: number } {
  const n = samples.length;
  const covered = samples.filter((s) => Math.abs(s.value - s.expected) <= s.U).length;
  return { n, covered, share: n ? covered / n : NaN };
}

/**
 * Which units carry the injected metering fault: exactly round(share·n) of them, spread by a
 * seeded shuffle (Fisher–Yates), so a run of n units always has the same number of faulty ones.
 */
export function faultyUnits(n: number, share: number, rnd: () => number): Set<number> {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return new Set(idx.slice(0, Math.round(share * n)));
}
