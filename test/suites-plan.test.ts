import t from 'tap';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { loadPlan, parsePlan, planNames } from '../suites/plan/load-plan.ts';
import { SUITE_NAMES, type Plan } from '../suites/plan/schema.ts';
import { assertRunnable, isBuilt, slotProgram } from '../suites/registry.ts';
import type { SlotHardware } from '../suites/slot-hardware.ts';
import { loadDeviceTemplate } from '../rig/dut/device-template.ts';

const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;
const JIG = loadJigFile(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname);
/** The factory plan's load points (R10..R2000) are on the 4-slot jig's load banks. */
const JIG4 = loadJigFile(new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname);
const tmp = mkdtempSync(join(tmpdir(), 'plugrig-plan-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** Building a program reads only the slot's spec and image name; nothing is switched. */
function hardware(jig = JIG): SlotHardware {
  const spec = jig.slots[0]!;
  // Only the fields slotProgram reads at build time are real; the steps are never run here.
  return { spec, io: {} as SlotHardware['io'], meter: {} as SlotHardware['meter'], openUart: async () => { throw new Error('not here'); }, image: { bytes: new Uint8Array(), offset: 0x11000, name: 'img.bin' }, baudRate: 921600, outDir: '/nonexistent/run', mainsVolts: 230, log: {} as SlotHardware['log'], romSession: { afterWrite: [] }, provisioning: { template: loadDeviceTemplate('fixtures/devices/rmc021.json') } };
}

t.test('the shipped plans validate; factory, verify, flash-only and calibrate can run', async (t) => {
  t.same(planNames(PLANS), ['calibrate', 'factory', 'flash-only', 'smoke', 'verify']);
  for (const name of planNames(PLANS)) {
    const p = loadPlan(name, PLANS);
    t.equal(p.plan.name, name, `${name}: its name matches its file`);
    t.match(p.sha256, /^[0-9a-f]{64}$/);
  }
  for (const name of ['factory', 'verify', 'flash-only', 'calibrate', 'smoke']) t.doesNotThrow(() => assertRunnable(loadPlan(name, PLANS).plan, name), `${name} runs`);
  t.same(SUITE_NAMES.filter(isBuilt), ['flash', 'smoke', 'provision', 'identity', 'relay', 'button', 'led', 'metering', 'calibrate']);
});

t.test('a slot program: jig ready first, the plan\'s suites in order, safe state last', async (t) => {
  const smoke = slotProgram(loadPlan('smoke', PLANS).plan, hardware());
  t.same(smoke.map((s) => [s.suite ?? '-', s.kind ?? 'main']), [['-', 'main'], ['flash', 'main'], ['flash', 'main'], ['smoke', 'main'], ['smoke', 'main'], ['smoke', 'main'], ['smoke', 'main'], ['-', 'safe-state']]);
  const factory = slotProgram(loadPlan('factory', PLANS).plan, hardware(JIG4));
  const runs = (steps: ReturnType<typeof slotProgram>): string[] => steps.map((s) => s.suite ?? '-').filter((x, i, a) => a[i - 1] !== x);
  t.same(runs(factory), ['-', 'flash', 'identity', 'relay', 'button', 'led', 'metering', 'calibrate', '-'], 'factory: flash (provision inside its ROM session), identity, relay, button, LED, metering, calibrate + re-verify');
  t.same(
    factory.filter((s) => s.suite === 'metering').map((s) => s.name),
    ['mains on, plug online, relay closed', 'metering at M60 (60 W, PF 0.6)', 'metering at R2000 (2000 W, PF 1)'],
    'as found: the inductive PF 0.6 point (V, I, P and PF all judged) and 2000 W (the smallest U); creep (the same limit) and every point are judged after calibration',
  );
  t.same(factory.filter((s) => s.suite === 'calibrate').map((s) => s.name.replace(/:.*/, '')), ['mains on, plug online, relay closed', 'calibrate at R2000 (2000 W)', 'calibration factors within what ±5 % front-end parts can need', 'after calibration at R2000', 're-verify creep (no load)', 're-verify at R10 (10 W, PF 1)', 're-verify at R60 (60 W, PF 1)', 're-verify at R500 (500 W, PF 1)', 're-verify at M60 (60 W, PF 0.6)']);
  t.throws(() => slotProgram(loadPlan('factory', PLANS).plan, hardware()), { message: /slot 1 has no load 'R2000'/ }, 'the 1-slot jig has no load bank for the factory plan: refused when the program is built');
  const verify = slotProgram(loadPlan('verify', PLANS).plan, hardware());
  t.notOk(verify.some((s) => s.suite === 'flash'), 'verify: no flash');
  const cal = slotProgram(loadPlan('calibrate', PLANS).plan, hardware(JIG4));
  t.same([...new Set(cal.map((s) => s.suite ?? '-'))], ['-', 'calibrate'], 'calibrate: the calibrate suite with its re-verification only');
  const flashOnly = slotProgram(loadPlan('flash-only', PLANS).plan, hardware());
  t.same(flashOnly.map((s) => s.name), ['jig ready (lid closed, E-stop released, safe state)', 'connect UART and 3V3 (mains off)', 'flash img.bin', 'safe state (mains off, loads off, UART isolated)']);
});

t.test('limits, retries and timeouts come from the plan, not the suite', async (t) => {
  const raw = JSON.parse(readFileSync(join(PLANS, 'smoke.json'), 'utf8')) as Plan;
  const declared = (plan: Plan) => Object.fromEntries(slotProgram(plan, hardware()).flatMap((s) => (s.measurements ?? []).map((m) => [m.id, { ...m, retries: s.retries, timeoutMs: s.timeoutMs }])));
  const a = declared(parsePlan(raw));
  t.match(a.flashTime, { limits: { high: 60 }, guardBand: 'none', retries: 1, timeoutMs: 180000 });
  t.match(a.mainsVoltage, { unit: 'V', limits: { tolerancePct: 10, marginalPct: 5 }, guardBand: 'uncertainty', onMarginal: 'retest', uncertainty: { k: 2, contributions: [{ name: 'reference accuracy', distribution: 'rectangular' }] } });
  t.match(a.loadPower, { limits: { tolerancePct: 10, tolerance: 2 } });
  t.match(a.powerFactor, { limits: { tolerance: 0.1 } });
  const changed = structuredClone(raw);
  const smoke = changed.suites.find((e) => e.suite === 'smoke') as Extract<Plan['suites'][number], { suite: 'smoke' }>;
  smoke.limits.mainsVoltage = { tolerancePct: 3, onMarginal: 'pass-with-flag' };
  smoke.retries = 4;
  (changed.suites[0] as Extract<Plan['suites'][number], { suite: 'flash' }>).limits.flashTime = { high: 20 };
  const b = declared(parsePlan(changed));
  t.match(b.mainsVoltage, { limits: { tolerancePct: 3 }, onMarginal: 'pass-with-flag', retries: 4 });
  t.match(b.flashTime, { limits: { high: 20 }, guardBand: 'uncertainty' }, "without its own guard band the plan's default applies");
});

t.test('invalid plans: one error naming every path and problem', async (t) => {
  const problems = (input: unknown): string[] => {
    try {
      parsePlan(input, 'p.json');
    } catch (e) {
      return ((e as { context: { problems: string[] } }).context.problems);
    }
    return [];
  };
  const base = { schema: 'plugrig.plan/1', name: 'x' };
  t.same(problems({ ...base, suites: [] }), ['suites: a plan runs at least one suite']);
  t.same(problems({ ...base, suites: [{ suite: 'foo' }] }), [`suites.0.suite: unknown suite 'foo' (known: ${SUITE_NAMES.join(', ')})`]);
  const many = problems({
    ...base,
    name: 'Bad Name',
    defaults: { onMarginal: 'maybe' },
    suites: [
      { suite: 'flash', limits: { flashTime: { low: 9, high: 1 } } },
      { suite: 'smoke', limits: { mainsVoltage: {}, loadPower: { tolerance: -1 } } },
      { suite: 'metering', loadPoints: [], limits: {} },
    ],
  });
  t.match(many, [
    /^name: lower-case letters/,
    /^defaults\.onMarginal: Invalid enum value/,
    'suites.0.limits.flashTime: low 9 is above high 1',
    'suites.1.limits.mainsVoltage: give low, high, or a tolerance (tolerance / tolerancePct around a nominal)',
    /^suites\.1\.limits\.loadPower\.tolerance: Number must be greater than or equal to 0/,
    'suites.1.limits.powerFactor: Required',
    /^suites\.2\.loadPoints: Array must contain at least 1/,
  ]);
  t.match(problems({ ...base, suites: [{ suite: 'flash', limits: { flashTime: { high: 1 } }, extra: 1 }] }), [/^suites\.0: Unrecognized key\(s\) in object: 'extra'/]);
  t.doesNotThrow(() => parsePlan({ ...base, suites: [{ suite: 'metering', loadPoints: [{ load: 'none', limits: { creepW: { high: 1 } } }, { load: 'R100' }], limits: { powerErrorPct: { nominal: 0, tolerance: 1, uncertaintyTarget: 0.3 } } }] }), 'a suite not built yet is still valid plan data');
});

t.test('plugrig run --plan: unknown names and bad files are refused before the jig opens (exit 2)', async (t) => {
  const run = (...args: string[]) => plugrigInProcess(['run', '--sim', ...args], { env: { PLUGRIG_LOG: 'silent' } });
  const nope = await run('--plan', 'nope');
  t.equal(nope.exitCode, 2);
  t.match(nope.stderr, /no plan 'nope' \(plans in .*: calibrate, factory, flash-only, smoke, verify\)/);
  const bad = join(tmp, 'bad.json');
  writeFileSync(bad, JSON.stringify({ schema: 'plugrig.plan/1', name: 'bad', suites: [{ suite: 'foo' }] }));
  const b = await run('--plan', bad);
  t.equal(b.exitCode, 2);
  t.match(b.stderr, /invalid plan .*bad\.json:\s+suites\.0\.suite: unknown suite 'foo'/);
});

t.test('a plan naming a load the slot does not have is refused when the program is built', async (t) => {
  const raw = JSON.parse(readFileSync(join(PLANS, 'smoke.json'), 'utf8')) as Plan;
  (raw.suites.find((e) => e.suite === 'smoke') as Extract<Plan['suites'][number], { suite: 'smoke' }>).load = 'X9';
  t.throws(() => slotProgram(parsePlan(raw), hardware()), { name: 'ConfigError', message: "smoke suite: slot 1 has no load 'X9' (loads: R25, R100, M60)" });
});
