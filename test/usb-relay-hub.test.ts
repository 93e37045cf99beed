import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { ConfigError, InstrumentError, ProtocolError, TransportError } from '../rig/core/errors.ts';
import { fromHex, hex } from '../rig/core/hex.ts';
import { FakeUsbSource, type ControlTransferRecord } from '../sim/usb/fake-usb-source.ts';
import {
  DcttechRelay,
  dcttechChannelCount,
  decodeDcttechState,
  encodeDcttechCommand,
  findDcttechBoards,
} from '../rig/usb/dcttech-relay.ts';
import { VirtualDcttechRelay } from '../sim/usb/virtual-dcttech-relay.ts';
import { HubPortPower, describeHubs, findTwinHub, parseHubDescriptor, parsePortStatus } from '../rig/usb/hub-power.ts';
import { VirtualHub } from '../sim/usb/virtual-hub.ts';

// --- Reference byte traces (instruments.md §B4 dcttech, §B5 uhubctl) ---

/** SET_REPORT Feature payload "relay 1 on": ff 01 00 00 00 00 00 00 */
const DCTTECH_RELAY1_ON = fromHex('ff 01 00 00 00 00 00 00');
/** "relay 2 on": ff 02 00 00 00 00 00 00 */
const DCTTECH_RELAY2_ON = fromHex('ff 02 00 00 00 00 00 00');
/** "relay 3 off": fd 03 00 00 00 00 00 00 */
const DCTTECH_RELAY3_OFF = fromHex('fd 03 00 00 00 00 00 00');
/** "all on": fe 00 00 00 00 00 00 00 */
const DCTTECH_ALL_ON = fromHex('fe 00 00 00 00 00 00 00');
/** "all off": fc 00 00 00 00 00 00 00 */
const DCTTECH_ALL_OFF = fromHex('fc 00 00 00 00 00 00 00');
/** GET_REPORT Feature reply of board "QAAMZ" with relays 1 and 3 on: 51 41 41 4d 5a 00 00 05 */
const DCTTECH_STATE_QAAMZ_R1_R3 = fromHex('51 41 41 4d 5a 00 00 05');
/** Same board, relay 2 on: 51 41 41 4d 5a 00 00 02 */
const DCTTECH_STATE_QAAMZ_R2 = fromHex('51 41 41 4d 5a 00 00 02');

/** USB2 hub descriptor, 4 ports, per-port switching (wHubCharacteristics 0x0001): 09 29 04 01 00 32 64 00 ff */
const HUB_DESC_USB2_PER_PORT = fromHex('09 29 04 01 00 32 64 00 ff');
/** USB3 hub descriptor, 4 ports, per-port: 0c 2a 04 01 00 32 00 00 00 00 00 00 */
const HUB_DESC_USB3_PER_PORT = fromHex('0c 2a 04 01 00 32 00 00 00 00 00 00');
/** wPortStatus 0x0101 (power | connection, USB2): 01 01 00 00 */
const HUB_PORT_STATUS_USB2_POWER_CONNECT = fromHex('01 01 00 00');
/** wPortStatus 0x0200 (USB3 power): 00 02 00 00 */
const HUB_PORT_STATUS_USB3_POWER = fromHex('00 02 00 00');
/** wPortStatus 0x0000 (off): 00 00 00 00 */
const HUB_PORT_STATUS_OFF = fromHex('00 00 00 00');

/** Transfer log as compact strings: "out 21 09 0300 0000 [ff 02 …]" / "in a1 01 0300 0000 8 -> […]". */
function trace(records: ControlTransferRecord[]): string[] {
  const h4 = (n: number): string => n.toString(16).padStart(4, '0');
  const h2 = (n: number): string => n.toString(16).padStart(2, '0');
  return records.map((r) =>
    r.direction === 'out'
      ? `out ${h2(r.bmRequestType)} ${h2(r.bRequest)} ${h4(r.wValue)} ${h4(r.wIndex)} [${hex(r.data)}]`
      : `in ${h2(r.bmRequestType)} ${h2(r.bRequest)} ${h4(r.wValue)} ${h4(r.wIndex)} ${r.wLength} -> [${hex(r.data)}]`,
  );
}

const SET = (payload: Uint8Array): string => `out 21 09 0300 0000 [${hex(payload)}]`;
const GET = (reply: Uint8Array): string => `in a1 01 0300 0000 8 -> [${hex(reply)}]`;

