import t from 'tap';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { TransportError, ConfigError } from '../rig/core/errors.ts';
import { readSysfsUsb, ttyPathsForUsbPath } from '../rig/usb/usb-sysfs.ts';
import { AdapterWatch, discoverUsbUarts, resolveUartRef, selectUartPath, usbUartChip, type UsbUartAdapter } from '../rig/usb/usb-uart.ts';

/** Build a fake /sys/bus/usb/devices tree: flat entries like the kernel's symlinks. */
function fakeSysfs(): { root: string; device: (name: string, attrs: Record<string, string>) => void; iface: (name: string, attrs: Record<string, string>, ttys?: { direct?: string[]; classed?: string[] }) => void } {
  const root = mkdtempSync(join(tmpdir(), 'plugrig-sysfs-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const write = (dir: string, attrs: Record<string, string>): void => {
    mkdirSync(dir, { recursive: true });
    // sysfs attributes end with a newline (and "version" has a leading space).
    for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, k), v + '\n');
  };
  return {
    root,
    device: (name, attrs) => write(join(root, name), attrs),
    iface: (name, attrs, ttys = {}) => {
      write(join(root, name), attrs);
      for (const tty of ttys.direct ?? []) mkdirSync(join(root, name, tty), { recursive: true });
      for (const tty of ttys.classed ?? []) mkdirSync(join(root, name, 'tty', tty), { recursive: true });
    },
  };
}

/** A station: root hub, a 4-port hub on 1-1 with CH340 (1-1.3), CP2102 (1-1.4), a CDC-ACM CH9102 (1-1.2), an FTDI without driver (2-1), a keyboard. */
function stationTree(): string {
  const s = fakeSysfs();
  s.device('usb1', { idVendor: '1d6b', idProduct: '0002' });
  s.iface('1-0:1.0', { bInterfaceNumber: '00', bInterfaceClass: '09' });
  s.device('1-1', { idVendor: '2109', idProduct: '2817', bDeviceClass: '09', version: ' 2.10', product: 'USB2.0 Hub' });
  s.iface('1-1:1.0', { bInterfaceNumber: '00', bInterfaceClass: '09' });
  s.device('1-1.3', { idVendor: '1a86', idProduct: '7523', bDeviceClass: 'ff', version: ' 1.10', product: 'USB Serial' });
  s.iface('1-1.3:1.0', { bInterfaceNumber: '00', bInterfaceClass: 'ff', bInterfaceSubClass: '01', bInterfaceProtocol: '02' }, { direct: ['ttyUSB1'] });
  s.device('1-1.4', { idVendor: '10c4', idProduct: 'ea60', version: ' 2.00', manufacturer: 'Silicon Labs', product: 'CP2102 USB to UART Bridge Controller', serial: '0001' });
  s.iface('1-1.4:1.0', { bInterfaceNumber: '00', bInterfaceClass: 'ff' }, { direct: ['ttyUSB0'] });
  s.device('1-1.2', { idVendor: '1a86', idProduct: '55d4', version: ' 2.00', serial: '5434012345' });
  s.iface('1-1.2:1.0', { bInterfaceNumber: '00', bInterfaceClass: '02', bInterfaceSubClass: '02', bInterfaceProtocol: '01' }, { classed: ['ttyACM0'] });
  s.iface('1-1.2:1.1', { bInterfaceNumber: '01', bInterfaceClass: '0a' });
  s.device('2-1', { idVendor: '0403', idProduct: '6001', serial: 'A10K1234', version: ' 2.00' });
  s.iface('2-1:1.0', { bInterfaceNumber: '00', bInterfaceClass: 'ff' });
  s.device('1-1.1', { idVendor: '046d', idProduct: 'c31c', product: 'USB Keyboard' });
  s.iface('1-1.1:1.0', { bInterfaceNumber: '00', bInterfaceClass: '03' });
  return s.root;
}

