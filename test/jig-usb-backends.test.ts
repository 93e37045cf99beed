import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock } from '../rig/core/clock.ts';
import { ConfigError, InterlockError, TransportError } from '../rig/core/errors.ts';
import { fromHex, hex } from '../rig/core/hex.ts';
import { CompositeInterlockOutputs } from '../rig/jig/composite-outputs.ts';
import { DcttechLoadOutputs, HubPortPowerOutput } from '../rig/jig/interlock-usb.ts';
import { openJigBoard, type FirmataStream } from '../rig/jig/jig-board.ts';
import { loadJigFile, parseJig, slotUsesUsb, type JigSpec } from '../rig/jig/jig-config.ts';
import type { InterlockOutput, InterlockOutputs } from '../rig/jig/mains-interlock.ts';
import { SlotIo } from '../rig/jig/slot-io.ts';
import { FakeUsbSource, type ControlTransferRecord } from '../sim/usb/fake-usb-source.ts';
import { VirtualDcttechRelay } from '../sim/usb/virtual-dcttech-relay.ts';
import { VirtualHub } from '../sim/usb/virtual-hub.ts';
import { VirtualFirmataBoard } from '../sim/firmata/virtual-firmata-board.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

/**
 * Loads on a dcttech USB relay board and 3V3 on a hub port, next to mains / UART isolation on a
 * StandardFirmata board: real johnny-five over the virtual serial bus + the fake USB bus.
 */

const EXAMPLE_PATH = new URL('../fixtures/jigs/example-dcttech-loads.json', import.meta.url).pathname;
const JIG = loadJigFile(EXAMPLE_PATH);
// example-dcttech-loads (Mega): cen 22, uartIsolation 26, mains 28, lid 40 (active low), estop 42;
// loads R25/R100/M60 = channels 1/2/3 of dcttech "QAAMZ"; 3V3 = port 3 of hub 1-1.
const PIN = { uart: 26, mains: 28, lid: 40, estop: 42 };
const RELAY_SERIAL = 'QAAMZ';
const RELAY_PATH = '1-1.4';
const HUB_PATH = '1-1';
const HUB_PORT = 3;

// --- Reference requests (instruments.md §B4 dcttech HID Feature report, §B5 hub class requests) ---

/** HID SET_REPORT, Feature report 0, interface 0: bmRequestType 0x21, bRequest 0x09, wValue 0x0300, wIndex 0. */
const SET_REPORT = { direction: 'out', bmRequestType: 0x21, bRequest: 0x09, wValue: 0x0300, wIndex: 0, wLength: 8 } as const;
/** HID GET_REPORT, Feature report 0: bmRequestType 0xa1, bRequest 0x01, wValue 0x0300, wIndex 0. */
const GET_REPORT = { direction: 'in', bmRequestType: 0xa1, bRequest: 0x01, wValue: 0x0300, wIndex: 0, wLength: 8 } as const;
/** Relay 1 on: ff 01 00 00 00 00 00 00 */
const DCTTECH_RELAY1_ON = fromHex('ff 01 00 00 00 00 00 00');
/** Relay 1 off: fd 01 00 00 00 00 00 00 */
const DCTTECH_RELAY1_OFF = fromHex('fd 01 00 00 00 00 00 00');
/** Read-back of "QAAMZ" with relay 1 on: 51 41 41 4d 5a 00 00 01 */
const DCTTECH_QAAMZ_R1 = fromHex('51 41 41 4d 5a 00 00 01');
/** Read-back of "QAAMZ" with every relay off: 51 41 41 4d 5a 00 00 00 */
const DCTTECH_QAAMZ_NONE = fromHex('51 41 41 4d 5a 00 00 00');
/** SET_FEATURE(PORT_POWER) port 3: 23 03 0008 0003, no data. */
const HUB_PORT3_POWER_ON = { direction: 'out', bmRequestType: 0x23, bRequest: 0x03, wValue: 8, wIndex: HUB_PORT, wLength: 0 } as const;
/** CLEAR_FEATURE(PORT_POWER) port 3: 23 01 0008 0003, no data. */
const HUB_PORT3_POWER_OFF = { direction: 'out', bmRequestType: 0x23, bRequest: 0x01, wValue: 8, wIndex: HUB_PORT, wLength: 0 } as const;
/** GET_STATUS port 3: a3 00 0000 0003, 4 bytes. */
const HUB_PORT3_GET_STATUS = { direction: 'in', bmRequestType: 0xa3, bRequest: 0x00, wValue: 0, wIndex: HUB_PORT, wLength: 4 } as const;
/** USB2 wPortStatus with PORT_POWER (0x0100), nothing connected: 00 01 00 00 */
const HUB_STATUS_POWERED = fromHex('00 01 00 00');
/** USB2 wPortStatus, port unpowered: 00 00 00 00 */
const HUB_STATUS_UNPOWERED = fromHex('00 00 00 00');

