import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { Bl0937Chip, bl0937JitterBound, type Bl0937ChipOptions, type Bl0937Input } from '../sim/plug/bl0937/bl0937-chip.ts';
import { MainsNetwork } from '../sim/mains/mains-network.ts';
import { bl0937InputFromBranch, syncOnMainsChange } from '../sim/plug/bl0937/branch-input.ts';
import { bl0937Defects } from '../sim/plug/bl0937/defects.ts';
import { BL0937_NOMINAL_FRONT_END, transferOf } from '../sim/plug/bl0937/front-end.ts';
import { Bl0937Nonlinearity, BL0937_CHANNELS } from '../sim/plug/bl0937/nonlinearity.ts';

const LOAD: Bl0937Input = { volts: 230, amps: 100 / 230, watts: 100 };

function ideal(clock: VirtualClock, input: () => Bl0937Input, extra: Partial<Bl0937ChipOptions> = {}): Bl0937Chip {
  return new Bl0937Chip({ clock, seed: 1, tolerance: 0, nonlinearity: 0, jitter: 0, input, ...extra });
}

t.test('datasheet transfer equations with the nominal front end (1 mΩ, 1675:1, Vref 1.218 V)', async (t) => {
  const tr = transferOf(BL0937_NOMINAL_FRONT_END);
  const vv = 230 / 1675;
  const vi = (100 / 230) * 0.001;
  t.ok(Math.abs(tr.hzPerVolt * 230 - (15397 * vv) / 1.218) < 1e-9, 'F_CF1(V) = 15397·V(V)/Vref');
  t.ok(Math.abs(tr.hzPerAmp * (100 / 230) - (94638 * vi) / 1.218) < 1e-9, 'F_CF1(I) = 94638·V(I)/Vref');
  t.ok(Math.abs(tr.hzPerWatt * 100 - (1721506 * vv * vi) / 1.218 ** 2) < 1e-9, 'F_CF = 1721506·V(V)·V(I)/Vref² at PF 1');
  t.ok(Math.abs(1 / tr.hzPerVolt - 0.1325) < 0.0005, `V/Hz ${1 / tr.hzPerVolt} ≈ OpenBeken's default 0.13253`);
  t.ok(Math.abs((1 / tr.hzPerVolt) * (1 / tr.hzPerAmp) * 846.43 - 1 / tr.hzPerWatt) < 1e-3, 'W/Hz = V/Hz·A/Hz·846.43 (openbeken-bl0937.md §2.2)');
});

t.test('counts are the integral of frequency over the clock; SEL high = voltage on CF1, low = current', async (t) => {
  const clock = new VirtualClock();
  const chip = ideal(clock, () => LOAD);
  const tr = chip.truth().transfer;
  chip.takeFallingEdges('cf');
  chip.takeFallingEdges('cf1');
  await clock.sleep(10_000);
  const cf = chip.takeFallingEdges('cf');
  const cf1I = chip.takeFallingEdges('cf1');
  t.ok(Math.abs(cf - tr.hzPerWatt * 100 * 10) <= 1, `CF ${cf} in 10 s`);
  t.ok(Math.abs(cf1I - tr.hzPerAmp * LOAD.amps * 10) <= 1, `CF1 (SEL low) ${cf1I} = current`);
  chip.setSel(true);
  await clock.sleep(10_000);
  const cf1V = chip.takeFallingEdges('cf1');
  t.ok(Math.abs(cf1V - tr.hzPerVolt * 230 * 10) <= 1, `CF1 (SEL high) ${cf1V} = voltage`);
  t.equal(chip.sel(), true);
});

t.test('counts do not depend on how often anyone asks (phase accumulator, jitter a function of time)', async (t) => {
  const counts: number[] = [];
  for (const stepMs of [10_000, 1000, 137, 50]) {
    const clock = new VirtualClock();
    const chip = new Bl0937Chip({ clock, seed: 9, input: () => LOAD });
    let total = 0;
    for (let at = 0; at < 10_000; ) {
      const next = Math.min(10_000, at + stepMs);
      await clock.sleep(next - at);
      total += chip.takeFallingEdges('cf');
      at = next;
    }
    counts.push(total);
  }
  t.ok(counts.every((c) => c === counts[0]), `same CF count for every query pattern: ${counts.join(', ')}`);
});

