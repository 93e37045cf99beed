import { accuracyBand, type AccuracySpec } from '../../rig/meter/reference-meter.ts';
import type { UncertaintySpec } from '../model/uncertainty.ts';

/**
 * The uncertainty budget of comparing the plug's averaged 1 s windows with the reference meter, as
 * relative half-widths in percent of the reading. Every term is a bound (rectangular) except the
 * count quantization: a window's count is floor(phase at its end) − floor(phase at its start), so
 * its error is the difference of the two phase fractions, each uniform and independent of the other:
 * triangular within ±1 count (standard deviation 1/√6 count, not the 1/√3 a rectangular ±1 gives).
 */
export const ERROR_BUDGET: UncertaintySpec = {
  k: 2,
  contributions: [
    { name: 'reference accuracy', distribution: 'rectangular' },
    { name: 'reference resolution', distribution: 'rectangular' },
    { name: 'pulse quantization (±1 count)', distribution: 'triangular' },
    { name: 'BL0937 jitter', distribution: 'rectangular' },
    { name: 'integration-interval mismatch', distribution: 'rectangular' },
  ],
};

/** BL0937 datasheet: CF jitter < ±0.2 % per window at 300 mA (openbeken-bl0937.md). */
export const BL0937_JITTER_PCT = 0.2;

/**
 * OpenBeken's default factors (value per count per second): the pulse weight a unit has within its
 * front-end tolerance, so count ≈ value / weight is good to a few percent — enough for a budget term.
 */
export const NOMINAL_PULSE_WEIGHT = { volts: 0.13253012048, amps: 0.0118577075, watts: 1.5 } as const;

export type MeteredQuantity = keyof typeof NOMINAL_PULSE_WEIGHT;

export interface WindowPlan {
  /** Windows averaged. */
  windows: number;
  /** Windows whose counts are independent for this quantity (V and I share CF1: half the windows each). */
  distinct: number;
  /** Whether the windows are consecutive (the ±1 count of each then telescopes over the run). */
  consecutive: boolean;
  /** Consecutive runs the windows came in (a retest adds one): each run's ends carry one ±1 count. */
  runs?: number;
}

export interface ErrorTerms {
  'reference accuracy': number;
  'reference resolution': number;
  'pulse quantization (±1 count)': number;
  'BL0937 jitter': number;
  'integration-interval mismatch': number;
}

/** Standard uncertainty (k=1) of the terms, combined (percent), with the budget's divisors. */
export function combinedPct(t: ErrorTerms): number {
  return Math.sqrt(
    ERROR_BUDGET.contributions.reduce((s, c) => s + (t[c.name as keyof ErrorTerms] / (c.distribution === 'triangular' ? Math.sqrt(6) : Math.sqrt(3))) ** 2, 0),
  );
}

/**
 * The terms for one quantity at one point, in percent of the reading.
 * - reference: its stated band at the mean reading; the band's absolute term is its resolution.
 * - quantization: ±1 count of n ≈ value/weight counts per window; over consecutive windows only the
 *   run's two ends count (±1 over N·n; r runs add r independent ±1), otherwise each window's ±1
 *   averages down by √N.
 * - jitter: ±0.2 % per window, averaged down by √N.
 * - mismatch: the reference's and the plug's 1 s intervals are offset by up to the poll latency; the
 *   mains moves the value by `driftPctPerWindow` per window, so the offset fraction `offsetFraction`
 *   of it is the half-width per pair, averaged down by √N.
 */
export function errorTerms(o: {
  quantity: MeteredQuantity;
  value: number;
  accuracy: AccuracySpec;
  range?: number;
  plan: WindowPlan;
  driftPctPerWindow: number;
  offsetFraction: number;
}): ErrorTerms {
  const v = Math.abs(o.value);
  if (!(v > 0)) throw new RangeError(`errorTerms: ${o.quantity} value ${o.value} is not positive`);
  const band = accuracyBand(o.accuracy, v, o.range);
  const resolution = o.accuracy.absolute ?? 0;
  const counts = Math.max(1, v / NOMINAL_PULSE_WEIGHT[o.quantity]);
  const n = Math.max(1, o.plan.distinct);
  const quant = o.plan.consecutive ? (100 * Math.sqrt(o.plan.runs ?? 1)) / (counts * n) : 100 / (counts * Math.sqrt(n));
  return {
    'reference accuracy': (100 * (band - resolution)) / v,
    'reference resolution': (100 * resolution) / v,
    'pulse quantization (±1 count)': quant,
    'BL0937 jitter': BL0937_JITTER_PCT / Math.sqrt(n),
    'integration-interval mismatch': (o.driftPctPerWindow * o.offsetFraction) / Math.sqrt(n),
  };
}

/**
 * The budget of the power factor the plug shows (PF = P/(V·I) per window, OpenBeken's
 * BL_ProcessUpdate) against the reference's. In PF units, not percent. The plug's PF carries the
 * relative errors of all three of its readings: each one's ±1 count (triangular, as in
 * ERROR_BUDGET: a window's count error is the difference of two uniform phase fractions) and its
 * BL0937 jitter, averaged over the windows that counted it (V and I: every other window; each I or
 * V count is shown in two windows, the second time stale, so it averages down by its own count,
 * not by every window's). P's counts are taken as independent per window (they telescope only
 * within the pairs that share one I count: conservative). The load's PF does not move with the
 * mains drift, so the integration-interval mismatch adds nothing measurable.
 */
