import { TransportError } from '../../rig/core/errors.ts';
import {
  usbPathOf,
  type ControlSetup,
  type UsbDevice,
  type UsbDeviceHandle,
  type UsbDeviceInfo,
  type UsbDeviceSource,
} from '../../rig/usb/usb-source.ts';

/**
 * In-memory USB bus for tests and for machines without USB. Every control transfer is recorded
 * byte-exactly (setup fields, OUT data, IN reply) so tests can compare against the documented
 * requests. Device behaviour comes from a responder (e.g. VirtualDcttechRelay, VirtualHub).
 */

export interface ControlTransferRecord {
  usbPath: string;
  direction: 'in' | 'out';
  bmRequestType: number;
  bRequest: number;
  wValue: number;
  wIndex: number;
  /** wLength: the requested length for IN, the data length for OUT. */
  wLength: number;
  /** OUT: the data stage sent; IN: the bytes the device returned. */
  data: Uint8Array;
}

/** What a simulated device does on endpoint 0. Throwing = the device STALLs the request. */
export interface FakeUsbResponder {
  controlIn?(setup: ControlSetup, length: number): Uint8Array;
  controlOut?(setup: ControlSetup, data: Uint8Array): void;
}

export interface FakeUsbDeviceSpec {
  vid: number;
  pid: number;
  busNumber?: number;
  portNumbers?: number[];
  bcdUsb?: number;
  deviceClass?: number;
  interfaces?: UsbDeviceInfo['interfaces'];
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  /** Simulate "no permission": listing still shows the device, open() fails with this text. */
  openError?: string;
  responder?: FakeUsbResponder;
}

interface FakeEntry {
  info: UsbDeviceInfo;
  spec: FakeUsbDeviceSpec;
  present: boolean;
}

export class FakeUsbSource implements UsbDeviceSource {
  /** Every control transfer on every device, in order. */
  readonly transfers: ControlTransferRecord[] = [];
  /** open/claim/close events as "open 1-1.3", "claim 1-1.3 if0", "close 1-1.3". */
  readonly events: string[] = [];
  #entries: FakeEntry[] = [];

  constructor(devices: FakeUsbDeviceSpec[] = []) {
    for (const d of devices) this.add(d);
  }

  /** Plug a device in; returns its USB path. */
  add(spec: FakeUsbDeviceSpec): string {
    const busNumber = spec.busNumber ?? 1;
    const portNumbers = spec.portNumbers ?? [this.#entries.length + 1];
    const info: UsbDeviceInfo = {
      vid: spec.vid,
      pid: spec.pid,
      busNumber,
      portNumbers,
      usbPath: usbPathOf(busNumber, portNumbers),
      bcdUsb: spec.bcdUsb ?? 0x0200,
      deviceClass: spec.deviceClass ?? 0,
      interfaces: spec.interfaces ?? [],
      manufacturer: spec.manufacturer,
      product: spec.product,
      serialNumber: spec.serialNumber,
      ...(spec.openError ? { accessError: spec.openError } : {}),
    };
    this.#entries.push({ info, spec, present: true });
    return info.usbPath;
  }

  /** Unplug: the device leaves the list and its open handles fail like a vanished device. */
  remove(usbPath: string): void {
    for (const e of this.#entries) if (e.info.usbPath === usbPath) e.present = false;
    this.#entries = this.#entries.filter((e) => e.present);
  }

  /** Transfers to one device, for byte-exact assertions. */
  transfersTo(usbPath: string): ControlTransferRecord[] {
    return this.transfers.filter((r) => r.usbPath === usbPath);
  }

  async list(): Promise<UsbDevice[]> {
    return this.#entries.map((entry) => ({ info: entry.info, open: async () => this.#open(entry) }));
  }

  #open(entry: FakeEntry): UsbDeviceHandle {
    const { info, spec } = entry;
    if (spec.openError) {
      throw new TransportError(`cannot open USB device ${info.usbPath}: ${spec.openError}`, { step: 'usb-open', usbPath: info.usbPath });
    }
    this.events.push(`open ${info.usbPath}`);
    let open = true;
    const check = (setup?: ControlSetup): void => {
      if (!entry.present) throw new TransportError(`USB device ${info.usbPath} is gone (LIBUSB_ERROR_NO_DEVICE)`, { step: 'usb-control', usbPath: info.usbPath, ...setup });
      if (!open) throw new TransportError(`USB device ${info.usbPath} handle is closed`, { step: 'usb-control', usbPath: info.usbPath, ...setup });
    };
    const stall = (setup: ControlSetup, cause: unknown): TransportError =>
      new TransportError(`control transfer to ${info.usbPath} failed: LIBUSB_ERROR_PIPE (stall)`, { step: 'usb-control', usbPath: info.usbPath, ...setup }, { cause });
    return {
      info,
      claimInterface: async (n) => {
        check();
        this.events.push(`claim ${info.usbPath} if${n}`);
      },
      controlIn: async (setup, length) => {
        check(setup);
        let reply: Uint8Array;
        try {
          if (!spec.responder?.controlIn) throw new Error('no IN handler');
          reply = spec.responder.controlIn(setup, length).slice(0, length);
        } catch (err) {
          throw stall(setup, err);
        }
        this.transfers.push({ usbPath: info.usbPath, direction: 'in', ...pick(setup), wLength: length, data: Uint8Array.from(reply) });
        return reply;
      },
      controlOut: async (setup, data) => {
        check(setup);
        this.transfers.push({ usbPath: info.usbPath, direction: 'out', ...pick(setup), wLength: data.length, data: Uint8Array.from(data) });
        try {
          if (!spec.responder?.controlOut) throw new Error('no OUT handler');
          spec.responder.controlOut(setup, data);
        } catch (err) {
          throw stall(setup, err);
        }
      },
      close: async () => {
        if (!open) return;
        open = false;
        this.events.push(`close ${info.usbPath}`);
      },
    };
  }
}

function pick(s: ControlSetup): ControlSetup {
  return { bmRequestType: s.bmRequestType, bRequest: s.bRequest, wValue: s.wValue, wIndex: s.wIndex };
}
