import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import type { ObkEnergy, ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import type { LoadSpec } from '../rig/jig/jig-config.ts';
import { WT310E_ACCURACY } from '../rig/meter/scpi/wt310e-meter.ts';
import { measurePoint } from '../suites/metering-point.ts';
import type { Decision } from '../suites/model/verdict.ts';
import type { MeasurementResult, MeasurementSpec } from '../suites/model/measurement.ts';
import { emptyWindowPool } from '../suites/metrology/sample-windows.ts';
import type { StepContext } from '../suites/runner/step.ts';
import type { SlotHardware } from '../suites/slot-hardware.ts';

/**
 * A retest keeps its load on and continues the run; anything else switches the load off. The
 * runner's decision is played by the fake ctx (attempt 1 says `first`, later attempts accept); the
 * interlock records every switch; the plug publishes window k (k s .. k+1 s) at k+1 s, the load's
 * counts only from the moment it is on.
 */
function bench(first: Decision) {
  const clock = new VirtualClock();
  const switches: Array<{ t: number; load: string; on: boolean }> = [];
  const loads: Record<string, 'on' | 'off'> = { R100: 'off', R500: 'off' };
  const onSince: Record<string, number> = {};
  const interlock = {
    state: () => ({ loads: { ...loads } }),
    setLoad: async (load: string, on: boolean) => {
      switches.push({ t: clock.now(), load, on });
      loads[load] = on ? 'on' : 'off';
      if (on) onSince[load] = clock.now();
    },
  };
  const energy = (now: number): ObkEnergy => {
    const k = Math.floor(now / 1000) - 1;
    const since = onSince.R100;
    const share = since === undefined || loads.R100 === 'off' ? 0 : Math.min(1, Math.max(0, (k * 1000 + 1000 - since) / 1000));
    const p = 100 * share + (k % 3) * 0.5;
    return { voltage: 230 + (Math.floor(k / 2) % 5) * 0.13, current: 0.43 + (Math.floor((k + 1) / 2) % 3) * 0.012, power: p, apparentPower: 0, reactivePower: 0, factor: 1, consumptionTotalWh: k * 0.03 };
  };
  const meter = {
    read: async () => ({ volts: 230, amps: 0.435, watts: 100, pf: 1, hz: 50, timestamp: clock.now(), ranges: { volts: 300, amps: 0.5, watts: 150 } }),
    accuracy: WT310E_ACCURACY,
    updateIntervalMs: 250,
    uncertainty: () => 0.002,
  };
  const hw = { io: { interlock }, meter, mainsVolts: 230 } as unknown as SlotHardware;
  const client = { energy: async () => energy(clock.now()) } as unknown as ObkHttpClient;
  const ctx = (attempt: number): StepContext =>
    ({
      clock,
      attempt,
      signal: new AbortController().signal,
      measure: (id: string, value: number) => ({ id, value, U: 0.2, verdict: attempt === 1 && first !== 'accept' ? (first === 'reject' ? 'fail' : 'marginal') : 'pass', decision: attempt === 1 ? first : 'accept' }) as unknown as MeasurementResult,
      check: () => true,
      unit: () => {},
    }) as unknown as StepContext;
  const specs = ['voltageErrorPct', 'powerErrorPct'].map((id) => ({ id, name: id, unit: '%', limits: { nominal: 0, tolerance: 1 } })) as MeasurementSpec[];
  const load = { name: 'R100', watts: 100, pf: 1, pin: 6 } as LoadSpec;
  return { clock, switches, loads, hw, client, ctx, specs, load };
}

t.test('a retest keeps the load on and continues the run; the last attempt switches it off', async (t) => {
  const b = bench('retest');
  const pool = emptyWindowPool();
  await b.clock.sleep(1300);
  await measurePoint(b.ctx(1), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, windows: 2, pool });
  t.same(b.switches.map((s) => [s.load, s.on]), [['R100', true]], 'after a retest decision the load stays on');
  t.equal(b.loads.R100, 'on');
  const lastOfFirst = pool.windows[pool.windows.length - 1]!.seenAt;
  await measurePoint(b.ctx(2), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, windows: 2, pool });
  t.same(b.switches.map((s) => [s.load, s.on]), [['R100', true], ['R100', false]], 'the retest does not switch it again; accepted, it goes off');
  t.equal(pool.windows.length, 4);
  t.ok(pool.windows[2]!.seenAt - lastOfFirst < 1100, 'the retest takes the very next window');
  t.equal(pool.runs, 1, 'no boundary missed: one run, its counts telescope across both attempts');
  t.ok(pool.windows.every((w) => w.plug.power >= 100), 'no window with the load partly off');
});

t.test('a rejected or accepted point switches its load off', async (t) => {
  for (const d of ['reject', 'accept'] as const) {
    const b = bench(d);
    const pool = emptyWindowPool();
    await b.clock.sleep(1300);
    await measurePoint(b.ctx(1), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, windows: 2, pool });
    t.equal(b.loads.R100, 'off', `${d}: load off after the attempt`);
    t.equal(pool.loadStayedOn, false);
  }
});

t.test('a load another step left on goes off before the point switches its own', async (t) => {
  const b = bench('accept');
  b.loads.R500 = 'on';
  await b.clock.sleep(1300);
  await measurePoint(b.ctx(1), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, windows: 2, pool: emptyWindowPool() });
  t.same(b.switches.slice(0, 2).map((s) => [s.load, s.on]), [['R500', false], ['R100', true]]);
});