export const PF_BUDGET: UncertaintySpec = {
  k: 2,
  contributions: [
    { name: 'reference accuracy', distribution: 'rectangular' },
    { name: 'pulse quantization (±1 count)', distribution: 'triangular' },
    { name: 'BL0937 jitter', distribution: 'rectangular' },
  ],
};

export interface PfTerms {
  'reference accuracy': number;
  'pulse quantization (±1 count)': number;
  'BL0937 jitter': number;
}

/**
 * PF budget terms (PF units). `pf`: the reference's PF; `refBand`: its stated accuracy there;
 * `plug`: the plug's mean V, I, P (for their counts per window); `windows`: windows averaged (each
 * counted P), `vWindows` / `iWindows`: how many distinct V and I counts they show.
 */
export function pfTerms(o: { pf: number; refBand: number; plug: { volts: number; amps: number; watts: number }; windows: number; vWindows: number; iWindows: number }): PfTerms {
  const counts = (q: MeteredQuantity, value: number): number => Math.max(1, Math.abs(value) / NOMINAL_PULSE_WEIGHT[q]);
  const n = Math.max(1, o.windows);
  const nV = Math.max(1, o.vWindows);
  const nI = Math.max(1, o.iWindows);
  const quant = Math.sqrt(1 / (counts('watts', o.plug.watts) ** 2 * n) + 1 / (counts('volts', o.plug.volts) ** 2 * nV) + 1 / (counts('amps', o.plug.amps) ** 2 * nI));
  const jitter = (BL0937_JITTER_PCT / 100) * Math.sqrt(1 / n + 1 / nV + 1 / nI);
  return { 'reference accuracy': o.refBand, 'pulse quantization (±1 count)': Math.abs(o.pf) * quant, 'BL0937 jitter': Math.abs(o.pf) * jitter };
}

/** Standard uncertainty (k=1) of the PF terms, combined (PF units). */
export function combinedPf(t: PfTerms): number {
  return Math.sqrt(PF_BUDGET.contributions.reduce((s, c) => s + (t[c.name as keyof PfTerms] / (c.distribution === 'triangular' ? Math.sqrt(6) : Math.sqrt(3))) ** 2, 0));
}

/**
 * Distinct windows for a quantity among N polled: P every window, V and I every other one (at
 * best half rounded up; `counted`: how many of them actually counted it, when known).
 */
export function windowPlan(quantity: MeteredQuantity, windows: number, consecutive: boolean, runs = 1, counted?: number): WindowPlan {
  const distinct = quantity === 'watts' ? windows : (counted ?? Math.ceil(windows / 2));
  // V and I alternate on CF1: their windows are never adjacent, so their counts do not telescope.
  return { windows, distinct, consecutive: consecutive && quantity === 'watts', runs };
}

/**
 * Fewest windows (between min and max) whose expanded uncertainty U = 2·u meets `targetPct`; max
 * when none does (the verdict then says U is above target).
 */
export function windowsNeeded(o: {
  targetPct: number | undefined;
  min: number;
  max: number;
  terms: (windows: number) => ErrorTerms;
}): number {
  if (o.targetPct === undefined) return o.min;
  for (let n = o.min; n <= o.max; n++) if (2 * combinedPct(o.terms(n)) <= o.targetPct) return n;
  return o.max;
}

/**
 * Windows to plan for one quantity when the plan states no uncertainty target: the fewest for U to
 * take at most PLANNING_SHARE of the tolerance (so a unit near nominal is accepted with the guard
 * band); when `max` cannot get there, `max` if it at least brings U under the tolerance (a unit
 * near nominal can still be accepted), else `min` (no count makes the limit decidable: the guard
 * band leaves it marginal either way, and more windows would only cost time).
 */
export const PLANNING_SHARE = 0.6;

export function plannedWindows(o: {
  targetPct: number | undefined;
  tolerancePct: number | undefined;
  min: number;
  max: number;
  terms: (windows: number) => ErrorTerms;
  /** A retest of a marginal value: U must shrink below the distance from |value| to the tolerance. */
  marginalValuePct?: number;
}): number {
  const U = (n: number): number => 2 * combinedPct(o.terms(n));
  if (o.marginalValuePct !== undefined && o.tolerancePct !== undefined) {
    const margin = o.tolerancePct - Math.abs(o.marginalValuePct);
    // Inside the limit by less than even `max` windows can resolve (or outside it): no count decides it.
    if (!(margin > 0) || U(o.max) > margin) return o.min;
    return windowsNeeded({ targetPct: margin, min: o.min, max: o.max, terms: o.terms });
  }
  if (o.targetPct !== undefined) return windowsNeeded({ targetPct: o.targetPct, min: o.min, max: o.max, terms: o.terms });
  if (o.tolerancePct === undefined) return o.min;
  const n = windowsNeeded({ targetPct: PLANNING_SHARE * o.tolerancePct, min: o.min, max: o.max, terms: o.terms });
  if (U(n) <= PLANNING_SHARE * o.tolerancePct) return n;
  return U(o.max) < o.tolerancePct ? o.max : o.min;
}
