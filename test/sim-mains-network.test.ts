import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { MainsNetwork, STEADY_SUPPLY } from '../sim/mains/mains-network.ts';

/** The circuit arithmetic on an ideal steady source (drift and source impedance: sim-mains-drift.test.ts). */
function net(volts = 230, hz = 50) {
  const clock = new VirtualClock();
  const mains = new MainsNetwork({ clock, volts, hz, ...STEADY_SUPPLY });
  const slot = mains.branch('slot1');
  slot.addLoad('R100', { watts: 100, pf: 1 });
  slot.addLoad('M60', { watts: 60, pf: 0.6 });
  slot.addLoad('R25', { watts: 25, pf: 1 });
  return { clock, mains, slot };
}

const close = (a: number, b: number, eps = 1e-4): boolean => Math.abs(a - b) <= eps;

t.test('100 W resistive at 230 V: 0.4348 A, PF 1; nothing flows until every switch in the path is closed', async (t) => {
  const { slot } = net();
  slot.setLoadRelay('R100', true);
  t.equal(slot.measure('output').amps, 0, 'mains relay open');
  slot.setMainsRelay(true);
  t.equal(slot.measure('input').volts, 230, 'input live');
  t.equal(slot.measure('output').volts, 0, 'plug relay open: output dead');
  t.equal(slot.measure('output').amps, 0);
  slot.setPlugRelay(true);
  const m = slot.measure('output');
  t.ok(close(m.amps, 0.4348), `I = ${m.amps}`);
  t.ok(close(m.watts, 100, 1e-9));
  t.equal(m.pf, 1);
  t.equal(m.vars, 0);
  t.equal(m.hz, 50);
  t.same(slot.measure('input'), m, 'no self-consumption: both points agree');
});

t.test('60 W at PF 0.6: S = 100 VA, Q = 80 var, I = 0.4348 A', async (t) => {
  const { slot } = net();
  slot.setMainsRelay(true);
  slot.setPlugRelay(true);
  slot.setLoadRelay('M60', true);
  const m = slot.measure('output');
  t.ok(close(m.va, 100, 1e-9), `S = ${m.va}`);
  t.ok(close(m.vars, 80, 1e-9), `Q = ${m.vars}`);
  t.ok(close(m.amps, 0.4348));
  t.ok(close(m.pf, 0.6, 1e-12));
});

t.test('parallel loads add admittances (not apparent powers)', async (t) => {
  const { slot } = net();
  slot.setMainsRelay(true);
  slot.setPlugRelay(true);
  slot.setLoadRelay('R100', true);
  slot.setLoadRelay('M60', true);
  const m = slot.measure('output');
  t.ok(close(m.watts, 160, 1e-9));
  t.ok(close(m.vars, 80, 1e-9));
  t.ok(close(m.va, Math.hypot(160, 80), 1e-9), 'S = |160 + j80| = 178.9 VA, not 100 + 100');
  t.ok(close(m.amps, Math.hypot(160, 80) / 230));
  t.ok(close(m.pf, 160 / Math.hypot(160, 80), 1e-12));
  slot.setLoadRelay('M60', false);
  t.ok(close(slot.measure('output').watts, 100, 1e-9), 'opening a load relay removes it');
  slot.setPlugRelay(false);
  t.equal(slot.measure('output').watts, 0, "the plug's relay cuts every load");
});

t.test('supply voltage change scales P with V^2; frequency change moves only the reactive part', async (t) => {
  const { mains, slot } = net();
  slot.setMainsRelay(true);
  slot.setPlugRelay(true);
  slot.setLoadRelay('R100', true);
  mains.setSupply({ volts: 207 });
  t.ok(close(slot.measure('output').watts, 100 * (207 / 230) ** 2, 1e-9), '-10 % V -> 81 W');
  mains.setSupply({ volts: 230, voltsDeviation: 0.1 });
  t.ok(close(slot.measure('output').volts, 253, 1e-9), 'per-unit deviation +10 %');
  t.ok(close(slot.measure('output').watts, 121, 1e-9));
  mains.setSupply({ voltsDeviation: 0 });
  slot.setLoadRelay('R100', false);
  slot.setLoadRelay('M60', true);
  mains.setSupply({ hz: 60 });
  const m = slot.measure('output');
  t.equal(m.hz, 60);
  t.ok(close(m.watts, 60, 1e-9), 'real part unchanged');
  t.ok(close(m.vars, 80 * (50 / 60), 1e-9), 'inductive Q falls as 1/f');
});

t.test('energy integrates over the virtual clock, per measuring point, and resets', async (t) => {
  const { clock, slot } = net();
  slot.setSelfConsumption({ watts: 0.5, pf: 1 });
  slot.setMainsRelay(true);
  slot.setPlugRelay(true);
  slot.setLoadRelay('R100', true);
  await clock.sleep(3_600_000); // one virtual hour at 100 W
  t.ok(close(slot.measure('output').wh, 100, 1e-6), `output ${slot.measure('output').wh} Wh`);
  t.ok(close(slot.measure('input').wh, 100.5, 1e-6), 'input also carries the plug supply');
  slot.setLoadRelay('R25', true);
  slot.resetEnergy('output');
  await clock.sleep(1_800_000); // half an hour at 125 W
  slot.setMainsRelay(false);
  await clock.sleep(1_800_000); // and half an hour dead
  t.ok(close(slot.measure('output').wh, 62.5, 1e-6), 'reset, then 125 W for 0.5 h');
  t.ok(close(slot.measure('input').wh, 100.5 + 62.75, 1e-6), 'input kept counting until mains opened');
  t.equal(slot.measure('input').watts, 0);
});

t.test('bad ratings and unknown loads are configuration errors', async (t) => {
  const { slot } = net();
  t.throws(() => slot.addLoad('X', { watts: 10, pf: 0 }), { code: 'E_CONFIG' });
  t.throws(() => slot.addLoad('R100', { watts: 10, pf: 1 }), { code: 'E_CONFIG' });
  t.throws(() => slot.setLoadRelay('nope', true), { code: 'E_CONFIG' });
});