t.test('per-unit front end within ±5 % per part (configurable), deterministic per seed, different across seeds', async (t) => {
  const clock = new VirtualClock();
  const seen = new Set<number>();
  for (let seed = 0; seed < 300; seed++) {
    const fe = new Bl0937Chip({ clock, seed, input: () => LOAD }).truth().frontEnd;
    t.ok(Math.abs(fe.shuntOhms / 0.001 - 1) <= 0.05 + 1e-12 && Math.abs(fe.dividerRatio / 1675 - 1) <= 0.05 + 1e-12 && Math.abs(fe.vrefVolts / 1.218 - 1) <= 0.05 + 1e-12, `seed ${seed}`, { diagnostic: false });
    seen.add(fe.shuntOhms);
  }
  t.ok(seen.size > 290, 'units differ');
  const again = new Bl0937Chip({ clock, seed: 17, input: () => LOAD }).truth();
  t.same(again.frontEnd, new Bl0937Chip({ clock, seed: 17, input: () => LOAD }).truth().frontEnd, 'same seed, same unit');
  const wide = new Bl0937Chip({ clock, seed: 3, tolerance: 0.2, input: () => LOAD }).truth().frontEnd;
  const tight = new Bl0937Chip({ clock, seed: 3, tolerance: 0.01, input: () => LOAD }).truth().frontEnd;
  t.ok(Math.abs(tight.shuntOhms / 0.001 - 1) <= 0.01 + 1e-12, 'tolerance 1 %');
  t.ok(Math.abs(wide.shuntOhms / 0.001 - 1) > 0.01, 'tolerance 20 % spreads further');
});

t.test('nonlinearity: within ±0.5 % over the 2500:1 range by default; an exact amplitude for injected faults', async (t) => {
  let worst = 0;
  let maxAmp = 0;
  for (let seed = 0; seed < 200; seed++) {
    const nl = new Bl0937Nonlinearity(seed);
    for (const ch of BL0937_CHANNELS) {
      maxAmp = Math.max(maxAmp, nl.amplitude[ch]);
      for (let i = 0; i <= 100; i++) worst = Math.max(worst, Math.abs(nl.relativeError(ch, 0.03 * 2500 ** (-i / 100))));
    }
  }
  t.ok(worst <= 0.005 + 1e-12, `worst ${(worst * 100).toFixed(3)} % <= 0.5 %`);
  t.ok(maxAmp > 0.004, 'amplitudes use the bound');
  const fault = new Bl0937Nonlinearity(5, { amplitude: 0.012 });
  let peak = 0;
  for (let i = 0; i <= 200; i++) peak = Math.max(peak, Math.abs(fault.relativeError('power', 0.03 * 2500 ** (-i / 200))));
  t.ok(Math.abs(peak - 0.012) < 2e-4, `fault peak ${(peak * 100).toFixed(3)} % = 1.2 %`);
  const shaped = new Bl0937Nonlinearity(5, { amplitude: 0.01, shape: [1, 0, 0] });
  t.ok(Math.abs(shaped.relativeError('current', 0.03) - 0.01) < 1e-12, 'linear shape: +1 % at full scale');
  t.ok(Math.abs(shaped.relativeError('current', 0.03 / 2500) + 0.01) < 1e-12, '-1 % at the bottom of the range');
  // The chip's frequency carries it: truth.frequency = ideal × (1 + error).
  const clock = new VirtualClock();
  const chip = new Bl0937Chip({ clock, seed: 5, tolerance: 0, jitter: 0, nonlinearity: { amplitude: 0.01, shape: [1, 0, 0] }, input: () => LOAD });
  const tr = chip.truth();
  const ratio = tr.frequency('current', LOAD) / (tr.transfer.hzPerAmp * LOAD.amps);
  t.ok(Math.abs(ratio - 1 - shaped.relativeError('current', LOAD.amps * 0.001)) < 1e-12, 'frequency includes the nonlinearity');
  t.equal(tr.nonlinearityAmplitude.current, 0.01);
});

