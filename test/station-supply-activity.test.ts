import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import type { ObkEnergy } from '../rig/dut/obk-http-client.ts';
import type { InterlockOutput, InterlockOutputs } from '../rig/jig/mains-interlock.ts';
import { SupplyActivity } from '../station/supply-activity.ts';
import { sampleAlignedWindows } from '../suites/metrology/sample-windows.ts';

/**
 * Two slots on one supply with the IEC reference impedance: slot 2 switches a 2 kW load on at 2.5 s,
 * which pulls the node down by 0.4 Ω · 8.7 A ≈ 1.5 %. Slot 1 measures R100 all the while: its plug
 * publishes window k (k s .. k+1 s) at k+1 s with the mean voltage over that second, its reference
 * shows the last 250 ms. The window 2 s .. 3 s holds half a second of each level.
 */
const SWITCH_AT = 2500;
const STEP = 0.985;
const voltsAt = (t: number): number => (t < SWITCH_AT ? 230 : 230 * STEP);
const meanVolts = (a: number, b: number): number => {
  const pre = Math.max(0, Math.min(b, SWITCH_AT) - a);
  return (pre * 230 + (b - a - pre) * 230 * STEP) / (b - a);
};
function plug(clock: VirtualClock): () => Promise<ObkEnergy> {
  return async () => {
    const k = Math.floor(clock.now() / 1000) - 1;
    const v = k < 0 ? 230 : meanVolts(k * 1000, k * 1000 + 1000);
    return { voltage: v, current: 0.43, power: (100 * v * v) / 230 ** 2, apparentPower: 0, reactivePower: 0, factor: 1, consumptionTotalWh: k + 1 };
  };
}
function reference(clock: VirtualClock) {
  return async () => {
    const now = clock.now();
    const v = meanVolts(now - 250, now);
    return { volts: v, amps: 0.43, watts: (100 * v * v) / 230 ** 2, pf: 1, hz: 50, timestamp: now };
  };
}

/** Board outputs that confirm each write 20 ms after it was issued. */
function board(clock: VirtualClock): InterlockOutputs & { writes: Array<{ output: InterlockOutput; on: boolean; t: number }> } {
  const writes: Array<{ output: InterlockOutput; on: boolean; t: number }> = [];
  return {
    writes,
    write: async (output, on) => {
      writes.push({ output, on, t: clock.now() });
      await clock.sleep(20);
    },
  };
}

const LOADS = [
  { name: 'R10', pin: 6, watts: 10, pf: 1 },
  { name: 'R2000', pin: 9, watts: 2000, pf: 1 },
];

t.test("a switch in another slot on the same supply drops the windows it fell in; the windows kept are one mains level", async (t) => {
  const clock = new VirtualClock();
  const supply = new SupplyActivity({ clock, mainsVolts: 230 });
  const slot2 = supply.observe(2, LOADS, board(clock));
  clock.at(SWITCH_AT - 10, () => void slot2.write('load:R2000', true));
  const run = await sampleAlignedWindows({ clock, plugEnergy: plug(clock), reference: reference(clock), referenceUpdateMs: 250, supply: supply.watch(1) }, 4);
  t.equal(run.windows.length, 4);
  const errs = run.windows.map((w) => 100 * (w.plug.voltage / w.ref.volts - 1));
  t.ok(errs.every((e) => Math.abs(e) < 0.01), `every kept window compares one level with the same level (V errors ${errs.map((e) => e.toFixed(3)).join(', ')} %)`);
  const seen = run.windows.map((w) => Math.floor(w.seenAt / 1000));
  t.notOk(seen.includes(3), `the window 2 s .. 3 s (seen at 3 s) is not kept (kept: seen at ${seen.join(', ')} s)`);
  t.notOk(run.consecutive, 'a dropped window ends the run: the counts do not telescope across it');
  const after = run.windows.findIndex((w) => w.seenAt > SWITCH_AT);
  t.equal(run.windows[after]!.follows, false, 'the first window after the dropped one does not follow a kept one (its stale V/I is of the mixed second)');

  // Two windows wanted, the switch between them: neither follows a kept window, so PF (which takes
  // the stale V or I from the window before) would read the mixed second: one more is taken.
  const c3 = new VirtualClock();
  const s3 = new SupplyActivity({ clock: c3, mainsVolts: 230 });
  const o3 = s3.observe(2, LOADS, board(c3));
  c3.at(SWITCH_AT - 10, () => void o3.write('load:R2000', true));
  await c3.sleep(1100);
  const two = await sampleAlignedWindows({ clock: c3, plugEnergy: plug(c3), reference: reference(c3), referenceUpdateMs: 250, supply: s3.watch(1) }, 2);
  t.same(two.windows.map((w) => Math.floor(w.seenAt / 1000)), [2, 4, 5], 'the window after the dropped one does not follow; one more does');
  t.same(two.windows.map((w) => w.follows), [false, false, true]);

  // The same run without the supply watch keeps the mixed window, and its V error is ~0.75 % off:
  // past the ±0.5 % limit on a perfect plug (this is what the watch guards).
  const c2 = new VirtualClock();
  const s2 = new SupplyActivity({ clock: c2, mainsVolts: 230 });
  const o2 = s2.observe(2, LOADS, board(c2));
  c2.at(SWITCH_AT - 10, () => void o2.write('load:R2000', true));
  const raw = await sampleAlignedWindows({ clock: c2, plugEnergy: plug(c2), reference: reference(c2), referenceUpdateMs: 250 }, 4);
  const worst = Math.max(...raw.windows.map((w) => Math.abs(100 * (w.plug.voltage / w.ref.volts - 1))));
  t.ok(worst > 0.5, `without it a window mixing both levels is kept (worst V error ${worst.toFixed(2)} %)`);
});

