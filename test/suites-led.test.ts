import t from 'tap';
import { bootWindow } from '../suites/led.ts';
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

t.test('led (samplesFrom boot): the not-connected blink judged on the boot identity watched, no second power-up', async (t) => {
  const { result: r, mainsOns } = await runSuites([verifyEntry('identity'), verifyEntry('led')]);
  t.equal(r.verdict, 'pass', summary(r));
  t.equal(mainsOns, 1, 'powered up once (identity\'s boot)');
  const s = step(r, 'LED blinks the not-connected');
  t.match(s.data, { from: 'boot' });
  const p = s.measurements[0]!;
  t.ok(Math.abs(p.value! - 1050) < 40, `period ${p.value} ms`);
  t.ok(p.U > 0, 'with its sampling uncertainty');
  const solid = step(r, 'LED solid');
  t.match(solid.data, { from: 'after the boot' }, 'the solid window sampled in the background from the moment the plug answered');
  t.match(solid.measurements[0], { id: 'connectedLitPct', value: 100, decision: 'accept' });
});

t.test('led (samplesFrom boot), LED dead: both steps reject it on the boot\'s samples', async (t) => {
  const { result: r, mainsOns } = await runSuites([verifyEntry('identity'), verifyEntry('led')], { defects: ['led-dead'] });
  t.equal(mainsOns, 1);
  const blink = step(r, 'LED blinks the not-connected');
  t.match(blink, { data: { from: 'boot' }, reason: 'check failed: LED blinks (at least 3 edges in the window)' }, summary(r));
  t.match(step(r, 'LED solid'), { data: { from: 'after the boot' }, measurements: [{ id: 'connectedLitPct', value: 0, decision: 'reject' }] });
});

t.test('bootWindow: the boot samples are used only when they show the whole window of the blink', async (t) => {
  // A blink toggling every 500 ms from 300 ms after mains on (at t = 1000), sampled every 20 ms until `until`.
  const blink = (until: number, solidFrom = Infinity) =>
    Array.from({ length: Math.floor((until - 1000) / 20) + 1 }, (_, i) => {
      const at = 1000 + i * 20;
      return { t: at, level: undefined, lit: at >= solidFrom ? true : at < 1300 ? false : Math.floor((at - 1300) / 500) % 2 === 0 };
    });
  const boot = (samples: ReturnType<typeof blink>) => ({ mainsOnT: 1000, onlineT: samples.at(-1)!.t, sampleMs: 20, samples });
  const w = bootWindow(boot(blink(8000)), 4000);
  t.ok(w, 'sampled past the window, still blinking after it');
  t.equal(w!.window.at(-1)!.t, 5000, 'the window ends blinkWindowMs after mains on');
  t.equal(w!.window[0]!.t, 1000);
  t.equal(bootWindow(boot(blink(4500)), 4000), undefined, 'online before the window ended: not enough samples');
  t.equal(bootWindow(boot(blink(8000, 4100)), 4000), undefined, 'solid from inside the window (joined there): not this phase alone');
  const dark = blink(8000).map((x) => ({ ...x, lit: false }));
  t.ok(bootWindow(boot(dark), 4000), 'a LED that never toggled is judged as it is (a power cycle would show the same)');
  t.equal(bootWindow(boot(dark.filter((x) => x.t <= 4500)), 4000), undefined, 'but not on fewer samples than the window');
  t.equal(bootWindow(undefined, 4000), undefined);
});
