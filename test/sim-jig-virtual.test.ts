import t, { type Test } from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock } from '../rig/core/clock.ts';
import { hex } from '../rig/core/hex.ts';
import { loadJigFile, parseJig, type JigSpec } from '../rig/jig/jig-config.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualJig, LED_SENSOR_DARK, LED_SENSOR_LIT, LED_SENSOR_NOISE } from '../sim/jig/virtual-jig.ts';
import { VirtualPzem } from '../sim/pzem/virtual-pzem.ts';
import * as F from './fixtures/firmata-traces.ts';
import { LINK_CHECK_RX, LINK_CHECK_TX } from './fixtures/bk7231-traces.ts';
import { PZEM_READ_INPUT_REQ_01 } from './fixtures/meter-traces.ts';
import { provisionedObkImages, slotMac } from './fixtures/obk-plug-flash.ts';

// Without its heartbeat pin: these tests drive mains over raw Firmata with no watchdog behind the
// contactor (the watchdog relay has its own tests, test/jig-heartbeat.test.ts).
const ONE_SLOT = withoutHeartbeat(loadJigFile(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname));
function withoutHeartbeat(jig: JigSpec): JigSpec {
  return { ...jig, ioBoards: Object.fromEntries(Object.entries(jig.ioBoards).map(([k, { heartbeat: _unused, ...b }]) => [k, b])) };
}
// virtual-1slot: cen 2, power3v3 3, uartIsolation 4, mains 5, loads R25 6 / R100 7 / M60 8, button 9,
// ledSensor A0, relaySense 10, lid 11, estop 12.

/** The jig on a virtual bus, driven over raw Firmata bytes (no johnny-five) on a VirtualClock. */
async function rigUp(t: Test, spec: JigSpec = ONE_SLOT) {
  const clock = new VirtualClock();
  // A plug flashed with OpenBeken and provisioned with the RMC021 template (what the jig tests assume).
  const vj = VirtualJig.fromSpec(spec, { clock, seed: 3, chipOptions: (id) => ({ initialImages: provisionedObkImages(slotMac(3, id)) }) });
  const bus = new VirtualSerialBus(clock);
  vj.attachTo(bus);
  const io = new SerialPortStream({ binding: bus.binding, path: 'sim:io0', baudRate: 57600 });
  let rx: number[] = [];
  io.on('data', (d: Buffer) => rx.push(...d));
  const ports = new Map<number, number>([[0, 0], [1, 0]]);
  const send = async (bytes: Uint8Array | number[]): Promise<void> => {
    io.write(Buffer.from(bytes));
    await clock.sleep(5);
  };
  /** Port-wide DIGITAL_MESSAGE, as firmata.js sends for digitalWrite. */
  const pin = async (n: number, high: boolean): Promise<void> => {
    const port = n >> 3;
    const v = (ports.get(port)! & ~(1 << (n & 7))) | (high ? 1 << (n & 7) : 0);
    ports.set(port, v);
    await send([0x90 | port, v & 0x7f, v >> 7]);
  };
  const take = (): number[] => {
    const r = rx;
    rx = [];
    return r;
  };
  await clock.sleep(20); // open: DTR auto-resets the board, it announces itself
  t.teardown(async () => {
    await vj.dispose();
    if (io.isOpen) await new Promise<void>((r) => io.close(() => r()));
    for (const p of bus.paths()) bus.detach(p);
  });
  return { clock, vj, bus, io, send, pin, take, slot: vj.slot(1) };
}

/** Last ANALOG_MESSAGE value for channel 0 in a byte stream. */
function lastA0(bytes: number[]): number | undefined {
  let v: number | undefined;
  for (let i = 0; i + 2 < bytes.length; i++) if (bytes[i] === 0xe0) v = bytes[i + 1]! | (bytes[i + 2]! << 7);
  return v;
}

