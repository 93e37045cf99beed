import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealClock, VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile, parseJig, type JigSpec } from '../rig/jig/jig-config.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { errorChain } from '../suites/model/step-result.ts';
import type { UnitRecord } from '../reports/unit-record.ts';
import { startVirtualJig, type InProcessJig } from '../sim/jig/in-process-jig.ts';
import { syntheticStationImage, virtualStationWiring } from './fixtures/virtual-station.ts';

const JIG_PATH = new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname;
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;

/** virtual-4slot with a `faults.adapter` block on slot 2 (its USB-UART, bound by USB path 1-1.2). */
function jigWithAdapterFault(adapter: Record<string, unknown>): JigSpec {
  const raw = JSON.parse(readFileSync(JIG_PATH, 'utf8')) as { slots: Array<Record<string, unknown>> };
  raw.slots[1]!.faults = { adapter };
  return parseJig(raw, 'virtual-4slot (slot 2 adapter fault)');
}

/** The smoke plan on the in-process virtual jig on the VirtualClock (model time: no wall-clock race with the unplug). */
async function smokeRun(sim: InProcessJig, jig: JigSpec, clock: VirtualClock) {
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-station-'));
  const results = await runStation({
    jig,
    jigPath: JIG_PATH,
    plan: loadPlan('smoke', PLANS),
    image: syntheticStationImage({ seed: 3, appBytes: 200_000 }),
    baudRate: 2_000_000,
    outDir,
    clock,
    log: createLogger({}, 'silent'),
    ...virtualStationWiring(sim),
  });
  return { results, outDir };
}

t.test('4 slots in parallel; slot 2 adapter unplugged mid-flash: slot 2 fails cleanly, the others pass', async (t) => {
  // The jig file's fault knob: slot 2's USB-UART goes at its chip's 3rd FlashWrite4K (mid-write) and stays out.
  const jig = jigWithAdapterFault({ unplugAtCommand: { command: 'FlashWrite4K', nth: 3 } });
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  const { vj } = sim;
  t.teardown(() => vj.dispose());
  t.equal(vj.usbUarts?.ttyOf('1-1.2'), 'sim:ttyUSB1', 'slot 2 is on a virtual USB-UART, found by its USB path');

  const { results, outDir } = await smokeRun(sim, jig, clock);
  t.equal(vj.usbUarts?.ttyOf('1-1.2'), undefined, 'the adapter was pulled (and stayed out)');
  t.ok((vj.slot(2).chip.counters.commands.FlashWrite4K ?? 0) >= 3, 'during the write');
  t.same(results.map((r) => [r.slot, r.verdict]), [[1, 'pass'], [2, 'fail'], [3, 'pass'], [4, 'pass']]);
  const s2 = results[1]!;
  const flashStep = s2.steps.find((s) => s.name.startsWith('flash'))!;
  t.equal(flashStep.status, 'fail');
  t.equal(flashStep.attempt, 2, 'the plan allows one retry of the flash; both attempts are kept');
  t.equal(flashStep.earlierAttempts.length, 1);
  // Typed, with the unplugged adapter as the root cause (the flasher adds phase and address).
  const first = errorChain(flashStep.earlierAttempts[0]!.error);
  t.ok(first[0]?.code?.startsWith('E_'), `typed error: ${first[0]?.message}`);
  const unplugged = first.find((e) => e.name === 'TransportError');
  t.match(unplugged, { message: 'slot 2: USB-UART adapter at 1-1.2 (CH340 sim:ttyUSB1) was unplugged', context: { slot: 2, usbPath: '1-1.2', tty: 'sim:ttyUSB1' } }, 'caused by the adapter going: slot, USB path and tty named');
  t.match(first[0]!.context, { phase: 'write', address: /^0x[0-9a-f]+$/ }, 'carries the flash phase and the sector address');
  t.match(errorChain(flashStep.error).find((e) => e.name === 'TransportError'), { message: /^slot 2 UART \(USB path 1-1\.2\): no USB-UART adapter with USB path 1-1\.2 \(present: 1-1\.1 CH340 sim:ttyUSB0; 1-1\.3 CH340 sim:ttyUSB2; 1-1\.4 CH340 sim:ttyUSB3\)/ }, 'the retry found the adapter gone');
  t.match(flashStep.measurements, [{ id: 'flashTime', taken: false, verdict: 'fail' }], 'the flash time was declared and never taken');
  t.same(s2.steps.filter((s) => s.status === 'skip').length, 5, 'the mains steps of slot 2 were skipped');
  t.equal(s2.steps.at(-1)!.name, 'safe state (mains off, loads off, UART isolated)');
  t.equal(s2.steps.at(-1)!.status, 'pass', 'slot 2 still ended in its safe state');
  for (const r of results.filter((x) => x.verdict === 'pass')) {
    const m = r.steps.flatMap((s) => s.measurements);
    t.same(m.map((x) => [x.id, x.decision]), [['flashTime', 'accept'], ['mainsVoltage', 'accept'], ['loadPower', 'accept'], ['powerFactor', 'accept']], `slot ${r.slot}: every declared measurement taken and accepted`);
    t.match(m.find((x) => x.id === 'mainsVoltage'), { limits: { low: 207, high: 253, nominal: 230 }, k: 2 }, 'limits from the plan, nominal from the jig');
    t.ok(m.find((x) => x.id === 'mainsVoltage')!.U > 0, 'an expanded uncertainty from the reference meter');
    const p = m.find((x) => x.id === 'loadPower')!;
    t.same(p.contributions.map((c) => c.name), ['reference accuracy', 'nominal via measured voltage'], 'the load power budget has both terms');
    t.ok(p.contributions.every((c) => c.u > 0), 'each term contributes');
  }
  for (const r of results) {
    const unsafe = vj.slot(r.slot).history.where((s) => s.mainsEnergised && (s.uartConnected || s.supply3v3));
    t.same(unsafe, [], `slot ${r.slot}: mains never on together with UART or 3V3 (physical history)`);
  }
  t.equal(vj.slot(2).history.where((s) => s.mainsEnergised).length, 0, 'slot 2 never got mains');
  const unit = JSON.parse(readFileSync(join(outDir, 'slot-2.json'), 'utf8')) as UnitRecord;
  t.match(unit, { complete: true, verdict: 'fail', run: { plan: { name: 'smoke' } } });
  const failed = unit.steps.find((s) => s.error)!;
  t.match(failed.earlierAttempts[0]?.error?.message, /1-1\.2.*sim:ttyUSB1.*unplugged/, 'the record keeps the first attempt and its cause');
  t.match(failed.error?.message, /no USB-UART adapter with USB path 1-1\.2/, 'and the retry');
  const ok = JSON.parse(readFileSync(join(outDir, 'slot-1.json'), 'utf8')) as UnitRecord;
  t.match(ok, { complete: true, verdict: 'pass', unit: { mac: /^c8:47:8c/ } });
  t.equal(ok.steps.length, 9);
  t.match(readFileSync(join(outDir, 'slot-1.tap'), 'utf8'), /^TAP version 14\n/);
});

