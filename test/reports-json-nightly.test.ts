import t from 'tap';
import { RUN_SUMMARY_SCHEMA, renderJsonSummary, summarizeRun, type RunSummary } from '../reports/json-summary.ts';
import { compareNights, comparisonLines, guardMargin } from '../reports/nightly-compare.ts';
import { loadNightly, planVariant } from '../reports/nightly-plan.ts';
import { readFileSync } from 'node:fs';
import { clone, fixtureRun } from './fixtures/reports/load.ts';

const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;
const failing = fixtureRun('calibrate-4slot');
const passing = fixtureRun('factory-1slot');

t.test('JSON summary: versioned, the stored numbers, deterministic', async (t) => {
  const s = summarizeRun(failing);
  t.equal(s.schema, RUN_SUMMARY_SCHEMA);
  t.same(s.counts, { units: 4, passed: 0, failed: 4, incomplete: 0, flagged: 0, yield: 0 });
  const m = failing.units[1]!.steps.flatMap((x) => x.measurements).find((x) => x.id === 'currentErrorPct')!;
  const sm = s.units[1]!.measurements.find((x) => x.id === 'currentErrorPct')!;
  t.same([sm.value, sm.U, sm.k, sm.low, sm.high, sm.verdict, sm.decision], [m.value, m.U, m.k, m.limits!.low, m.limits!.high, m.verdict, m.decision], 'values are the stored ones, unrounded');
  t.equal(sm.key, 'after calibration at R100: the factor the plug applies / currentErrorPct');
  t.same(s.units[0]!.calibration, failing.units[0]!.calibration);
  t.same(s.units[0]!.failedSteps, failing.units[0]!.steps.filter((x) => x.status === 'fail').map((x) => x.name));
  t.equal(renderJsonSummary(clone(failing)), renderJsonSummary(failing));
  t.equal(summarizeRun(passing).counts.yield, 1);
  const parsed = JSON.parse(renderJsonSummary(passing)) as RunSummary;
  t.equal(parsed.units[0]!.mac, 'c8:47:8c:00:01:01');
});

t.test('guard margin: distance of value ± U to the nearest limit over the span', async (t) => {
  t.equal(guardMargin({ taken: true, value: 0, U: 0.5, low: -1, high: 1 }), 0.25);
  t.ok(Math.abs(guardMargin({ taken: true, value: 0.8, U: 0.5, low: -1, high: 1 })! + 0.15) < 1e-12, 'negative once value + U crosses a limit');
  t.equal(guardMargin({ taken: true, value: 40, U: 0, high: 60 }), 20 / 60, 'one-sided: over the limit');
  t.equal(guardMargin({ taken: false, U: 0, low: 0, high: 1 }), undefined);
});

function night(run = failing): RunSummary {
  return summarizeRun(clone(run));
}

t.test('nightly compare: what got worse per measurement', async (t) => {
  const before = night();
  t.same(compareNights([night()], [before]).regressions, [], 'the same results again: nothing worse');
  t.same(compareNights([night()], []).firstRuns, ['calibrate @ no image'], 'no previous night: a first run');

  // Tonight one unit's power error at the calibration point sits 0.5 % closer to the high limit.
  const worse = night();
  const key = 'after calibration at R100: the factor the plug applies / powerErrorPct';
  const pm = worse.units.map((u) => u.measurements.find((m) => m.key === key)!);
  const worst = pm.reduce((a, b) => (guardMargin(a)! < guardMargin(b)! ? a : b));
  worst.value! += 0.5;
  const c = compareNights([worse], [before]);
  t.same(c.regressions.map((r) => [r.measurement, r.what]), [[key, 'worst guard margin shrank by more than 10 % of the span']]);
  t.match(comparisonLines(c).join('\n'), /WORSE {2}calibrate @ no image {2}after calibration at R100: the factor the plug applies \/ powerErrorPct: worst guard margin shrank .*\(-?\d+(\.\d+)? % -> -?\d+(\.\d+)? %\)\n1 regression\(s\) in \d+ measurement\(s\) compared/);
  t.same(compareNights([worse], [before], { marginDrop: 0.3 }).regressions, [], 'within the allowed drop');
  // Moving it to the middle of its limits (more margin) is not worse.
  worst.value = 0;
  t.same(compareNights([worse], [before]).regressions, []);

  // A measurement rejected on more units, one gone, and the yield.
  const p1 = night(passing);
  const p2 = night(passing);
  const flash = p2.units[0]!.measurements.find((m) => m.id === 'flashTime')!;
  flash.decision = 'reject';
  flash.verdict = 'fail';
  p2.units[0]!.measurements = p2.units[0]!.measurements.filter((m) => m.id !== 'powerFactor');
  p2.counts = { ...p2.counts, passed: 0, failed: 1, yield: 0 };
  const r = compareNights([p2], [p1]).regressions.map((x) => `${x.measurement}: ${x.what} ${x.before} -> ${x.after}`);
  t.ok(r.includes('(yield): yield fell 1/1 -> 0/1'), r.join('; '));
  t.ok(r.some((x) => /flashTime: more units rejected 0\/1 -> 1\/1/.test(x)));
  t.ok(r.some((x) => /powerFactor: no longer measured/.test(x)) || !p1.units[0]!.measurements.some((m) => m.id === 'powerFactor'));
});

t.test('the nightly matrix: schema, and a plan variant per firmware', async (t) => {
  const m = loadNightly('nightly', PLANS);
  t.equal(m.plan, 'factory');
  t.ok(m.firmware.length >= 2, 'a matrix of firmware');
  const base = readFileSync(`${PLANS}/factory.json`, 'utf8');
  const v = planVariant(base, `${PLANS}/factory.json`, '1.18.41');
  t.equal(v.name, 'nightly-factory');
  t.same(v.image, { version: '1.18.41' });
  t.same(v.suites, (JSON.parse(base) as { suites: unknown[] }).suites.map((s) => (typeof s === 'object' && s && 'expectVersion' in s ? { ...s, expectVersion: '1.18.41' } : s)), 'limits and policies are the base plan');
  t.throws(() => loadNightly('factory', PLANS), /nightly matrix .*factory\.json: schema: Invalid literal value/);
});