function setup(r: ControlTransferRecord): object {
  return { direction: r.direction, bmRequestType: r.bmRequestType, bRequest: r.bRequest, wValue: r.wValue, wIndex: r.wIndex, wLength: r.wLength };
}

function usbBus(options: { relay?: boolean; hub?: boolean } = {}) {
  const usb = new FakeUsbSource();
  const relay = new VirtualDcttechRelay(RELAY_SERIAL, 4);
  const hub = new VirtualHub({ ports: 4 });
  if (options.hub ?? true) usb.add(hub.spec({ portNumbers: [1] }));
  if (options.relay ?? true) usb.add(relay.spec({ portNumbers: [1, 4] }));
  return { usb, relay, hub };
}

async function rig(jig: JigSpec = JIG) {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const board = new VirtualFirmataBoard({ layout: 'mega2560' });
  bus.attach('sim:io0', board);
  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:io0', baudRate: 57600 });
  const jb = await openJigBoard({ stream: stream as unknown as FirmataStream, clock, timeoutMs: 2000, name: 'mega' });
  board.setInput(PIN.lid, false); // active low: lid closed
  board.setInput(PIN.estop, false); // E-stop released
  const { usb, relay, hub } = usbBus();
  const slot = await SlotIo.open(jb, jig, 1, { clock, usb });
  await clock.sleep(5);
  const teardown = async (): Promise<void> => {
    slot.dispose();
    board.powerOff();
    if (stream.isOpen) await new Promise<void>((r) => stream.close(() => r()));
  };
  return { clock, board, jb, slot, usb, relay, hub, teardown };
}

t.test('init drives the dcttech channels and the hub port off, next to the board pins', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  t.equal(slotUsesUsb(JIG.slots[0]!), true);
  const s = r.slot.interlock.state();
  t.same([s.mains, s.uart, s.power3v3, s.fault, s.needsReinit], ['off', 'off', 'off', undefined, false]);
  t.same(s.loads, { R25: 'off', R100: 'off', M60: 'off' });
  t.equal(r.hub.powered[HUB_PORT - 1], false, 'hub port 3 was powered at enumeration, init switched it off');
  t.equal(r.hub.powered[0], true, 'other hub ports untouched');
  const offs = r.usb.transfersTo(RELAY_PATH).filter((x) => x.direction === 'out').map((x) => hex(x.data, ''));
  t.same(offs.sort(), ['fd01000000000000', 'fd02000000000000', 'fd03000000000000'], 'one OFF report per load channel');
  t.equal(r.board.driven(PIN.mains), false);
  t.equal(r.board.driven(PIN.uart), false);
});

t.test('setLoad with mains on closes the dcttech channel (byte-exact SET_REPORT + read-back); mainsOff opens it', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  await t.rejects(il.setLoad('R25', true), InterlockError, 'no load without mains');
  t.equal(r.relay.mask, 0);
  await il.mainsOn();
  t.equal(r.board.driven(PIN.mains), true);
  r.usb.transfers.length = 0;
  await il.setLoad('R25', true);
  t.equal(r.relay.mask, 0b0001, 'relay 1 closed');
  t.equal(il.state().loads.R25, 'on');
  const [out, back] = r.usb.transfersTo(RELAY_PATH);
  t.same(setup(out!), SET_REPORT);
  t.equal(hex(out!.data), hex(DCTTECH_RELAY1_ON));
  t.same(setup(back!), GET_REPORT);
  t.equal(hex(back!.data), hex(DCTTECH_QAAMZ_R1));
  t.equal(r.usb.transfersTo(RELAY_PATH).length, 2);

  r.usb.transfers.length = 0;
  await il.mainsOff();
  t.equal(r.relay.mask, 0, 'relay 1 open');
  t.equal(r.board.driven(PIN.mains), false, 'then mains open');
  const relayOut = r.usb.transfersTo(RELAY_PATH).filter((x) => x.direction === 'out');
  t.same(relayOut.map((x) => hex(x.data)), [hex(DCTTECH_RELAY1_OFF)], 'only the load that was on gets an OFF');
  t.equal(hex(r.usb.transfersTo(RELAY_PATH).at(-1)!.data), hex(DCTTECH_QAAMZ_NONE));
  t.same(il.state().loads, { R25: 'off', R100: 'off', M60: 'off' });
  t.equal(il.state().fault, undefined);
});

