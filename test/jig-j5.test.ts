import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock, type Clock } from '../rig/core/clock.ts';
import { InterlockError, ProtocolError, TimeoutError } from '../rig/core/errors.ts';
import { hex } from '../rig/core/hex.ts';
import { openJigBoard, type FirmataStream } from '../rig/jig/jig-board.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { SlotIo } from '../rig/jig/slot-io.ts';
import { VirtualFirmataBoard } from '../sim/firmata/virtual-firmata-board.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import type { UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';

/** Interlock + components through real johnny-five + firmata.js over the virtual serial bus. */

const JIG = loadJigFile(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname);
// virtual-1slot pins: cen 2, 3V3 3, uartIsolation 4, mains 5, loads 6/7/8, button 9, relaySense 10, lid 11, estop 12
const PIN = { cen: 2, p3v3: 3, uart: 4, mains: 5, r25: 6, button: 9, relaySense: 10, lid: 11, estop: 12 };

/** Records what the host wrote to the board, then passes it on. */
class Tap implements VirtualUartDevice {
  readonly rx: number[] = [];
  constructor(readonly inner: VirtualUartDevice) {}
  baudRate(): number {
    return this.inner.baudRate();
  }
  connect(tx: UartTx, clock: Clock): void {
    this.inner.connect(tx, clock);
  }
  receive(bytes: Uint8Array): void {
    this.rx.push(...bytes);
    this.inner.receive(bytes);
  }
}

/** A device that never answers, or answers garbage. */
class Mute implements VirtualUartDevice {
  constructor(readonly garbage?: Uint8Array) {}
  baudRate(): number {
    return 57600;
  }
  connect(tx: UartTx, clock: Clock): void {
    const g = this.garbage;
    if (g) clock.at(clock.now() + 50, () => tx.send(g));
  }
  receive(): void {}
}

function open(bus: VirtualSerialBus, path: string): SerialPortStream {
  return new SerialPortStream({ binding: bus.binding, path, baudRate: 57600 });
}

async function rig() {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const board = new VirtualFirmataBoard({ layout: 'uno' });
  const tap = new Tap(board);
  bus.attach('sim:io0', tap);
  const stream = open(bus, 'sim:io0');
  const jb = await openJigBoard({ stream: stream as unknown as FirmataStream, clock, timeoutMs: 2000, name: 'io0' });
  // Lid closed (switch active high here), E-stop released (input low).
  board.setInput(PIN.lid, true);
  board.setInput(PIN.estop, false);
  const slot = await SlotIo.open(jb, JIG, 1, { clock });
  await clock.sleep(5);
  const edges: string[] = [];
  board.onOutput((pin, level) => edges.push(`${clock.now()}:${pin}=${level ? 1 : 0}`));
  const teardown = async (): Promise<void> => {
    slot.dispose();
    board.powerOff();
    if (stream.isOpen) await new Promise<void>((r) => stream.close(() => r()));
  };
  return { clock, bus, board, tap, jb, slot, edges, teardown };
}

t.test('board handshake, init drives every interlock output off and confirms it', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  t.equal(r.jb.board.isReady, true);
  for (const p of [PIN.p3v3, PIN.uart, PIN.mains, PIN.r25, 7, 8]) t.equal(r.board.driven(p), false, `pin ${p} off after init`);
  t.equal(r.board.driven(PIN.cen), false, 'CEN pull-down off (chip running)');
  const s = r.slot.interlock.state();
  t.same([s.mains, s.uart, s.power3v3, s.fault, s.needsReinit], ['off', 'off', 'off', undefined, false]);
  t.same(s.inputs, { linkUp: true, lidClosed: true, estopClear: true });
});