t.test('sysfs reader: topology, strings, interfaces and tty children', async (t) => {
  const root = stationTree();
  const snap = await readSysfsUsb({ sysfsRoot: root, devRoot: '/dev' });
  t.equal(snap.present, true);
  t.same(
    snap.devices.map((d) => d.usbPath),
    ['1-1', '1-1.1', '1-1.2', '1-1.3', '1-1.4', '2-1'],
    'devices only (no root hub "usb1", no interfaces), natural order',
  );
  const ch340 = snap.devices.find((d) => d.usbPath === '1-1.3')!;
  t.same(ch340.portNumbers, [1, 3]);
  t.equal(ch340.busNumber, 1);
  t.equal(ch340.vid, 0x1a86);
  t.equal(ch340.pid, 0x7523);
  t.equal(ch340.bcdUsb, 0x0110, '" 1.10" -> bcdUSB 0x0110');
  t.equal(ch340.deviceClass, 0xff);
  t.equal(ch340.serialNumber, undefined, 'CH340 has no serial attribute');
  t.same(ch340.interfaces, [{ number: 0, class: 0xff, subClass: 1, protocol: 2, ttys: ['ttyUSB1'] }]);
  t.same(ch340.devPaths, ['/dev/ttyUSB1']);
  const cp = snap.devices.find((d) => d.usbPath === '1-1.4')!;
  t.equal(cp.manufacturer, 'Silicon Labs');
  t.equal(cp.serialNumber, '0001');
  const acm = snap.devices.find((d) => d.usbPath === '1-1.2')!;
  t.same(acm.devPaths, ['/dev/ttyACM0'], 'cdc_acm tty is under interface/tty/');
  t.equal(acm.interfaces.length, 2);
  t.same(await ttyPathsForUsbPath('1-1.4', { sysfsRoot: root, devRoot: '/dev' }), ['/dev/ttyUSB0']);
  t.same(await ttyPathsForUsbPath('9-9', { sysfsRoot: root }), []);

  const missing = await readSysfsUsb({ sysfsRoot: join(root, 'nope') });
  t.same(missing, { present: false, root: join(root, 'nope'), devices: [] }, 'absent sysfs is reported, not thrown');
});

