import type { Bk7231Port } from '../rig/bk7231/port.ts';
import type { Clock } from '../rig/core/clock.ts';
import { PlugrigError, TransportError } from '../rig/core/errors.ts';
import type { Logger } from '../rig/core/log.ts';
import type { EndpointRegistry } from '../rig/endpoints/registry.ts';
import { openLink } from '../rig/serial/open-link.ts';
import type { SerialLink } from '../rig/serial/serial-link.ts';
import { AdapterWatch, resolveUart, type UartRef, type UsbUartAdapter } from '../rig/usb/usb-uart.ts';

/** How often an open slot port's adapter is looked for (a scan; a port error looks at once). */
export const ADAPTER_WATCH_MS = 500;

/** A slot's UART open for one ROM session: the port, and the tty it was found at this time. */
export interface SlotPort extends Bk7231Port {
  /** The tty opened (for a slot bound by USB path: whatever name the adapter has now). */
  readonly path: string;
  /** The adapter behind it, for a slot bound by USB path / serial number. */
  readonly adapter?: UsbUartAdapter;
  close(): Promise<void>;
}

/**
 * A slot's USB-UART as the station uses it: resolved through the endpoint registry every time it is
 * opened (a slot bound by USB path or serial finds its adapter under whatever tty it has now, so
 * an adapter unplugged and plugged back in is found again for the next attempt or unit), and
 * watched while open: when the adapter goes, every operation on the port fails with one
 * TransportError naming the slot, the USB path and the tty (the binding's own error is its cause).
 */
export class SlotUart {
  readonly slot: number;
  readonly ref: UartRef;
  readonly #endpoints: EndpointRegistry;
  readonly #clock: Clock;
  readonly #watchMs: number;

  constructor(o: { slot: number; ref: UartRef; endpoints: EndpointRegistry; clock: Clock; watchIntervalMs?: number }) {
    this.slot = o.slot;
    this.ref = o.ref;
    this.#endpoints = o.endpoints;
    this.#clock = o.clock;
    this.#watchMs = o.watchIntervalMs ?? ADAPTER_WATCH_MS;
  }

  /** "sim:uart1", "USB path 1-1.2": how the jig file binds it. */
  describe(): string {
    if (this.ref.port) return this.ref.port;
    return [this.ref.usbPath && `USB path ${this.ref.usbPath}`, this.ref.serialNumber && `serial "${this.ref.serialNumber}"`].filter(Boolean).join(', ');
  }

