import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { parseJig } from '../rig/jig/jig-config.ts';
import { loadDeviceTemplate } from '../rig/dut/device-template.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { simPlugAddress, startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../sim/jig/virtual-jig.ts';

const JIG = parseJig(JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url), 'utf8')), 'virtual-1slot (test)');

function image(): { bytes: Uint8Array; offset: number; name: string } {
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5, appBytes: 32 * 1024 });
  const plan = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  return { bytes: plan.bytes, offset: plan.offset, name: im.name };
}

/** flash + provision + the given suites, as a plan file in a fresh directory. */
function planWith(suites: unknown[]): ReturnType<typeof loadPlan> {
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-meterplan-'));
  const plan = {
    schema: 'plugrig.plan/1',
    name: 'metering-test',
    device: { template: 'CB2S-RMC021' },
    defaults: { retries: 0, stepTimeoutMs: 120000, onMarginal: 'fail' },
    suites: [{ suite: 'flash', diff: true, limits: { flashTime: { high: 60, guardBand: 'none' } } }, { suite: 'provision' }, ...suites],
  };
  writeFileSync(join(dir, 'metering-test.json'), JSON.stringify(plan));
  return loadPlan('metering-test', dir);
}

export async function runVirtual(suites: unknown[], o: { defects?: string[] } = {}) {
  const clock = new VirtualClock();
  const sim = startVirtualJig(JIG, { clock, plugModel: 'obk', ...(o.defects ? { defects: () => o.defects! } : {}) });
  try {
    const results = await runStation({
      jig: JIG,
      jigPath: 'virtual-1slot (test)',
      plan: planWith(suites),
      image: image(),
      baudRate: 2_000_000,
      outDir: mkdtempSync(join(tmpdir(), 'plugrig-meter-')),
      clock,
      log: createLogger({}, 'silent'),
      endpoints: sim.endpoints,
      provisioning: { template: loadDeviceTemplate('fixtures/devices/rmc021.json'), wifi: DEFAULT_VIRTUAL_WIFI, secrets: [] },
      resolveHttp: sim.resolvePlug,
      defaultPlug: (id: number) => ({ url: simPlugAddress(id) }),
    });
    return { slot: results[0]!, modelMs: clock.now(), sim };
  } finally {
    await sim.vj.dispose();
  }
}

const METERING = { suite: 'metering', loadPoints: [{ load: 'none' }, { load: 'R100' }, { load: 'M60' }], limits: { powerErrorPct: { nominal: 0, tolerance: 20 }, voltageErrorPct: { nominal: 0, tolerance: 20 }, currentErrorPct: { nominal: 0, tolerance: 20 }, pfError: { nominal: 0, tolerance: 0.2 } } };

t.test('metering on the virtual jig: every point measured with a budget', async (t) => {
  const r = await runVirtual([METERING]);
  const steps = r.slot.steps.filter((s) => s.suite === 'metering');
  t.comment(steps.map((s) => `${s.name}: ${s.status} ${s.measurements.map((m) => `${m.id}=${m.value?.toFixed(3)}±${m.U.toFixed(3)} ${m.verdict}`).join(' ')}`).join('\n'));
  t.equal(steps.length, 4);
  t.ok(steps.every((s) => s.status === 'pass'), 'an uncalibrated unit (±5 % front end) is within ±20 %');
  const r100 = steps.find((s) => s.name.includes('R100'))!;
  t.same(r100.measurements.map((m) => m.id), ['voltageErrorPct', 'currentErrorPct', 'powerErrorPct'], 'V, I (0.43 A ≥ 0.25 A) and P judged at R100');
  for (const m of r100.measurements) t.same(m.contributions.map((c) => c.name), ['reference accuracy', 'reference resolution', 'pulse quantization (±1 count)', 'BL0937 jitter', 'integration-interval mismatch'], `${m.id}: the whole budget`);
  t.ok(steps.find((s) => s.name.includes('M60'))!.measurements.some((m) => m.id === 'pfError'), 'PF judged at the inductive point');
  t.comment(`modelled ${(r.modelMs / 1000).toFixed(1)} s`);
});

const CALIBRATE = {
  suite: 'calibrate',
  load: 'R100',
  windows: 10,
  reverify: [{ load: 'R25', limits: { powerErrorPct: { nominal: 0, tolerance: 3 } } }, { load: 'M60' }],
  limits: { voltageErrorPct: { nominal: 0, tolerance: 0.5 }, currentErrorPct: { nominal: 0, tolerance: 1 }, powerErrorPct: { nominal: 0, tolerance: 1 }, pfError: { nominal: 0, tolerance: 0.05 } },
};

