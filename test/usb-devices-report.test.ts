import t from 'tap';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeUsbSource } from '../sim/usb/fake-usb-source.ts';
import { NodeUsbSource } from '../rig/usb/node-usb-source.ts';
import { VirtualDcttechRelay } from '../sim/usb/virtual-dcttech-relay.ts';
import { VirtualHub } from '../sim/usb/virtual-hub.ts';
import {
  NOTE_NO_UDEVADM,
  NOTE_NO_USB_BUS,
  NOTE_NOTHING_FOUND,
  NOTE_TTY_PERMISSION,
  NOTE_USB_PERMISSION,
  collectDevicesReport,
  devicesReportJson,
  renderDevicesText,
  type DevicesReport,
} from '../rig/usb/devices-report.ts';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-devices-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function put(dir: string, attrs: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, k), v + '\n');
}

/** A station: CH340 on 1-1.3 (ttyUSB1), a driverless FTDI on 1-1.5, and a /sys/class/tty with ttyUSB1 + a console. */
function station(): { sysfsRoot: string; ttyClassRoot: string } {
  const base = tempDir();
  const sysfsRoot = join(base, 'bus-usb-devices');
  put(join(sysfsRoot, '1-1.3'), { idVendor: '1a86', idProduct: '7523', version: ' 1.10' });
  put(join(sysfsRoot, '1-1.3:1.0'), { bInterfaceNumber: '00', bInterfaceClass: 'ff' });
  mkdirSync(join(sysfsRoot, '1-1.3:1.0', 'ttyUSB1'));
  put(join(sysfsRoot, '1-1.5'), { idVendor: '0403', idProduct: '6001', serial: 'A10K1234' });
  const ttyClassRoot = join(base, 'class-tty');
  mkdirSync(join(ttyClassRoot, 'ttyUSB1', 'device'), { recursive: true });
  mkdirSync(join(ttyClassRoot, 'ttyAMA0', 'device'), { recursive: true });
  mkdirSync(join(ttyClassRoot, 'tty0'), { recursive: true });
  mkdirSync(join(ttyClassRoot, 'ttyACM7'), { recursive: true }); // no device link: not listed
  return { sysfsRoot, ttyClassRoot };
}

function stationBus(): FakeUsbSource {
  const relay = new VirtualDcttechRelay('QAAMZ', 2);
  relay.mask = 0x02;
  const hub = new VirtualHub({ ports: 4 });
  return new FakeUsbSource([
    { vid: 0x1a86, pid: 0x7523, portNumbers: [1, 3] },
    relay.spec({ portNumbers: [1, 4] }),
    { vid: 0x16c0, pid: 0x05df, portNumbers: [1, 6], product: 'USBRelay4', openError: 'LIBUSB_ERROR_ACCESS' },
    hub.spec({ portNumbers: [1] }),
    {
      vid: 0x0b21,
      pid: 0x0025,
      portNumbers: [1, 2],
      manufacturer: 'YOKOGAWA',
      product: 'WT310E',
      serialNumber: 'C2XC12345',
      interfaces: [{ number: 0, class: 0xfe, subClass: 0x03, protocol: 0x01 }],
    },
  ]);
}

t.test('populated station, serial ports from the sysfs fallback (no udevadm)', async (t) => {
  const { sysfsRoot, ttyClassRoot } = station();
  let listCalled = false;
  const report = await collectDevicesReport({
    usb: stationBus(),
    sysfsRoot,
    ttyClassRoot,
    devRoot: '/dev',
    hasUdevadm: async () => false,
    listSerialPorts: async () => {
      listCalled = true;
      return [];
    },
    ttyAccess: async (p) => (p === '/dev/ttyUSB1' ? 'denied' : 'ok'),
  });
  t.equal(listCalled, false, 'SerialPort.list is not called without udevadm');
  t.equal(report.usbBusVisible, true);
  t.equal(report.serialPortsSource, 'sysfs');
  t.same(report.serialPorts, [
    { path: '/dev/ttyAMA0', source: 'sysfs', access: 'ok' },
    { path: '/dev/ttyUSB1', source: 'sysfs', usbPath: '1-1.3', vidPid: '1a86:7523', manufacturer: undefined, serialNumber: undefined, access: 'denied' },
  ]);
  t.same(report.uartAdapters, [
    { chip: 'CH340', vid: 0x1a86, pid: 0x7523, usbPath: '1-1.3', serialNumber: undefined, devPath: '/dev/ttyUSB1', access: 'denied' },
    { chip: 'FT232R', vid: 0x0403, pid: 0x6001, usbPath: '1-1.5', serialNumber: 'A10K1234', devPath: undefined },
  ]);
  t.same(report.relayBoards, [
    { usbPath: '1-1.4', product: 'USBRelay2', channels: 2, serial: 'QAAMZ', mask: 0x02 },
    { usbPath: '1-1.6', product: 'USBRelay4', channels: 4, error: 'cannot open USB device 1-1.6: LIBUSB_ERROR_ACCESS' },
  ]);
  t.same(report.usbtmc, [{ usbPath: '1-1.2', vidPid: '0b21:0025', manufacturer: 'YOKOGAWA', product: 'WT310E', serialNumber: 'C2XC12345', usb488: true }]);
  t.same(report.hubs, [{ usbPath: '1-1', vidPid: '2109:2817', product: 'USB2.0 Hub', superSpeed: false, ports: 4, powerSwitching: 'per-port', twinPath: undefined, error: undefined }]);
  t.same(report.notes, [NOTE_NO_UDEVADM, NOTE_USB_PERMISSION, NOTE_TTY_PERMISSION]);
  t.match(NOTE_USB_PERMISSION, 'SUBSYSTEM=="usb", ATTR{idVendor}=="16c0", ATTR{idProduct}=="05df", MODE="0660", GROUP="plugdev"');
  t.match(NOTE_TTY_PERMISSION, /dialout/);

  const text = renderDevicesText(report);
  t.match(text, /^Serial ports \(via sysfs\):\n  PATH +USB PATH +VID:PID/);
  t.match(text, /\n  \/dev\/ttyUSB1 +1-1\.3 +1a86:7523 +- +- +denied\n/);
  t.match(text, /\n  1-1\.3 +CH340 +1a86:7523 +- +\/dev\/ttyUSB1 +denied\n/);
  t.match(text, /\n  1-1\.5 +FT232R +0403:6001 +A10K1234 +- +-\n/, 'driverless adapter shows no tty');
  t.match(text, /\n  1-1\.4 +USBRelay2 +QAAMZ +1:off 2:on\n/);
  t.match(text, /\n  1-1\.6 +USBRelay4 +- +error: cannot open USB device 1-1\.6: LIBUSB_ERROR_ACCESS\n/);
  t.match(text, /\n  1-1\.2 +0b21:0025 +YOKOGAWA +WT310E +C2XC12345 +yes\n/);
  t.match(text, /\n  1-1 +2109:2817 +2\.0 +4 +per-port +-\n/);
  t.match(text, /\nNotes:\n- udevadm is not installed/);
  t.match(text, /\n    SUBSYSTEM=="usb", ATTR\{idVendor\}=="16c0"/, 'multi-line note is indented');
  t.notMatch(text, / +\n/, 'no trailing blanks');

  const json = JSON.parse(devicesReportJson(report)) as DevicesReport;
  t.same(json.relayBoards[0], { usbPath: '1-1.4', product: 'USBRelay2', channels: 2, serial: 'QAAMZ', mask: 2 });
  t.equal(json.notes.length, 3);
});