t.test('dcttech codec: commands and state report, byte-exact', async (t) => {
  t.same(encodeDcttechCommand({ kind: 'on', channel: 1 }), DCTTECH_RELAY1_ON);
  t.same(encodeDcttechCommand({ kind: 'on', channel: 2 }), DCTTECH_RELAY2_ON);
  t.same(encodeDcttechCommand({ kind: 'off', channel: 3 }), DCTTECH_RELAY3_OFF);
  t.same(encodeDcttechCommand({ kind: 'all-on' }), DCTTECH_ALL_ON);
  t.same(encodeDcttechCommand({ kind: 'all-off' }), DCTTECH_ALL_OFF);
  t.throws(() => encodeDcttechCommand({ kind: 'on', channel: 9 }), ConfigError);
  t.throws(() => encodeDcttechCommand({ kind: 'off', channel: 0 }), ConfigError);

  t.same(decodeDcttechState(DCTTECH_STATE_QAAMZ_R1_R3), { serial: 'QAAMZ', mask: 0x05 });
  t.same(decodeDcttechState(fromHex('41 42 00 00 00 00 00 80')), { serial: 'AB', mask: 0x80 }, 'NUL-padded serial');
  // Every truncation of a valid report is refused (the report arrives whole, so this is the byte-wise check).
  for (let n = 0; n < 8; n++) {
    t.throws(() => decodeDcttechState(DCTTECH_STATE_QAAMZ_R1_R3.subarray(0, n)), ProtocolError, `${n} bytes is too short`);
  }
  t.equal(dcttechChannelCount('USBRelay2'), 2);
  t.equal(dcttechChannelCount('USBRelay8'), 8);
  t.equal(dcttechChannelCount('USBRelay'), undefined);
  t.equal(dcttechChannelCount('HIDRelay4'), undefined);
  t.equal(dcttechChannelCount(undefined), undefined);
});

t.test('virtual dcttech board on its own: raw requests in, raw reports out', async (t) => {
  const board = new VirtualDcttechRelay('QAAMZ', 4);
  const bus = new FakeUsbSource([board.spec({ portNumbers: [1, 4] })]);
  const [dev] = await bus.list();
  t.equal(dev!.info.usbPath, '1-1.4');
  t.equal(dev!.info.product, 'USBRelay4');
  const h = await dev!.open();
  const set = { bmRequestType: 0x21, bRequest: 0x09, wValue: 0x0300, wIndex: 0 };
  const get = { bmRequestType: 0xa1, bRequest: 0x01, wValue: 0x0300, wIndex: 0 };
  await h.controlOut(set, DCTTECH_RELAY1_ON);
  await h.controlOut({ ...set, bmRequestType: 0x20 }, fromHex('ff 03 00 00 00 00 00 00')); // labgrid's device-recipient form
  t.same(await h.controlIn(get, 8), DCTTECH_STATE_QAAMZ_R1_R3);
  await h.controlOut(set, DCTTECH_ALL_OFF);
  await h.controlOut(set, fromHex('ff 09 00 00 00 00 00 00')); // no relay 9 on a 4-channel board: ignored
  t.same(await h.controlIn(get, 8), fromHex('51 41 41 4d 5a 00 00 00'));
  await h.controlOut(set, DCTTECH_ALL_ON);
  t.equal(board.mask, 0x0f, 'all-on only sets existing channels');
  await h.controlOut(set, fromHex('fa 42 4f 41 52 44 00 00'));
  t.same(await h.controlIn(get, 8), fromHex('42 4f 41 52 44 00 00 0f'), '0xFA sets the serial');
  await t.rejects(h.controlOut({ ...set, wValue: 0x0200 }, DCTTECH_RELAY1_ON), TransportError, 'output report type: STALL');
  await t.rejects(h.controlOut(set, DCTTECH_RELAY1_ON.subarray(0, 2)), TransportError, 'short report: STALL');
  await t.rejects(h.controlIn({ ...get, wIndex: 1 }, 8), TransportError, 'wrong interface: STALL');
});