t.test('a load relay that does not read back the commanded state trips the interlock to the safe state', async (t) => {
  await t.test('contact that will not close', async (t) => {
    const r = await rig();
    t.teardown(r.teardown);
    const il = r.slot.interlock;
    await il.mainsOn();
    r.relay.stuck.add(2);
    await t.rejects(il.setLoad('R100', true), InterlockError);
    await r.clock.sleep(10);
    const s = il.state();
    t.equal(s.fault?.reason, 'write-failed');
    t.match(s.fault?.detail, /load:R100 <- on: relay board QAAMZ did not switch relay 2 on/);
    t.equal(r.board.driven(PIN.mains), false, 'mains relay opened by the trip');
    t.equal(s.mains, 'off');
    await t.rejects(il.mainsOn(), /latched fault/);
  });
  await t.test('welded contact that will not open', async (t) => {
    const r = await rig();
    t.teardown(r.teardown);
    const il = r.slot.interlock;
    await il.mainsOn();
    await il.setLoad('R25', true);
    r.relay.stuck.add(1);
    await t.rejects(il.mainsOff(), InterlockError);
    await r.clock.sleep(10);
    const s = il.state();
    t.equal(s.fault?.reason, 'write-failed');
    t.equal(s.loads.R25, 'unknown', 'the welded load is not reported off');
    t.equal(r.board.driven(PIN.mains), false, 'mains opened although the load relay is stuck');
    t.equal(s.mains, 'off');
    await t.rejects(il.connectUart(), /latched fault/, 'no UART side while a load is in doubt');
  });
  await t.test('board unplugged', async (t) => {
    const r = await rig();
    t.teardown(r.teardown);
    const il = r.slot.interlock;
    await il.mainsOn();
    r.usb.remove(RELAY_PATH);
    const err = await il.setLoad('R25', true).catch((e: unknown) => e);
    t.type(err, InterlockError);
    t.type((err as Error).cause, TransportError, 'the cause is the typed USB error');
    t.equal(il.state().fault?.reason, 'write-failed');
    await r.clock.sleep(10);
    t.equal(r.board.driven(PIN.mains), false);
  });
});

t.test('3V3 through the hub port: SET/CLEAR_FEATURE(PORT_POWER) checked by GET_STATUS', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  r.usb.transfers.length = 0;
  await il.power3v3(true);
  t.equal(r.hub.powered[HUB_PORT - 1], true);
  t.equal(il.state().power3v3, 'on');
  let hubT = r.usb.transfersTo(HUB_PATH);
  t.same(hubT.map(setup), [HUB_PORT3_POWER_ON, HUB_PORT3_GET_STATUS]);
  t.equal(hex(hubT[1]!.data), hex(HUB_STATUS_POWERED));
  t.equal(r.board.driven(PIN.uart), false, '3V3 on the hub does not touch the UART-isolation pin');

  await il.connectUart();
  t.equal(r.board.driven(PIN.uart), true);
  r.usb.transfers.length = 0;
  await il.mainsOn();
  t.equal(r.hub.powered[HUB_PORT - 1], false, 'mainsOn broke the hub-powered 3V3');
  t.equal(r.board.driven(PIN.uart), false);
  t.equal(r.board.driven(PIN.mains), true);
  hubT = r.usb.transfersTo(HUB_PATH);
  t.same(hubT.map(setup), [HUB_PORT3_POWER_OFF, HUB_PORT3_GET_STATUS]);
  t.equal(hex(hubT[1]!.data), hex(HUB_STATUS_UNPOWERED));

  await il.power3v3(true);
  t.equal(r.board.driven(PIN.mains), false, '3V3 on breaks mains first');
  r.hub.ignorePowerOff = true;
  await t.rejects(il.power3v3(false), InterlockError, 'a port that stays powered is a failed write');
  t.equal(il.state().fault?.reason, 'write-failed');
  t.equal(il.state().power3v3, 'unknown');
  await t.rejects(il.mainsOn(), /latched fault/, 'no mains while 3V3 may still be on');
});