t.test('slot 2 adapter unplugged mid-flash and plugged back in 5 s later: the flash retry waits for it and saves the unit', async (t) => {
  const jig = jigWithAdapterFault({ unplugAtCommand: { command: 'FlashWrite4K', nth: 3 }, replugAfterMs: 5000 });
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  t.teardown(() => sim.vj.dispose());
  let pulledAt: number | undefined;
  sim.vj.slot(2).chip.onCommand((name, n) => {
    if (name === 'FlashWrite4K' && n === 3) pulledAt = clock.now();
  });
  const image = syntheticStationImage({ seed: 3, appBytes: 200_000 });
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-station-replug-'));
  const [r] = await runStation({ jig, jigPath: JIG_PATH, plan: loadPlan('smoke', PLANS), image, baudRate: 2_000_000, outDir, clock, log: createLogger({}, 'silent'), slots: [2], ...virtualStationWiring(sim) });
  t.equal(r!.verdict, 'pass', r!.reason ?? 'slot 2 passed');
  const flashStep = r!.steps.find((s) => s.name.startsWith('flash'))!;
  t.equal(flashStep.attempt, 2, 'on the retry');
  t.match(flashStep.earlierAttempts[0]?.error?.message, /sim:ttyUSB1.*unplugged|unplugged.*sim:ttyUSB1/, 'the first attempt failed with the unplug');
  t.equal(sim.vj.usbUarts?.ttyOf('1-1.2'), 'sim:ttyUSB4', 'the adapter came back under the next tty name');
  // The retry starts at once; its open waits for the adapter, so the attempt lasts past the replug.
  t.ok(pulledAt !== undefined && flashStep.startedT < pulledAt + 5000 && flashStep.finishedT > pulledAt + 5000, `pulled at ${pulledAt} ms, retry ${flashStep.startedT}-${flashStep.finishedT} ms`);
  const chip = sim.vj.slot(2).chip;
  t.equal(Buffer.compare(chip.flash.read(image.offset, image.bytes.length), image.bytes), 0, "the chip holds the image (the simulator's flash, not the flasher's claim)");
  t.same(sim.vj.slot(2).history.where((s) => s.mainsEnergised && (s.uartConnected || s.supply3v3)), [], 'mains never on with the UART side connected');
});

t.test('plan flash-only: flashes, never switches mains, ends in the safe state', async (t) => {
  const path = new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname;
  const jig = loadJigFile(path);
  const clock = new RealClock();
  const { vj, endpoints } = startVirtualJig(jig, { clock });
  t.teardown(() => vj.dispose());
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5, appBytes: 100_000 });
  const info = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' });
  const plan = info.bytesToWrite(false);
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-station-flash-only-'));
  const [r] = await runStation({ jig, jigPath: path, plan: loadPlan('flash-only', PLANS), image: { bytes: plan.bytes, offset: plan.offset, name: im.name }, baudRate: 2_000_000, outDir, clock, log: createLogger({}, 'silent'), endpoints });
  t.equal(r!.verdict, 'pass', r!.reason ?? 'flash-only passes');
  t.same(r!.steps.map((s) => s.status), ['pass', 'pass', 'pass', 'pass']);
  t.match(r!.steps[2]!.measurements, [{ id: 'flashTime', taken: true, decision: 'accept' }]);
  t.equal(vj.slot(1).history.where((s) => s.mainsEnergised).length, 0, 'mains never energised');
  t.ok(vj.slot(1).history.where((s) => s.uartConnected && s.supply3v3).length > 0, 'the UART side was connected for the flash');
  t.match(vj.slot(1).history.current(), { mainsEnergised: false, uartConnected: false, supply3v3: false, loadsOn: [] }, 'the physical end state is safe');
  const rec = JSON.parse(readFileSync(join(outDir, 'slot-1.json'), 'utf8')) as UnitRecord;
  t.match(rec, { complete: true, verdict: 'pass', run: { plan: { name: 'flash-only' } } });
});
