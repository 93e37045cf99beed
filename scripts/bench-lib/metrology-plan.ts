import { loadPlan, parsePlan } from '../../suites/plan/load-plan.ts';
import type { Plan } from '../../suites/plan/schema.ts';
import type { FrontEndDesign } from '../../suites/calibration-plausibility.ts';

const PLANS = new URL('../../fixtures/plans', import.meta.url).pathname;

/**
 * The current limit where OpenBeken's counts cannot verify ±1 %: at 0.26 A (60 W) a current window
 * holds ~20 CF1 counts and at 0.43 A (60 W, PF 0.6) ~37, and only every other window counts
 * current, so ±1 count is 5 % / 2.7 % per window; the rig judges I there within these tolerances
 * and ±1 % at 500 W and 2000 W (the bench prints this).
 */
export const LOW_CURRENT_TOLERANCE_PCT = { R60: 5, M60: 3 } as const;

/** The bench's calibration point: the 2000 W load (the most counts per window). */
export const BENCH_CAL_LOAD = 'R2000';

/**
 * The plan the bench runs, built in code from the factory plan (its device, defaults and decision
 * policy): the calibrate suite at 2000 W, re-verified at no load (creep), 10 W, 60 W, 500 W and the
 * inductive 60 W with the default product limits.
 */
/**
 * Windows averaged at the calibration point. The random part of the P ratio's uncertainty at
 * 2000 W (±0.2 % jitter per window, ±1 count of ~1300) over N windows is U(k=2) ≈ 2·0.2/√(3N):
 * 0.082 % at 8, 0.087 % at 7, 0.094 % at 6 — seven meet the 0.1 % transfer target with room; an
 * eighth window buys nothing the target asks for and costs a second per unit.
 */
export const BENCH_CAL_WINDOWS = 7;

/**
 * `frontEnd`: add the plan's factor plausibility check after calibrating (the factory plan's front
 * end); `reverify: false`: calibrate only (the shunt detection run needs no verification points).
 */
export function benchPlan(o: { windows?: number; frontEnd?: FrontEndDesign; reverify?: boolean } = {}): Plan {
  const factory = loadPlan('factory', PLANS).plan;
  return parsePlan(
    {
      schema: 'plugrig.plan/1',
      name: 'bench-metrology',
      description: 'metrology bench: calibrate at 2000 W, re-verify creep, 10 W, 60 W, 500 W, 60 W PF 0.6',
      device: factory.device,
      defaults: factory.defaults,
      suites: [
        {
          suite: 'calibrate',
          retries: 1,
          load: BENCH_CAL_LOAD,
          windows: o.windows ?? BENCH_CAL_WINDOWS,
          ...(o.frontEnd ? { frontEnd: o.frontEnd } : {}),
          reverify: o.reverify === false ? [] : [
            { load: 'none' },
            { load: 'R10', limits: { powerErrorPct: { nominal: 0, tolerance: 3 } } },
            { load: 'R60', limits: { currentErrorPct: { nominal: 0, tolerance: LOW_CURRENT_TOLERANCE_PCT.R60 } } },
            { load: 'R500' },
            { load: 'M60', limits: { currentErrorPct: { nominal: 0, tolerance: LOW_CURRENT_TOLERANCE_PCT.M60 } } },
          ],
          limits: {
            voltageErrorPct: { nominal: 0, tolerance: 0.5 },
            currentErrorPct: { nominal: 0, tolerance: 1 },
            powerErrorPct: { nominal: 0, tolerance: 1 },
            pfError: { nominal: 0, tolerance: 0.02 },
            creepW: { high: 1 },
          },
        },
      ],
    },
    'bench-metrology (built from the factory plan)',
  );
}
