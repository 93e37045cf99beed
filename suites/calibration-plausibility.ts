import { ConfigError } from '../rig/core/errors.ts';
import type { CalQuantity } from './metrology/calibration.ts';
import { stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import type { Step } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

type CalibrateEntry = Extract<SuiteEntry, { suite: 'calibrate' }>;
export type FrontEndDesign = NonNullable<CalibrateEntry['frontEnd']>;

/**
 * BL0937 datasheet transfer constants (openbeken-bl0937.md §3.2): F_CF1 (SEL high) = 15397·V(V)/Vref,
 * F_CF1 (SEL low) = 94638·V(I)/Vref, F_CF = 1721506·V(V)·V(I)/Vref², with V(V) = mains / divider and
 * V(I) = current × shunt.
 */
const CF1_VOLTAGE = 15397;
const CF1_CURRENT = 94638;
const CF_POWER = 1721506;

/** OpenBeken's factors while none is stored (openbeken-http.md §5.2): what a freshly provisioned plug applies. */
export const OPENBEKEN_DEFAULT_FACTORS: Readonly<Record<CalQuantity, number>> = { voltage: 0.13253012048, current: 0.0118577075, power: 1.5 };

/** Pulses per second per volt, amp and watt of the design's nominal parts. */
function nominalTransfer(d: FrontEndDesign): Record<CalQuantity, number> {
  return {
    voltage: CF1_VOLTAGE / (d.dividerRatio * d.vrefVolts),
    current: (CF1_CURRENT * d.shuntOhms) / d.vrefVolts,
    power: (CF_POWER * d.shuntOhms) / (d.dividerRatio * d.vrefVolts ** 2),
  };
}

export interface FactorVerdict {
  plausible: boolean;
  /** The unit's transfer relative to the nominal design, per quantity (1 = nominal parts). */
  relative: Record<CalQuantity, number>;
  /** The reference-voltage values that explain V and I with every part in tolerance ([lo, hi]; lo > hi: none). */
  vrefRange: [number, number];
  /** Why not, in words (empty when plausible). */
  reasons: string[];
}

/**
 * Could a front end whose shunt, divider and reference are each within ±tolerance of the design
 * need these calibration ratios (reference ÷ plug reading, taken with `asFound` factors applied)?
 *
 * The plug reads factor × pulse rate, so a ratio r says the unit's pulse rate per unit of the
 * quantity is 1/(factor·r); relative to the nominal design that is tV = 1/(d·v) for voltage,
 * tI = s/v for current and tP = s/(d·v²) = tI·tV for power (s, d, v: shunt, divider and reference
 * over nominal). The ratios are plausible when one v in tolerance gives s and d in tolerance for
 * both tV and tI, and tP agrees with tI·tV, each within ±slack (the calibration's own uncertainty
 * and the chip's nonlinearity). The window comes from the tolerances, never from a defect; it
 * cannot catch a part error that in-tolerance parts can mimic (a shunt 10 % high on a unit whose
 * other parts lean the other way reads like a good unit).
 */
export function judgeFactors(ratios: Record<CalQuantity, number>, design: FrontEndDesign, asFound: Record<CalQuantity, number> = OPENBEKEN_DEFAULT_FACTORS): FactorVerdict {
  const nominal = nominalTransfer(design);
  const rel = (q: CalQuantity): number => 1 / (asFound[q] * ratios[q] * nominal[q]);
  const relative = { voltage: rel('voltage'), current: rel('current'), power: rel('power') };
  const T = design.partTolerancePct / 100;
  const slack = design.slackPct / 100;
  const lo = (x: number): number => x * (1 - slack);
  const hi = (x: number): number => x * (1 + slack);
  const { voltage: tV, current: tI, power: tP } = relative;
  // v from the reference's own tolerance, from s = tI·v in tolerance, and from d = 1/(tV·v) in tolerance.
  const vLo = Math.max(1 - T, (1 - T) / hi(tI), 1 / ((1 + T) * hi(tV)));
  const vHi = Math.min(1 + T, (1 + T) / lo(tI), 1 / ((1 - T) * lo(tV)));
  const reasons: string[] = [];
  const pct = (x: number): string => `${((x - 1) * 100).toFixed(1)} %`;
  if (vLo > vHi) {
    reasons.push(`voltage transfer ${pct(tV)} and current transfer ${pct(tI)} of nominal: no shunt, divider and reference each within ±${design.partTolerancePct} % give both`);
  }
  if (lo(tP) > hi(tI) * hi(tV) || hi(tP) < lo(tI) * lo(tV)) {
    reasons.push(`power transfer ${pct(tP)} of nominal disagrees with voltage × current (${pct(tI * tV)}) beyond ±${design.slackPct} %`);
  }
  return { plausible: reasons.length === 0, relative, vrefRange: [vLo, vHi], reasons };
}

/**
 * Adds, right after the calibrate step, the check that its factors are ones an in-tolerance front end
 * can need (plan `frontEnd`); a factor outside that window means a defective front end, however well
 * calibration would hide it. Without `frontEnd` in the plan the steps are returned as they are.
 */
export function withFactorPlausibility(steps: Step[], entry: CalibrateEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const design = entry.frontEnd;
  if (!design) return steps;
  const at = steps.findIndex((s) => /^calibrate at /.test(s.name));
  if (at < 0) throw new ConfigError('calibrate suite: no calibrate step to check the factors of', { slot: hw.spec.id, step: 'plan' });
  const calibrate = steps[at]!;
  let ratios: Record<CalQuantity, number> | undefined;
  const wrapped: Step = {
    ...calibrate,
    run: async (ctx) => {
      ratios = undefined;
      const out = await calibrate.run(ctx);
      ratios = (out as { ratios?: Record<CalQuantity, number> } | undefined)?.ratios;
      return out;
    },
  };
  const check: Step = {
    name: `calibration factors within what ±${design.partTolerancePct} % front-end parts can need`,
    ...stepPolicy(entry, defaults),
    retries: 0,
    run: async (ctx) => {
      if (!ratios) throw new ConfigError('the calibrate step returned no correction ratios to judge', { slot: hw.spec.id, step: 'calibrate' });
      const v = judgeFactors(ratios, design);
      const rel = Object.fromEntries(Object.entries(v.relative).map(([q, x]) => [q, Number(((x - 1) * 100).toFixed(3))]));
      ctx.check(`factors a front end with every part within ±${design.partTolerancePct} % can need (${v.reasons.join('; ') || 'yes'})`, v.plausible, {
        ratios,
        transferVsNominalPct: rel,
        vrefRange: v.vrefRange,
      });
      return { ratios, transferVsNominalPct: rel, plausible: v.plausible };
    },
  };
  return [...steps.slice(0, at), wrapped, check, ...steps.slice(at + 1)];
}
