import type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from '@serialport/bindings-interface' with { 'resolution-mode': 'require' }; // its exports map has no ESM types
import type { Clock } from '../../rig/core/clock.ts';
import { TransportError } from '../../rig/core/errors.ts';
import { ByteQueue } from '../../rig/serial/byte-queue.ts';
import type { VirtualUartDevice } from './uart-device.ts';
import { VirtualUartWire } from './virtual-uart-wire.ts';

/** Paths on the bus are `sim:<name>`; callers may give the name with or without the prefix. */
export const SIM_PREFIX = 'sim:';

export function simPath(pathOrName: string): string {
  return pathOrName.startsWith(SIM_PREFIX) ? pathOrName : SIM_PREFIX + pathOrName;
}

/** A closed port cancels in-flight operations with `canceled: true`, as the binding contract asks. */
export class PortCanceledError extends TransportError {
  readonly canceled = true;
}

export interface AttachOptions {
  /** DTR/RTS reach the device (a USB-UART wired to CEN). Default false. */
  modemLines?: boolean;
  /** Delivery granularity of the wire, ms of wire time. */
  chunkMs?: number;
  /** Extra port metadata shown by list(). */
  info?: Partial<Omit<PortInfo, 'path'>>;
}

interface Attachment {
  path: string;
  wire: VirtualUartWire;
  info: PortInfo;
  plugged: boolean;
  port: VirtualPortBinding | null;
}

const DEFAULT_OPEN_OPTIONS = {
  dataBits: 8,
  lock: true,
  stopBits: 1,
  parity: 'none',
  rtscts: false,
  xon: false,
  xoff: false,
  xany: false,
  hupcl: true,
} as const;

/** An open virtual port: the host end of one VirtualUartWire. */
export class VirtualPortBinding implements BindingPortInterface {
  readonly openOptions: Required<OpenOptions>;
  isOpen = true;
  readonly #att: Attachment;
  readonly #rx = new ByteQueue();
  #pendingRead: (() => void) | null = null;
  /** Set when the adapter vanished: every later operation fails with it (not canceled). */
  #lost: TransportError | null = null;

  constructor(att: Attachment, openOptions: Required<OpenOptions>) {
    this.#att = att;
    this.openOptions = openOptions;
    att.wire.hostOpen(openOptions.baudRate, (bytes) => {
      this.#rx.push(bytes);
      this.#wake();
    });
    // Opening a tty asserts DTR and RTS (Linux does this on every open).
    if (att.wire.routesModemLines) att.wire.setModemLines({ dtr: true, rts: true });
  }

  get path(): string {
    return this.#att.path;
  }

  /** Bytes received but not yet read. */
  bufferedBytes(): number {
    return this.#rx.length;
  }

  async close(): Promise<void> {
    if (!this.isOpen) throw new TransportError(`${this.path} is not open`, { path: this.path });
    this.isOpen = false;
    const wire = this.#att.wire;
    if (!this.#lost) {
      if (wire.routesModemLines && this.openOptions.hupcl) wire.setModemLines({ dtr: false, rts: false });
      wire.hostClose();
    }
    if (this.#att.port === this) this.#att.port = null;
    this.#rx.clear();
    this.#wake();
  }

  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    if (!Buffer.isBuffer(buffer)) throw new TypeError('"buffer" is not a Buffer');
    if (!Number.isInteger(offset) || !Number.isInteger(length) || length <= 0) {
      throw new TypeError(`invalid read offset/length ${offset}/${length}`);
    }
    if (buffer.length < offset + length) throw new TypeError('buffer is too small');
    for (;;) {
      if (this.#lost) throw this.#lost;
      if (!this.isOpen) throw new PortCanceledError(`read canceled: ${this.path} closed`, { path: this.path });
      if (this.#rx.length > 0) {
        const bytesRead = this.#rx.consumeInto(buffer, offset, length);
        return { buffer, bytesRead };
      }
      if (this.#pendingRead) throw new TransportError(`overlapping reads on ${this.path}`, { path: this.path });
      await new Promise<void>((resolve) => {
        this.#pendingRead = resolve;
      });
    }
  }

  async write(buffer: Buffer): Promise<void> {
    if (!Buffer.isBuffer(buffer)) throw new TypeError('"buffer" is not a Buffer');
    this.#assertUsable('write');
    this.#att.wire.hostWrite(buffer);
  }

  async update(options: UpdateOptions): Promise<void> {
    this.#assertUsable('update');
    if (typeof options?.baudRate !== 'number' || !(options.baudRate > 0)) {
      throw new TypeError(`"baudRate" must be a positive number, got ${String(options?.baudRate)}`);
    }
    this.#att.wire.setHostBaud(options.baudRate);
    this.openOptions.baudRate = options.baudRate;
  }

  async set(options: SetOptions): Promise<void> {
    this.#assertUsable('set');
    const wire = this.#att.wire;
    if (!wire.routesModemLines) {
      // What a pty answers to TIOCMSET.
      throw new TransportError(`Inappropriate ioctl for device, cannot set modem lines on ${this.path}`, {
        path: this.path,
        errno: 'ENOTTY',
      });
    }
    wire.setModemLines({ dtr: options.dtr ?? true, rts: options.rts ?? true });
  }

  async get(): Promise<PortStatus> {
    this.#assertUsable('get');
    return { cts: false, dsr: false, dcd: false };
  }

  async getBaudRate(): Promise<{ baudRate: number }> {
    this.#assertUsable('getBaudRate');
    return { baudRate: this.#att.wire.hostBaud() };
  }

  async flush(): Promise<void> {
    this.#assertUsable('flush');
    this.#rx.clear();
  }

  /** Resolves once everything written so far has left the adapter (reached the device). */
  async drain(): Promise<void> {
    this.#assertUsable('drain');
    const wire = this.#att.wire;
    await wire.clock.sleepUntil(wire.hostTxIdleAt());
  }

  /** The adapter vanished: the pending read fails with EIO, so SerialPortStream disconnects. */
  unplugged(): void {
    this.#lost = new TransportError(`Input/output error: ${this.path} was unplugged`, {
      path: this.path,
      errno: 'EIO',
    });
    this.#att.wire.hostClose();
    this.#wake();
  }

  #wake(): void {
    const pending = this.#pendingRead;
    this.#pendingRead = null;
    pending?.();
  }