t.test('what counts as a switch on the supply: big enough loads, mains with loads behind it, unconfirmed writes until confirmed', async (t) => {
  const clock = new VirtualClock();
  const supply = new SupplyActivity({ clock, mainsVolts: 230 });
  t.ok(Math.abs(supply.stepPct({ watts: 2000, pf: 1 }) - 1.512) < 0.01, `2 kW through 0.4 Ω at 230 V: ${supply.stepPct({ watts: 2000, pf: 1 }).toFixed(3)} %`);
  // 60 W at PF 0.6: 0.4·60 + 0.25·80 = 44 W·Ω over 230² = 0.083 %.
  t.ok(Math.abs(supply.stepPct({ watts: 60, pf: 0.6 }) - 0.0832) < 0.001);
  const out = board(clock);
  const o = supply.observe(3, LOADS, out);
  const watch = supply.watch(1);
  await o.write('load:R10', true);
  t.equal(supply.switches().length, 0, 'a 10 W load (0.008 %) is left to the budget');
  const p = o.write('load:R2000', true);
  await clock.sleep(5);
  t.ok(watch.disturbedBetween(clock.now() + 1000, clock.now() + 2000), 'an unconfirmed write counts until it is confirmed');
  await p;
  const confirmed = clock.now();
  t.ok(watch.disturbedBetween(confirmed + 15, confirmed + 1000), 'the contact may still be moving just after the confirmation');
  t.notOk(watch.disturbedBetween(confirmed + 25, confirmed + 1000), 'a relay operate time after the confirmation the supply is quiet again');
  t.ok(watch.disturbedBetween(confirmed - 1000, confirmed - 10), 'the switch interval itself is disturbed');
  await o.write('mains', false);
  t.equal(supply.switches().at(-1)?.output, 'mains', 'mains off with R2000 and R10 on behind it is a switch');
  t.ok(Math.abs(supply.switches().at(-1)!.stepPct - supply.stepPct({ watts: 2010, pf: 1 })) < 1e-9);
  t.equal(out.writes.length, 3, 'every write reaches the board');
});

t.test("a big switch waits for another slot's run that is about to end, not for a long one, and never past its bound", async (t) => {
  const clock = new VirtualClock();
  const supply = new SupplyActivity({ clock, mainsVolts: 230 });
  const measuring = supply.watch(1);
  const switching = supply.watch(2);
  // Slot 1's run ends in 600 ms: slot 2's 2 kW switch waits for it (its last window would be lost).
  measuring.measuring!(clock.now() + 600);
  clock.at(600, () => measuring.measuring!(undefined));
  let t0 = clock.now();
  await switching.beforeSwitch!({ watts: 2000, pf: 1 });
  t.ok(clock.now() - t0 >= 600 && clock.now() - t0 < 700, `waited for the run to end (${clock.now() - t0} ms)`);
  // A run with ten windows to go (a calibration): not waited for.
  measuring.measuring!(clock.now() + 10_000);
  t0 = clock.now();
  await switching.beforeSwitch!({ watts: 2000, pf: 1 });
  t.equal(clock.now() - t0, 0, 'a long run loses one window instead');
  // A run that keeps saying it ends soon (extended window by window): the wait stops at its bound.
  const extend = (): void => {
    measuring.measuring!(clock.now() + 100);
    if (clock.now() < 5000) clock.at(clock.now() + 90, extend);
  };
  extend();
  t0 = clock.now();
  await switching.beforeSwitch!({ watts: 2000, pf: 1 });
  t.ok(clock.now() - t0 >= 1200 && clock.now() - t0 <= 1250, `bounded (${clock.now() - t0} ms)`);
  // A small load never waits; nor does a slot for its own run.
  t0 = clock.now();
  await switching.beforeSwitch!({ watts: 10, pf: 1 });
  measuring.measuring!(undefined);
  switching.measuring!(clock.now() + 300);
  await switching.beforeSwitch!({ watts: 2000, pf: 1 });
  t.equal(clock.now() - t0, 0, 'no wait for a 10 W load or for its own run');
  // An abort ends the wait at once.
  measuring.measuring!(clock.now() + 800);
  const ac = new AbortController();
  clock.at(clock.now() + 100, () => ac.abort());
  t0 = clock.now();
  await switching.beforeSwitch!({ watts: 2000, pf: 1 }, ac.signal);
  t.ok(clock.now() - t0 <= 150, `aborted after ${clock.now() - t0} ms`);
  await clock.sleep(6000);
});