t.test('a jig file becomes devices: Uno for io0, a plug + chip per slot, PZEM on sim:pzem0', async (t) => {
  const clock = new VirtualClock();
  const vj = VirtualJig.fromSpec(ONE_SLOT, { clock, seed: 3 });
  t.teardown(() => vj.dispose());
  t.equal(vj.boards.get('io0')!.layout.name, 'uno');
  t.ok(vj.meters.get('ref0') instanceof VirtualPzem);
  t.equal((vj.meters.get('ref0') as VirtualPzem).address, 1, 'address from the jig file');
  t.same(vj.devices().map((d) => [d.path, d.options.modemLines ?? false]), [['sim:io0', true], ['sim:pzem0', false], ['sim:uart1', true]]);
  t.same(vj.slot(1).branch.loadNames(), ['R25', 'R100', 'M60']);
  t.equal(hex(vj.slot(1).chip.mac), 'c8 47 8c 00 03 01', 'per-slot MAC');
  t.same(vj.physical(1), {
    mainsEnergised: false, uartConnected: false, supply3v3: false, cenLow: false,
    plugRelayClosed: false, loadsOn: [], lidClosed: true, estopPressed: false,
  });

  const two = parseJig({
    ...ONE_SLOT,
    slots: [ONE_SLOT.slots[0], { ...ONE_SLOT.slots[0], id: 2, uart: { port: 'sim:uart2' }, meter: { ref: 'ref1', channel: 1 },
      pins: { ...ONE_SLOT.slots[0]!.pins, cen: 22, power3v3: 23, uartIsolation: 24, mains: 25, loads: [], button: 26, relaySense: 27, lid: 28, estop: 29, ledSensor: { analog: 9, threshold: 512 } } }],
    meters: { ...ONE_SLOT.meters, ref1: { kind: 'pzem004t', port: 'sim:pzem1', address: 2 } },
    // The parsed one-slot file names its board an Uno; pins above 19 / A9 are refused there, so say Mega.
    ioBoards: { io0: { ...ONE_SLOT.ioBoards['io0']!, layout: 'mega2560' } },
  });
  const vj2 = VirtualJig.fromSpec(two, { clock, seed: 3 });
  t.teardown(() => vj2.dispose());
  t.equal(vj2.boards.get('io0')!.layout.name, 'mega2560', 'the Mega the file names');
  t.not(hex(vj2.slot(1).chip.mac), hex(vj2.slot(2).chip.mac));
  const clashing = { ...two, slots: [two.slots[0], { ...two.slots[1]!, pins: { ...two.slots[1]!.pins, cen: 2 } }] };
  t.throws(() => parseJig(clashing), { code: 'E_CONFIG', message: /pin 2 on io0 already used by slot 1 cen/ }, 'the schema refuses two slots on one pin');
  t.throws(() => VirtualJig.fromSpec(clashing as typeof two, { clock }), { code: 'E_CONFIG', message: /pin 2 of io0/ }, 'and so does the simulator, for specs built in code');
  const serialPin: JigSpec = { ...ONE_SLOT, slots: [{ ...ONE_SLOT.slots[0]!, pins: { ...ONE_SLOT.slots[0]!.pins, lid: 1 } }] };
  t.throws(() => parseJig(serialPin), { code: 'E_CONFIG', message: /serial link/ }, 'the schema refuses a pin of the serial link');
  t.throws(() => VirtualJig.fromSpec(serialPin, { clock }), { code: 'E_CONFIG', message: /serial link/ }, 'and so does the simulator');
});