t.test('UART -> mains is break-before-make with the settle gap, verified by PIN_STATE_QUERY', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  await il.connectUart();
  await il.power3v3(true);
  t.equal(r.board.driven(PIN.uart), true);
  t.equal(r.board.driven(PIN.p3v3), true);
  r.tap.rx.length = 0;
  r.edges.length = 0;
  const t0 = r.clock.now();
  await il.mainsOn();
  const at = (e: string): number => Number(e.split(':')[0]);
  const uartOff = r.edges.find((e) => e.endsWith(`:${PIN.uart}=0`));
  const p3Off = r.edges.find((e) => e.endsWith(`:${PIN.p3v3}=0`));
  const mainsOn = r.edges.find((e) => e.endsWith(`:${PIN.mains}=1`));
  t.ok(uartOff && p3Off && mainsOn, r.edges.join(' '));
  t.ok(at(mainsOn!) - Math.max(at(uartOff!), at(p3Off!)) >= JIG.interlock.settleMs, `gap ${r.edges.join(' ')}`);
  t.ok(at(mainsOn!) - t0 >= JIG.interlock.settleMs);
  // Host bytes: uart off (port 0: 3V3 still on = 0x08), query pin 4, 3V3 off (port 0 = 0x04 CEN only),
  // query pin 3, then mains on (CEN + mains = 0x24), query pin 5.
  const wire = hex(Uint8Array.from(r.tap.rx), '');
  const seq = ['900800', 'f06d04f7', '900000', 'f06d03f7', '902000', 'f06d05f7'];
  let from = 0;
  for (const s of seq) {
    const i = wire.indexOf(s, from);
    t.ok(i >= from, `${s} after offset ${from} in ${wire}`);
    from = i + s.length;
  }
  t.equal(r.board.driven(PIN.mains), true);
  await il.setLoad('R25', true);
  t.equal(r.board.driven(PIN.r25), true);
  await il.connectUart();
  t.same([r.board.driven(PIN.r25), r.board.driven(PIN.mains), r.board.driven(PIN.uart)], [false, false, true], 'connectUart broke loads and mains first');
  await t.rejects(il.setLoad('R25', true), InterlockError, 'no loads without mains');
});

t.test('lid opening with mains on trips at once, latches, and needs reset', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  await il.mainsOn();
  await il.setLoad('R25', true);
  r.board.setInput(PIN.lid, false);
  await r.clock.sleep(20);
  t.equal(r.board.driven(PIN.mains), false, 'mains off');
  t.equal(r.board.driven(PIN.r25), false, 'load off');
  t.equal(il.state().fault?.reason, 'lid-open');
  await t.rejects(il.mainsOn(), InterlockError);
  await t.rejects(il.reset(), InterlockError, 'reset refused while the lid is open');
  r.board.setInput(PIN.lid, true);
  await r.clock.sleep(20);
  await il.reset();
  await il.mainsOn();
  t.equal(r.board.driven(PIN.mains), true);
  r.board.setInput(PIN.estop, true);
  await r.clock.sleep(20);
  t.equal(r.board.driven(PIN.mains), false, 'E-stop cuts mains');
  t.equal(il.state().fault?.reason, 'estop');
  await t.rejects(il.connectUart(), /latched fault/);
});

t.test('lost board: fault, refusals, and recovery only after reconnect + reset', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  await il.mainsOn();
  let lost = false;
  r.jb.on('lost', () => (lost = true));
  r.bus.unplug('sim:io0');
  await r.clock.sleep(50);
  t.ok(lost, 'JigBoard emitted lost');
  t.equal(il.state().fault?.reason, 'link-lost');
  t.equal(il.state().inputs.linkUp, false);
  await t.rejects(il.mainsOn(), InterlockError);
  await t.rejects(il.reset(), /connection lost/);
  r.bus.replug('sim:io0');
  const stream = open(r.bus, 'sim:io0');
  t.teardown(() => new Promise<void>((res) => (stream.isOpen ? stream.close(() => res()) : res())));
  // The board kept running (USB glitch): a real Uno resets on DTR; here re-handshake by asking.
  r.board.reset();
  const jb2 = await openJigBoard({ stream: stream as unknown as FirmataStream, clock: r.clock, timeoutMs: 2000 });
  r.board.setInput(PIN.lid, true);
  r.board.setInput(PIN.estop, false);
  r.slot.rebind(jb2);
  await r.clock.sleep(10);
  await t.rejects(il.mainsOn(), /latched fault/, 'still latched after reconnect');
  await il.reset();
  await il.mainsOn();
  t.equal(r.board.driven(PIN.mains), true);
});

