import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import type { ObkEnergy, ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import type { LoadSpec } from '../rig/jig/jig-config.ts';
import { WT310E_ACCURACY } from '../rig/meter/scpi/wt310e-meter.ts';
import { measurePoint } from '../suites/metering-point.ts';
import { resolveLimits } from '../suites/model/limits.ts';
import type { MeasurementResult, MeasurementSpec } from '../suites/model/measurement.ts';
import { combineUncertainty } from '../suites/model/uncertainty.ts';
import { decide, judge } from '../suites/model/verdict.ts';
import { combinedPf, ERROR_BUDGET, PF_BUDGET, pfTerms } from '../suites/metrology/budget.ts';
import { emptyWindowPool } from '../suites/metrology/sample-windows.ts';
import type { StepContext } from '../suites/runner/step.ts';
import type { SlotHardware } from '../suites/slot-hardware.ts';

t.test('the PF budget: every reading counts, each by its own counts, quantization triangular', async (t) => {
  // 60 W at PF 0.6 on 230 V: 40 P counts a window (1.5 W each), 36.7 I counts (0.01186 A), 1735 V counts.
  const plug = { volts: 230, amps: 0.4348, watts: 60 };
  const terms = pfTerms({ pf: 0.6, refBand: 0.002, plug, windows: 10, vWindows: 5, iWindows: 5 });
  const pC = 60 / 1.5;
  const iC = 0.4348 / 0.0118577075;
  const vC = 230 / 0.13253012048;
  const quant = 0.6 * Math.sqrt(1 / (pC * pC * 10) + 1 / (iC * iC * 5) + 1 / (vC * vC * 5));
  t.ok(Math.abs(terms['pulse quantization (±1 count)'] - quant) < 1e-12, `±1 count of P over 10 windows, of I and V over 5 each: ${quant.toFixed(5)}`);
  t.ok(Math.abs(terms['BL0937 jitter'] - 0.6 * 0.002 * Math.sqrt(1 / 10 + 1 / 5 + 1 / 5)) < 1e-12, 'jitter ±0.2 % of each reading, averaged over its own windows');
  t.equal(terms['reference accuracy'], 0.002);
  const u = Math.sqrt((0.002 / Math.sqrt(3)) ** 2 + (quant / Math.sqrt(6)) ** 2 + (terms['BL0937 jitter'] / Math.sqrt(3)) ** 2);
  t.ok(Math.abs(combinedPf(terms) - u) < 1e-12, 'quantization divided by √6 (triangular), the rest by √3');
  t.same(PF_BUDGET.contributions.map((c) => [c.name, c.distribution]), [['reference accuracy', 'rectangular'], ['pulse quantization (±1 count)', 'triangular'], ['BL0937 jitter', 'rectangular']]);
  // More I windows shrink the dominant term: PF U is not fixed by the first attempt's count.
  const more = pfTerms({ pf: 0.6, refBand: 0.002, plug, windows: 20, vWindows: 10, iWindows: 10 });
  t.ok(combinedPf(more) < 0.8 * combinedPf(terms), 'twice the windows: U down by well over 20 %');
});

/**
 * A plug at 60 W PF 0.6 whose shown PF is off by `pfOffset` plus a ±`pfNoise` alternation, V and I
 * counted in alternate windows (SEL), window k published at k+1 s; a WT310E-class reference. The
 * ctx judges with the model's own judge/decide; V and P have wide limits (decided at once), so any
 * window beyond the first attempt's two is taken for the PF alone.
 */
function bench(o: { pfOffset: number; pfNoise: number }) {
  const clock = new VirtualClock();
  const loads: Record<string, 'on' | 'off'> = { M60: 'off' };
  const interlock = { state: () => ({ loads: { ...loads } }), setLoad: async (load: string, on: boolean) => void (loads[load] = on ? 'on' : 'off') };
  const energy = (now: number): ObkEnergy => {
    const k = Math.floor(now / 1000) - 1;
    const vK = k - (k % 2);
    const iK = k - ((k + 1) % 2);
    return { voltage: 230 + (vK % 6) * 0.05, current: 0.4348 + (iK % 6) * 0.0004, power: 60 + (k % 2) * 0.01, apparentPower: 0, reactivePower: 0, factor: 0.6 + o.pfOffset + (k % 2 ? o.pfNoise : -o.pfNoise), consumptionTotalWh: k * 0.0167 };
  };
  const meter = {
    read: async () => ({ volts: 230, amps: 0.4348, watts: 60, pf: 0.6, hz: 50, timestamp: clock.now(), ranges: { volts: 300, amps: 0.5, watts: 150 } }),
    accuracy: WT310E_ACCURACY,
    updateIntervalMs: 250,
    uncertainty: () => 0.002,
  };
  const hw = { io: { interlock }, meter, mainsVolts: 230 } as unknown as SlotHardware;
  const client = { energy: async () => energy(clock.now()) } as unknown as ObkHttpClient;
  const specs: MeasurementSpec[] = [
    { id: 'voltageErrorPct', name: 'V', unit: '%', limits: { nominal: 0, tolerance: 20 }, uncertainty: ERROR_BUDGET },
    { id: 'powerErrorPct', name: 'P', unit: '%', limits: { nominal: 0, tolerance: 20 }, uncertainty: ERROR_BUDGET },
    { id: 'pfError', name: 'PF', unit: '', limits: { nominal: 0, tolerance: 0.02 }, uncertainty: PF_BUDGET },
  ];
  const taken: MeasurementResult[] = [];
  const ctx = (attempt: number, attemptsLeft: number): StepContext =>
    ({
      clock,
      attempt,
      signal: new AbortController().signal,
      measure: (id: string, value: number, m: { contributions: Record<string, number> }) => {
        const spec = specs.find((s) => s.id === id)!;
        const c = combineUncertainty(spec.uncertainty, m.contributions, id);
        const j = judge(value, c.U, resolveLimits(spec.limits, id, 0), { guardBand: 'uncertainty' });
        const r = { id, value, U: c.U, verdict: j.verdict, decision: decide(j.verdict, 'retest', attemptsLeft) } as unknown as MeasurementResult;
        taken.push(r);
        return r;
      },
      check: () => true,
      unit: () => {},
    }) as unknown as StepContext;
  const load = { name: 'M60', watts: 60, pf: 0.6, pin: 7 } as LoadSpec;
  return { clock, hw, client, ctx, specs, load, taken };
}

t.test('an undecided PF takes more windows in the same attempt, until U fits inside the margin', async (t) => {
  // Off by 0.008 (inside ±0.02): two windows leave U ≈ 0.018, so value ± U straddles the limit.
  const b = bench({ pfOffset: 0.008, pfNoise: 0.001 });
  const pool = emptyWindowPool();
  await b.clock.sleep(1300);
  const r = await measurePoint(b.ctx(1, 1), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, pool });
  const pf = b.taken.find((m) => m.id === 'pfError')!;
  t.ok(r.windows > 3, `more windows than V and P needed (${r.windows})`);
  t.ok(r.windows <= 12, 'bounded by the sequential cap');
  t.equal(pf.verdict, 'pass', `decided: ${pf.value!.toFixed(4)} ± ${pf.U.toFixed(4)} inside ±0.02`);
  t.ok(Math.abs(pf.value!) + pf.U <= 0.02);
  t.same(pool.marginal, {}, 'nothing left for a retest');
});