t.test('over raw Firmata: CEN, 3V3 + isolation, LED sensor, UART isolation of the chip', async (t) => {
  const r = await rigUp(t);
  t.same(r.take(), [...F.FIRMATA_BOOT_ANNOUNCE], 'the board announced itself when the host opened the port');
  await r.send(F.FIRMATA_REPORT_ANALOG_A0_ON);
  await r.clock.sleep(50);
  const dark = lastA0(r.take())!;
  t.ok(Math.abs(dark - LED_SENSOR_DARK) <= LED_SENSOR_NOISE, `dark LED reads ${dark}`);

  await r.pin(3, true); // 3V3 on, but isolation still open: nothing reaches the module
  t.equal(r.slot.chip.state, 'off');
  await r.pin(4, true);
  t.equal(r.slot.physical().supply3v3, true);
  await r.clock.sleep(400);
  t.equal(r.slot.chip.state, 'app', 'chip booted through the ROM into the app');
  await r.clock.sleep(9000); // OpenBeken joins the station network (~5 s + association); the LED is then solid
  r.take();
  await r.clock.sleep(50);
  const lit = lastA0(r.take())!;
  t.ok(Math.abs(lit - LED_SENSOR_LIT) <= LED_SENSOR_NOISE, `lit LED reads ${lit}`);

  // CEN pulse through the jig pin; the host catches the ROM's link window on the slot UART.
  const uart = new SerialPortStream({ binding: r.bus.binding, path: 'sim:uart1', baudRate: 115200 });
  const fromChip: number[] = [];
  uart.on('data', (d: Buffer) => fromChip.push(...d));
  await r.clock.sleep(1);
  t.equal(r.slot.chip.state, 'app', "opening the UART asserts RTS, which is not wired to CEN for 'jig-cen'");
  await r.pin(2, true);
  t.equal(r.slot.chip.state, 'reset', 'CEN pin active holds the chip in reset');
  t.equal(r.slot.plug.ledLit(), false);
  await r.pin(2, false);
  uart.write(Buffer.from(LINK_CHECK_TX));
  await r.clock.sleep(20);
  t.equal(hex(Uint8Array.from(fromChip)), hex(LINK_CHECK_RX), 'ROM answered the link check through the closed isolation relay');

  fromChip.length = 0;
  await r.pin(4, false); // isolation open: 3V3 and UART gone
  t.equal(r.slot.chip.state, 'off');
  uart.write(Buffer.from(LINK_CHECK_TX));
  await r.clock.sleep(20);
  t.same(fromChip, [], 'host bytes go nowhere while isolated');
  t.equal(r.slot.uart.dropped.toChip, LINK_CHECK_TX.length);
  await new Promise<void>((res) => uart.close(() => res()));
});

t.test('over raw Firmata: mains, the button toggles the plug relay, relaySense, load relays set the current', async (t) => {
  const r = await rigUp(t);
  // relaySense 10, lid 11, estop 12 as inputs; report port 1.
  await r.send([0xf4, 10, 0x00, 0xf4, 11, 0x00, 0xf4, 12, 0x00, 0xd1, 0x01]);
  r.take();
  await r.pin(5, true); // mains on (isolation open): the plug runs from its own supply
  t.equal(r.slot.physical().mainsEnergised, true);
  await r.clock.sleep(9000); // boot, join the station network: LED solid
  t.equal(r.slot.plug.ledLit(), true);
  await r.pin(7, true); // R100 relay closed, but the plug relay is still open
  t.equal(r.slot.branch.measure('input').amps, 0, 'no current before the plug relay closes');

  await r.pin(9, true);
  await r.clock.sleep(150);
  await r.pin(9, false);
  r.take();
  await r.clock.sleep(600);
  t.equal(r.slot.plug.relayClosed(), true, 'button click via the actuator toggled the relay');
  t.same(r.take(), [0x91, 0x0c, 0x00], 'relaySense (pin 10) reported high next to the closed lid (pin 11)');
  // The supply drifts and sags under load, so the loads draw their rating scaled by (V/230)².
  const m = r.slot.branch.measure('input');
  const vr = m.volts / 230;
  t.ok(Math.abs(vr - 1) < 0.05, `mains ${m.volts.toFixed(2)} V: near 230 V, not exactly`);
  t.ok(Math.abs(m.watts - 100 * vr ** 2) < 1e-9 && Math.abs(m.amps - m.watts / m.volts) < 1e-12, `100 W load: ${m.amps} A`);
  await r.pin(8, true); // + M60 (PF 0.6)
  const m2 = r.slot.branch.measure('input');
  const vr2 = m2.volts / 230;
  t.ok(Math.abs(m2.watts - 160 * vr2 ** 2) < 1e-9 && Math.abs(m2.amps - (Math.hypot(160, 80) * vr2 ** 2) / m2.volts) < 1e-9, `160 W + j80 var: ${m2.amps} A`);
  t.ok(m2.volts < m.volts, 'more load, lower voltage (source impedance)');
  t.same(r.slot.physical().loadsOn, ['R100', 'M60']);
  await r.clock.sleep(2000); // the PZEM refreshes its registers once a second: let it see the new load

  // The reference meter on sim:pzem0 measures the same circuit (raw Modbus-RTU request).
  const pzem = new SerialPortStream({ binding: r.bus.binding, path: 'sim:pzem0', baudRate: 9600 });
  const reply: number[] = [];
  pzem.on('data', (d: Buffer) => reply.push(...d));
  pzem.write(Buffer.from(PZEM_READ_INPUT_REQ_01));
  await r.clock.sleep(100);
  t.equal(reply.length, 25, 'PZEM answered 10 registers');
  const reg = (i: number): number => (reply[3 + 2 * i]! << 8) | reply[4 + 2 * i]!;
  // Within the PZEM's ±0.5 % (PF ±1 %) and half a register step of the circuit, never exact.
  const now = r.slot.branch.measure('input');
  const within = (got: number, want: number, pct: number, step: number): boolean => Math.abs(got - want) <= (want * pct) / 100 + step / 2 + want * 0.002;
  t.ok(within(reg(0) / 10, now.volts, 0.5, 0.1), `${reg(0) / 10} V ~ ${now.volts.toFixed(2)} V`);
  t.ok(within((reg(1) | (reg(2) << 16)) / 1000, now.amps, 0.5, 0.001), 'current in mA');
  t.ok(within((reg(3) | (reg(4) << 16)) / 10, now.watts, 0.5, 0.1), `${(reg(3) | (reg(4) << 16)) / 10} W ~ ${now.watts.toFixed(2)} W`);
  t.ok(within(reg(8) / 100, now.pf, 1, 0.01), `PF ${reg(8) / 100}`);
  await new Promise<void>((res) => pzem.close(() => res()));

  r.vj.setLid(1, false);
  r.vj.pressEstop(1, true);
  await r.clock.sleep(5);
  t.same(r.take(), [0x91, 0x04, 0x00, 0x91, 0x14, 0x00], 'lid opened (pin 11 low), then E-stop pressed (pin 12 high)');

  await r.pin(5, false);
  t.equal(r.slot.plug.relayClosed(), false, 'mains off: the plug loses power and its relay drops');
  await r.clock.sleep(5);
  t.same(r.take(), [0x91, 0x10, 0x00], 'relaySense follows');
  const unsafe = r.vj.slot(1).history.where((s) => s.mainsEnergised && s.uartConnected);
  t.same(unsafe, [], 'mains and UART were never connected at the same time');
});

