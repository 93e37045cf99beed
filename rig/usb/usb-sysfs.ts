import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { UsbInterfaceInfo } from './usb-source.ts';

/**
 * Reads USB devices from Linux sysfs. Readable without any device permission, and the only place
 * that tells which /dev/ttyUSBn belongs to which physical port: a slot bound to a USB path keeps
 * its adapter even when the kernel renumbers ttyUSB0/1 after a replug.
 *
 * Layout (entries under /sys/bus/usb/devices, symlinks on a real system):
 *   usb1            root hub of bus 1
 *   1-1.3           device on bus 1, port 1 of the root hub, port 3 of the hub behind it
 *   1-1.3:1.0       interface 0 of configuration 1 of that device
 *   1-1.3:1.0/ttyUSB0        usb-serial drivers (ch341, cp210x, ftdi_sio, pl2303)
 *   1-1.3:1.0/tty/ttyACM0    tty class devices (cdc_acm, ch343)
 */
export const SYSFS_USB_DEVICES = '/sys/bus/usb/devices';

export interface SysfsUsbInterface extends UsbInterfaceInfo {
  /** Kernel tty names bound to this interface, e.g. ["ttyUSB0"]. */
  ttys: string[];
}

export interface SysfsUsbDevice {
  usbPath: string;
  busNumber: number;
  portNumbers: number[];
  vid: number;
  pid: number;
  bcdUsb?: number;
  deviceClass?: number;
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  interfaces: SysfsUsbInterface[];
  /** /dev paths of every tty under this device, in interface order. */
  devPaths: string[];
}

export interface SysfsUsbSnapshot {
  /** False when the sysfs directory does not exist (container without USB passthrough). */
  present: boolean;
  root: string;
  devices: SysfsUsbDevice[];
}

export interface SysfsOptions {
  /** Default /sys/bus/usb/devices. */
  sysfsRoot?: string;
  /** Where tty device nodes live; default /dev. */
  devRoot?: string;
}

const DEVICE_NAME = /^(\d+)-(\d+(?:\.\d+)*)$/;
const INTERFACE_NAME = /^(\d+-\d+(?:\.\d+)*):(\d+)\.(\d+)$/;
const TTY_NAME = /^tty(USB|ACM|CH343USB|XRUSB)\d+$/;

async function attr(dir: string, name: string): Promise<string | undefined> {
  try {
    const text = (await readFile(join(dir, name), 'utf8')).trim();
    return text.length ? text : undefined;
  } catch {
    return undefined;
  }
}

async function hexAttr(dir: string, name: string): Promise<number | undefined> {
  const text = await attr(dir, name);
  if (text === undefined) return undefined;
  const value = parseInt(text, 16);
  return Number.isNaN(value) ? undefined : value;
}

/** sysfs "version" is " 2.00" / " 3.10": turn it into bcdUSB 0x0200 / 0x0310. */
function bcdFromVersion(text: string | undefined): number | undefined {
  const m = text?.match(/^(\d+)\.(\d)(\d)$/);
  if (!m) return undefined;
  return (Number(m[1]) << 8) | (Number(m[2]) << 4) | Number(m[3]);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function ttysOf(interfaceDir: string): Promise<string[]> {
  const direct = (await listDir(interfaceDir)).filter((n) => TTY_NAME.test(n));
  const classed = (await listDir(join(interfaceDir, 'tty'))).filter((n) => TTY_NAME.test(n));
  return [...direct, ...classed].sort(byNaturalName);
}

function byNaturalName(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Scan sysfs once. A missing root is reported as present=false, never thrown. */
export async function readSysfsUsb(options: SysfsOptions = {}): Promise<SysfsUsbSnapshot> {
  const root = options.sysfsRoot ?? SYSFS_USB_DEVICES;
  const devRoot = options.devRoot ?? '/dev';
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return { present: false, root, devices: [] };
  }
  const devices: SysfsUsbDevice[] = [];
  for (const name of names.filter((n) => DEVICE_NAME.test(n)).sort(byNaturalName)) {
    const m = DEVICE_NAME.exec(name)!;
    const dir = join(root, name);
    const vid = await hexAttr(dir, 'idVendor');
    const pid = await hexAttr(dir, 'idProduct');
    if (vid === undefined || pid === undefined) continue;
    const interfaces: SysfsUsbInterface[] = [];
    for (const ifName of names.filter((n) => INTERFACE_NAME.exec(n)?.[1] === name).sort(byNaturalName)) {
      const ifDir = join(root, ifName);
      interfaces.push({
        number: await hexAttr(ifDir, 'bInterfaceNumber') ?? Number(INTERFACE_NAME.exec(ifName)![3]),
        class: (await hexAttr(ifDir, 'bInterfaceClass')) ?? 0,
        subClass: (await hexAttr(ifDir, 'bInterfaceSubClass')) ?? 0,
        protocol: (await hexAttr(ifDir, 'bInterfaceProtocol')) ?? 0,
        ttys: await ttysOf(ifDir),
      });
    }
    devices.push({
      usbPath: name,
      busNumber: Number(m[1]),
      portNumbers: m[2]!.split('.').map(Number),
      vid,
      pid,
      bcdUsb: bcdFromVersion(await attr(dir, 'version')),
      deviceClass: await hexAttr(dir, 'bDeviceClass'),
      manufacturer: await attr(dir, 'manufacturer'),
      product: await attr(dir, 'product'),
      serialNumber: await attr(dir, 'serial'),
      interfaces,
      devPaths: interfaces.flatMap((i) => i.ttys.map((tty) => join(devRoot, tty))),
    });
  }
  return { present: true, root, devices };
}

/** /dev paths of the ttys of the device at a USB path ([] when nothing is bound there). */
export async function ttyPathsForUsbPath(usbPath: string, options: SysfsOptions = {}): Promise<string[]> {
  const snapshot = await readSysfsUsb(options);
  return snapshot.devices.find((d) => d.usbPath === usbPath)?.devPaths ?? [];
}