t.test('calibrate on the virtual jig: average at R100, factors set in one window, cal point and re-verify within limits', async (t) => {
  const r = await runVirtual([CALIBRATE]);
  const steps = r.slot.steps.filter((s) => s.suite === 'calibrate');
  t.comment(steps.map((s) => `${s.name}: ${s.status} ${s.measurements.map((m) => `${m.id}=${m.value?.toFixed(3)}±${m.U.toFixed(3)} ${m.verdict}`).join(' ')}`).join('\n'));
  const cal = steps.find((s) => s.name.startsWith('calibrate at'))!;
  t.equal(cal.status, 'pass', 'calibration applied');
  t.comment(JSON.stringify(cal.data));
  const after = steps.find((s) => s.name.startsWith('after calibration'))!;
  const p = after.measurements.find((m) => m.id === 'powerErrorPct')!;
  t.ok(Math.abs(p.value!) < 0.3, `power error at the cal point after calibration ${p.value?.toFixed(3)} % (was ~9 %)`);
  const v = after.measurements.find((m) => m.id === 'voltageErrorPct')!;
  const i = after.measurements.find((m) => m.id === 'currentErrorPct')!;
  // At 0.44 A a current window holds ~34 CF1 counts: one count is 2.9 %, and the check takes one or two of them.
  t.ok(Math.abs(v.value!) < 0.3 && Math.abs(i.value!) < 3, `V and I at the cal point after calibration ${v.value?.toFixed(3)} % and ${i.value?.toFixed(3)} % (were ~4 % and ~-5 %)`);
  t.comment(`modelled ${(r.modelMs / 1000).toFixed(1)} s`);
});

// ---- the method's parts on their own ----

import { markFreshness, sampleAlignedWindows, sampleQuietWindows, type AlignedWindow } from '../suites/metrology/sample-windows.ts';
import { combinedPct, errorTerms, plannedWindows, windowPlan, ERROR_BUDGET } from '../suites/metrology/budget.ts';
import type { ObkEnergy } from '../rig/dut/obk-http-client.ts';
import { countingWindows } from '../suites/metering-point.ts';
import { Bl0937Chip } from '../sim/plug/bl0937/bl0937-chip.ts';

function snap(v: number, i: number, p: number, wh: number): ObkEnergy {
  return { voltage: v, current: i, power: p, apparentPower: 0, reactivePower: 0, factor: 1, consumptionTotalWh: wh };
}

t.test('V/I freshness follows the SEL parity, not whether a value changed', async (t) => {
  // The driver alternates: window 0 counts V, 1 counts I, 2 V, ... The I count repeats (34 counts
  // twice) and one stale V shows re-divided by a short window (240 → 301): a "did it change" rule
  // gets both wrong.
  const published = [snap(240.1, 0.4, 111, 1), snap(240.1, 0.403, 111, 2), snap(240.5, 0.403, 112, 3), snap(240.5, 0.403, 111, 4), snap(240.2, 0.403, 111, 5), snap(301.0, 0.41, 111, 6), snap(240.3, 0.41, 111, 7)];
  const windows: AlignedWindow[] = published.slice(1).map((plug, k) => ({ plug, ref: { volts: 230, amps: 0.4, watts: 100, pf: 1, hz: 50, timestamp: k }, seenAt: k * 1000, offsetMs: 0, fresh: { voltage: true, current: true }, follows: true }));
  markFreshness(windows, published.slice(0, -1).map((snapshot) => ({ snapshot, adjacent: true })));
  t.same(windows.map((w) => (w.fresh.voltage ? 'V' : 'I')), ['I', 'V', 'I', 'V', 'I', 'V'], 'one parity over the run');
  // A missed boundary starts a new stretch, whose parity is decided on its own evidence.
  const w2 = windows.map((w) => ({ ...w }));
  markFreshness(w2, published.slice(0, -1).map((snapshot, k) => ({ snapshot, adjacent: k !== 3 })));
  t.equal(w2[3]!.follows, false, 'the window after a gap has no clean predecessor for its PF');
});

t.test('the budget: quantization is triangular and each run adds one ±1 count', async (t) => {
  t.equal(ERROR_BUDGET.contributions.find((c) => c.name === 'pulse quantization (±1 count)')!.distribution, 'triangular');
  const accuracy = { pctOfReading: 0, source: 'test' };
  const one = errorTerms({ quantity: 'watts', value: 60, accuracy, plan: windowPlan('watts', 8, true, 1), driftPctPerWindow: 0, offsetFraction: 0 });
  const two = errorTerms({ quantity: 'watts', value: 60, accuracy, plan: windowPlan('watts', 8, true, 2), driftPctPerWindow: 0, offsetFraction: 0 });
  t.ok(Math.abs(one['pulse quantization (±1 count)'] - 100 / (40 * 8)) < 1e-9, '±1 count over the run: 1/(counts per window × windows)');
  t.ok(Math.abs(two['pulse quantization (±1 count)'] / one['pulse quantization (±1 count)'] - Math.SQRT2) < 1e-9, 'two runs: √2 as much');
  t.ok(Math.abs(combinedPct({ ...one, 'BL0937 jitter': 0 }) - one['pulse quantization (±1 count)'] / Math.sqrt(6)) < 1e-9, 'divisor √6');
});