t.test('CF jitter within the datasheet figures: ±0.2 % at 300 mA, ±0.3 % at 50 mA', async (t) => {
  t.equal(bl0937JitterBound(1), 0.002);
  t.equal(bl0937JitterBound(0.3), 0.002);
  t.equal(bl0937JitterBound(0.05), 0.003);
  t.ok(bl0937JitterBound(0.1) > 0.002 && bl0937JitterBound(0.1) < 0.003);
  for (const amps of [1, 0.05]) {
    const input = { volts: 230, amps, watts: 230 * amps };
    const clock = new VirtualClock();
    const chip = new Bl0937Chip({ clock, seed: 11, tolerance: 0, nonlinearity: 0, input: () => input });
    const f = chip.truth().frequency('power', input);
    const bound = bl0937JitterBound(amps);
    // Over whole 250 ms segments the count is f·T·(1 + e) with |e| <= bound, ±1 pulse of phase.
    let maxDev = 0;
    let minDev = 0;
    chip.takeFallingEdges('cf');
    for (let k = 0; k < 40; k++) {
      await clock.sleep(10_000);
      const n = chip.takeFallingEdges('cf');
      const dev = (n - f * 10) / (f * 10);
      maxDev = Math.max(maxDev, dev);
      minDev = Math.min(minDev, dev);
      t.ok(Math.abs(n - f * 10) <= f * 10 * bound + 1, `${amps} A, 10 s #${k}: ${n} vs ${(f * 10).toFixed(1)}`, { diagnostic: false });
    }
    t.ok(maxDev > 0 && minDev < 0, `${amps} A: the count wanders both ways (${(minDev * 100).toFixed(3)} % .. ${(maxDev * 100).toFixed(3)} %)`);
  }
  const clock = new VirtualClock();
  const quiet = new Bl0937Chip({ clock, seed: 11, tolerance: 0, nonlinearity: 0, jitter: 0, input: () => LOAD });
  const f = quiet.truth().frequency('power', LOAD);
  let sum = -quiet.takeFallingEdges('cf');
  for (let k = 1; k <= 20; k++) {
    await clock.sleep(1000);
    sum += quiet.takeFallingEdges('cf');
    t.ok(Math.abs(sum - f * k) <= 1, `jitter 0: after ${k} s exactly f·t ±1 (${sum})`, { diagnostic: false });
  }
});

t.test('anti-creep: no CF pulses at no load or below 4 mA; CF1 current follows the current', async (t) => {
  const clock = new VirtualClock();
  let input: Bl0937Input = { volts: 230, amps: 0, watts: 0 };
  const chip = ideal(clock, () => input);
  chip.takeFallingEdges('cf');
  await clock.sleep(60_000);
  t.equal(chip.takeFallingEdges('cf'), 0, 'no load: CF silent');
  t.equal(chip.takeFallingEdges('cf1'), 0, 'no current: CF1 (current) silent');
  input = { volts: 230, amps: 0.003, watts: 0.69 };
  chip.sync();
  await clock.sleep(60_000);
  t.equal(chip.takeFallingEdges('cf'), 0, '3 mA (0.69 W): CF suppressed');
  t.ok(chip.takeFallingEdges('cf1') > 0, '3 mA still gives CF1 current pulses');
  t.equal(chip.truth().frequency('power', input), 0);
  input = { volts: 230, amps: 0.005, watts: 1.15 };
  t.ok(chip.truth().frequency('power', input) > 0, '5 mA: above the creep threshold');
  t.ok(new Bl0937Chip({ clock, seed: 1, creepAmps: 0.01, input: () => input }).truth().frequency('power', input) === 0, 'threshold configurable');
});