t.test('USB-UART discovery by VID:PID and resolution of slot references', async (t) => {
  const root = stationTree();
  const adapters = await discoverUsbUarts({ sysfsRoot: root, devRoot: '/dev' });
  t.same(adapters, [
    { chip: 'CH9102', vid: 0x1a86, pid: 0x55d4, usbPath: '1-1.2', serialNumber: '5434012345', devPath: '/dev/ttyACM0' },
    { chip: 'CH340', vid: 0x1a86, pid: 0x7523, usbPath: '1-1.3', serialNumber: undefined, devPath: '/dev/ttyUSB1' },
    { chip: 'CP210x', vid: 0x10c4, pid: 0xea60, usbPath: '1-1.4', serialNumber: '0001', devPath: '/dev/ttyUSB0' },
    { chip: 'FT232R', vid: 0x0403, pid: 0x6001, usbPath: '2-1', serialNumber: 'A10K1234', devPath: undefined },
  ]);
  t.equal(usbUartChip(0x067b, 0x23a3), 'PL2303GC');
  t.equal(usbUartChip(0x0403, 0x6015), 'FT231X');
  t.equal(usbUartChip(0x10c4, 0xea70), 'CP2105');
  t.equal(usbUartChip(0x046d, 0xc31c), undefined);

  t.equal(await resolveUartRef({ usbPath: '1-1.3' }, { sysfsRoot: root, devRoot: '/dev' }), '/dev/ttyUSB1', 'bound by port, not by ttyUSB number');
  t.equal(await resolveUartRef({ serialNumber: '0001' }, { sysfsRoot: root, devRoot: '/dev' }), '/dev/ttyUSB0');
  t.equal(await resolveUartRef({ port: 'sim:slot1' }, { sysfsRoot: join(root, 'nope') }), 'sim:slot1', 'port passes through untouched');
  t.equal(selectUartPath({ usbPath: '1-1.2', serialNumber: '5434012345' }, adapters), '/dev/ttyACM0');

  t.throws(() => selectUartPath({ usbPath: '1-1.9' }, adapters), TransportError);
  t.throws(() => selectUartPath({ usbPath: '1-1.9' }, adapters), { message: /no USB-UART adapter with USB path 1-1\.9 \(present: 1-1\.2 CH9102/ });
  t.throws(() => selectUartPath({ usbPath: '2-1' }, adapters), { message: /FT232R \(0403:6001\) at 2-1 has no tty/ }, 'adapter without driver');
  t.throws(() => selectUartPath({ usbPath: '1-1.3', serialNumber: '0001' }, adapters), TransportError, 'both fields must match');
  t.throws(() => selectUartPath({}, adapters), ConfigError);
  t.throws(() => selectUartPath({ usbPath: '1-1.4' }, []), { message: /no USB-UART adapters found/ });

  // Two cheap CH340-clones reporting the same serial: ambiguous.
  const twins: UsbUartAdapter[] = [
    { chip: 'CH9102', vid: 0x1a86, pid: 0x55d4, usbPath: '1-2', serialNumber: '0001', devPath: '/dev/ttyACM0' },
    { chip: 'CH9102', vid: 0x1a86, pid: 0x55d4, usbPath: '1-3', serialNumber: '0001', devPath: '/dev/ttyACM1' },
  ];
  const err = t.throws(() => selectUartPath({ serialNumber: '0001' }, twins)) as TransportError;
  t.type(err, TransportError);
  t.match(err.message, /2 USB-UART adapters match serial "0001": 1-2, 1-3; bind the slot by usbPath/);
  t.equal(err.context.step, 'uart-resolve');
});

t.test('AdapterWatch: an unplugged adapter aborts only its own slot', async (t) => {
  const clock = new VirtualClock();
  const a = (usbPath: string, devPath: string): UsbUartAdapter => ({ chip: 'CH340', vid: 0x1a86, pid: 0x7523, usbPath, devPath });
  let present = [a('1-1.1', '/dev/ttyUSB0'), a('1-1.2', '/dev/ttyUSB1')];
  let scans = 0;
  let failNext = false;
  const watch = new AdapterWatch({
    clock,
    intervalMs: 250,
    scan: async () => {
      scans++;
      if (failNext) {
        failNext = false;
        throw new Error('sysfs hiccup');
      }
      return present;
    },
  });
  const events: string[] = [];
  watch.on('added', (ad) => events.push(`added ${ad.usbPath} ${ad.devPath}@${clock.now()}`));
  watch.on('removed', (p) => events.push(`removed ${p}@${clock.now()}`));
  watch.on('scanError', (e) => events.push(`scanError ${(e as Error).message}@${clock.now()}`));
  await watch.start();
  t.same(events, [], 'adapters present at start are not "added"');

  const slot1 = watch.signalFor('1-1.1');
  const slot2 = watch.signalFor('1-1.2');
  t.equal(watch.signalFor('1-1.1'), slot1, 'one signal per USB path');
  t.equal(watch.signalFor('9-9').aborted, true, 'absent adapter: already aborted');

  // Slot 1 runs a long operation under its signal; slot 2 keeps working.
  const slot1Work = t.rejects(clock.sleep(10_000, slot1), TransportError, 'slot 1 fails with a TransportError');
  await clock.sleep(600);
  present = [a('1-1.2', '/dev/ttyUSB1')];
  await clock.sleep(250);
  await slot1Work;
  t.match(String((slot1.reason as Error).message), /USB-UART adapter at 1-1\.1 \(CH340 \/dev\/ttyUSB0\) was unplugged/);
  t.equal(slot2.aborted, false, 'slot 2 unaffected');

  failNext = true;
  await clock.sleep(250);
  // Re-plugged adapter comes back under a new tty name; same USB path.
  present = [a('1-1.2', '/dev/ttyUSB1'), a('1-1.1', '/dev/ttyUSB2')];
  await clock.sleep(250);
  await watch.stop();
  t.same(events, ['removed 1-1.1@750', 'scanError sysfs hiccup@1000', 'added 1-1.1 /dev/ttyUSB2@1250']);
  t.same(watch.adapters.map((x) => x.devPath), ['/dev/ttyUSB1', '/dev/ttyUSB2']);
  const scansAtStop = scans;
  await clock.sleep(2000);
  t.equal(scans, scansAtStop, 'no polling after stop()');
  t.equal(clock.pending(), 0, 'no timers left behind');
});