  #assertUsable(op: string): void {
    if (this.#lost) throw this.#lost;
    if (!this.isOpen) throw new TransportError(`${op}: ${this.path} is not open`, { path: this.path });
  }
}

/**
 * In-process serial ports for simulated devices. One Clock drives every wire; `binding` plugs into
 * the real SerialPortStream (`new SerialPortStream({ binding: bus.binding, path: 'sim:dut1', baudRate })`).
 */
export class VirtualSerialBus {
  readonly clock: Clock;
  readonly binding: BindingInterface<VirtualPortBinding>;
  readonly #ports = new Map<string, Attachment>();
  #serial = 0;

  constructor(clock: Clock) {
    this.clock = clock;
    this.binding = {
      list: async () => this.#list(),
      open: async (options: OpenOptions) => this.#open(options),
    };
  }

  /** Connect a device at `sim:<name>`; returns its wire (counters, timing). */
  attach(path: string, device: VirtualUartDevice, options: AttachOptions = {}): VirtualUartWire {
    const p = simPath(path);
    if (this.#ports.has(p)) throw new TransportError(`${p} already has a device attached`, { path: p });
    const wire = new VirtualUartWire({
      clock: this.clock,
      device,
      modemLines: options.modemLines ?? false,
      ...(options.chunkMs !== undefined ? { chunkMs: options.chunkMs } : {}),
    });
    this.#serial++;
    const info: PortInfo = {
      path: p,
      manufacturer: 'plugrig virtual UART',
      serialNumber: `SIM${String(this.#serial).padStart(4, '0')}`,
      pnpId: undefined,
      locationId: undefined,
      productId: undefined,
      vendorId: undefined,
      ...options.info,
    };
    this.#ports.set(p, { path: p, wire, info, plugged: true, port: null });
    return wire;
  }

  /** Remove the device; an open port on it fails as if unplugged. */
  detach(path: string): void {
    const att = this.#ports.get(simPath(path));
    if (!att) return;
    att.port?.unplugged();
    att.port = null;
    att.wire.dispose();
    this.#ports.delete(att.path);
  }

  /** The adapter vanishes (USB unplug): the open port errors and closes, new opens fail. */
  unplug(path: string): void {
    const att = this.#require(path);
    att.plugged = false;
    att.port?.unplugged();
    att.port = null;
  }

  /** Plug the adapter back in; the device kept running meanwhile. */
  replug(path: string): void {
    this.#require(path).plugged = true;
  }

  wire(path: string): VirtualUartWire | undefined {
    return this.#ports.get(simPath(path))?.wire;
  }

  isOpen(path: string): boolean {
    return this.#ports.get(simPath(path))?.port != null;
  }

  paths(): string[] {
    return [...this.#ports.keys()];
  }

  #require(path: string): Attachment {
    const att = this.#ports.get(simPath(path));
    if (!att) throw new TransportError(`no virtual device at ${simPath(path)}`, { path: simPath(path) });
    return att;
  }

  #list(): PortInfo[] {
    return [...this.#ports.values()].filter((a) => a.plugged).map((a) => ({ ...a.info }));
  }

  #open(options: OpenOptions): VirtualPortBinding {
    if (!options || typeof options !== 'object') throw new TypeError('"options" is not an object');
    if (!options.path) throw new TypeError('"path" is not a valid port');
    if (typeof options.baudRate !== 'number' || !(options.baudRate > 0)) {
      throw new TypeError(`"baudRate" is not a valid baudRate: ${String(options.baudRate)}`);
    }
    const p = simPath(options.path);
    const att = this.#ports.get(p);
    if (!att || !att.plugged) {
      throw new TransportError(`No such file or directory, cannot open ${p}`, { path: p, errno: 'ENOENT' });
    }
    if (att.port) {
      throw new TransportError(`Resource temporarily unavailable, cannot open ${p}: already open`, {
        path: p,
        errno: 'EBUSY',
      });
    }
    const openOptions = { ...DEFAULT_OPEN_OPTIONS, ...options } as Required<OpenOptions>;
    const port = new VirtualPortBinding(att, openOptions);
    att.port = port;
    return port;
  }
}
