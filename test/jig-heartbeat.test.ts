import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock, type Clock } from '../rig/core/clock.ts';
import { openJigBoard, type FirmataStream } from '../rig/jig/jig-board.ts';
import { HEARTBEAT_PERIOD_MS, type MainsHeartbeat } from '../rig/jig/heartbeat.ts';
import { loadJigFile, parseJig, type JigSpec } from '../rig/jig/jig-config.ts';
import { MainsInterlock, type InterlockInputState } from '../rig/jig/mains-interlock.ts';
import { SlotIo } from '../rig/jig/slot-io.ts';
import { VirtualJig } from '../sim/jig/virtual-jig.ts';
import { WATCHDOG_HOLD_MS } from '../sim/jig/watchdog-relay.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

/**
 * The mains watchdog: the station toggles the board's heartbeat pin while mains may be on; the
 * virtual jig's charge-pump relay drops mains once the edges stop, whatever the host did or did not
 * do. Host death is modelled by a clock that stops running the host's timers (no cleanup runs).
 */

const ONE_SLOT = loadJigFile(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname);
const HEARTBEAT_PIN = 13;
/** Stated bound: mains off at the plug within this long after the host's last edge. */
const BOUND_MS = 500;

/** The host's view of time: after die() none of its timers fire again (a process killed with -9). */
class HostClock implements Clock {
  readonly kind = 'virtual' as const;
  #dead = false;
  constructor(readonly inner: VirtualClock) {}
  now(): number {
    return this.inner.now();
  }
  at(t: number, fn: () => void): () => void {
    return this.inner.at(t, () => {
      if (!this.#dead) fn();
    });
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.inner.sleep(ms, signal);
  }
  sleepUntil(t: number, signal?: AbortSignal): Promise<void> {
    return this.inner.sleepUntil(t, signal);
  }
  die(): void {
    this.#dead = true;
  }
}

async function rig(spec: JigSpec = ONE_SLOT) {
  const clock = new VirtualClock();
  const host = new HostClock(clock);
  const bus = new VirtualSerialBus(clock);
  const vj = VirtualJig.fromSpec(spec, { clock, seed: 5, http: false });
  vj.attachTo(bus);
  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:io0', baudRate: 57600 });
  const jb = await openJigBoard({ stream: stream as unknown as FirmataStream, clock: host as unknown as Clock, timeoutMs: 3000, name: 'io0' });
  const io = await SlotIo.open(jb, spec, 1, { clock: host as unknown as Clock });
  await clock.sleep(50);
  const teardown = async (): Promise<void> => {
    io.dispose();
    await vj.dispose();
    if (stream.isOpen) await new Promise<void>((r) => stream.close(() => r()));
  };
  return { clock, host, vj, jb, io, teardown };
}

/** Clock time mains at the plug went off after `since` (undefined: still on). */
function mainsOffAt(vj: VirtualJig, since: number): number | undefined {
  return vj.history(1).find((e) => e.at >= since && e.changed.includes('mainsEnergised') && !e.state.mainsEnergised)?.at;
}

for (const stuck of ['low', 'high'] as const) {
  t.test(`host dies with mains on, heartbeat pin stuck ${stuck}: mains at the plug drops within ${BOUND_MS} ms`, async (t) => {
    const r = await rig();
    t.teardown(r.teardown);
    await r.io.interlock.mainsOn();
    t.equal(r.vj.physical(1).mainsEnergised, true, 'mains live while the heartbeat runs');
    await r.clock.sleep(2000);
    t.equal(r.vj.physical(1).mainsEnergised, true, 'and stays live for as long as it runs (2 s)');
    // Die right after an edge that left the pin at the wanted level.
    const want = stuck === 'high';
    const board = r.vj.boards.get('io0')!;
    while (board.driven(HEARTBEAT_PIN) !== want) await r.clock.sleep(10);
    r.host.die();
    const diedAt = r.clock.now();
    t.equal(board.driven(HEARTBEAT_PIN), want, `pin ${stuck} when the host died`);
    t.equal(r.io.interlock.state().mains, 'on', 'the host never switched mains off');
    await r.clock.sleep(BOUND_MS + 500);
    t.equal(board.driven(5), true, 'the mains relay pin is still driven on (nobody cleaned up)');
    const off = mainsOffAt(r.vj, diedAt);
    t.ok(off !== undefined, 'mains at the plug went off');
    t.ok(off! - diedAt <= BOUND_MS, `within ${BOUND_MS} ms (took ${off! - diedAt} ms)`);
    t.equal(r.vj.physical(1).mainsEnergised, false);
  });
}

t.test('a hung host that keeps rewriting the same level (no edges) does not hold the watchdog', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  await r.io.interlock.mainsOn();
  r.host.die();
  const diedAt = r.clock.now();
  const io = r.jb.board.io as unknown as { digitalWrite(pin: number, v: number): void };
  for (let i = 0; i < 20; i++) {
    io.digitalWrite(HEARTBEAT_PIN, 1);
    await r.clock.sleep(HEARTBEAT_PERIOD_MS / 2);
  }
  const off = mainsOffAt(r.vj, diedAt);
  t.ok(off !== undefined && off - diedAt <= BOUND_MS, `mains off ${off === undefined ? 'never' : `after ${off - diedAt} ms`}`);
});

