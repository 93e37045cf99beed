import t from 'tap';
import { runSuites, SAFE_END, step, summary, verifyEntry } from './fixtures/verify-run.ts';

t.test('button: a click toggles within OpenBeken window; double click and long press do not; UART isolated throughout', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('button')]);
  t.equal(r.verdict, 'pass', summary(r));
  const m = step(r, 'single click').measurements[0]!;
  // OpenBeken: single click toggles ~375–400 ms after the physical release (openbeken-http.md §2).
  t.ok(m.value! >= 370 && m.value! <= 430, `toggle ${m.value} ms after release`);
  t.match(m, { id: 'toggleTimeMs', decision: 'accept', limits: { low: 300, high: 600 } });
  const iso = r.steps.flatMap((s) => s.checks).filter((c) => c.name.startsWith('UART isolated'));
  t.ok(iso.length >= 7 && iso.every((c) => c.ok && c.diag?.uart === 'off'), 'isolation asserted from the interlock state before and after each action');
  t.match(end, SAFE_END);
});

t.test('button open: the single click step fails, by name', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('button')], { defects: ['button-open'] });
  const s = step(r, 'single click');
  t.equal(s.status, 'fail');
  t.equal(s.reason, 'check failed: relay toggled after the click', summary(r));
  t.match(s.measurements, [{ id: 'toggleTimeMs', taken: false }]);
  t.match(end, SAFE_END);
});

t.test('button: a toggle window narrower than OpenBeken timing rejects the unit on the measurement', async (t) => {
  const { result: r } = await runSuites([verifyEntry('button', (e) => ((e.limits as Record<string, unknown>).toggleTimeMs = { low: 100, high: 300, guardBand: 'uncertainty' }))]);
  const s = step(r, 'single click');
  t.equal(s.status, 'fail');
  t.match(s.reason, /^click release to relay toggle: above the high limit 300/);
});
