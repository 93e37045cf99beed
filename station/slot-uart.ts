import type { Bk7231Port } from '../rig/bk7231/port.ts';
import type { Clock } from '../rig/core/clock.ts';
import { PlugrigError, TransportError } from '../rig/core/errors.ts';
import type { Logger } from '../rig/core/log.ts';
import type { EndpointRegistry } from '../rig/endpoints/registry.ts';
import { openLink } from '../rig/serial/open-link.ts';
import type { SerialLink } from '../rig/serial/serial-link.ts';
import { AdapterWatch, resolveUart, type ResolvedUart, type UartRef, type UsbUartAdapter } from '../rig/usb/usb-uart.ts';

/** How often an open slot port's adapter is looked for (a scan; a port error looks at once). */
export const ADAPTER_WATCH_MS = 500;

/**
 * How long the next session of a slot whose adapter went while open waits for it to re-enumerate at
 * its USB path (on the station's clock, scanning every ADAPTER_WATCH_MS): a USB glitch re-enumerates
 * in 1-3 s, an operator re-seating the cable takes a few seconds more. Longer is a unit failed with
 * the unplug as its cause, not a slot that waits without bound.
 */
export const REPLUG_WAIT_MS = 15_000;

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
  readonly #replugWaitMs: number;
  /** The adapter a session of this slot had open when it went (until it is found again). */
  #lost: UsbUartAdapter | undefined;

  constructor(o: { slot: number; ref: UartRef; endpoints: EndpointRegistry; clock: Clock; watchIntervalMs?: number; replugWaitMs?: number }) {
    this.slot = o.slot;
    this.ref = o.ref;
    this.#endpoints = o.endpoints;
    this.#clock = o.clock;
    this.#watchMs = o.watchIntervalMs ?? ADAPTER_WATCH_MS;
    this.#replugWaitMs = o.replugWaitMs ?? REPLUG_WAIT_MS;
  }

  /** "sim:uart1", "USB path 1-1.2": how the jig file binds it. */
  describe(): string {
    if (this.ref.port) return this.ref.port;
    return [this.ref.usbPath && `USB path ${this.ref.usbPath}`, this.ref.serialNumber && `serial "${this.ref.serialNumber}"`].filter(Boolean).join(', ');
  }

  /**
   * Resolve and open, then watch the adapter until close(). After this slot's adapter went while a
   * session had it open, first wait (at most REPLUG_WAIT_MS, aborted by `signal`) for it to come back
   * at its USB path: the retry of a step the unplug failed then runs on the replugged adapter.
   */
  async open(o: { baudRate: number; log?: Logger; signal?: AbortSignal }): Promise<SlotPort> {
    let found;
    try {
      found = this.#lost ? await this.#awaitReplug(this.#lost, o) : await resolveUart(this.#endpoints, this.ref);
    } catch (e) {
      if (o.signal?.aborted) throw o.signal.reason; // the step's timeout or the slot's abort, not a UART fault
      throw this.#slotError(e, `slot ${this.slot} UART (${this.describe()})`);
    }
    o.signal?.throwIfAborted();
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
    return new WatchedSlotPort(link, found.path, found.adapter, watch, this.slot, (gone) => {
      this.#lost = gone;
    });
  }

  /**
   * Scan for the lost adapter at its USB path until it is listed again or `replugWaitMs` has passed
   * on the station's clock. Never returning is the unplug's TransportError, saying how long it waited.
   */
  async #awaitReplug(lost: UsbUartAdapter, o: { log?: Logger; signal?: AbortSignal }): Promise<ResolvedUart> {
    const t0 = this.#clock.now();
    const was = `USB-UART adapter at ${lost.usbPath} (${lost.chip}${lost.devPath ? ` ${lost.devPath}` : ''})`;
    o.log?.info({ slot: this.slot, usbPath: lost.usbPath, tty: lost.devPath, waitMs: this.#replugWaitMs }, 'waiting for the unplugged USB-UART adapter to re-enumerate');
    for (;;) {
      try {
        const found = await resolveUart(this.#endpoints, this.ref);
        this.#lost = undefined;
        o.log?.info({ slot: this.slot, usbPath: lost.usbPath, tty: found.path, waitedMs: this.#clock.now() - t0 }, 'USB-UART adapter back');
        return found;
      } catch (e) {
        const waited = this.#clock.now() - t0;
        if (!(e instanceof TransportError) || waited >= this.#replugWaitMs) {
          if (!(e instanceof TransportError)) throw e;
          throw new TransportError(
            `${e.message}: the ${was} was unplugged and did not come back within ${(this.#replugWaitMs / 1000).toFixed(0)} s`,
            { ...e.context, slot: this.slot, usbPath: lost.usbPath, tty: lost.devPath, replugWaitMs: this.#replugWaitMs, waitedMs: waited, step: 'adapter-replug' },
            { cause: e },
          );
        }
        await this.#clock.sleep(Math.min(this.#watchMs, this.#replugWaitMs - waited), o.signal);
      }
    }
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

  constructor(link: SerialLink, path: string, adapter: UsbUartAdapter & { devPath: string }, watch: AdapterWatch, slot: number, onLost: (adapter: UsbUartAdapter) => void) {
    this.#link = link;
    this.path = path;
    this.adapter = adapter;
    this.#watch = watch;
    this.#slot = slot;
    this.#signal = watch.signalFor(adapter.usbPath);
    const onGone = (): void => {
      this.#gone ??= this.#unplugged(this.#signal.reason);
      onLost(adapter);
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
