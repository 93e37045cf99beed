import { fileURLToPath } from 'node:url';
import { judgeFactors, OPENBEKEN_DEFAULT_FACTORS, type FrontEndDesign } from '../../suites/calibration-plausibility.ts';
import type { CalQuantity } from '../../suites/metrology/calibration.ts';
import { loadPlan } from '../../suites/plan/load-plan.ts';
import type { Bl0937Input, Bl0937Truth } from '../../sim/plug/bl0937/bl0937-chip.ts';
import { bl0937Defects } from '../../sim/plug/bl0937/defects.ts';
import { BL0937_NOMINAL_FRONT_END, drawFrontEnd, transferOf, type Bl0937FrontEnd } from '../../sim/plug/bl0937/front-end.ts';
import { loadSimTemplate } from '../../sim/plug/obk-template.ts';
import { BENCH_LOADS } from './metrology-jig.ts';
import { BENCH_CAL_LOAD, benchPlan } from './metrology-plan.ts';
import { runBenchUnit } from './metrology-unit.ts';

/**
 * Is a shunt 10 % off detectable? The rig sees a unit's front end only through its calibration
 * ratios. Relative to the design, with s, d, v the shunt, divider and reference over nominal, the
 * voltage channel gives 1/(d·v), the current channel s/v, and power s/(d·v²) = their product, so P
 * adds nothing: two observables for three parts. A shunt error is then the same as a reference
 * error wherever in-tolerance parts can make up the difference in both observables; nothing else
 * the rig measures separates them (as-found errors at other loads and the PF point scale with the
 * same factors, creep reads 0 W with no load). This measures the detection probability on drawn
 * units, through the rig's own calibrate suite and factor check, next to what the same units'
 * exact ratios allow.
 */

const PLANS = fileURLToPath(new URL('../../fixtures/plans', import.meta.url));
export const SHUNT_DEFECT = 'shunt-off-10';
/** A slack that only absorbs float rounding: the window of the tolerances alone (perfect measurement). */
const EXACT_SLACK_PCT = 0.01;

/** The front end the factory plan declares for its factor check. */
export function factoryFrontEnd(): FrontEndDesign {
  const cal = loadPlan('factory', PLANS).plan.suites.find((s) => s.suite === 'calibrate');
  const design = cal && 'frontEnd' in cal ? cal.frontEnd : undefined;
  if (!design) throw new Error('bench: the factory plan declares no calibrate frontEnd');
  return design;
}

/** The ratios a perfect calibration at `input` measures on a unit read with OpenBeken's defaults: true ÷ plug. */
function exactRatios(truth: Pick<Bl0937Truth, 'frequency'>, input: Bl0937Input): Record<CalQuantity, number> {
  const f = OPENBEKEN_DEFAULT_FACTORS;
  return {
    voltage: input.volts / (f.voltage * truth.frequency('voltage', input)),
    current: input.amps / (f.current * truth.frequency('current', input)),
    power: input.watts / (f.power * truth.frequency('power', input)),
  };
}

/** The same for the unit's parts alone (no nonlinearity): what the tolerances can and cannot tell. */
function linearRatios(fe: Bl0937FrontEnd): Record<CalQuantity, number> {
  const h = transferOf(fe);
  const f = OPENBEKEN_DEFAULT_FACTORS;
  return { voltage: 1 / (f.voltage * h.hzPerVolt), current: 1 / (f.current * h.hzPerAmp), power: 1 / (f.power * h.hzPerWatt) };
}

/**
 * Could a perfect measurement tell this unit's front end from one with every part in tolerance? (Its
 * transfer is outside the plan's window at float slack.) A unit it cannot is beyond any rig's reach.
 */
export function shuntSeparable(fe: Bl0937FrontEnd, design: FrontEndDesign = factoryFrontEnd()): boolean {
  return !judgeFactors(linearRatios(fe), { ...design, slackPct: EXACT_SLACK_PCT }).plausible;
}

/** The simulator's part spread (sim/plug/bl0937: each part uniform within ±5 %), which the plan declares too. */
const SIM_PART_TOLERANCE = 0.05;

/**
 * The detection ceiling of the shunt +10 % defect: the share of `n` front ends drawn as the simulator
 * draws them (parts within ±5 %, then the shunt +10 %) that a perfect measurement separates from
 * in-tolerance parts. Parts only, no rig run (milliseconds).
 */
export function shuntDetectionCeiling(n: number, design: FrontEndDesign = factoryFrontEnd()): { separable: number; n: number; tolerancePct: number } {
  if (Math.abs(design.partTolerancePct - 100 * SIM_PART_TOLERANCE) > 1e-9) throw new Error(`bench: the plan's part tolerance ±${design.partTolerancePct} % is not the simulator's ±${100 * SIM_PART_TOLERANCE} %`);
  let separable = 0;
  for (let seed = 1; seed <= n; seed++) if (shuntSeparable(drawFrontEnd(seed, SIM_PART_TOLERANCE, BL0937_NOMINAL_FRONT_END, bl0937Defects([SHUNT_DEFECT])), design)) separable++;
  return { separable, n, tolerancePct: design.partTolerancePct };
}

export interface ShuntUnit {
  seed: number;
  defective: boolean;
  /** Parts over nominal (shunt with the defect applied). */
  parts: { shunt: number; divider: number; vref: number };
  /** The rig's verdict: refused by the factor check, passed, or failed in another step (its reason). */
  rig: 'refused' | 'passed' | { failed: string };
  /** The plan's window on the unit's exact ratios (its nonlinearity included, no reference error or noise). */
  exactRefused: boolean;
  /** No front end with every part within tolerance has this unit's transfer (parts alone, window at float slack). */
  separable: boolean;
}

