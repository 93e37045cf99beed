import t from 'tap';
import { dropHandOff, expectHandOff, HAND_OFF_MAX_GAP_MS, handOffWanted, leaveHandOff, takeHandOff } from '../suites/calibration-hand-off.ts';
import type { AlignedWindow } from '../suites/metrology/sample-windows.ts';
import type { SlotHardware } from '../suites/slot-hardware.ts';
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

/** A small image, flash + provision + `suites` on the virtual 1-slot jig in model time. */
async function runVirtual(suites: unknown[]) {
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5, appBytes: 32 * 1024 });
  const w = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-handoff-plan-'));
  const plan = { schema: 'plugrig.plan/1', name: 'hand-off-test', device: { template: 'CB2S-RMC021' }, defaults: { retries: 0, stepTimeoutMs: 120000, onMarginal: 'fail' }, suites: [{ suite: 'flash', diff: true, limits: { flashTime: { high: 60, guardBand: 'none' } } }, { suite: 'provision' }, ...suites] };
  writeFileSync(join(dir, 'hand-off-test.json'), JSON.stringify(plan));
  const clock = new VirtualClock();
  const sim = startVirtualJig(JIG, { clock, plugModel: 'obk' });
  try {
    const results = await runStation({
      jig: JIG,
      jigPath: 'virtual-1slot (test)',
      plan: loadPlan('hand-off-test', dir),
      image: { bytes: w.bytes, offset: w.offset, name: im.name },
      baudRate: 2_000_000,
      outDir: mkdtempSync(join(tmpdir(), 'plugrig-handoff-')),
      clock,
      log: createLogger({}, 'silent'),
      endpoints: sim.endpoints,
      provisioning: { template: loadDeviceTemplate('fixtures/devices/rmc021.json'), wifi: DEFAULT_VIRTUAL_WIFI, secrets: [] },
      resolveHttp: sim.resolvePlug,
      defaultPlug: (id: number) => ({ url: simPlugAddress(id) }),
    });
    return { slot: results[0]! };
  } finally {
    await sim.vj.dispose();
  }
}

// ---- what the calibration accepts: only windows nothing can have disturbed since ----

type Hw = Pick<SlotHardware, 'calibrationHandOff' | 'io'>;
function fakeHw(state: { mains: string; loads: Record<string, string>; fault?: unknown }): Hw {
  const io = { interlock: { state: () => ({ uart: 'off', power3v3: 'off', needsReinit: false, inputs: {}, fault: undefined, ...state }) } };
  return { io } as unknown as Hw;
}
const W = { plug: { voltage: 230, current: 8.7, power: 2000, apparentPower: 0, reactivePower: 0, factor: 1, consumptionTotalWh: 1 }, ref: { volts: 230, amps: 8.7, watts: 2000, pf: 1, hz: 50, timestamp: 0 }, seenAt: 1000, offsetMs: 0, fresh: { voltage: true, current: false }, follows: true } as AlignedWindow;
const ON = { mains: 'on', loads: { R2000: 'on', R60: 'off' } };

t.test('takeHandOff: the as-found windows go to the calibration only at its load, right after, with only that load on', async (t) => {
  const left = (state: Parameters<typeof fakeHw>[0] = ON, load = 'R2000'): Hw => {
    const hw = fakeHw(state);
    expectHandOff(hw, load);
    leaveHandOff(hw, [W, W], 1000);
    return hw;
  };
  t.equal(takeHandOff(left(), 'R2000', 1000 + HAND_OFF_MAX_GAP_MS)?.length, 2, 'taken within the gap');
  t.equal(takeHandOff(left(), 'R2000', 1001 + HAND_OFF_MAX_GAP_MS), undefined, 'not after a longer gap (something else may have run)');
  t.equal(takeHandOff(left(ON, 'R60'), 'R2000', 1500), undefined, 'not windows of another load');
  t.equal(takeHandOff(left({ mains: 'on', loads: { R2000: 'on', R60: 'on' } }), 'R2000', 1500), undefined, 'not with another load on too');
  t.equal(takeHandOff(left({ mains: 'on', loads: { R2000: 'off', R60: 'off' } }), 'R2000', 1500), undefined, 'not once the load went off');
  t.equal(takeHandOff(left({ mains: 'on', loads: { R2000: 'switching', R60: 'off' } }), 'R2000', 1500), undefined, 'not while it is switching');
  t.equal(takeHandOff(left({ mains: 'off', loads: { R2000: 'on', R60: 'off' } }), 'R2000', 1500), undefined, 'not with mains off');
  t.equal(takeHandOff(left({ ...ON, fault: { reason: 'lid' } }), 'R2000', 1500), undefined, 'not after an interlock fault');
  const hw = left();
  t.ok(takeHandOff(hw, 'R2000', 1500), 'taken');
  t.equal(takeHandOff(hw, 'R2000', 1500), undefined, 'taken once: a retry of the calibration takes its own windows');
  const dropped = left();
  dropHandOff(dropped);
  t.equal(takeHandOff(dropped, 'R2000', 1500), undefined, 'a metering attempt that starts over drops what was left');
  t.ok(handOffWanted(dropped, 'R2000') && !handOffWanted(dropped, 'R60') && !handOffWanted(dropped, undefined), 'wanted only at the calibration load');
  t.notOk(handOffWanted(fakeHw(ON), 'R2000'), 'and only when a calibration expects it');
});