t.test('a PF left marginal is what the retest plans for, and the retest adds windows to the pool', async (t) => {
  // Off by 0.0135: the sequential cap (12 windows) cannot get U under the 0.0065 margin; 30 more pooled can.
  const b = bench({ pfOffset: 0.0135, pfNoise: 0.0005 });
  const pool = emptyWindowPool();
  await b.clock.sleep(1300);
  await measurePoint(b.ctx(1, 1), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, pool });
  const first = b.taken.find((m) => m.id === 'pfError')!;
  t.equal(first.verdict, 'marginal', `first attempt undecided: ${first.value!.toFixed(4)} ± ${first.U.toFixed(4)}`);
  t.ok(pool.marginal.pf !== undefined && Math.abs(pool.marginal.pf - first.value!) < 1e-12, 'the marginal PF value kept for the retest');
  const before = pool.windows.length;
  b.taken.length = 0;
  await measurePoint(b.ctx(2, 0), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, pool });
  const second = b.taken.find((m) => m.id === 'pfError')!;
  t.ok(pool.windows.length - before > 2, `the retest took ${pool.windows.length - before} windows for the PF`);
  t.equal(second.verdict, 'pass', `pooled: ${second.value!.toFixed(4)} ± ${second.U.toFixed(4)}`);
});

t.test('a PF too close to its limit for any count to decide: the retest does not spend windows on it', async (t) => {
  const b = bench({ pfOffset: 0.0175, pfNoise: 0.0005 });
  const pool = emptyWindowPool();
  await b.clock.sleep(1300);
  await measurePoint(b.ctx(1, 1), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, pool });
  t.equal(b.taken.find((m) => m.id === 'pfError')!.verdict, 'marginal');
  const before = pool.windows.length;
  b.taken.length = 0;
  await measurePoint(b.ctx(2, 0), b.hw, b.client, b.load, { settleMs: 0, specs: b.specs, pool });
  t.equal(b.taken.find((m) => m.id === 'pfError')!.verdict, 'marginal', 'still undecided: a truly marginal unit');
  t.ok(pool.windows.length - before <= 3, `the retest took only ${pool.windows.length - before} windows`);
});