t.test('the budget counts the V and I windows the SEL parity gave, not the better half of them', async (t) => {
  const w = (vFresh: boolean): AlignedWindow => ({ plug: snap(230, 0.4, 92, 1), ref: { volts: 230, amps: 0.4, watts: 92, pf: 1, hz: 50, timestamp: 0 }, seenAt: 0, offsetMs: 0, fresh: { voltage: vFresh, current: !vFresh }, follows: true });
  const ivi = [w(false), w(true), w(false)];
  t.equal(countingWindows(ivi, 'volts'), 1, 'I, V, I: one voltage window');
  t.equal(countingWindows(ivi, 'amps'), 2, 'I, V, I: two current windows');
  t.equal(countingWindows(ivi, 'volts', 4), 2, 'one more window would count V (they alternate)');
  t.equal(countingWindows(ivi, 'amps', 4), 2, 'and not I');
  t.equal(countingWindows(ivi, 'watts'), undefined, 'P: every window');
  const accuracy = { pctOfReading: 0.1, source: 'test' };
  const U = (counted?: number) => 2 * combinedPct(errorTerms({ quantity: 'volts', value: 230, accuracy, plan: windowPlan('volts', 3, true, 1, counted), driftPctPerWindow: 0, offsetFraction: 0 }));
  t.ok(U(countingWindows(ivi, 'volts')) > U(), `U of V from one window (${U(1).toFixed(3)} %) is larger than the two ⌈3/2⌉ would claim (${U().toFixed(3)} %)`);
});

t.test('window planning: a retest plans for the marginal value, hopeless limits get the minimum', async (t) => {
  const accuracy = { pctOfReading: 0.1, source: 'test' };
  const terms = (q: 'watts' | 'amps', value: number) => (n: number) => errorTerms({ quantity: q, value, accuracy, plan: windowPlan(q, n, true), driftPctPerWindow: 0, offsetFraction: 0 });
  const U = (f: (n: number) => ReturnType<typeof errorTerms>, n: number): number => 2 * combinedPct(f(n));
  const p60 = terms('watts', 60);
  const n = plannedWindows({ targetPct: undefined, tolerancePct: 1, min: 2, max: 8, terms: p60 });
  t.ok(U(p60, n) <= 0.6 && (n === 2 || U(p60, n - 1) > 0.6), `fewest windows for U ≤ 0.6 of the tolerance (${n})`);
  // I at 0.26 A: no count within 8 windows gets U under the ±1 % tolerance: the minimum, not 8.
  t.equal(plannedWindows({ targetPct: undefined, tolerancePct: 1, min: 2, max: 8, terms: terms('amps', 0.26) }), 2);
  const r = plannedWindows({ targetPct: undefined, tolerancePct: 1, min: 2, max: 30, terms: p60, marginalValuePct: 0.7 });
  t.ok(U(p60, r) <= 0.3 && U(p60, r - 1) > 0.3, `a value of 0.7 % needs U ≤ 0.3 % (${r} windows)`);
  t.equal(plannedWindows({ targetPct: undefined, tolerancePct: 1, min: 2, max: 8, terms: p60, marginalValuePct: 0.95 }), 2, 'U cannot get under 0.05 %: no point measuring long');
});

/**
 * A plug that publishes window k (k s .. k+1 s) at k+1 s, with the load switched at `switchAt`
 * (0 W before, 100 W after): the window the switch falls in reads the mix.
 */
function switchingPlug(switchAt: number, watts = { before: 0, after: 100 }) {
  return (t: number): ObkEnergy => {
    const k = Math.floor(t / 1000) - 1;
    const start = k * 1000;
    const end = start + 1000;
    const share = Math.min(1, Math.max(0, (end - switchAt) / 1000));
    const p = k < 0 ? watts.before : watts.before * (1 - share) + watts.after * share;
    return snap(230 + k * 0.01, 0.4 + k * 0.001, p, k + 1);
  };
}
const REF = (clock: VirtualClock) => async () => ({ volts: 230, amps: 0.43, watts: 100, pf: 1, hz: 50, timestamp: clock.now() });