  /** Resolve and open, then watch the adapter until close(). */
  async open(o: { baudRate: number; log?: Logger }): Promise<SlotPort> {
    let found;
    try {
      found = await resolveUart(this.#endpoints, this.ref);
    } catch (e) {
      throw this.#slotError(e, `slot ${this.slot} UART (${this.describe()})`);
    }
    let link: SerialLink;
    try {
      link = await openLink(found.path, { baudRate: o.baudRate, clock: this.#clock, endpoints: this.#endpoints, ...(o.log ? { log: o.log } : {}) });
    } catch (e) {
      throw this.#slotError(e, `slot ${this.slot} UART (${this.describe()}${found.adapter ? ` at ${found.path}` : ''})`);
    }
    if (!found.adapter || !found.scan) return new PlainSlotPort(link, found.path);
    const watch = new AdapterWatch({ clock: this.#clock, intervalMs: this.#watchMs, scan: found.scan });
    try {
      await watch.start();
    } catch (e) {
      await link.close().catch(() => undefined);
      throw this.#slotError(e, `slot ${this.slot} UART (${this.describe()})`);
    }
    return new WatchedSlotPort(link, found.path, found.adapter, watch, this.slot);
  }

  /** A resolve/open failure with the slot in its words and context (the original as cause). */
  #slotError(e: unknown, what: string): PlugrigError {
    const message = e instanceof Error ? e.message : String(e);
    const context = { ...(e instanceof PlugrigError ? e.context : {}), slot: this.slot, uart: this.describe() };
    if (e instanceof PlugrigError && !(e instanceof TransportError)) return e;
    return new TransportError(`${what}: ${message}`, context, { cause: e });
  }
}

/** A port bound by tty name: nothing to watch beyond what the binding reports. */
class PlainSlotPort implements SlotPort {
  readonly #link: SerialLink;
  readonly path: string;
  constructor(link: SerialLink, path: string) {
    this.#link = link;
    this.path = path;
  }
  get clock(): Clock {
    return this.#link.clock;
  }
  write(bytes: Uint8Array): Promise<void> {
    return this.#link.write(bytes);
  }
  read(n: number, timeoutMs: number): Promise<Uint8Array> {
    return this.#link.read(n, timeoutMs);
  }
  available(): number {
    return this.#link.available();
  }
  discardInput(): unknown {
    return this.#link.discardInput();
  }
  setBaudRate(baud: number): Promise<void> {
    return this.#link.setBaudRate(baud);
  }
  setModemLines(lines: { dtr: boolean; rts: boolean }): Promise<void> {
    return this.#link.setModemLines(lines);
  }
  close(): Promise<void> {
    return this.#link.close();
  }
}

/**
 * A port on an adapter found by USB path: the watch closes the port when the adapter leaves the scan
 * (a port the binding did not notice losing stops at once), and a failed operation asks the scan
 * first, so the error says the adapter went instead of only "closed unexpectedly".
 */
class WatchedSlotPort implements SlotPort {
  readonly #link: SerialLink;
  readonly #watch: AdapterWatch;
  readonly #signal: AbortSignal;
  readonly #slot: number;
  readonly path: string;
  readonly adapter: UsbUartAdapter & { devPath: string };
  #gone: TransportError | undefined;

  constructor(link: SerialLink, path: string, adapter: UsbUartAdapter & { devPath: string }, watch: AdapterWatch, slot: number) {
    this.#link = link;
    this.path = path;
    this.adapter = adapter;
    this.#watch = watch;
    this.#slot = slot;
    this.#signal = watch.signalFor(adapter.usbPath);
    const onGone = (): void => {
      this.#gone ??= this.#unplugged(this.#signal.reason);
      void link.close().catch(() => undefined);
    };
    if (this.#signal.aborted) onGone();
    else this.#signal.addEventListener('abort', onGone, { once: true });
  }

  get clock(): Clock {
    return this.#link.clock;
  }
  write(bytes: Uint8Array): Promise<void> {
    return this.#guard(() => this.#link.write(bytes));
  }
  read(n: number, timeoutMs: number): Promise<Uint8Array> {
    return this.#guard(() => this.#link.read(n, timeoutMs));
  }
  available(): number {
    return this.#link.available();
  }
  discardInput(): unknown {
    return this.#link.discardInput();
  }
  setBaudRate(baud: number): Promise<void> {
    return this.#guard(() => this.#link.setBaudRate(baud));
  }
  setModemLines(lines: { dtr: boolean; rts: boolean }): Promise<void> {
    return this.#guard(() => this.#link.setModemLines(lines));
  }
  async close(): Promise<void> {
    await this.#watch.stop();
    await this.#link.close();
  }

  async #guard<T>(op: () => Promise<T>): Promise<T> {
    if (this.#gone) throw this.#gone;
    try {
      return await op();
    } catch (e) {
      // The port failed: is the adapter still there? (The watch's next scan would tell; asking now says why at once.)
      if (!this.#gone && e instanceof TransportError) await this.#watch.poll();
      if (this.#gone) throw withCause(this.#gone, e);
      throw e;
    }
  }

  #unplugged(reason: unknown): TransportError {
    const a = this.adapter;
    return new TransportError(
      `slot ${this.#slot}: USB-UART adapter at ${a.usbPath} (${a.chip} ${a.devPath}) was unplugged`,
      { slot: this.#slot, usbPath: a.usbPath, tty: a.devPath, chip: a.chip, step: 'adapter-watch' },
      { cause: reason },
    );
  }
}

/** The unplug error, once per failed operation, with the binding's own failure as its cause. */
function withCause(gone: TransportError, cause: unknown): TransportError {
  return new TransportError(gone.message, gone.context, { cause });
}
