import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { IEC_60725_REFERENCE_IMPEDANCE, MainsNetwork, STEADY_SUPPLY } from '../sim/mains/mains-network.ts';
import { SupplyDrift } from '../sim/mains/supply-drift.ts';

function slotWith(mains: MainsNetwork, name: string) {
  const b = mains.branch(name);
  b.addLoad('R2000', { watts: 2000, pf: 1 });
  b.addLoad('R100', { watts: 100, pf: 1 });
  b.setMainsRelay(true);
  b.setPlugRelay(true);
  return b;
}

t.test('default supply drifts: about ±1 % (2σ) change over a minute, mean-reverting over hours', async (t) => {
  const d = new SupplyDrift(7, 0);
  const changes: number[] = [];
  let worst = 0;
  for (let k = 0; k < 3000; k++) {
    const t0 = k * 20_000;
    changes.push(d.deviation(t0 + 60_000) - d.deviation(t0));
    worst = Math.max(worst, Math.abs(d.deviation(t0)));
  }
  const sd = Math.sqrt(changes.reduce((a, x) => a + x * x, 0) / changes.length);
  t.ok(sd > 0.0035 && sd < 0.0065, `σ of the 60 s change ${(sd * 100).toFixed(3)} % (target 0.5 %, i.e. ±1 % at 2σ)`);
  t.ok(worst < 0.05, `over ${(3000 * 20) / 3600} h the level stays within ±5 % (worst ${(worst * 100).toFixed(2)} %)`);
  t.ok(worst > 0.005, 'but it does wander');
  const wide = new SupplyDrift(7, 0, { amplitude: 0.04 });
  t.ok(Math.abs(wide.sigma / d.sigma - 4) < 1e-9, 'amplitude configurable');
});

t.test('drift is a pure function of (seed, time): any query order, same values; seeds differ; steady is exact', async (t) => {
  const a = new SupplyDrift(3, 0);
  const b = new SupplyDrift(3, 0);
  const times = [500_000, 10, 123_456, 60_000, 499_999];
  const fromA = times.map((x) => a.deviation(x));
  const fromB = [...times].sort((x, y) => x - y).map((x) => b.deviation(x));
  t.same([...fromA].sort(), [...fromB].sort(), 'same values in another order');
  t.equal(a.deviation(123_456), b.deviation(123_456));
  t.not(new SupplyDrift(4, 0).deviation(123_456), a.deviation(123_456), 'another seed, another walk');
  // Continuous (interpolated): no jumps between neighbouring milliseconds.
  t.ok(Math.abs(a.deviation(61_001) - a.deviation(61_000)) < 1e-5);

  const clock = new VirtualClock();
  const drifting = new MainsNetwork({ clock, volts: 230, hz: 50, seed: 5 });
  const steady = new MainsNetwork({ clock, volts: 230, hz: 50, ...STEADY_SUPPLY });
  const p = drifting.branch('p');
  const q = steady.branch('q');
  p.setMainsRelay(true);
  q.setMainsRelay(true);
  const seen = new Set<number>();
  for (let i = 0; i < 10; i++) {
    await clock.sleep(6000);
    seen.add(p.measure('input').volts);
    t.equal(q.measure('input').volts, 230, 'steady supply: exactly nominal');
  }
  t.ok(seen.size === 10, 'drifting supply: a different voltage every 6 s');
  for (const v of seen) t.ok(Math.abs(v / 230 - 1) < 0.05, `${v.toFixed(3)} V near 230`, { diagnostic: false });
});