t.test('components: CEN pulse, button press/double click, LED sensor, relay sense, lid/E-stop events', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const c = r.slot.components;
  r.edges.length = 0;
  await c.pulseCen(50);
  await r.clock.sleep(10);
  t.same(r.edges.filter((e) => e.includes(`:${PIN.cen}=`)).map((e) => e.split(':')[1]), ['2=1', '2=0'], 'pulse: pull-down on (reset), then off');
  r.edges.length = 0;
  await c.doubleClick(80, 120);
  await r.clock.sleep(10);
  t.same(r.edges.filter((e) => e.includes(`:${PIN.button}=`)).map((e) => e.split(':')[1]), ['9=1', '9=0', '9=1', '9=0']);
  r.board.setAnalog(0, 800);
  await r.clock.sleep(100);
  t.equal(c.ledLit(), true);
  r.board.setAnalog(0, 100);
  await r.clock.sleep(100);
  t.equal(c.ledLit(), false);
  const seen: string[] = [];
  c.on('relay', (on) => seen.push(`relay ${on}`));
  c.on('lid', (closed) => seen.push(`lid ${closed}`));
  // Inputs have the pull-up on: an unconnected relay-sense line reads high, so drive it low first.
  r.board.setInput(PIN.relaySense, false);
  await r.clock.sleep(20);
  r.board.setInput(PIN.relaySense, true);
  await r.clock.sleep(20);
  r.board.setInput(PIN.lid, false);
  await r.clock.sleep(20);
  t.same(seen, ['relay false', 'relay true', 'lid false']);
  t.equal(c.relayOn(), true);
  t.equal(c.lidClosed(), false);
  t.equal(c.estopPressed(), false);
  t.notOk('mains' in c || 'interlock' in c, 'components expose no interlock outputs');
});

t.test('openJigBoard: silent board -> TimeoutError, garbage -> ProtocolError with the bytes', async (t) => {
  const cases = [
    [new Mute(), TimeoutError, ''],
    [new Mute(Uint8Array.from([0x55, 0xaa, 0x13, 0x37])), ProtocolError, '55aa1337'],
  ] as const;
  for (const [device, type, bytes] of cases) {
    const clock = new VirtualClock();
    const bus = new VirtualSerialBus(clock);
    const path = 'sim:io9';
    bus.attach(path, device);
    const stream = open(bus, path);
    const err = await openJigBoard({ stream: stream as unknown as FirmataStream, clock, timeoutMs: 300 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, type, path);
    t.equal(hex((err as TimeoutError).context.bytesSeen ?? new Uint8Array(), ''), bytes);
    await new Promise<void>((r) => stream.close(() => r()));
  }
});

t.test('dry load test: the load relay closes and opens only while mains is confirmed off', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  await il.dryTestLoad('R25');
  const loadEdges = r.edges.filter((e) => e.includes(`:${PIN.r25}=`)).map((e) => e.split(':')[1]);
  t.same(loadEdges, ['6=1', '6=0'], 'closed, then opened again');
  t.equal(r.board.driven(PIN.mains), false, 'mains never touched');
  t.equal(il.state().loads.R25, 'off');
  await il.mainsOn();
  await t.rejects(il.dryTestLoad('R25'), InterlockError, 'refused with mains on');
  await t.rejects(il.dryTestLoad('nope'), InterlockError, 'unknown load');
  await il.safeState();
});