// ---- on the virtual jig (its PZEM-004T reference: V judged within ±1 %): as found at R100, then calibrated there without switching it again ----

const LIMITS = { powerErrorPct: { nominal: 0, tolerance: 20 }, voltageErrorPct: { nominal: 0, tolerance: 20 }, currentErrorPct: { nominal: 0, tolerance: 20 }, pfError: { nominal: 0, tolerance: 0.2 } };
const metering = (last: string) => ({ suite: 'metering', settleMs: 250, loadPoints: [{ load: 'M60' }, { load: last }], limits: LIMITS });
const CALIBRATE = {
  suite: 'calibrate',
  load: 'R100',
  windows: 7,
  reverify: [],
  limits: { voltageErrorPct: { nominal: 0, tolerance: 1 }, currentErrorPct: { nominal: 0, tolerance: 6 }, powerErrorPct: { nominal: 0, tolerance: 1 } },
};

t.test('the calibration averages the as-found windows at its load: fewer new windows, no switch, same result', async (t) => {
  const handed = await runVirtual([metering('R100'), CALIBRATE]);
  const control = await runVirtual([metering('R25'), CALIBRATE]);
  const stepsOf = (r: typeof handed) => r.slot.steps;
  for (const [what, r] of [['handed', handed], ['control', control]] as const) {
    t.comment(`${what}: ${stepsOf(r).filter((s) => s.suite === 'metering' || s.suite === 'calibrate').map((s) => `${s.name.slice(0, 40)} ${((s.finishedT - s.startedT) / 1000).toFixed(2)} s ${s.status} ${JSON.stringify(s.data?.fromAsFound ?? s.data?.handedToCalibration ?? '')}`).join('\n')}`);
  }
  const asFound = stepsOf(handed).find((s) => s.name.startsWith('metering at R100'))!;
  const cal = stepsOf(handed).find((s) => s.name.startsWith('calibrate at'))!;
  const calControl = stepsOf(control).find((s) => s.name.startsWith('calibrate at'))!;
  t.equal(asFound.status, 'pass');
  const n = asFound.data?.handedToCalibration as number;
  t.ok(n >= 2, `the as-found step left its ${n} windows`);
  t.equal(cal.data?.fromAsFound, n, 'the calibration averaged all of them');
  t.equal(cal.data?.windows, 7, 'the plan\'s number of windows in all');
  t.equal(calControl.data?.fromAsFound, 0, 'after another load the calibration takes its own');
  const ms = (s: typeof cal) => s.finishedT - s.startedT;
  // Each window not taken again is a second, and the switch-on window is not lost.
  t.ok(ms(cal) <= ms(calControl) - 1000 * n, `calibration ${ms(cal)} ms vs ${ms(calControl)} ms taking all 7`);
  for (const [what, r] of [['handed', handed], ['control', control]] as const) {
    const after = stepsOf(r).find((s) => s.name.startsWith('after calibration'))!;
    const p = after.measurements.find((m) => m.id === 'powerErrorPct')!;
    const v = after.measurements.find((m) => m.id === 'voltageErrorPct')!;
    t.ok(after.status === 'pass' && Math.abs(p.value!) < 0.3 && Math.abs(v.value!) < 0.3, `${what}: at the cal point after calibration P ${p.value?.toFixed(3)} %, V ${v.value?.toFixed(3)} %`);
  }
});
