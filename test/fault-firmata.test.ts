import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock, type Clock } from '../rig/core/clock.ts';
import { InterlockError } from '../rig/core/errors.ts';
import { SILENT_BOARD_DETECTION_MS } from '../rig/jig/board-liveness.ts';
import { openJigBoard, type FirmataStream } from '../rig/jig/jig-board.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import type { InterlockFault } from '../rig/jig/mains-interlock.ts';
import { SlotIo } from '../rig/jig/slot-io.ts';
import { VirtualJig } from '../sim/jig/virtual-jig.ts';
import { WATCHDOG_HOLD_MS } from '../sim/jig/watchdog-relay.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

/**
 * Jig faults with mains on: the I/O board hangs with its port open (silent), its adapter vanishes,
 * the lid opens, the E-stop is pressed. Each is injected in the virtual jig; the verdict is what the
 * virtual plug's mains terminals saw, not what the interlock believes.
 */
const ONE_SLOT = loadJigFile(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname);
const MAINS_PIN = 5;
/** Mains at the plug must be off this long after the fault at the latest: detection, then the watchdog's hold. */
const SILENT_BOUND_MS = SILENT_BOARD_DETECTION_MS + WATCHDOG_HOLD_MS + 100;

async function rig() {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const vj = VirtualJig.fromSpec(ONE_SLOT, { clock, seed: 5, http: false });
  vj.attachTo(bus);
  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:io0', baudRate: 57600 });
  const jb = await openJigBoard({ stream: stream as unknown as FirmataStream, clock: clock as Clock, timeoutMs: 3000, name: 'io0' });
  const io = await SlotIo.open(jb, ONE_SLOT, 1, { clock });
  const faults: InterlockFault[] = [];
  io.interlock.on('fault', (f) => faults.push(f));
  await clock.sleep(50);
  const teardown = async (): Promise<void> => {
    io.dispose();
    await vj.dispose();
    if (stream.isOpen) await new Promise<void>((r) => stream.close(() => r()));
  };
  return { clock, bus, vj, jb, io, faults, teardown };
}

function mainsOffAt(vj: VirtualJig, since: number): number | undefined {
  return vj.history(1).find((e) => e.at >= since && e.changed.includes('mainsEnergised') && !e.state.mainsEnergised)?.at;
}

t.test(`silent-but-open board with mains on: detected within ${SILENT_BOARD_DETECTION_MS} ms, mains at the plug off within ${SILENT_BOUND_MS} ms`, async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  await r.io.interlock.mainsOn();
  await r.clock.sleep(1000);
  t.equal(r.vj.physical(1).mainsEnergised, true, 'mains live, and it stays live while the board answers (1 s of probes)');
  t.same(r.faults, [], 'no false trip from the liveness probes');
  const board = r.vj.boards.get('io0')!;
  board.freeze();
  const at = r.clock.now();
  await r.clock.sleep(SILENT_BOUND_MS + 200);
  t.equal(r.jb.loss?.reason, 'silent', 'the board is marked silent');
  t.equal(r.faults[0]?.reason, 'link-lost', 'the interlock tripped on it');
  t.ok(r.faults[0]!.at - at <= SILENT_BOARD_DETECTION_MS, `tripped ${r.faults[0]!.at - at} ms after the board went silent`);
  t.equal(board.driven(MAINS_PIN), true, 'the hung board still drives its mains relay pin (it never ran the off-write)');
  const off = mainsOffAt(r.vj, at);
  t.ok(off !== undefined && off - at <= SILENT_BOUND_MS, `mains at the plug off ${off === undefined ? 'never' : `${off - at} ms`} after the board hung: the watchdog relay, not the board`);
  await t.rejects(r.io.interlock.mainsOn(), InterlockError, 'mains refused while the board is lost');
});

t.test('adapter of the I/O board vanishes with mains on: trip at once, mains at the plug off within the watchdog bound', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  await r.io.interlock.mainsOn();
  await r.clock.sleep(300);
  const at = r.clock.now();
  r.bus.unplug('sim:io0');
  await r.clock.sleep(WATCHDOG_HOLD_MS + 300);
  t.ok(r.jb.loss && r.jb.loss.reason !== 'silent', `lost by ${r.jb.loss?.reason}`);
  t.equal(r.faults[0]?.reason, 'link-lost');
  t.ok(r.faults[0]!.at - at <= 50, 'tripped on the port error itself');
  const off = mainsOffAt(r.vj, at);
  t.ok(off !== undefined && off - at <= WATCHDOG_HOLD_MS + 100, `mains at the plug off after ${off === undefined ? 'never' : off - at} ms`);
  await t.rejects(r.io.interlock.mainsOn(), InterlockError);
});

for (const fault of ['lid', 'estop'] as const) {
  t.test(`${fault === 'lid' ? 'lid opened' : 'E-stop pressed'} mid-test: trip, mains at the plug off through the board`, async (t) => {
    const r = await rig();
    t.teardown(r.teardown);
    await r.io.interlock.mainsOn();
    await r.io.interlock.setLoad('R25', true);
    await r.clock.sleep(200);
    const at = r.clock.now();
    if (fault === 'lid') r.vj.setLid(1, false);
    else r.vj.pressEstop(1, true);
    await r.clock.sleep(100);
    t.equal(r.faults[0]?.reason, fault === 'lid' ? 'lid-open' : 'estop');
    const off = mainsOffAt(r.vj, at);
    t.ok(off !== undefined && off - at <= 50, `mains at the plug off ${off === undefined ? 'never' : `${off - at} ms`} after`);
    t.equal(r.vj.boards.get('io0')!.driven(MAINS_PIN), false, 'the mains relay pin was driven off (the board still answers)');
    await t.rejects(r.io.interlock.mainsOn(), InterlockError, 'latched');
  });
}
