import t from 'tap';
import { parseJig } from '../rig/jig/jig-config.ts';
import { loadPlan, parsePlan } from '../suites/plan/load-plan.ts';
import { PLUG_DEFECT_NAMES } from '../sim/plug/plug-defects.ts';
import { classify, DEFECT_EXPECTATIONS, fixtureJigText, runBatch, uncoveredDefects } from '../scripts/bench-lib/defect-run.ts';

const JIG = parseJig(JSON.parse(fixtureJigText('virtual-4slot.json')), 'virtual-4slot (test)');
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;

t.test('every injectable defect of the virtual plug has the step that must catch it', async (t) => {
  t.same(uncoveredDefects(), []);
  for (const d of PLUG_DEFECT_NAMES) t.ok(DEFECT_EXPECTATIONS.some((e) => e.defect === d), d);
});

/**
 * The factory plan's suites after flashing (pre-flashed, provisioned units: no flash or calibration,
 * to stay quick) with the as-found metering cut to its loaded point (M60): four units at once on the
 * 4-slot jig, one good, three with a defect each. Each defect must be failed first by the step that
 * names it, the good unit must pass, and every slot must end in its safe state.
 */
t.test('defects are caught by the step that names them; the good unit passes', async (t) => {
  const factory = loadPlan('factory', PLANS).plan;
  const raw = structuredClone(factory) as unknown as { name: string; suites: Array<Record<string, unknown>> };
  raw.name = 'factory-after-flash';
  raw.suites = raw.suites.filter((s) => !['flash', 'provision', 'calibrate'].includes(s.suite as string));
  const metering = raw.suites.find((s) => s.suite === 'metering')!;
  metering.loadPoints = (metering.loadPoints as Array<{ load: string }>).filter((p) => p.load === 'M60');
  const plan = { plan: parsePlan(raw), source: 'factory (after flash, test)', sha256: '0'.repeat(64) };
  const units = [
    { slot: 1, defects: [] },
    { slot: 2, defects: ['relay-stuck-closed'] },
    { slot: 3, defects: ['led-dead'] },
    { slot: 4, defects: ['sel-stuck-high'] },
  ];
  const { outcomes } = await runBatch({ jig: JIG, plan, units, seed: 2 });
  for (const o of outcomes) {
    const what = o.defects[0] ?? 'good unit';
    t.comment(`${what}: ${o.firstFail ? `${o.firstFail.name}: ${o.firstFail.reason}` : 'PASS'}`);
    t.ok(o.safe, `${what}: the jig ended in its safe state`);
    if (o.defects.length === 0) {
      t.equal(o.verdict, 'pass', `the good unit passes (${o.firstFail?.name}: ${o.firstFail?.reason})`);
      continue;
    }
    const e = DEFECT_EXPECTATIONS.find((x) => x.defect === o.defects[0])!;
    t.match(o.firstFail, { name: e.step, reason: e.message }, `${what}: failed first by the step that names it`);
    t.equal(classify(o), 'caught by its step');
  }
});
