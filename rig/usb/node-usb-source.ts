import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import usb from 'usb';
import { TransportError } from '../core/errors.ts';
import { SYSFS_USB_DEVICES } from './usb-sysfs.ts';
import {
  usbPathOf,
  type ControlSetup,
  type UsbDevice,
  type UsbDeviceHandle,
  type UsbDeviceInfo,
  type UsbDeviceSource,
  type UsbInterfaceInfo,
} from './usb-source.ts';

/** node-usb v2's Device (the package exports the class on its default object). */
type NodeUsbDevice = usb.Device;

/**
 * UsbDeviceSource over node-usb v2 (libusb). Strings come from sysfs when it is there (no device
 * permission needed); otherwise the device is opened to read its string descriptors, and a
 * failure to open is recorded in accessError instead of thrown.
 */
export class NodeUsbSource implements UsbDeviceSource {
  readonly #sysfsRoot: string;
  readonly #timeoutMs: number;

  constructor(options: { sysfsRoot?: string; timeoutMs?: number } = {}) {
    this.#sysfsRoot = options.sysfsRoot ?? SYSFS_USB_DEVICES;
    this.#timeoutMs = options.timeoutMs ?? 1000;
  }

  async list(): Promise<UsbDevice[]> {
    let raw: NodeUsbDevice[];
    try {
      raw = usb.getDeviceList();
    } catch (err) {
      throw new TransportError('libusb could not enumerate USB devices', { step: 'usb-list' }, { cause: err });
    }
    const devices: UsbDevice[] = [];
    for (const dev of raw) {
      const info = await this.#describe(dev);
      devices.push({ info, open: async () => openHandle(dev, info, this.#timeoutMs) });
    }
    return devices;
  }

  async #describe(dev: NodeUsbDevice): Promise<UsbDeviceInfo> {
    const d = dev.deviceDescriptor;
    const portNumbers = dev.portNumbers ?? [];
    const info: UsbDeviceInfo = {
      vid: d.idVendor,
      pid: d.idProduct,
      busNumber: dev.busNumber,
      portNumbers: [...portNumbers],
      usbPath: usbPathOf(dev.busNumber, portNumbers),
      bcdUsb: d.bcdUSB,
      deviceClass: d.bDeviceClass,
      interfaces: interfacesOf(dev),
    };
    const dir = join(this.#sysfsRoot, info.usbPath);
    const fromSysfs = {
      manufacturer: await readTrimmed(join(dir, 'manufacturer')),
      product: await readTrimmed(join(dir, 'product')),
      serialNumber: await readTrimmed(join(dir, 'serial')),
    };
    if (fromSysfs.manufacturer || fromSysfs.product || fromSysfs.serialNumber) return { ...info, ...fromSysfs };
    if (!d.iManufacturer && !d.iProduct && !d.iSerialNumber) return info;
    try {
      dev.open();
    } catch (err) {
      return { ...info, accessError: errorText(err) };
    }
    try {
      return {
        ...info,
        manufacturer: await stringDescriptor(dev, d.iManufacturer),
        product: await stringDescriptor(dev, d.iProduct),
        serialNumber: await stringDescriptor(dev, d.iSerialNumber),
      };
    } catch (err) {
      return { ...info, accessError: errorText(err) };
    } finally {
      dev.close();
    }
  }
}

function interfacesOf(dev: NodeUsbDevice): UsbInterfaceInfo[] {
  try {
    const config = dev.configDescriptor;
    if (!config) return [];
    return config.interfaces
      .map((alts) => alts[0])
      .filter((i) => i !== undefined)
      .map((i) => ({ number: i.bInterfaceNumber, class: i.bInterfaceClass, subClass: i.bInterfaceSubClass, protocol: i.bInterfaceProtocol }));
  } catch {
    // An unconfigured or vanished device has no active configuration: it simply lists no interfaces.
    return [];
  }
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function stringDescriptor(dev: NodeUsbDevice, index: number): Promise<string | undefined> {
  if (!index) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    dev.getStringDescriptor(index, (err, value) => (err ? reject(err) : resolve(value?.trim() || undefined)));
  });
}

function openHandle(dev: NodeUsbDevice, info: UsbDeviceInfo, timeoutMs: number): UsbDeviceHandle {
  try {
    dev.open();
  } catch (err) {
    throw new TransportError(`cannot open USB device ${info.usbPath}: ${errorText(err)}`, { step: 'usb-open', usbPath: info.usbPath }, { cause: err });
  }
  dev.timeout = timeoutMs;
  /** Claimed interfaces, and whether a kernel driver was detached from each (to give it back on close). */
  const claimed: Array<{ n: number; detached: boolean }> = [];
  const transferError = (setup: ControlSetup, err: unknown): TransportError =>
    new TransportError(`control transfer to ${info.usbPath} failed: ${errorText(err)}`, { step: 'usb-control', usbPath: info.usbPath, ...setup }, { cause: err });

  return {
    info,
    async claimInterface(n) {
      const iface = dev.interface(n);
      try {
        const detached = iface.isKernelDriverActive();
        if (detached) iface.detachKernelDriver();
        iface.claim();
        claimed.push({ n, detached });
      } catch (err) {
        throw new TransportError(`cannot claim interface ${n} of ${info.usbPath}: ${errorText(err)}`, { step: 'usb-claim', usbPath: info.usbPath }, { cause: err });
      }
    },
    controlIn(setup, length) {
      return new Promise((resolve, reject) => {
        dev.controlTransfer(setup.bmRequestType, setup.bRequest, setup.wValue, setup.wIndex, length, (err, data) => {
          if (err) reject(transferError(setup, err));
          else resolve(data instanceof Buffer ? Uint8Array.from(data) : new Uint8Array(0));
        });
      });
    },
    controlOut(setup, data) {
      return new Promise((resolve, reject) => {
        dev.controlTransfer(setup.bmRequestType, setup.bRequest, setup.wValue, setup.wIndex, Buffer.from(data), (err) => {
          if (err) reject(transferError(setup, err));
          else resolve();
        });
      });
    },
    async close() {
      for (const { n, detached } of claimed.splice(0)) {
        const iface = dev.interface(n);
        await new Promise<void>((resolve) => iface.release(() => resolve()));
        try {
          // Give usbhid its device back so hidraw nodes reappear after a listing.
          if (detached) iface.attachKernelDriver();
        } catch {
          // The device may have been unplugged meanwhile; nothing left to restore.
        }
      }
      try {
        dev.close();
      } catch {
        // Closing a device that was unplugged fails; the handle is gone either way.
      }
    },
  };
}
