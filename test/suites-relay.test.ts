import t from 'tap';
import { runSuites, SAFE_END, step, summary, verifyEntry } from './fixtures/verify-run.ts';

t.test('relay: ON/OFF/TOGGLE confirmed by reply, relay sense and the reference meter; OFF after a restart', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('relay')]);
  t.equal(r.verdict, 'pass', summary(r));
  const m = r.steps.flatMap((s) => s.measurements);
  t.same(m.map((x) => x.id), ['switchTimeMs', 'meterTimeMs', 'onCurrentA', 'switchTimeMs', 'meterTimeMs', 'offCurrentA', 'switchTimeMs', 'meterTimeMs', 'switchTimeMs', 'meterTimeMs']);
  t.ok(m.every((x) => x.taken && x.decision === 'accept'), 'every declared measurement taken and accepted');
  const on = m.find((x) => x.id === 'onCurrentA')!;
  t.ok(on.limits!.nominal! > 0.4 && on.limits!.nominal! < 0.47, `nominal from R100 at the measured voltage (${on.limits!.nominal})`);
  t.equal(on.limits!.high, on.limits!.nominal! * 1.1 + 0.02, 'limits from the plan (±10 % + 0.02 A)');
  t.equal(step(r, 'relay OFF after a restart').status, 'pass');
  t.match(end, SAFE_END);
});

t.test('relay stuck open: POWER ON fails on the relay sense and the meter, not on the reply', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('relay')], { defects: ['relay-stuck-open'] });
  t.equal(r.verdict, 'fail');
  const s = step(r, 'POWER ON');
  t.equal(s.reason, 'check failed: relay sense reads ON', summary(r));
  t.match(s.checks.map((c) => [c.name, c.ok]), [['API replies {"POWER":"ON"}', true], ['relay sense reads ON', false], ['reference meter sees the load current appear', false]]);
  t.match(s.measurements, [{ id: 'switchTimeMs', taken: false }, { id: 'meterTimeMs', taken: false }]);
  t.equal(step(r, 'load current with the relay ON').status, 'fail', 'and no load current flows');
  t.match(end, SAFE_END);
});

t.test('relay stuck closed: POWER OFF fails on the relay sense, and the restart check too', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('relay')], { defects: ['relay-stuck-closed'] });
  t.equal(step(r, 'POWER ON').status, 'pass', 'switching on looks fine');
  t.equal(step(r, 'POWER OFF').reason, 'check failed: relay sense reads OFF', summary(r));
  t.equal(step(r, 'load current with the relay OFF').status, 'fail');
  t.equal(step(r, 'relay OFF after a restart').reason, 'check failed: relay sense OFF across the restart');
  t.match(end, SAFE_END);
});
