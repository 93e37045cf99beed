import t, { type Test } from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import { MainsNetwork, STEADY_SUPPLY } from '../sim/mains/mains-network.ts';
import { BL0937_CF_CONSTANT, BL0937_CF1_VOLTAGE_CONSTANT } from '../sim/plug/bl0937/front-end.ts';
import { ObkPlug } from '../sim/plug/obk-plug.ts';

/**
 * The plug's BL0937 is fed the mains as it was at each moment, not as it is when someone reads the
 * counters: a window that spans a load switch counts each load for its share of the window. The
 * expected counts come from the datasheet transfer (F_CF = 1721506·V(V)·V(I)/Vref², F_CF1 =
 * 15397·V(V)/Vref) applied to the unit's parts and the circuit's values, not from the chip model.
 */

const MAC = Uint8Array.of(0xc8, 0x47, 0x8c, 0x00, 0x22, 0x01);

async function rig(t: Test, o: { sourceImpedance?: boolean } = {}) {
  const clock = new VirtualClock();
  const mains = new MainsNetwork({ clock, volts: 230, hz: 50, ...STEADY_SUPPLY, ...(o.sourceImpedance ? { sourceImpedance: { ohms: 0.4, henries: 0 } } : {}) });
  const branch = mains.branch('slot1');
  branch.addLoad('R500', { watts: 500, pf: 1 });
  branch.addLoad('R2000', { watts: 2000, pf: 1 });
  branch.setMainsRelay(true);
  // Nothing in flash: no firmware reads the counters, only this test does. The relay is held closed
  // by the stuck-closed defect (the coil is not driven without firmware).
  const chip = new VirtualBk7231({ seed: 3, mac: MAC, linkWindowMs: 300, content: 'blank' });
  chip.connect({ send: () => {} }, clock);
  const plug = new ObkPlug({ chip, clock, branch, http: false, seed: 11, defects: { relay: 'stuck-closed' }, bl0937: { jitter: 0, nonlinearity: { amplitude: 0 } } });
  plug.mainsPresent(true);
  t.teardown(() => plug.dispose());
  // Let the chip find nothing to boot (its pins are released then: SEL floats low) before counting.
  await clock.sleep(2000);
  t.equal(plug.running(), 'nothing', 'no firmware runs');
  const fe = plug.bl0937.truth().frontEnd;
  const hzPerWatt = (BL0937_CF_CONSTANT * fe.shuntOhms) / (fe.dividerRatio * fe.vrefVolts ** 2);
  const hzPerVolt = BL0937_CF1_VOLTAGE_CONSTANT / (fe.dividerRatio * fe.vrefVolts);
  return { clock, mains, branch, plug, hzPerWatt, hzPerVolt };
}

t.test('a load switched on mid-window: the CF count lies between the two rates, each for its share of the window', async (t) => {
  const r = await rig(t);
  t.equal(r.plug.relayClosed(), true, 'relay closed (stuck-closed defect)');
  r.branch.setLoadRelay('R500', true);
  await r.clock.sleep(100);
  r.plug.bl0937.takeFallingEdges('cf');
  await r.clock.sleep(400);
  r.branch.setLoadRelay('R2000', true); // 400 ms into the window: 500 W, then 2500 W
  await r.clock.sleep(600);
  const n = r.plug.bl0937.takeFallingEdges('cf');
  const want = r.hzPerWatt * (500 * 0.4 + 2500 * 0.6);
  t.ok(Math.abs(n - want) <= 1, `${n} counts ~ ${want.toFixed(1)} (0.4 s of 500 W + 0.6 s of 2500 W)`);
  const atEnd = r.hzPerWatt * 2500;
  t.ok(n < atEnd - 100, `well below what the load at the end of the window gives (${atEnd.toFixed(0)})`);
});

t.test('a load switched off mid-window still counts for the part of the window it was on', async (t) => {
  const r = await rig(t);
  r.branch.setLoadRelay('R2000', true);
  await r.clock.sleep(100);
  r.plug.bl0937.takeFallingEdges('cf');
  await r.clock.sleep(300);
  r.branch.setLoadRelay('R2000', false);
  await r.clock.sleep(700);
  const n = r.plug.bl0937.takeFallingEdges('cf');
  const want = r.hzPerWatt * 2000 * 0.3;
  t.ok(Math.abs(n - want) <= 1, `${n} counts ~ ${want.toFixed(1)} (0.3 s of 2000 W, then nothing)`);
  await r.clock.sleep(1000);
  t.equal(r.plug.bl0937.takeFallingEdges('cf'), 0, 'the next window: no load, no counts');
});

t.test("another slot's load on the same mains sags this plug's voltage from the moment it switches", async (t) => {
  const r = await rig(t, { sourceImpedance: true });
  const other = r.mains.branch('slot2');
  other.addLoad('R2000', { watts: 2000, pf: 1 });
  other.setMainsRelay(true);
  other.setPlugRelay(true);
  r.plug.bl0937.setSel(true); // CF1 counts voltage
  await r.clock.sleep(100);
  r.plug.bl0937.takeFallingEdges('cf1');
  const before = r.branch.measure('input').volts;
  await r.clock.sleep(500);
  other.setLoadRelay('R2000', true);
  const after = r.branch.measure('input').volts;
  t.ok(before - after > 2, `the node sags ${(before - after).toFixed(2)} V under the other slot's 2 kW`);
  await r.clock.sleep(500);
  const n = r.plug.bl0937.takeFallingEdges('cf1');
  const want = r.hzPerVolt * (before * 0.5 + after * 0.5);
  t.ok(Math.abs(n - want) <= 1, `${n} counts ~ ${want.toFixed(1)} (0.5 s at ${before.toFixed(2)} V, 0.5 s at ${after.toFixed(2)} V)`);
  t.ok(Math.abs(n - r.hzPerVolt * after) > 3, 'not the count of the sagged voltage alone');
});