t.test('composite routing and backends on their own', async (t) => {
  const clock = new VirtualClock();
  const { usb, relay, hub } = usbBus();
  const { DcttechRelay } = await import('../rig/usb/dcttech-relay.ts');
  const { HubPortPower } = await import('../rig/usb/hub-power.ts');
  const board = await DcttechRelay.open(usb, { usbPath: RELAY_PATH });
  const hubPower = await HubPortPower.open(usb, HUB_PATH, { clock });
  const pinWrites: string[] = [];
  const pins: InterlockOutputs = { write: async (o, on) => void pinWrites.push(`${o}=${on}`) };
  const loads = new DcttechLoadOutputs(board, new Map<InterlockOutput, number>([['load:A', 2]]), clock, 2000);
  const routes = new Map<InterlockOutput, InterlockOutputs>([
    ['load:A', loads],
    ['power3v3', new HubPortPowerOutput(hubPower, 2, clock, 2000)],
  ]);
  const c = new CompositeInterlockOutputs(routes, pins);
  t.equal(c.backendOf('load:A'), loads);
  t.equal(c.backendOf('mains'), pins);
  await c.write('mains', true);
  // Un-awaited writes to one board run in call order: on, off, on ends on.
  const p = [c.write('load:A', true), c.write('load:A', false), c.write('load:A', true)];
  await Promise.all(p);
  t.equal(relay.mask, 0b10);
  await c.write('power3v3', false);
  t.equal(hub.powered[1], false);
  t.same(pinWrites, ['mains=true']);
  await t.rejects(loads.write('load:B', true), TransportError, 'unknown load on the board');
  await t.rejects(new CompositeInterlockOutputs(routes).write('mains', true), TransportError, 'no route, no fallback');
  // A hung device call rejects with a TimeoutError after ackTimeoutMs.
  const hung = new DcttechLoadOutputs({ serial: 'HUNG1', set: () => new Promise<void>(() => undefined), close: async () => undefined }, new Map<InterlockOutput, number>([['load:A', 1]]), clock, 300);
  await t.rejects(hung.write('load:A', true), { name: 'TimeoutError' });
  t.equal(clock.now(), 300);
});

t.test('opening a USB jig without its devices fails with a TransportError naming the device', async (t) => {
  const mk = async (usb?: FakeUsbSource) => {
    const clock = new VirtualClock();
    const bus = new VirtualSerialBus(clock);
    const board = new VirtualFirmataBoard({ layout: 'mega2560' });
    bus.attach('sim:io0', board);
    const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:io0', baudRate: 57600 });
    t.teardown(async () => {
      board.powerOff();
      if (stream.isOpen) await new Promise<void>((r) => stream.close(() => r()));
    });
    const jb = await openJigBoard({ stream: stream as unknown as FirmataStream, clock, timeoutMs: 2000, name: 'mega' });
    return SlotIo.open(jb, JIG, 1, { clock, ...(usb ? { usb } : {}) });
  };
  // No `usb` option: this machine's real bus through node-usb, which has no dcttech board on it.
  await t.rejects(mk(), { name: 'TransportError', message: /slot 1: cannot open dcttech relay board serial "QAAMZ" for load:R25, load:R100, load:M60/ });
  await t.rejects(mk(usbBus({ hub: false }).usb), { name: 'TransportError', message: /slot 1: cannot open USB hub 1-1 for power3v3: no USB hub at 1-1/ });
  const noRelay = usbBus({ relay: false }).usb;
  await t.rejects(mk(noRelay), { name: 'TransportError', context: { serial: 'QAAMZ', step: 'slot-usb-open' } });
  const partial = usbBus({ relay: true, hub: false }).usb;
  await t.rejects(mk(partial), TransportError);
  t.same(partial.events.filter((e) => e.startsWith('open')).length, partial.events.filter((e) => e.startsWith('close')).length, 'the relay board opened before the hub failed was closed again');
});