t.test('cleanAfter: the window a load switch fell in is never used, and settling costs only the windows it overlaps', async (t) => {
  const clock = new VirtualClock();
  const published = switchingPlug(300);
  await clock.sleep(300);
  const run = await sampleAlignedWindows({ clock, plugEnergy: async () => published(clock.now()), reference: REF(clock) }, 3, { cleanAfter: clock.now() });
  t.equal(run.windows.length, 3);
  t.ok(run.windows.every((w) => w.plug.power === 100), `no mixed window (saw ${run.windows.map((w) => w.plug.power).join(', ')})`);
  t.equal(run.windows[0]!.follows, false, 'the first kept window follows the mixed one');
  t.ok(run.consecutive);
  t.ok(run.windows[0]!.seenAt < 2100, `the first clean window (1 s .. 2 s) is the first kept (seen at ${run.windows[0]!.seenAt} ms)`);

  // Switched at 800 ms with 300 ms of settling: the window 1 s .. 2 s still overlaps the settling.
  const c2 = new VirtualClock();
  const p2 = switchingPlug(800);
  await c2.sleep(800);
  const settled = await sampleAlignedWindows({ clock: c2, plugEnergy: async () => p2(c2.now()), reference: REF(c2) }, 2, { cleanAfter: c2.now() + 300 });
  t.ok(settled.windows[0]!.seenAt >= 3000 && settled.windows[0]!.seenAt < 3100, `first kept window is 2 s .. 3 s (seen at ${settled.windows[0]!.seenAt} ms)`);

  // A reference that shows a 1 s update which ended up to 1 s before the query: its reading after
  // the first clean plug window (at 2 s) may still hold time before the switch, so that window goes too.
  const c4 = new VirtualClock();
  const p4 = switchingPlug(300);
  await c4.sleep(300);
  const lagging = await sampleAlignedWindows({ clock: c4, plugEnergy: async () => p4(c4.now()), reference: REF(c4), referenceUpdateMs: 1000 }, 2, { cleanAfter: c4.now() });
  t.ok(lagging.windows[0]!.seenAt >= 3000 && lagging.windows[0]!.seenAt < 3100, `with a 1 s reference update the first kept window is 2 s .. 3 s (seen at ${lagging.windows[0]!.seenAt} ms)`);

  // Without cleanAfter the window running at the start is taken: this is what the option guards.
  const c3 = new VirtualClock();
  const p3 = switchingPlug(300);
  await c3.sleep(300);
  const raw = await sampleAlignedWindows({ clock: c3, plugEnergy: async () => p3(c3.now()), reference: REF(c3) }, 1);
  t.ok(raw.windows[0]!.plug.power < 100, `without it the mixed window is read (${raw.windows[0]!.plug.power} W)`);
});

t.test('no-load windows: only windows that began after the last switch, though most boundaries do not show', async (t) => {
  const clock = new VirtualClock();
  // A 2 kW load switched off at 1.2 s; at no load only the voltage moves, and only every other window.
  const switchAt = 1200;
  const published = (now: number): ObkEnergy => {
    const k = Math.floor(now / 1000) - 1;
    const share = Math.min(1, Math.max(0, (k * 1000 + 1000 - switchAt) / 1000));
    const p = k < 0 ? 2000 : 2000 * (1 - share);
    const vWindow = Math.floor(k / 2) * 2;
    return snap(229 + (vWindow % 7) * 0.13, 0, p, k <= 1 ? 1 + k : 2);
  };
  await clock.sleep(switchAt);
  const run = await sampleQuietWindows({ clock, plugEnergy: async () => published(clock.now()), reference: REF(clock) }, 2, { cleanAfter: clock.now() });
  t.same(run.readings.map((r) => r.plug.power), [0, 0], 'both readings are of clean windows');
  t.ok(run.readings[0]!.seenAt >= 3000 && run.readings[1]!.seenAt >= 4000 && run.readings[1]!.seenAt < 5000, `read at ${run.readings.map((r) => r.seenAt).join(', ')} ms`);
  t.equal(run.reference.watts, 100, 'the reference read alongside');
});

t.test('a metering fault injected into the BL0937: its nonlinearity peaks at the given amplitude', async (t) => {
  const clock = new VirtualClock();
  const chip = new Bl0937Chip({ clock, seed: 5, input: () => ({ volts: 230, amps: 1, watts: 230 }) });
  chip.injectNonlinearity({ amplitude: 0.012, shape: [1, 0, 0] });
  t.equal(chip.truth().nonlinearityAmplitude.power, 0.012);
  const tr = chip.truth().transfer;
  // Linear in log level: +1.2 % at full scale (30 A), −1.2 % at the bottom of the 2500:1 range.
  const at = (amps: number): number => chip.frequencyOf('current', { volts: 230, amps, watts: 230 * amps }) / (tr.hzPerAmp * amps) - 1;
  // (the unit's shunt is within ±5 % of 1 mΩ, so the level sits a little off the range ends)
  t.ok(Math.abs(at(30) - 0.012) < 5e-4 && Math.abs(at(30 / 2500) + 0.012) < 5e-4 && at(0.26) < at(8.7), `ends of the range: ${at(30)}, ${at(30 / 2500)}`);
});