t.test('DcttechRelay: addressed by serial among identical boards, every switch verified', async (t) => {
  const a = new VirtualDcttechRelay('AAAAA', 2);
  const b = new VirtualDcttechRelay('QAAMZ', 4);
  const bus = new FakeUsbSource([a.spec({ portNumbers: [1, 1] }), b.spec({ portNumbers: [1, 2] })]);

  const relay = await DcttechRelay.open(bus, { serial: 'QAAMZ' });
  t.equal(relay.usbPath, '1-1.2');
  t.equal(relay.channels, 4);
  t.equal(relay.serial, 'QAAMZ');
  t.same(bus.events, ['open 1-1.1', 'claim 1-1.1 if0', 'close 1-1.1', 'open 1-1.2', 'claim 1-1.2 if0'], 'board AAAAA was probed and closed again');
  bus.transfers.length = 0;

  await relay.set(2, true);
  t.same(trace(bus.transfers), [SET(DCTTECH_RELAY2_ON), GET(DCTTECH_STATE_QAAMZ_R2)], 'SET_REPORT then read-back, byte-exact');
  t.equal(a.mask, 0, 'the other board is untouched');

  bus.transfers.length = 0;
  await relay.setAll(false);
  await relay.set(1, true);
  await relay.set(3, true);
  t.same(trace(bus.transfers), [
    SET(DCTTECH_ALL_OFF),
    GET(fromHex('51 41 41 4d 5a 00 00 00')),
    SET(DCTTECH_RELAY1_ON),
    GET(fromHex('51 41 41 4d 5a 00 00 01')),
    SET(fromHex('ff 03 00 00 00 00 00 00')),
    GET(DCTTECH_STATE_QAAMZ_R1_R3),
  ]);
  t.same(await relay.read(), { serial: 'QAAMZ', mask: 0x05 });

  bus.transfers.length = 0;
  await t.rejects(relay.set(5, true), ConfigError, 'channel 5 on a 4-relay board');
  t.same(bus.transfers, [], 'nothing sent for an invalid channel');

  b.stuck.add(3);
  const err = await relay.set(3, false).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, InstrumentError, 'a relay that does not follow is detected');
  t.match((err as InstrumentError).message, /did not switch relay 3 off: read-back mask 0x05/);
  t.same((err as InstrumentError).context.bytesSeen, DCTTECH_STATE_QAAMZ_R1_R3);
  t.equal((err as InstrumentError).context.usbPath, '1-1.2');

  bus.remove('1-1.2');
  await t.rejects(relay.set(1, false), TransportError, 'unplugged board fails cleanly');
  await relay.close();

  const byPath = await DcttechRelay.open(bus, { usbPath: '1-1.1' });
  t.equal(byPath.serial, 'AAAAA');
  t.equal(byPath.channels, 2);
  await byPath.close();
  await t.rejects(DcttechRelay.open(bus, { serial: 'QAAMZ' }), { message: /no dcttech relay board with serial "QAAMZ" \(seen: 1-1\.1=AAAAA\)/ });
  await t.rejects(DcttechRelay.open(bus, { usbPath: '1-1.1', serial: 'QAAMZ' }), TransportError, 'both selectors must match');
  await t.rejects(DcttechRelay.open(bus, {}), ConfigError);
});

t.test('findDcttechBoards lists serial and state, and reports boards it cannot open', async (t) => {
  const board = new VirtualDcttechRelay('QAAMZ', 8);
  board.mask = 0x81;
  const bus = new FakeUsbSource([
    board.spec({ portNumbers: [3] }),
    { vid: 0x16c0, pid: 0x05df, portNumbers: [4], product: 'USBRelay2', openError: 'LIBUSB_ERROR_ACCESS' },
    { vid: 0x1a86, pid: 0x7523, portNumbers: [5] },
  ]);
  t.same(await findDcttechBoards(bus), [
    { usbPath: '1-3', product: 'USBRelay8', channels: 8, serial: 'QAAMZ', mask: 0x81 },
    { usbPath: '1-4', product: 'USBRelay2', channels: 2, error: 'cannot open USB device 1-4: LIBUSB_ERROR_ACCESS' },
  ]);
  t.same(bus.events, ['open 1-3', 'claim 1-3 if0', 'close 1-3']);
});

