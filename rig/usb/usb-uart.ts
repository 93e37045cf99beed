import { EventEmitter } from 'node:events';
import type { Clock } from '../core/clock.ts';
import { ConfigError, TransportError } from '../core/errors.ts';
import type { EndpointRegistry } from '../endpoints/registry.ts';
import { vidPidText } from './usb-source.ts';
import { readSysfsUsb, type SysfsOptions, type SysfsUsbDevice } from './usb-sysfs.ts';

/** USB-UART bridge chips we recognise by VID:PID. */
export const USB_UART_CHIPS: ReadonlyArray<{ vid: number; pid: number; chip: string }> = [
  { vid: 0x1a86, pid: 0x7523, chip: 'CH340' },
  { vid: 0x1a86, pid: 0x5523, chip: 'CH341' },
  { vid: 0x1a86, pid: 0x55d4, chip: 'CH9102' },
  { vid: 0x10c4, pid: 0xea60, chip: 'CP210x' },
  { vid: 0x10c4, pid: 0xea70, chip: 'CP2105' },
  { vid: 0x0403, pid: 0x6001, chip: 'FT232R' },
  { vid: 0x0403, pid: 0x6010, chip: 'FT2232' },
  { vid: 0x0403, pid: 0x6014, chip: 'FT232H' },
  { vid: 0x0403, pid: 0x6015, chip: 'FT231X' },
  { vid: 0x067b, pid: 0x2303, chip: 'PL2303' },
  { vid: 0x067b, pid: 0x23a3, chip: 'PL2303GC' },
];

export interface UsbUartAdapter {
  chip: string;
  vid: number;
  pid: number;
  usbPath: string;
  serialNumber?: string;
  /** /dev/ttyUSBn (first tty of the adapter); undefined when no driver is bound. */
  devPath?: string;
}

export function usbUartChip(vid: number, pid: number): string | undefined {
  return USB_UART_CHIPS.find((c) => c.vid === vid && c.pid === pid)?.chip;
}

/** USB-UART adapters among sysfs devices. */
export function usbUartsAmong(devices: readonly SysfsUsbDevice[]): UsbUartAdapter[] {
  const out: UsbUartAdapter[] = [];
  for (const d of devices) {
    const chip = usbUartChip(d.vid, d.pid);
    if (!chip) continue;
    out.push({ chip, vid: d.vid, pid: d.pid, usbPath: d.usbPath, serialNumber: d.serialNumber, devPath: d.devPaths[0] });
  }
  return out;
}

/** Scan sysfs for USB-UART adapters. [] when there is no USB bus. */
export async function discoverUsbUarts(options: SysfsOptions = {}): Promise<UsbUartAdapter[]> {
  return usbUartsAmong((await readSysfsUsb(options)).devices);
}

/** How a slot names its UART (same fields as the jig file's SerialPortRef). */
export interface UartRef {
  port?: string;
  usbPath?: string;
  serialNumber?: string;
}

function describeAdapters(adapters: readonly UsbUartAdapter[]): string {
  if (adapters.length === 0) return 'no USB-UART adapters found';
  return 'present: ' + adapters.map((a) => `${a.usbPath} ${a.chip}${a.serialNumber ? ` sn=${a.serialNumber}` : ''} ${a.devPath ?? '(no tty)'}`).join('; ');
}

/**
 * The adapter a UART reference by USB path and/or serial number names among `adapters`: it must be
 * unique and have a tty.
 */
export function selectUartAdapter(ref: UartRef, adapters: readonly UsbUartAdapter[]): UsbUartAdapter & { devPath: string } {
  if (!ref.usbPath && !ref.serialNumber) throw new ConfigError('UART reference needs port, usbPath or serialNumber', { step: 'uart-resolve' });
  const wanted = [ref.usbPath && `USB path ${ref.usbPath}`, ref.serialNumber && `serial "${ref.serialNumber}"`].filter(Boolean).join(' and ');
  const matches = adapters.filter((a) => (!ref.usbPath || a.usbPath === ref.usbPath) && (!ref.serialNumber || a.serialNumber === ref.serialNumber));
  const context = { step: 'uart-resolve', usbPath: ref.usbPath, serialNumber: ref.serialNumber };
  if (matches.length === 0) throw new TransportError(`no USB-UART adapter with ${wanted} (${describeAdapters(adapters)})`, { ...context, expected: wanted });
  if (matches.length > 1) {
    throw new TransportError(`${matches.length} USB-UART adapters match ${wanted}: ${matches.map((a) => a.usbPath).join(', ')}; bind the slot by usbPath instead`, context);
  }
  const adapter = matches[0]!;
  if (!adapter.devPath) {
    throw new TransportError(`USB-UART ${adapter.chip} (${vidPidText(adapter.vid, adapter.pid)}) at ${adapter.usbPath} has no tty: is its kernel driver loaded?`, context);
  }
  return adapter as UsbUartAdapter & { devPath: string };
}

/**
 * Device path for a UART reference. `port` is used as given (a path, pty link or sim:name);
 * otherwise the adapter is found by USB path and/or serial number (selectUartAdapter).
 */
export function selectUartPath(ref: UartRef, adapters: readonly UsbUartAdapter[]): string {
  if (ref.port) return ref.port;
  return selectUartAdapter(ref, adapters).devPath;
}

