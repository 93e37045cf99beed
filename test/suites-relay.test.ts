import t from 'tap';
import { runSuites, SAFE_END, step, summary, verifyEntry } from './fixtures/verify-run.ts';

const restart = verifyEntry('relay', (e) => (e.offAfterReboot = 'restart'));

t.test('relay: OFF after the boot, then ON/OFF/TOGGLE confirmed by reply, relay sense and the reference meter', async (t) => {
  const { result: r, end, mainsOns } = await runSuites([verifyEntry('relay')]);
  t.equal(r.verdict, 'pass', summary(r));
  t.same(r.steps.filter((s) => s.suite === 'relay').map((s) => s.name.replace(/:.*| \(.*/, '')), ['relay OFF after the boot', 'POWER ON', 'load current with the relay ON', 'POWER OFF', 'load current with the relay OFF', 'POWER TOGGLE', 'POWER TOGGLE']);
  const boot = step(r, 'relay OFF after the boot');
  t.match(boot.checks.map((c) => [c.name, c.ok]), [['relay sense reads OFF after the boot (default state)', true], ['API reports POWER OFF after the boot', true], ['reference meter sees no load current after the boot (load connected)', true], ['relay sense still OFF', true]]);
  t.match(boot.data, { booted: 'in this step' }, 'mains was off: the step powered the plug up itself');
  t.equal(mainsOns, 1, 'one power-up: no restart of its own');
  const m = r.steps.flatMap((s) => s.measurements);
  t.same(m.map((x) => x.id), ['switchTimeMs', 'meterTimeMs', 'onCurrentA', 'switchTimeMs', 'meterTimeMs', 'offCurrentA', 'switchTimeMs', 'meterTimeMs', 'switchTimeMs', 'meterTimeMs']);
  t.ok(m.every((x) => x.taken && x.decision === 'accept'), 'every declared measurement taken and accepted');
  const on = m.find((x) => x.id === 'onCurrentA')!;
  t.ok(on.limits!.nominal! > 0.4 && on.limits!.nominal! < 0.47, `nominal from R100 at the measured voltage (${on.limits!.nominal})`);
  t.equal(on.limits!.high, on.limits!.nominal! * 1.1 + 0.02, 'limits from the plan (±10 % + 0.02 A)');
  t.match(end, SAFE_END);
});

t.test('relay (offAfterReboot restart): OFF after a restart with the relay ON', async (t) => {
  const { result: r, mainsOns } = await runSuites([restart]);
  t.equal(r.verdict, 'pass', summary(r));
  t.equal(step(r, 'relay OFF after a restart').status, 'pass');
  t.notOk(r.steps.some((s) => s.name.startsWith('relay OFF after the boot')));
  t.equal(mainsOns, 1, 'the restart is a soft one (mains stays on)');
});

t.test('relay stuck open: POWER ON fails on the relay sense and the meter, not on the reply', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('relay')], { defects: ['relay-stuck-open'] });
  t.equal(r.verdict, 'fail');
  t.equal(step(r, 'relay OFF after the boot').status, 'pass', 'an open relay is off after the boot');
  const s = step(r, 'POWER ON');
  t.equal(s.reason, 'check failed: relay sense reads ON', summary(r));
  t.match(s.checks.map((c) => [c.name, c.ok]), [['API replies {"POWER":"ON"}', true], ['relay sense reads ON', false], ['reference meter sees the load current appear', false]]);
  t.match(s.measurements, [{ id: 'switchTimeMs', taken: false }, { id: 'meterTimeMs', taken: false }]);
  t.equal(step(r, 'load current with the relay ON').status, 'fail', 'and no load current flows');
  t.match(end, SAFE_END);
});

t.test('relay stuck closed: not OFF after the boot identity watched (sense and meter; the API believes OFF), and POWER OFF fails', async (t) => {
  const { result: r, end, mainsOns } = await runSuites([verifyEntry('identity'), verifyEntry('relay')], { defects: ['relay-stuck-closed'] });
  t.equal(mainsOns, 1, 'the boot is identity\'s');
  const boot = step(r, 'relay OFF after the boot');
  t.match(boot.data, { booted: 'before this suite' });
  t.equal(boot.reason, 'check failed: relay sense reads OFF after the boot (default state)', summary(r));
  // The meter reading is one whose interval began after the load came on: a stale one would read 0 A.
  t.match(boot.checks.map((c) => [c.name, c.ok]), [['relay sense reads OFF after the boot (default state)', false], ['API reports POWER OFF after the boot', true], ['reference meter sees no load current after the boot (load connected)', false], ['relay sense still OFF', false]]);
  t.equal(step(r, 'POWER ON').status, 'pass', 'switching on looks fine');
  t.equal(step(r, 'POWER OFF').reason, 'check failed: relay sense reads OFF', summary(r));
  t.equal(step(r, 'load current with the relay OFF').status, 'fail');
  t.match(end, SAFE_END);
});

t.test('relay stuck closed (offAfterReboot restart): the restart check fails too', async (t) => {
  const { result: r, end } = await runSuites([restart], { defects: ['relay-stuck-closed'] });
  t.equal(step(r, 'POWER OFF').reason, 'check failed: relay sense reads OFF', summary(r));
  t.equal(step(r, 'relay OFF after a restart').reason, 'check failed: relay sense OFF across the restart');
  t.match(end, SAFE_END);
});
