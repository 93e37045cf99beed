import t from 'tap';
import { measureShuntDetection, shuntDetectionLines, wilson95, type ShuntDetection, type ShuntUnit } from '../scripts/bench-lib/shunt-detection.ts';

/**
 * The shunt detection run of bench-defects: drawn units through the rig's calibrate suite and the
 * factory plan's factor check. A unit whose parts no in-tolerance front end can mimic is refused by
 * the rig, its twin without the defect passes, and the table counts what the units say.
 */

t.test('two drawn shunt units and their good twins through calibrate + factor check', async (t) => {
  const d = await measureShuntDetection({ n: 2, seed: 1, concurrency: 4 });
  t.equal(d.units.length, 4);
  t.equal(d.design.partTolerancePct, 5, "the factory plan's declared tolerance");
  for (const u of d.units.filter((x) => !x.defective)) {
    t.equal(u.rig, 'passed', `good unit ${u.seed} passes (parts ${JSON.stringify(u.parts)})`);
    t.notOk(u.exactRefused, `good unit ${u.seed}: its exact ratios are in the window`);
    t.notOk(u.separable, `good unit ${u.seed}: in-tolerance parts are never separable`);
    for (const k of ['shunt', 'divider', 'vref'] as const) t.ok(Math.abs(u.parts[k] - 1) <= 0.05 + 1e-12, `good unit ${u.seed}: ${k} within ±5 %`);
  }
  for (const u of d.units.filter((x) => x.defective)) {
    t.ok(u.separable, `shunt unit ${u.seed}: its parts are beyond what in-tolerance parts give (this seed)`);
    t.equal(u.rig, 'refused', `shunt unit ${u.seed} is refused by the factor check`);
    const twin = d.units.find((x) => !x.defective && x.seed === u.seed)!;
    t.ok(Math.abs(u.parts.shunt / twin.parts.shunt - 1.1) < 1e-9, 'the defect is the shunt 10 % high, nothing else');
    t.equal(u.parts.vref, twin.parts.vref);
    t.equal(u.parts.divider, twin.parts.divider);
  }
});

t.test('the printed lines count the units', async (t) => {
  const unit = (defective: boolean, rig: ShuntUnit['rig'], exactRefused: boolean, separable: boolean): ShuntUnit => ({ seed: 1, defective, parts: { shunt: 1, divider: 1, vref: 1 }, rig, exactRefused, separable });
  const d: ShuntDetection = {
    design: { shuntOhms: 0.001, dividerRatio: 1675, vrefVolts: 1.218, partTolerancePct: 5, slackPct: 1 },
    wallMs: 0,
    units: [unit(true, 'refused', true, true), unit(true, 'passed', false, true), unit(true, 'passed', false, false), unit(true, { failed: 'x' }, true, true), unit(false, 'passed', false, false), unit(false, 'refused', false, false)],
  };
  const text = shuntDetectionLines(d).join('\n');
  t.match(text, /refused by the rig: 1 of 4 = 25\.0 %/);
  t.match(text, /exact ratios: 50\.0 % \(rig agrees on 3 of 4\); failed in another step: 1/);
  t.match(text, /good units refused: 1 of 2/);
  t.match(text, /3 of 4 = 75\.0 % separable/);
});

t.test('Wilson interval', async (t) => {
  const [lo, hi] = wilson95(5, 10);
  t.ok(Math.abs(lo - 0.2366) < 1e-3 && Math.abs(hi - 0.7634) < 1e-3, `5/10 -> ${lo}, ${hi}`);
  t.same(wilson95(0, 0), [0, 1]);
  t.ok(wilson95(0, 100)[1] < 0.04 && wilson95(0, 100)[0] === 0);
});