t.test('defects: CF open, CF1 open, SEL stuck, divider off 20 %, shunt off 10 %', async (t) => {
  const clock = new VirtualClock();
  const make = (names: string[]) => ideal(clock, () => LOAD, { defects: bl0937Defects(names) });
  const good = make([]);
  const cfOpen = make(['cf-open']);
  const cf1Open = make(['cf1-open']);
  const stuckLow = make(['sel-stuck-low']);
  const stuckHigh = make(['sel-stuck-high']);
  for (const c of [good, cfOpen, cf1Open, stuckLow, stuckHigh]) c.setSel(true);
  for (const c of [good, cfOpen, cf1Open, stuckLow, stuckHigh]) c.takeFallingEdges('cf1');
  await clock.sleep(2000);
  const tr = good.truth().transfer;
  t.ok(good.takeFallingEdges('cf') > 0);
  t.equal(cfOpen.takeFallingEdges('cf'), 0, 'CF open: nothing on CF');
  t.ok(cfOpen.takeFallingEdges('cf1') > 0, 'CF open: CF1 still pulses');
  t.equal(cf1Open.takeFallingEdges('cf1'), 0, 'CF1 open: nothing on CF1');
  t.ok(Math.abs(stuckLow.takeFallingEdges('cf1') - tr.hzPerAmp * LOAD.amps * 2) <= 1, 'SEL stuck low: current even with SEL driven high');
  t.equal(stuckLow.sel(), false);
  stuckHigh.setSel(false);
  await clock.sleep(2000);
  t.ok(Math.abs(stuckHigh.takeFallingEdges('cf1') - tr.hzPerVolt * 230 * 4) <= 1, 'SEL stuck high: voltage even with SEL driven low');
  const div = make(['divider-off-20']).truth();
  t.ok(Math.abs(div.frequency('voltage', LOAD) / good.truth().frequency('voltage', LOAD) - 0.8) < 1e-12, 'divider off: V pulses 20 % low');
  t.ok(Math.abs(div.frequency('power', LOAD) / good.truth().frequency('power', LOAD) - 0.8) < 1e-12, 'and P with it');
  const sh = make(['shunt-off-10']).truth();
  t.ok(Math.abs(sh.frequency('current', LOAD) / good.truth().frequency('current', LOAD) - 1.1) < 1e-12, 'shunt off: I pulses 10 % high');
  t.ok(Math.abs(sh.frequency('power', LOAD) / good.truth().frequency('power', LOAD) - 1.1) < 1e-12, 'and P with it');
  t.throws(() => bl0937Defects(['cf-shorted']), { code: 'E_CONFIG' });
});

t.test('unpowered: no pulses; SEL settling (optional) delays the CF1 mode change', async (t) => {
  const clock = new VirtualClock();
  const chip = ideal(clock, () => LOAD);
  chip.setPowered(false);
  await clock.sleep(5000);
  t.equal(chip.takeFallingEdges('cf'), 0);
  t.equal(chip.level('cf'), false);
  chip.setPowered(true);
  await clock.sleep(1000);
  t.ok(chip.takeFallingEdges('cf') >= 61);
  const slow = ideal(clock, () => LOAD, { selSettlingMs: 500 });
  const tr = slow.truth().transfer;
  slow.takeFallingEdges('cf1');
  slow.setSel(true);
  await clock.sleep(1000);
  const n = slow.takeFallingEdges('cf1');
  const want = tr.hzPerAmp * LOAD.amps * 0.5 + tr.hzPerVolt * 230 * 0.5;
  t.ok(Math.abs(n - want) <= 1, `first 500 ms still current: ${n} ~ ${want.toFixed(1)}`);
});

t.test('on a mains branch: V from the plug input, I and P through the shunt after the relay; a relay change counts from its moment', async (t) => {
  const clock = new VirtualClock();
  const mains = new MainsNetwork({ clock, volts: 230, hz: 50, seed: 3 });
  const branch = mains.branch('slot1');
  branch.addLoad('R1000', { watts: 1000, pf: 1 });
  branch.setSelfConsumption({ watts: 0.8, pf: 0.5 });
  branch.setMainsRelay(true);
  branch.setLoadRelay('R1000', true);
  const chip = new Bl0937Chip({ clock, seed: 4, jitter: 0, input: bl0937InputFromBranch(branch) });
  syncOnMainsChange(chip, mains);
  const tr = chip.truth();
  chip.setSel(true);
  chip.takeFallingEdges('cf');
  chip.takeFallingEdges('cf1');
  await clock.sleep(1000);
  t.equal(chip.takeFallingEdges('cf'), 0, 'relay open: no power pulses (self-consumption is not through the shunt)');
  const v = chip.takeFallingEdges('cf1');
  t.ok(Math.abs(v - tr.frequency('voltage', { volts: branch.measure('input').volts, amps: 0, watts: 0 })) <= 2, `relay open: V still sensed (${v} pulses)`);
  await clock.sleep(300);
  branch.setPlugRelay(true); // at t = 1300 ms, inside a jitter segment
  const out = branch.measure('output');
  await clock.sleep(700);
  const n = chip.takeFallingEdges('cf');
  const want = tr.frequency('power', out) * 0.7;
  t.ok(Math.abs(n - want) <= 1 + want * 0.002, `after the relay closed at 1.3 s: ${n} pulses ~ ${want.toFixed(1)} (0.7 s of 1 kW)`);
  t.ok(out.volts < 230 * 1.05 && out.volts > 230 * 0.95, `drifting, loaded supply: ${out.volts.toFixed(2)} V`);
});