t.test("source impedance: load on the network pulls every slot's voltage down (V_node = V/|1 + Zs·Y|)", async (t) => {
  const clock = new VirtualClock();
  const mains = new MainsNetwork({ clock, volts: 230, hz: 50, drift: false });
  const a = slotWith(mains, 'a');
  const b = slotWith(mains, 'b');
  t.equal(a.measure('input').volts, 230, 'no load: no drop');
  a.setLoadRelay('R2000', true);
  const g = 2000 / 230 ** 2;
  const x = 2 * Math.PI * 50 * IEC_60725_REFERENCE_IMPEDANCE.henries;
  const expected = 230 / Math.hypot(1 + 0.4 * g, x * g);
  const va = a.measure('input').volts;
  t.ok(Math.abs(va - expected) < 1e-9, `2 kW on IEC 60725 0.4 + j0.25 Ω: ${va.toFixed(3)} V`);
  t.ok(va < 227 && va > 226, 'about 3.4 V drop');
  t.equal(b.measure('input').volts, va, 'the neighbouring slot sees the same node');
  t.ok(Math.abs(a.measure('output').watts - g * va ** 2) < 1e-9, 'the load draws less than its rating');
  a.setMainsRelay(false);
  t.equal(b.measure('input').volts, 230, 'load gone: voltage back');
  const stiff = new MainsNetwork({ clock, volts: 230, hz: 50, drift: false, sourceImpedance: { ohms: 0, henries: 0 } });
  const s = slotWith(stiff, 's');
  s.setLoadRelay('R2000', true);
  t.equal(s.measure('input').volts, 230, 'zero impedance: no drop');
  t.throws(() => new MainsNetwork({ clock, volts: 230, hz: 50, sourceImpedance: { ohms: -1, henries: 0 } }), { code: 'E_CONFIG' });
});

t.test('energy integrates the drifting power exactly (V² on the interpolated walk)', async (t) => {
  const clock = new VirtualClock();
  const mains = new MainsNetwork({ clock, volts: 230, hz: 50, seed: 11, drift: { amplitude: 0.05 } });
  const a = slotWith(mains, 'a');
  a.setLoadRelay('R2000', true);
  a.resetEnergy('output');
  const startWatts = a.measure('output').watts;
  let numeric = 0;
  const stepMs = 100;
  for (let k = 0; k < 600; k++) {
    await clock.sleep(1000);
    for (let j = 0; j < 1000 / stepMs; j++) numeric += (a.measureAt('output', clock.now() - 1000 + (j + 0.5) * stepMs).watts * stepMs) / 3_600_000;
  }
  const wh = a.measure('output').wh;
  t.ok(Math.abs(wh / numeric - 1) < 1e-6, `10 min at ~2 kW: ${wh.toFixed(4)} Wh vs numeric ${numeric.toFixed(4)} Wh`);
  const frozen = startWatts / 6;
  t.ok(Math.abs(wh / frozen - 1) > 1e-4, `and not the starting power × time (${frozen.toFixed(4)} Wh): the drift counts`);
});

t.test('quantities at a past moment use the switch state of that moment; before-change listeners see the old state', async (t) => {
  const clock = new VirtualClock();
  const mains = new MainsNetwork({ clock, volts: 230, hz: 50, seed: 2 });
  const a = slotWith(mains, 'a');
  await clock.sleep(5000);
  const seenBefore: number[] = [];
  const seenAfter: number[] = [];
  mains.onBeforeChange(() => seenBefore.push(a.measure('output').amps));
  mains.onChange(() => seenAfter.push(a.measure('output').amps));
  a.setLoadRelay('R100', true);
  const tOn = clock.now();
  t.same(seenBefore, [0], 'before-change: still no current');
  t.ok(seenAfter[0]! > 0.4, 'after-change: current flows');
  await clock.sleep(3000);
  t.equal(a.measureAt('output', tOn - 1).amps, 0, 'a moment before the switch: no current');
  t.ok(a.measureAt('output', tOn + 1).amps > 0.4, 'a moment after: current');
  t.ok(Math.abs(a.measureAt('input', tOn - 3000).volts - mains.nodeVolts(tOn - 3000)) < 1e-9, 'past voltage follows the walk at that time');
  t.not(a.measureAt('input', tOn - 3000).volts, a.measure('input').volts, 'and differs from now');
  t.same(a.measureAt('output', clock.now() + 10_000), a.measure('output'), 'the future reads as now');
});
