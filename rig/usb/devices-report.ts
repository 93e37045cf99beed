import { access, constants, readdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { findDcttechBoards, type DcttechBoardInfo } from './dcttech-relay.ts';
import { describeHubs, isSuperSpeedHub, type PowerSwitching } from './hub-power.ts';
import { usbUartChip, usbUartsAmong, type UsbUartAdapter } from './usb-uart.ts';
import { vidPidText, type UsbDevice, type UsbDeviceInfo, type UsbDeviceSource } from './usb-source.ts';
import { readSysfsUsb, SYSFS_USB_DEVICES, type SysfsUsbSnapshot } from './usb-sysfs.ts';

/**
 * What `plugrig devices` shows: everything a station operator needs to bind slots to hardware,
 * plus a plain explanation when nothing is visible or access is denied. Collection never throws;
 * every failure becomes a note.
 */

/** Subset of serialport's PortInfo that the report uses. */
export interface SerialPortListing {
  path: string;
  manufacturer?: string;
  serialNumber?: string;
  vendorId?: string;
  productId?: string;
}

export interface SerialPortEntry {
  path: string;
  source: 'serialport' | 'sysfs';
  usbPath?: string;
  vidPid?: string;
  manufacturer?: string;
  serialNumber?: string;
  access?: TtyAccess;
}

export interface UsbtmcEntry {
  usbPath: string;
  vidPid: string;
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  /** Interface protocol 1 = USB488 (status byte, trigger, REN). */
  usb488: boolean;
}

export interface HubEntry {
  usbPath: string;
  vidPid: string;
  product?: string;
  superSpeed: boolean;
  ports?: number;
  powerSwitching?: PowerSwitching;
  twinPath?: string;
  error?: string;
}

export interface UartEntry extends UsbUartAdapter {
  access?: TtyAccess;
}

export interface DevicesReport {
  /** Whether sysfs shows a USB bus at all. */
  usbBusVisible: boolean;
  serialPortsSource: 'serialport' | 'sysfs';
  serialPorts: SerialPortEntry[];
  uartAdapters: UartEntry[];
  relayBoards: DcttechBoardInfo[];
  usbtmc: UsbtmcEntry[];
  hubs: HubEntry[];
  notes: string[];
}

export type TtyAccess = 'ok' | 'denied' | 'missing';

export interface DevicesReportOptions {
  /** USB bus to query; the CLI passes a NodeUsbSource. */
  usb: UsbDeviceSource;
  sysfsRoot?: string;
  /** /sys/class/tty, for the serial-port fallback. */
  ttyClassRoot?: string;
  devRoot?: string;
  /** serialport's SerialPort.list (injected so tests never spawn udevadm). */
  listSerialPorts?: () => Promise<SerialPortListing[]>;
  /** Whether udevadm is installed; default: search PATH. SerialPort.list needs it. */
  hasUdevadm?: () => Promise<boolean>;
  /** Whether a tty can be opened read/write by this user; default: fs.access. */
  ttyAccess?: (path: string) => Promise<TtyAccess>;
}

export const NOTE_NO_USB_BUS =
  `No USB bus is visible (${SYSFS_USB_DEVICES} does not exist): this looks like a container or VM without USB passthrough. ` +
  'Run plugrig on the station host, or pass the devices through (e.g. docker run --device /dev/bus/usb --device /dev/ttyUSB0 -v /sys/bus/usb:/sys/bus/usb:ro).';
export const NOTE_NOTHING_FOUND = 'No serial ports or USB devices found. Check cables and that the adapters show up in `dmesg`.';
export const NOTE_USB_PERMISSION =
  'No permission to open some USB devices. Add a udev rule, e.g. in /etc/udev/rules.d/50-plugrig.rules:\n' +
  '  SUBSYSTEM=="usb", ATTR{idVendor}=="16c0", ATTR{idProduct}=="05df", MODE="0660", GROUP="plugdev"\n' +
  '(one line per VID:PID; hubs used for port power need one too), then `sudo udevadm control --reload && sudo udevadm trigger`, ' +
  'make sure your user is in the plugdev group, and replug the devices.';
export const NOTE_TTY_PERMISSION =
  'No permission to open some serial ports: add your user to the dialout group (`sudo usermod -aG dialout $USER`) and log in again.';
export const NOTE_NO_UDEVADM = 'udevadm is not installed, so serial ports were listed from sysfs (/sys/class/tty) without udev details.';

const SERIAL_TTY = /^tty(USB|ACM|CH343USB|XRUSB|AMA)\d+$/;
const ACCESS_DENIED = /EACCES|LIBUSB_ERROR_ACCESS|permission/i;

export async function collectDevicesReport(options: DevicesReportOptions): Promise<DevicesReport> {
  const notes: string[] = [];
  const errorNote = (what: string, err: unknown): void => {
    notes.push(`${what} failed: ${err instanceof Error ? err.message : String(err)}`);
  };
  const ttyAccess = options.ttyAccess ?? defaultTtyAccess;

  let sysfs: SysfsUsbSnapshot = { present: false, root: options.sysfsRoot ?? SYSFS_USB_DEVICES, devices: [] };
  try {
    sysfs = await readSysfsUsb({ sysfsRoot: options.sysfsRoot, devRoot: options.devRoot });
  } catch (err) {
    errorNote('Reading sysfs', err);
  }

  // Enumerate once; relay and hub scans work on this snapshot so all sections agree.
  let usbDevices: UsbDevice[] = [];
  try {
    usbDevices = await options.usb.list();
  } catch (err) {
    errorNote('Listing USB devices', err);
  }
  const snapshot: UsbDeviceSource = { list: async () => usbDevices };
  const usbInfos: UsbDeviceInfo[] = usbDevices.map((d) => d.info);

  // Serial ports: serialport when udev is there, else sysfs.
  const { ports: serialPorts, source: serialPortsSource } = await listPorts(options, sysfs, notes);

  const uartAdapters: UartEntry[] = usbUartsAmong(sysfs.devices);
  for (const info of usbInfos) {
    const chip = usbUartChip(info.vid, info.pid);
    if (chip && !uartAdapters.some((a) => a.usbPath === info.usbPath)) {
      uartAdapters.push({ chip, vid: info.vid, pid: info.pid, usbPath: info.usbPath, serialNumber: info.serialNumber });
    }
  }
  for (const a of uartAdapters) if (a.devPath) a.access = await ttyAccess(a.devPath);
  for (const p of serialPorts) p.access = await ttyAccess(p.path);

  let relayBoards: DcttechBoardInfo[] = [];
  try {
    relayBoards = await findDcttechBoards(snapshot);
  } catch (err) {
    errorNote('Scanning relay boards', err);
  }

  const usbtmc: UsbtmcEntry[] = [];
  for (const info of usbInfos) {
    const tmc = info.interfaces.find((i) => i.class === 0xfe && i.subClass === 0x03);
    if (!tmc) continue;
    usbtmc.push({
      usbPath: info.usbPath,
      vidPid: vidPidText(info.vid, info.pid),
      manufacturer: info.manufacturer,
      product: info.product,
      serialNumber: info.serialNumber,
      usb488: tmc.protocol === 1,
    });
  }

  let hubs: HubEntry[] = [];
  try {
    hubs = (await describeHubs(snapshot)).map((h) => ({
      usbPath: h.info.usbPath,
      vidPid: vidPidText(h.info.vid, h.info.pid),
      product: h.info.product,
      superSpeed: isSuperSpeedHub(h.info),
      ports: h.descriptor?.ports,
      powerSwitching: h.descriptor?.powerSwitching,
      twinPath: h.twinPath,
      error: h.error,
    }));
  } catch (err) {
    errorNote('Reading hub descriptors', err);
  }

  const usbBusVisible = sysfs.present || usbInfos.length > 0;
  if (!usbBusVisible) notes.push(NOTE_NO_USB_BUS);
  const usbDenied =
    usbInfos.some((i) => i.accessError && ACCESS_DENIED.test(i.accessError)) ||
    relayBoards.some((b) => b.error && ACCESS_DENIED.test(b.error)) ||
    hubs.some((h) => h.error && ACCESS_DENIED.test(h.error));
  if (usbDenied) notes.push(NOTE_USB_PERMISSION);
  if ([...uartAdapters, ...serialPorts].some((e) => e.access === 'denied')) notes.push(NOTE_TTY_PERMISSION);
  const nothing = serialPorts.length + uartAdapters.length + relayBoards.length + usbtmc.length + hubs.length === 0;
  if (nothing && usbBusVisible) notes.push(NOTE_NOTHING_FOUND);

  return { usbBusVisible, serialPortsSource, serialPorts, uartAdapters, relayBoards, usbtmc, hubs, notes };
}

async function listPorts(
  options: DevicesReportOptions,
  sysfs: SysfsUsbSnapshot,
  notes: string[],
): Promise<{ ports: SerialPortEntry[]; source: 'serialport' | 'sysfs' }> {
  const byDevPath = new Map<string, { usbPath: string; vidPid: string; manufacturer?: string; serialNumber?: string }>();
  for (const d of sysfs.devices) {
    for (const p of d.devPaths) byDevPath.set(p, { usbPath: d.usbPath, vidPid: vidPidText(d.vid, d.pid), manufacturer: d.manufacturer, serialNumber: d.serialNumber });
  }
  const hasUdevadm = options.hasUdevadm ?? defaultHasUdevadm;
  if (await hasUdevadm()) {
    try {
      const list = options.listSerialPorts ?? defaultListSerialPorts;
      const ports = (await list()).map((p): SerialPortEntry => {
        const usb = byDevPath.get(p.path);
        const vidPid = p.vendorId && p.productId ? `${p.vendorId.toLowerCase()}:${p.productId.toLowerCase()}` : usb?.vidPid;
        return { path: p.path, source: 'serialport', usbPath: usb?.usbPath, vidPid, manufacturer: p.manufacturer ?? usb?.manufacturer, serialNumber: p.serialNumber ?? usb?.serialNumber };
      });
      return { ports, source: 'serialport' };
    } catch (err) {
      notes.push(`SerialPort.list() failed (${err instanceof Error ? err.message : String(err)}); serial ports were listed from sysfs instead.`);
    }
  } else {
    notes.push(NOTE_NO_UDEVADM);
  }
  const devRoot = options.devRoot ?? '/dev';
  const paths = new Set<string>(byDevPath.keys());
  const classRoot = options.ttyClassRoot ?? '/sys/class/tty';
  for (const name of await readdirOrEmpty(classRoot)) {
    if (!SERIAL_TTY.test(name)) continue;
    // Only ttys backed by a device (a `device` link); virtual consoles have none.
    if ((await readdirOrEmpty(join(classRoot, name))).includes('device')) paths.add(join(devRoot, name));
  }
  const ports = [...paths].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).map((path): SerialPortEntry => ({ path, source: 'sysfs', ...byDevPath.get(path) }));
  return { ports, source: 'sysfs' };
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function defaultHasUdevadm(): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      await access(join(dir, 'udevadm'), constants.X_OK);
      return true;
    } catch {
      // not in this PATH entry
    }
  }
  return false;
}

