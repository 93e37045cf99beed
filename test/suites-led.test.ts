import t from 'tap';
import { runSuites, SAFE_END, step, summary, verifyEntry } from './fixtures/verify-run.ts';

t.test('led: not-connected blink period from sampled levels, solid once connected', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('led')]);
  t.equal(r.verdict, 'pass', summary(r));
  const p = step(r, 'LED blinks the not-connected').measurements[0]!;
  // OpenBeken toggles every ~525 ms when not connected (§3): period ~1050 ms.
  t.ok(Math.abs(p.value! - 1050) < 40, `period ${p.value} ms`);
  t.ok(p.U > 0 && p.contributions[0]!.name === 'sampling interval', 'with its sampling uncertainty');
  t.match(step(r, 'LED solid').measurements[0], { id: 'connectedLitPct', value: 100, decision: 'accept' });
  t.match(end, SAFE_END);
});

t.test('led: AP mode blink on a unit without Wi-Fi credentials (when the plan asks)', async (t) => {
  const entry = verifyEntry('led', (e) => {
    e.apMode = true;
    (e.limits as Record<string, unknown>).apBlinkPeriodMs = { nominal: 550, tolerancePct: 15 };
    delete (e.limits as Record<string, unknown>).connectingBlinkPeriodMs;
    (e.limits as Record<string, unknown>).connectedLitPct = { low: 0, guardBand: 'none' };
    e.solidWindowMs = 100;
  });
  // No credentials: it never connects, so the "connected" step is left out by running only the AP step.
  const { result: r } = await runSuites([entry], { wifi: null });
  const ap = step(r, 'LED blinks the AP pattern');
  t.ok(Math.abs(ap.measurements[0]!.value! - 550) < 30, `AP period ${ap.measurements[0]!.value} ms (§3: toggles ~275 ms)`);
  t.equal(ap.status, 'pass', summary(r));
});

t.test('led dead: the connected-solid step rejects it and the blink is never measured', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('led')], { defects: ['led-dead'] });
  const blink = step(r, 'LED blinks the not-connected');
  t.equal(blink.reason, 'check failed: LED blinks (at least 3 edges in the window)', summary(r));
  const solid = step(r, 'LED solid');
  t.equal(solid.status, 'fail');
  t.match(solid.measurements[0], { id: 'connectedLitPct', value: 0, decision: 'reject' });
  t.match(end, SAFE_END);
});
