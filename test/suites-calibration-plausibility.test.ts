import t from 'tap';
import { judgeFactors, OPENBEKEN_DEFAULT_FACTORS } from '../suites/calibration-plausibility.ts';
import { BL0937_NOMINAL_FRONT_END, drawFrontEnd, transferOf, type Bl0937FrontEnd } from '../sim/plug/bl0937/front-end.ts';

/**
 * The factor window on its own: every front end the simulator draws within ±5 % parts is plausible,
 * part errors beyond what in-tolerance parts can mimic are not, and the window is the tolerances'
 * (the shunt-10 % detection rate is what the overlap with good parts allows, not 100 %).
 */
const DESIGN = { shuntOhms: 0.001, dividerRatio: 1675, vrefVolts: 1.218, partTolerancePct: 5, slackPct: 1 };
/** The ratios calibration measures on a linear front end read with OpenBeken's defaults: true / read. */
function ratiosOf(fe: Bl0937FrontEnd): { voltage: number; current: number; power: number } {
  const h = transferOf(fe);
  const f = OPENBEKEN_DEFAULT_FACTORS;
  return { voltage: 1 / (f.voltage * h.hzPerVolt), current: 1 / (f.current * h.hzPerAmp), power: 1 / (f.power * h.hzPerWatt) };
}

t.test('nominal parts read as nominal; corners of the tolerance box are still plausible', async (t) => {
  const v = judgeFactors(ratiosOf(BL0937_NOMINAL_FRONT_END), DESIGN);
  t.ok(v.plausible);
  for (const k of ['voltage', 'current', 'power'] as const) t.ok(Math.abs(v.relative[k] - 1) < 1e-9, `${k} transfer nominal`);
  const n = BL0937_NOMINAL_FRONT_END;
  for (const [s, d, r] of [[1.05, 1.05, 0.95], [0.95, 0.95, 1.05], [1.05, 0.95, 0.95], [0.95, 1.05, 1.05]]) {
    t.ok(judgeFactors(ratiosOf({ shuntOhms: n.shuntOhms * s!, dividerRatio: n.dividerRatio * d!, vrefVolts: n.vrefVolts * r! }), DESIGN).plausible, `corner ${s}/${d}/${r}`);
  }
});

t.test('5000 drawn good units: none refused; shunt +10 % and divider -20 %: refused where good parts cannot mimic them', async (t) => {
  let refusedGood = 0;
  let shuntCaught = 0;
  let dividerCaught = 0;
  const N = 5000;
  for (let seed = 1; seed <= N; seed++) {
    if (!judgeFactors(ratiosOf(drawFrontEnd(seed, 0.05, BL0937_NOMINAL_FRONT_END)), DESIGN).plausible) refusedGood++;
    if (!judgeFactors(ratiosOf(drawFrontEnd(seed, 0.05, BL0937_NOMINAL_FRONT_END, { shuntError: 0.1 })), DESIGN).plausible) shuntCaught++;
    if (!judgeFactors(ratiosOf(drawFrontEnd(seed, 0.05, BL0937_NOMINAL_FRONT_END, { dividerError: -0.2 })), DESIGN).plausible) dividerCaught++;
  }
  t.equal(refusedGood, 0, 'no good unit refused');
  t.comment(`shunt +10 %: ${shuntCaught} of ${N} refused; divider -20 %: ${dividerCaught} of ${N}`);
  t.ok(shuntCaught / N > 0.4 && shuntCaught / N < 0.6, `shunt +10 %: about half refused (${((100 * shuntCaught) / N).toFixed(1)} %): the rest lean on parts that lean the other way`);
  t.equal(dividerCaught, N, 'divider -20 %: always refused (beyond anything ±5 % parts can give)');
  const wide = judgeFactors(ratiosOf(drawFrontEnd(3, 0.05, BL0937_NOMINAL_FRONT_END, { shuntError: 0.1 })), { ...DESIGN, partTolerancePct: 10 });
  t.ok(wide.plausible, 'the window follows the stated tolerance: with ±10 % parts a 10 % shunt error is in range');
});

t.test('power that disagrees with voltage × current is refused', async (t) => {
  const r = ratiosOf(BL0937_NOMINAL_FRONT_END);
  const v = judgeFactors({ ...r, power: r.power * 1.05 }, DESIGN);
  t.notOk(v.plausible);
  t.match(v.reasons.join('; '), /power transfer .* disagrees with voltage × current/);
});