export interface ShuntDetection {
  design: FrontEndDesign;
  units: ShuntUnit[];
  wallMs: number;
}

/**
 * `n` units with the shunt defect and `n` without (same seeds), each through the rig's calibrate
 * suite at 2000 W with the factory plan's factor check, on its own virtual jig and clock.
 */
export async function measureShuntDetection(o: { n: number; seed: number; concurrency?: number; onUnit?: (u: ShuntUnit, done: number) => void }): Promise<ShuntDetection> {
  const wall0 = performance.now();
  const design = factoryFrontEnd();
  const plan = benchPlan({ frontEnd: design, reverify: false });
  const template = loadSimTemplate(fileURLToPath(new URL('../../fixtures/devices/rmc021.json', import.meta.url)));
  const cal = BENCH_LOADS.find((l) => l.name === BENCH_CAL_LOAD)!;
  const calInput = { volts: 230, amps: cal.watts / 230, watts: cal.watts };
  const jobs = Array.from({ length: 2 * o.n }, (_, k) => ({ seed: (o.seed * 1_000_003 + 7_000_000 + (k >> 1)) >>> 0, defective: k % 2 === 0 }));
  const units: ShuntUnit[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      let truth: Bl0937Truth | undefined;
      const r = await runBenchUnit({
        index: next,
        seed: job.seed,
        reference: 'wt310e',
        plan,
        template,
        calLoad: BENCH_CAL_LOAD,
        naiveBaseline: false,
        ...(job.defective ? { defects: [SHUNT_DEFECT] } : {}),
        onTruth: (t) => {
          truth = t;
        },
      });
      if (!truth) throw new Error('bench: no BL0937 truth for a shunt detection unit');
      const ratios = exactRatios(truth, calInput);
      const fe = truth.frontEnd;
      const reason = r.reason ?? '';
      const u: ShuntUnit = {
        seed: job.seed,
        defective: job.defective,
        parts: { shunt: fe.shuntOhms / design.shuntOhms, divider: fe.dividerRatio / design.dividerRatio, vref: fe.vrefVolts / design.vrefVolts },
        rig: r.verdict === 'pass' ? 'passed' : reason.startsWith('calibration factors within') ? 'refused' : { failed: reason },
        exactRefused: !judgeFactors(ratios, design).plausible,
        separable: shuntSeparable(fe, design),
      };
      units.push(u);
      o.onUnit?.(u, units.length);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 3 }, lane));
  units.sort((a, b) => a.seed - b.seed || Number(b.defective) - Number(a.defective));
  return { design, units, wallMs: performance.now() - wall0 };
}

/** Wilson score interval (95 %) of k successes in n. */
export function wilson95(k: number, n: number): [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.96;
  const p = k / n;
  const den = 1 + (z * z) / n;
  const mid = (p + (z * z) / (2 * n)) / den;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / den;
  return [Math.max(0, mid - half), Math.min(1, mid + half)];
}

/** The lines the detection table prints under its shunt row. */
export function shuntDetectionLines(d: ShuntDetection): string[] {
  const bad = d.units.filter((u) => u.defective);
  const good = d.units.filter((u) => !u.defective);
  const pct = (k: number, n: number): string => `${((100 * k) / Math.max(1, n)).toFixed(1)} %`;
  const refused = bad.filter((u) => u.rig === 'refused').length;
  const [lo, hi] = wilson95(refused, bad.length);
  const otherBad = bad.filter((u) => typeof u.rig === 'object');
  const goodRefused = good.filter((u) => u.rig === 'refused').length;
  const otherGood = good.filter((u) => typeof u.rig === 'object');
  const exact = bad.filter((u) => u.exactRefused).length;
  const separable = bad.filter((u) => u.separable).length;
  const agree = bad.filter((u) => (u.rig === 'refused') === u.exactRefused).length;
  const t = d.design.partTolerancePct;
  return [
    `shunt off 10 %, measured on ${bad.length} drawn units (and the same seeds without the defect), calibrate at 2000 W + the factory plan's factor check (±${t} % parts, slack ±${d.design.slackPct} %), WT310E-class reference:`,
    `  refused by the rig: ${refused} of ${bad.length} = ${pct(refused, bad.length)} (95 % CI ${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)} %); the same units' exact ratios: ${pct(exact, bad.length)} (rig agrees on ${agree} of ${bad.length}); failed in another step: ${otherBad.length}`,
    `  good units refused: ${goodRefused} of ${good.length}; good units failed in another step: ${otherGood.length}`,
    `  ceiling with a perfect measurement (the tolerances alone, no slack): ${separable} of ${bad.length} = ${pct(separable, bad.length)} separable; the rest have in-tolerance parts that give the same factors.`,
    `  why: the V factor sees divider × reference, the I factor reference ÷ shunt, and P = V × I adds nothing; a shunt 10 % high reads exactly like an in-tolerance`,
    `  unit with a higher shunt, a lower reference and a higher divider whenever such parts exist (the unit's own shunt or divider leaning low, its reference high);`,
    `  nothing else the rig measures separates them (as-found errors at other loads and the PF point scale with the same factors; creep reads 0 W at no load).`,
    `  The simulator draws each part uniformly within ±5 % (sim/plug/bl0937/front-end.ts), as the plan declares (±${t} %): the window is not tightened to catch more.`,
  ];
}
