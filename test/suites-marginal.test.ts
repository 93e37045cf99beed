import t from 'tap';
import { parseJig } from '../rig/jig/jig-config.ts';
import { parsePlan } from '../suites/plan/load-plan.ts';
import type { MeasurementResult } from '../suites/model/measurement.ts';
import { fixtureJigText, runBatch } from '../scripts/bench-lib/defect-run.ts';

/**
 * A metering value inside its limit but within U of it is marginal (guarded acceptance), and the
 * plan's marginal action decides: retest (then reject when still marginal), fail, or pass with a flag.
 * The limit is placed from a first measurement of the same unit (U/2 above its value), so the
 * simulator's numbers are never assumed.
 */
const JIG = parseJig(JSON.parse(fixtureJigText('virtual-4slot.json')), 'virtual-4slot (test)');

function plan(voltageLimit: Record<string, unknown>, retries = 0) {
  const p = parsePlan({
    schema: 'plugrig.plan/1',
    name: 'marginal-test',
    device: { template: 'CB2S-RMC021' },
    defaults: { retries: 0, stepTimeoutMs: 60_000, onMarginal: 'fail' },
    suites: [{ suite: 'metering', retries, loadPoints: [{ load: 'R500' }], limits: { voltageErrorPct: voltageLimit, currentErrorPct: { low: -30, high: 30 }, powerErrorPct: { low: -40, high: 40 } } }],
  });
  return { plan: p, source: 'marginal-test', sha256: '0'.repeat(64) };
}

async function pointStep(voltageLimit: Record<string, unknown>, retries = 0) {
  const { outcomes } = await runBatch({ jig: JIG, plan: plan(voltageLimit, retries), units: [{ slot: 1, defects: [] }], seed: 3 });
  const s = outcomes[0]!.result.steps.find((x) => x.name.startsWith('metering at R500'))!;
  return { step: s, v: s.measurements.find((m) => m.id === 'voltageErrorPct')! as MeasurementResult, safe: outcomes[0]!.safe };
}

t.test('metering: inside the limit but within U of it is marginal; retest / fail / pass-with-flag as the plan says', async (t) => {
  // The unit as found: its voltage error and U at R500 (wide limits).
  const first = await pointStep({ low: -30, high: 30 });
  t.equal(first.step.status, 'pass');
  const v = first.v.value!;
  const U = first.v.U;
  t.ok(U > 0.05, `the voltage error has an expanded uncertainty (${v.toFixed(3)} ± ${U.toFixed(3)} %)`);
  const high = v + U / 2;
  t.comment(`high limit ${high.toFixed(3)} %: the value lies inside it, value + U outside`);

  const fail = await pointStep({ low: v - 10, high, onMarginal: 'fail' });
  t.ok(fail.v.value! <= high && fail.v.value! + fail.v.U > high, `still inside but within U (${fail.v.value!.toFixed(3)} ± ${fail.v.U.toFixed(3)})`);
  t.match(fail.v, { verdict: 'marginal', decision: 'reject', reason: /straddles a limit/ });
  t.equal(fail.step.status, 'fail', 'onMarginal fail: the step fails');
  t.match(fail.step.reason, /^voltage error vs reference: value ± U \([\d.]+\) straddles a limit$/);
  t.equal(fail.step.attempt, 1, 'no retest');
  t.ok(fail.safe, 'the jig ends in its safe state');

  const flag = await pointStep({ low: v - 10, high, onMarginal: 'pass-with-flag' });
  t.match(flag.v, { verdict: 'marginal', decision: 'accept-flagged' });
  t.equal(flag.step.status, 'pass', 'pass-with-flag: the step passes');
  t.equal(flag.step.flagged, true, 'and is flagged');

  const retest = await pointStep({ low: v - 10, high, onMarginal: 'retest' }, 1);
  t.equal(retest.step.attempt, 2, 'retest: the point was measured again');
  t.match(retest.step.earlierAttempts, [{ attempt: 1, status: 'retest', reason: /straddles a limit, retest$/ }]);
  t.match(retest.v, { verdict: 'marginal', decision: 'reject' }, 'still marginal on the last attempt: rejected');
  t.equal(retest.step.status, 'fail');

  // The same limit under simple acceptance: the value alone decides, and it is inside.
  const simple = await pointStep({ low: v - 10, high, guardBand: 'none', onMarginal: 'fail' });
  t.match(simple.v, { verdict: 'pass', decision: 'accept' }, 'guardBand none: accepted');
  t.equal(simple.step.status, 'pass');
});