async function defaultListSerialPorts(): Promise<SerialPortListing[]> {
  const { SerialPort } = await import('serialport');
  return SerialPort.list();
}

async function defaultTtyAccess(path: string): Promise<TtyAccess> {
  try {
    await access(path, constants.R_OK | constants.W_OK);
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'denied';
  }
}

/** JSON for `plugrig devices --json`. */
export function devicesReportJson(report: DevicesReport): string {
  return JSON.stringify(report, null, 2);
}

function table(headers: string[], rows: string[][]): string[] {
  if (rows.length === 0) return ['  (none)'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => ('  ' + cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')).trimEnd();
  return [line(headers), ...rows.map(line)];
}

function maskText(mask: number | undefined, channels: number | undefined): string {
  if (mask === undefined) return '';
  const n = channels ?? 8;
  return Array.from({ length: n }, (_, i) => `${i + 1}:${(mask >> i) & 1 ? 'on' : 'off'}`).join(' ');
}

/** Plain-text rendering for the terminal. */
export function renderDevicesText(report: DevicesReport): string {
  const out: string[] = [];
  const dash = (v: string | number | undefined): string => (v === undefined || v === '' ? '-' : String(v));
  out.push(`Serial ports (via ${report.serialPortsSource === 'serialport' ? 'serialport/udev' : 'sysfs'}):`);
  out.push(...table(['PATH', 'USB PATH', 'VID:PID', 'MANUFACTURER', 'SERIAL', 'ACCESS'], report.serialPorts.map((p) => [p.path, dash(p.usbPath), dash(p.vidPid), dash(p.manufacturer), dash(p.serialNumber), dash(p.access)])));
  out.push('', 'USB-UART adapters:');
  out.push(...table(['USB PATH', 'CHIP', 'VID:PID', 'SERIAL', 'TTY', 'ACCESS'], report.uartAdapters.map((a) => [a.usbPath, a.chip, vidPidText(a.vid, a.pid), dash(a.serialNumber), dash(a.devPath), dash(a.access)])));
  out.push('', 'Relay boards (dcttech USBRelayN, 16c0:05df):');
  out.push(...table(['USB PATH', 'PRODUCT', 'SERIAL', 'RELAYS'], report.relayBoards.map((b) => [b.usbPath, dash(b.product), dash(b.serial), b.error ? `error: ${b.error}` : maskText(b.mask, b.channels)])));
  out.push('', 'USBTMC instruments:');
  out.push(...table(['USB PATH', 'VID:PID', 'MANUFACTURER', 'PRODUCT', 'SERIAL', 'USB488'], report.usbtmc.map((i) => [i.usbPath, i.vidPid, dash(i.manufacturer), dash(i.product), dash(i.serialNumber), i.usb488 ? 'yes' : 'no'])));
  out.push('', 'USB hubs:');
  out.push(
    ...table(['USB PATH', 'VID:PID', 'USB', 'PORTS', 'PORT POWER', 'TWIN'], report.hubs.map((h) => [h.usbPath, h.vidPid, h.superSpeed ? '3.x' : '2.0', dash(h.ports), h.error ? `unknown (${h.error})` : dash(h.powerSwitching), dash(h.twinPath)])),
  );
  if (report.notes.length) {
    out.push('', 'Notes:');
    for (const note of report.notes) out.push(...note.split('\n').map((l, i) => (i === 0 ? `- ${l}` : `  ${l}`)));
  }
  return out.join('\n') + '\n';
}