t.test('schema: dcttech loads and hub-port 3V3', async (t) => {
  const raw = JSON.parse(JSON.stringify(loadJigFile(EXAMPLE_PATH))) as { slots: Array<{ pins: Record<string, unknown> & { loads: Array<Record<string, unknown>> } }> };
  const slot = JIG.slots[0]!;
  t.same(slot.pins.power3v3, { kind: 'hub-port', hubUsbPath: '1-1', port: 3 });
  t.same(slot.pins.loads[0], { name: 'R25', relay: { kind: 'dcttech', serial: 'QAAMZ', channel: 1 }, watts: 25, pf: 1 });
  for (const f of ['virtual-1slot.json', 'virtual-4slot.json', 'example-arduino-pzem-dcttech.json']) {
    const jig = loadJigFile(new URL(`../fixtures/jigs/${f}`, import.meta.url).pathname);
    t.equal(jig.slots.some(slotUsesUsb), false, `${f} still valid, pin-only`);
  }

  const variant = (edit: (s: (typeof raw.slots)[0]) => void): unknown => {
    const copy = JSON.parse(JSON.stringify(raw)) as typeof raw;
    edit(copy.slots[0]!);
    return copy;
  };
  const refused = (input: unknown): string[] => {
    try {
      parseJig(input, 'variant');
    } catch (e) {
      t.type(e, ConfigError);
      return ((e as ConfigError).context.problems as string[]) ?? [];
    }
    return [];
  };
  // Mixed: one load on a pin, two on the relay board, USB path instead of serial.
  t.doesNotThrow(() =>
    parseJig(
      variant((s) => {
        s.pins.loads[0] = { name: 'R25', pin: 30, watts: 25 };
        s.pins.loads[1]!.relay = { kind: 'dcttech', usbPath: '1-1.4', channel: 2 };
      }),
    ),
  );
  // A hub port for 3V3 does not count as a pin: pin 3 stays free for another output.
  t.doesNotThrow(() => parseJig(variant((s) => (s.pins.button = 3))));
  t.same(refused(variant((s) => (s.pins.loads[0]!.pin = 30))), ['slots.0.pins.loads.0: load R25 needs exactly one of "pin" (I/O board) or "relay" (dcttech USB relay)']);
  t.same(refused(variant((s) => delete s.pins.loads[0]!.relay)), ['slots.0.pins.loads.0: load R25 needs exactly one of "pin" (I/O board) or "relay" (dcttech USB relay)']);
  t.same(refused(variant((s) => ((s.pins.loads[2]!.relay as Record<string, unknown>).channel = 9))), ['slots.0.pins.loads.2.relay.channel: Number must be less than or equal to 8']);
  t.same(refused(variant((s) => (s.pins.loads[2]!.relay = { kind: 'dcttech', channel: 3 }))), ['slots.0.pins.loads.2.relay: a dcttech relay needs "serial" or "usbPath"']);
  t.same(refused(variant((s) => ((s.pins.loads[2]!.relay as Record<string, unknown>).channel = 1))), ['slots.0.pins.loads.2.relay: dcttech board serial "QAAMZ" channel 1 already used by slot 1 load R25']);
  t.same(refused(variant((s) => (s.pins.power3v3 = { kind: 'hub-port', hubUsbPath: '1-1', port: 16 }))), ['slots.0.pins.power3v3.port: Number must be less than or equal to 15']);
  t.same(refused(variant((s) => (s.pins.power3v3 = { kind: 'hub-port', hubUsbPath: 'usb1', port: 1 }))), ['slots.0.pins.power3v3.hubUsbPath: usbPath looks like "1-1.3"']);
  t.match(refused(variant((s) => (s.pins.power3v3 = 'hub')))[0], /^slots\.0\.pins\.power3v3: expected a pin number 0\.\.127, .*"kind": "hub-port"/);
  t.same(refused(variant((s) => (s.pins.power3v3 = 26))), ['slots.0.pins.uartIsolation: pin 26 on mega already used by power3v3']);

  // Two slots on one hub port, and a second slot reusing a relay channel of the first.
  const two = JSON.parse(JSON.stringify(raw)) as typeof raw;
  const s2 = JSON.parse(JSON.stringify(raw.slots[0])) as (typeof raw.slots)[0] & { id: number };
  s2.id = 2;
  // Its own UART and LED sensor input (sharing those is refused too, and is tested elsewhere).
  (s2 as unknown as { uart: Record<string, unknown> }).uart = { ...(s2 as unknown as { uart: Record<string, unknown> }).uart, usbPath: '1-1.2' };
  (s2.pins as Record<string, unknown>).ledSensor = { ...(s2.pins['ledSensor'] as Record<string, unknown>), analog: 1 };
  Object.assign(s2.pins, { cen: 23, uartIsolation: 27, mains: 29, button: 37, relaySense: { pin: 39, activeLow: true } });
  s2.pins.loads = [{ name: 'R25', relay: { kind: 'dcttech', serial: 'QAAMZ', channel: 4 }, watts: 25 }, { name: 'X', relay: { kind: 'dcttech', serial: 'QAAMZ', channel: 2 }, watts: 10 }];
  two.slots.push(s2);
  t.same(refused(two), [
    'slots.1.pins.power3v3: hub 1-1 port 3 already used by slot 1 power3v3',
    'slots.1.pins.loads.1.relay: dcttech board serial "QAAMZ" channel 2 already used by slot 1 load R100',
  ]);
});