t.test('serial ports via serialport when udevadm exists, and the fallback when list() rejects', async (t) => {
  const { sysfsRoot, ttyClassRoot } = station();
  const ok = await collectDevicesReport({
    usb: new FakeUsbSource(),
    sysfsRoot,
    ttyClassRoot,
    hasUdevadm: async () => true,
    listSerialPorts: async () => [{ path: '/dev/ttyUSB1', vendorId: '1A86', productId: '7523', manufacturer: '1a86', serialNumber: undefined }],
    ttyAccess: async () => 'ok',
  });
  t.equal(ok.serialPortsSource, 'serialport');
  t.same(ok.serialPorts, [{ path: '/dev/ttyUSB1', source: 'serialport', usbPath: '1-1.3', vidPid: '1a86:7523', manufacturer: '1a86', serialNumber: undefined, access: 'ok' }]);
  t.same(ok.notes, []);
  t.match(renderDevicesText(ok), /^Serial ports \(via serialport\/udev\):/);

  const failing = await collectDevicesReport({
    usb: new FakeUsbSource(),
    sysfsRoot,
    ttyClassRoot,
    hasUdevadm: async () => true,
    listSerialPorts: async () => {
      throw new Error('spawn udevadm ENOENT');
    },
    ttyAccess: async () => 'ok',
  });
  t.equal(failing.serialPortsSource, 'sysfs');
  t.same(failing.serialPorts.map((p) => p.path), ['/dev/ttyAMA0', '/dev/ttyUSB1']);
  t.same(failing.notes, ['SerialPort.list() failed (spawn udevadm ENOENT); serial ports were listed from sysfs instead.']);
});

t.test('empty machine: no USB bus explained, every section says (none)', async (t) => {
  const base = tempDir();
  const failingBus = { list: async () => Promise.reject(new Error('libusb exploded')) };
  const report = await collectDevicesReport({
    usb: failingBus,
    sysfsRoot: join(base, 'no-sysfs'),
    ttyClassRoot: join(base, 'no-tty'),
    hasUdevadm: async () => false,
  });
  t.equal(report.usbBusVisible, false);
  t.same([report.serialPorts, report.uartAdapters, report.relayBoards, report.usbtmc, report.hubs], [[], [], [], [], []]);
  t.same(report.notes, [
    'Listing USB devices failed: libusb exploded',
    NOTE_NO_UDEVADM,
    NOTE_NO_USB_BUS,
  ]);
  const text = renderDevicesText(report);
  t.equal(text.match(/\n  \(none\)\n/g)?.length, 5, 'five empty sections');
  t.match(text, /- No USB bus is visible \(\/sys\/bus\/usb\/devices does not exist\)/);

  const visibleButEmpty = await collectDevicesReport({
    usb: new FakeUsbSource(),
    sysfsRoot: mkdtempSync(join(base, 'sysfs-')),
    ttyClassRoot: join(base, 'no-tty'),
    hasUdevadm: async () => false,
  });
  t.equal(visibleButEmpty.usbBusVisible, true);
  t.same(visibleButEmpty.notes, [NOTE_NO_UDEVADM, NOTE_NOTHING_FOUND]);
});

t.test('real node-usb source and real sysfs on this machine: never throws', async (t) => {
  const usb = new NodeUsbSource();
  const devices = await usb.list();
  t.ok(Array.isArray(devices), 'node-usb v2 getDeviceList() gives a list (empty without a USB bus)');
  const report = await collectDevicesReport({ usb });
  t.type(report.usbBusVisible, 'boolean');
  if (!report.usbBusVisible) {
    t.ok(report.notes.includes(NOTE_NO_USB_BUS), 'no USB bus: the note says so');
    t.same(devices, []);
  } else {
    t.ok(report.notes.every((n) => !n.startsWith('Listing USB devices failed')), 'libusb enumeration worked');
  }
  t.match(renderDevicesText(report), /USB-UART adapters:/);
});