t.test('hub descriptors and port status parse per uhubctl', async (t) => {
  t.same(parseHubDescriptor(HUB_DESC_USB2_PER_PORT), { descriptorType: 0x29, ports: 4, characteristics: 0x0001, powerSwitching: 'per-port', powerOnToGoodMs: 100 });
  t.equal(parseHubDescriptor(HUB_DESC_USB3_PER_PORT).descriptorType, 0x2a);
  t.equal(parseHubDescriptor(fromHex('09 29 07 00 00 32 64 00 ff')).powerSwitching, 'ganged');
  t.equal(parseHubDescriptor(fromHex('09 29 07 a9 00 32 64 00 ff')).powerSwitching, 'per-port', 'only bits 1:0 matter (0xa9 & 3 = 1)');
  t.equal(parseHubDescriptor(fromHex('09 29 07 02 00 32 64 00 ff')).powerSwitching, 'none');
  t.equal(parseHubDescriptor(fromHex('09 29 07 03 00 32 64 00 ff')).powerSwitching, 'none');
  for (let n = 0; n < 9; n++) t.throws(() => parseHubDescriptor(HUB_DESC_USB2_PER_PORT.subarray(0, n)), ProtocolError, `${n} bytes refused`);
  t.throws(() => parseHubDescriptor(fromHex('09 02 04 01 00 32 64 00 ff')), ProtocolError, 'config descriptor is not a hub descriptor');

  t.same(parsePortStatus(2, HUB_PORT_STATUS_USB2_POWER_CONNECT, false), { port: 2, status: 0x0101, change: 0, powered: true, connected: true });
  t.equal(parsePortStatus(2, HUB_PORT_STATUS_USB3_POWER, true).powered, true);
  t.equal(parsePortStatus(2, HUB_PORT_STATUS_USB3_POWER, false).powered, false, 'USB2 power bit is 0x0100, not 0x0200');
  t.equal(parsePortStatus(2, HUB_PORT_STATUS_USB2_POWER_CONNECT, true).powered, false, 'USB3 power bit is 0x0200, not 0x0100');
  t.throws(() => parsePortStatus(1, fromHex('01 01 00'), false), ProtocolError);
});

t.test('virtual hub on its own answers only the documented requests', async (t) => {
  const hub = new VirtualHub({ ports: 4 });
  hub.connected[1] = true;
  const bus = new FakeUsbSource([hub.spec({ portNumbers: [1] })]);
  const h = await (await bus.list())[0]!.open();
  t.same(await h.controlIn({ bmRequestType: 0xa0, bRequest: 0x06, wValue: 0x2900, wIndex: 0 }, 12), HUB_DESC_USB2_PER_PORT);
  await t.rejects(h.controlIn({ bmRequestType: 0xa0, bRequest: 0x06, wValue: 0x2a00, wIndex: 0 }, 12), TransportError, 'a USB2 hub STALLs the SuperSpeed descriptor');
  t.same(await h.controlIn({ bmRequestType: 0xa3, bRequest: 0x00, wValue: 0, wIndex: 2 }, 4), HUB_PORT_STATUS_USB2_POWER_CONNECT);
  await h.controlOut({ bmRequestType: 0x23, bRequest: 0x01, wValue: 8, wIndex: 2 }, new Uint8Array(0));
  t.same(await h.controlIn({ bmRequestType: 0xa3, bRequest: 0x00, wValue: 0, wIndex: 2 }, 4), HUB_PORT_STATUS_OFF);
  await h.controlOut({ bmRequestType: 0x23, bRequest: 0x03, wValue: 8, wIndex: 2 }, new Uint8Array(0));
  t.equal(hub.powered[1], true);
  await t.rejects(h.controlOut({ bmRequestType: 0x23, bRequest: 0x03, wValue: 8, wIndex: 5 }, new Uint8Array(0)), TransportError, 'no port 5');
  await t.rejects(h.controlOut({ bmRequestType: 0x23, bRequest: 0x03, wValue: 4, wIndex: 1 }, new Uint8Array(0)), TransportError, 'PORT_RESET is not modelled');
});