t.test('the heartbeat runs only while mains may be on; mains off stops it and the relay drops', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const board = r.vj.boards.get('io0')!;
  const edges: number[] = [];
  board.onOutput((pin) => {
    if (pin === HEARTBEAT_PIN) edges.push(r.clock.now());
  });
  await r.clock.sleep(1000);
  t.equal(edges.length, 0, 'no heartbeat with mains off');
  await r.io.interlock.mainsOn();
  await r.clock.sleep(1000);
  const during = edges.length;
  t.ok(during >= 9, `toggling while mains is on (${during} edges in ~1 s)`);
  await r.io.interlock.mainsOff();
  const n = edges.length;
  await r.clock.sleep(1000);
  t.ok(edges.length - n <= 1, 'stopped once mains was confirmed off');
  t.equal(r.vj.watchdogs.get('io0')!.closed(), false, 'watchdog relay dropped');
  await r.io.interlock.mainsOn();
  t.equal(r.vj.physical(1).mainsEnergised, true, 'mains on again: heartbeat restarted, watchdog pulled in before the mains write');
  await r.io.interlock.mainsOff();
});

t.test('a trip stops the heartbeat at once (the watchdog drops mains even if the mains write is lost)', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  await r.io.interlock.mainsOn();
  r.vj.pressEstop(1, true);
  await r.clock.sleep(BOUND_MS);
  t.equal(r.vj.watchdogs.get('io0')!.closed(), false);
  t.equal(r.vj.physical(1).mainsEnergised, false);
});

t.test('a jig file without a heartbeat pin keeps working (no watchdog in the virtual jig either)', async (t) => {
  const raw = JSON.parse(JSON.stringify(ONE_SLOT)) as { ioBoards: Record<string, Record<string, unknown>> };
  delete raw.ioBoards.io0!.heartbeat;
  const r = await rig(parseJig(raw));
  t.teardown(r.teardown);
  await r.io.interlock.mainsOn();
  t.equal(r.vj.physical(1).mainsEnergised, true);
  t.equal(r.vj.watchdogs.size, 0);
  await r.io.interlock.mainsOff();
});

t.test('the interlock refuses mains unless the heartbeat is running', async (t) => {
  const clock = new VirtualClock();
  const writes: string[] = [];
  const inputs: InterlockInputState = { linkUp: true, lidClosed: true, estopClear: true };
  const held = new Set<object>();
  const dead: MainsHeartbeat = { acquire: async (h) => void held.add(h), release: (h) => void held.delete(h), running: () => false };
  const il = new MainsInterlock({
    outputs: { write: async (o, on) => void writes.push(`${o}=${on}`) },
    inputs: { read: () => inputs, subscribe: () => () => undefined },
    clock,
    settleMs: 10,
    loads: [],
    slot: 1,
    heartbeat: dead,
  });
  await il.init();
  await t.rejects(il.mainsOn(), { code: 'E_INTERLOCK', message: /heartbeat .* not running/ });
  t.notOk(writes.includes('mains=true'), 'mains never written on');
  t.equal(held.size, 0, 'and the heartbeat let go again');
});

t.test('jig file: heartbeat pin clashes are refused', async (t) => {
  const raw = JSON.parse(JSON.stringify(ONE_SLOT)) as { ioBoards: Record<string, Record<string, unknown>> };
  raw.ioBoards.io0!.heartbeat = 5;
  t.throws(() => parseJig(raw), { code: 'E_CONFIG', message: /pin 5 on io0 already used by heartbeat/ });
});

t.test(`watchdog constants: the bound holds (${WATCHDOG_HOLD_MS} ms hold + one ${HEARTBEAT_PERIOD_MS} ms period <= ${BOUND_MS} ms)`, async (t) => {
  t.ok(WATCHDOG_HOLD_MS + HEARTBEAT_PERIOD_MS <= BOUND_MS);
  t.ok(HEARTBEAT_PERIOD_MS * 2 < WATCHDOG_HOLD_MS, 'a live heartbeat has slack before the relay drops');
});