t.test('physical history catches an unsafe overlap; activeLow pins energise when the board drives LOW', async (t) => {
  const unsafeWiring = {
    ...ONE_SLOT,
    slots: [{ ...ONE_SLOT.slots[0]!, pins: { ...ONE_SLOT.slots[0]!.pins, mains: { pin: 5, activeLow: true }, lid: { pin: 11, activeLow: true } } }],
  };
  t.throws(() => parseJig(unsafeWiring), /mains relay must not be active-low/, 'the jig schema refuses this wiring');
  // The simulator still models it (a miswired real jig is exactly what the observer must catch).
  const valid = parseJig(ONE_SLOT);
  const spec = { ...valid, slots: [{ ...valid.slots[0]!, pins: { ...valid.slots[0]!.pins, mains: { pin: 5, activeLow: true }, lid: { pin: 11, activeLow: true } } }] };
  const clock = new VirtualClock();
  const vj = VirtualJig.fromSpec(spec, { clock });
  t.teardown(() => vj.dispose());
  const board = vj.boards.get('io0')!;
  const sent: number[] = [];
  board.connect({ send: (b) => sent.push(...b) }, clock); // a host-less board: boots without a bus
  t.equal(vj.physical(1).mainsEnergised, false, 'before boot the pin floats: relay off');
  await clock.sleep(1);
  t.equal(vj.physical(1).mainsEnergised, true, 'StandardFirmata boots with outputs LOW: an active-low mains relay closes');
  board.receive(Uint8Array.from([0xf4, 4, 0x01, 0xf5, 4, 0x01])); // isolation closed while mains is live
  const overlap = vj.slot(1).history.where((s) => s.mainsEnergised && s.uartConnected);
  t.equal(overlap.length, 1, 'the observer records the unsafe instant');
  t.same(overlap[0]!.changed, ['uartConnected']);
  sent.length = 0;
  board.receive(Uint8Array.from([0xf4, 11, 0x0b, 0xd1, 0x01])); // lid as pull-up input, report port 1
  t.same(sent, [0x91, 0x00, 0x00], 'lid closed on an active-low input reads LOW');
  vj.setLid(1, false);
  t.same(sent.slice(3), [0x91, 0x08, 0x00], 'lid opened: pin 11 HIGH');
});