t.test('HubPortPower switches both halves of a USB3 hub, byte-exact, and verifies', async (t) => {
  const usb3 = new VirtualHub({ ports: 4, superSpeed: true });
  const usb2 = new VirtualHub({ ports: 4 });
  const other = new VirtualHub({ ports: 4, vid: 0x05e3, pid: 0x0610 });
  const bus = new FakeUsbSource([
    usb3.spec({ busNumber: 2, portNumbers: [1] }),
    usb2.spec({ busNumber: 1, portNumbers: [1] }),
    other.spec({ busNumber: 1, portNumbers: [2] }),
  ]);
  t.equal(findTwinHub((await bus.list())[0]!.info, (await bus.list()).map((d) => d.info))?.usbPath, '1-1', 'twin: other speed, same VID, same port chain');
  const clock = new VirtualClock();
  const power = await HubPortPower.open(bus, '2-1', { clock });
  t.same(power.hubPaths, ['2-1', '1-1']);
  t.equal(power.ports, 4);
  t.same(trace(bus.transfers), [`in a0 06 2a00 0000 12 -> [${hex(HUB_DESC_USB3_PER_PORT)}]`, `in a0 06 2900 0000 12 -> [${hex(HUB_DESC_USB2_PER_PORT)}]`]);

  bus.transfers.length = 0;
  await power.setPower(3, false);
  t.same(trace(bus.transfers), [
    'out 23 01 0008 0003 []',
    'out 23 01 0008 0003 []',
    `in a3 00 0000 0003 4 -> [${hex(HUB_PORT_STATUS_OFF)}]`,
    `in a3 00 0000 0003 4 -> [${hex(HUB_PORT_STATUS_OFF)}]`,
  ]);
  t.same(bus.transfersTo('2-1').length, 2, 'half of them to the USB3 hub');
  t.equal(usb3.powered[2], false);
  t.equal(usb2.powered[2], false);
  t.equal(other.powered[2], true, 'unrelated hub untouched');
  t.equal(clock.now(), 150, 'waited for the USB3 half to drop the port (virtual time)');

  bus.transfers.length = 0;
  await power.setPower(3, true);
  t.same(trace(bus.transfers), [
    'out 23 03 0008 0003 []',
    'out 23 03 0008 0003 []',
    `in a3 00 0000 0003 4 -> [${hex(HUB_PORT_STATUS_USB3_POWER)}]`,
    'in a3 00 0000 0003 4 -> [00 01 00 00]',
  ]);
  t.same(
    (await power.status(3)).map((s) => [s.usbPath, s.powered]),
    [
      ['2-1', true],
      ['1-1', true],
    ],
  );
  await t.rejects(power.setPower(5, true), ConfigError, 'port out of range');

  usb2.ignorePowerOff = true;
  const err = await power.setPower(1, false).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, InstrumentError, 'a hub that keeps the port powered is caught');
  t.match((err as InstrumentError).message, /hub 1-1 port 1 still powered after power off \(wPortStatus 0x0100/);
  await power.close();
  t.ok(bus.events.includes('close 2-1') && bus.events.includes('close 1-1'));

  const single = await HubPortPower.open(bus, '1-1', { clock, twin: false, offRepeats: 3 });
  t.same(single.hubPaths, ['1-1']);
  usb2.ignorePowerOff = false;
  bus.transfers.length = 0;
  await single.setPower(4, false);
  t.same(trace(bus.transfers).filter((l) => l.startsWith('out')), ['out 23 01 0008 0004 []', 'out 23 01 0008 0004 []', 'out 23 01 0008 0004 []'], 'uhubctl -r 3');
  await single.close();
});

t.test('HubPortPower refuses hubs without per-port switching and unknown paths', async (t) => {
  const ganged = new VirtualHub({ ports: 7, characteristics: 0x0000 });
  const bus = new FakeUsbSource([ganged.spec({ portNumbers: [2] }), { vid: 0x1a86, pid: 0x7523, portNumbers: [3] }]);
  const clock = new VirtualClock();
  await t.rejects(HubPortPower.open(bus, '1-2', { clock }), { message: /hub 1-2 has ganged power switching \(wHubCharacteristics 0x0000\)/ });
  t.same(bus.events, ['open 1-2', 'close 1-2'], 'handle closed after refusing');
  t.equal(ganged.powered.every(Boolean), true, 'nothing switched');
  await t.rejects(HubPortPower.open(bus, '1-3', { clock }), TransportError, 'a UART is not a hub');
  t.same(
    (await describeHubs(bus)).map((h) => [h.info.usbPath, h.descriptor?.powerSwitching, h.descriptor?.ports]),
    [['1-2', 'ganged', 7]],
  );
});
