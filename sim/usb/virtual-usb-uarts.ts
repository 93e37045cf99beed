import type { UsbUartAdapter } from '../../rig/usb/usb-uart.ts';
import type { VirtualUartDevice } from '../serial/uart-device.ts';
import type { AttachOptions } from '../serial/virtual-binding.ts';

/** The part of the virtual serial bus the adapters need: a tty appears and disappears. */
export interface AdapterBus {
  attach(path: string, device: VirtualUartDevice, options?: AttachOptions): unknown;
  detach(path: string): void;
}

/** A USB-UART adapter of the virtual jig: its USB identity, and the tty the kernel gave it this time. */
interface VirtualAdapter {
  adapter: Omit<UsbUartAdapter, 'devPath'>;
  device: VirtualUartDevice;
  modemLines: boolean;
  /** `sim:ttyUSB<n>` while plugged in; undefined while unplugged. */
  tty: string | undefined;
}

/**
 * The virtual jig's USB-UART adapters as a kernel sees them: each has a USB path, VID:PID and
 * serial number, and a tty name handed out in order of arrival (`sim:ttyUSB0`, `sim:ttyUSB1`, …).
 * Unplugging one closes its port under whoever has it open (the device behind it keeps running);
 * plugging it back in gives it the next free name, as the kernel does when the old node is still
 * held or was taken meanwhile, so only a slot bound by USB path or serial finds it again.
 * `scan` is the sysfs scan's stand-in for rig/usb (resolveUartRef, AdapterWatch).
 */
export class VirtualUsbUarts {
  readonly #bus: AdapterBus;
  readonly #adapters = new Map<string, VirtualAdapter>();
  #nextTty = 0;

  constructor(bus: AdapterBus) {
    this.#bus = bus;
  }

  /** Plug a new adapter in (a CH340 unless said otherwise); returns its tty. */
  plugIn(device: VirtualUartDevice, o: { usbPath: string; serialNumber?: string; chip?: string; vid?: number; pid?: number; modemLines?: boolean }): string {
    if (this.#adapters.has(o.usbPath)) throw new Error(`an adapter is already plugged in at ${o.usbPath}`);
    const adapter = { chip: o.chip ?? 'CH340', vid: o.vid ?? 0x1a86, pid: o.pid ?? 0x7523, usbPath: o.usbPath, ...(o.serialNumber !== undefined ? { serialNumber: o.serialNumber } : {}) };
    const entry: VirtualAdapter = { adapter, device, modemLines: o.modemLines ?? true, tty: undefined };
    this.#adapters.set(o.usbPath, entry);
    return this.#enumerate(entry);
  }

  /** The adapter at usbPath goes away: its tty disappears and an open port on it fails as unplugged. */
  unplug(usbPath: string): void {
    const entry = this.#require(usbPath);
    if (entry.tty === undefined) return;
    this.#bus.detach(entry.tty);
    entry.tty = undefined;
  }

  /** The same adapter (same USB path, VID:PID, serial) comes back, under the next tty name. */
  replug(usbPath: string): string {
    const entry = this.#require(usbPath);
    if (entry.tty !== undefined) return entry.tty;
    return this.#enumerate(entry);
  }

  /** Is there an adapter (plugged in or not) at usbPath, or one with this serial number? */
  has(ref: { usbPath?: string; serialNumber?: string }): boolean {
    if (ref.usbPath === undefined && ref.serialNumber === undefined) return false;
    return [...this.#adapters.values()].some((e) => (ref.usbPath === undefined || e.adapter.usbPath === ref.usbPath) && (ref.serialNumber === undefined || e.adapter.serialNumber === ref.serialNumber));
  }

  /** The tty an adapter has now (undefined while unplugged). */
  ttyOf(usbPath: string): string | undefined {
    return this.#require(usbPath).tty;
  }

  /** What a sysfs scan would list now: the plugged-in adapters with their current tty. */
  readonly scan = async (): Promise<UsbUartAdapter[]> =>
    [...this.#adapters.values()].filter((e) => e.tty !== undefined).map((e) => ({ ...e.adapter, devPath: e.tty }));

  #enumerate(entry: VirtualAdapter): string {
    const tty = `sim:ttyUSB${this.#nextTty++}`;
    this.#bus.attach(tty, entry.device, { modemLines: entry.modemLines, info: { manufacturer: entry.adapter.chip, serialNumber: entry.adapter.serialNumber, vendorId: hex4(entry.adapter.vid), productId: hex4(entry.adapter.pid) } });
    entry.tty = tty;
    return tty;
  }

  #require(usbPath: string): VirtualAdapter {
    const e = this.#adapters.get(usbPath);
    if (!e) throw new Error(`no virtual USB-UART adapter at ${usbPath}`);
    return e;
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