/**
 * selectUartPath against a fresh scan (sysfs, or `scan`: the virtual jig's adapters). Resolve again
 * before each use: an adapter that was unplugged and came back may have another tty name.
 */
export async function resolveUartRef(ref: UartRef, options: SysfsOptions & { scan?: () => Promise<UsbUartAdapter[]> } = {}): Promise<string> {
  if (ref.port) return ref.port;
  return selectUartPath(ref, await (options.scan ? options.scan() : discoverUsbUarts(options)));
}

/** A UART reference resolved now: its tty, and for one bound by USB path / serial the adapter and where it was listed. */
export interface ResolvedUart {
  path: string;
  adapter?: UsbUartAdapter & { devPath: string };
  /** The scan that found the adapter (to watch it while the port is open). */
  scan?: () => Promise<UsbUartAdapter[]>;
}

/**
 * Resolve a UART reference through the endpoint registry's USB-UART sources (the machine's sysfs,
 * a virtual jig's adapters): a `port` as given, otherwise the adapter a fresh scan lists.
 */
export async function resolveUart(endpoints: Pick<EndpointRegistry, 'usbUarts'>, ref: UartRef): Promise<ResolvedUart> {
  if (ref.port) return { path: ref.port };
  const source = endpoints.usbUarts.resolve(ref);
  const scan = (): Promise<UsbUartAdapter[]> => source.scan();
  const adapter = selectUartAdapter(ref, await scan());
  return { path: adapter.devPath, adapter, scan };
}

export interface AdapterWatchEvents {
  added: [adapter: UsbUartAdapter];
  removed: [usbPath: string, adapter: UsbUartAdapter];
  scanError: [error: unknown];
}

/**
 * Polls for USB-UART adapters coming and going. A slot takes `signalFor(usbPath)` and passes it to
 * its operations: when its adapter is unplugged mid-run that slot aborts with a TransportError
 * while the other slots carry on.
 */
export class AdapterWatch extends EventEmitter<AdapterWatchEvents> {
  readonly #scan: () => Promise<UsbUartAdapter[]>;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  #known = new Map<string, UsbUartAdapter>();
  #controllers = new Map<string, AbortController>();
  #stop: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: { clock: Clock; intervalMs?: number; scan?: () => Promise<UsbUartAdapter[]>; sysfs?: SysfsOptions }) {
    super();
    this.#clock = options.clock;
    this.#intervalMs = options.intervalMs ?? 500;
    this.#scan = options.scan ?? (() => discoverUsbUarts(options.sysfs));
  }

  /** Adapters seen by the last scan. */
  get adapters(): UsbUartAdapter[] {
    return [...this.#known.values()];
  }

  /** First scan (no events for what is already there), then poll until stop(). */
  async start(): Promise<void> {
    if (this.#stop) return;
    this.#stop = new AbortController();
    for (const a of await this.#scan()) this.#known.set(a.usbPath, a);
    const signal = this.#stop.signal;
    this.#loop = (async () => {
      while (!signal.aborted) {
        try {
          await this.#clock.sleep(this.#intervalMs, signal);
        } catch {
          return; // stop() aborted the sleep
        }
        await this.poll();
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop?.abort();
    await this.#loop;
    this.#stop = undefined;
    this.#loop = undefined;
  }

  /** One scan and diff; emits added/removed. Exposed so callers can force a check before a step. */
  async poll(): Promise<void> {
    let now: UsbUartAdapter[];
    try {
      now = await this.#scan();
    } catch (err) {
      this.emit('scanError', err);
      return;
    }
    const current = new Map(now.map((a) => [a.usbPath, a]));
    for (const [path, old] of this.#known) {
      const fresh = current.get(path);
      if (fresh && sameAdapter(fresh, old)) continue;
      this.#known.delete(path);
      this.#controllers.get(path)?.abort(
        new TransportError(`USB-UART adapter at ${path} (${old.chip}${old.devPath ? ' ' + old.devPath : ''}) was unplugged`, { step: 'adapter-watch', usbPath: path }),
      );
      this.#controllers.delete(path);
      this.emit('removed', path, old);
    }
    for (const [path, a] of current) {
      if (this.#known.has(path)) continue;
      this.#known.set(path, a);
      this.emit('added', a);
    }
  }

  /**
   * Aborts (reason: TransportError) when the adapter at usbPath disappears. Already aborted if it
   * is not present now.
   */
  signalFor(usbPath: string): AbortSignal {
    let controller = this.#controllers.get(usbPath);
    if (!controller) {
      controller = new AbortController();
      if (!this.#known.has(usbPath)) {
        controller.abort(new TransportError(`no USB-UART adapter at ${usbPath}`, { step: 'adapter-watch', usbPath }));
        return controller.signal;
      }
      this.#controllers.set(usbPath, controller);
    }
    return controller.signal;
  }
}

/** Same physical adapter: a different one in the same port counts as remove + add. */
function sameAdapter(a: UsbUartAdapter, b: UsbUartAdapter): boolean {
  return a.vid === b.vid && a.pid === b.pid && a.serialNumber === b.serialNumber && a.devPath === b.devPath;
}
