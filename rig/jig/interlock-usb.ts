import type { Clock } from '../core/clock.ts';
import { ConfigError, PlugrigError, TimeoutError, TransportError } from '../core/errors.ts';
import { DcttechRelay, type DcttechSelector } from '../usb/dcttech-relay.ts';
import { HubPortPower } from '../usb/hub-power.ts';
import type { UsbDeviceSource } from '../usb/usb-source.ts';
import { isHubPort, type SlotSpec } from './jig-config.ts';
import type { InterlockOutput, InterlockOutputs } from './mains-interlock.ts';

/**
 * Interlock outputs switched through USB devices instead of I/O-board pins: load-bank relays on
 * dcttech HID relay boards and the module's 3V3 on a hub port. Each write is confirmed by the
 * device's own read-back (relay bitmask / port power bit) before it resolves.
 */

/** The part of DcttechRelay a load output needs. */
export interface RelayChannels {
  readonly serial: string;
  set(channel: number, on: boolean): Promise<void>;
  close(): Promise<void>;
}

/** The part of HubPortPower a 3V3 output needs. */
export interface PortPowerSwitch {
  readonly usbPath: string;
  setPower(port: number, on: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs writes one after another (FIFO, as InterlockOutputs requires): a read-back of a later write
 * must not be taken before an earlier one was confirmed. A write not confirmed within timeoutMs
 * rejects; the device call itself may still be pending and keeps its place in the queue.
 */
class ConfirmedWriteQueue {
  #tail: Promise<unknown> = Promise.resolve();
  readonly #clock: Clock;
  readonly #timeoutMs: number;

  constructor(clock: Clock, timeoutMs: number) {
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
  }

  run(what: string, context: Record<string, unknown>, op: () => Promise<void>): Promise<void> {
    const done = this.#tail.then(op, op);
    this.#tail = done.catch(() => undefined);
    return new Promise<void>((resolve, reject) => {
      const cancel = this.#clock.at(this.#clock.now() + this.#timeoutMs, () =>
        reject(new TimeoutError(`${what} not confirmed within ${this.#timeoutMs} ms`, { step: 'interlock-write', ...context })),
      );
      done.then(
        () => {
          cancel();
          resolve();
        },
        (e: unknown) => {
          cancel();
          reject(e instanceof PlugrigError ? e : new TransportError(`${what} failed: ${String(e)}`, { step: 'interlock-write', ...context }, { cause: e }));
        },
      );
    });
  }
}

/** Load outputs (`load:<name>`) on channels of one dcttech board. */
export class DcttechLoadOutputs implements InterlockOutputs {
  readonly #relay: RelayChannels;
  readonly #channels: ReadonlyMap<InterlockOutput, number>;
  readonly #queue: ConfirmedWriteQueue;

  constructor(relay: RelayChannels, channels: ReadonlyMap<InterlockOutput, number>, clock: Clock, ackTimeoutMs: number) {
    this.#relay = relay;
    this.#channels = channels;
    this.#queue = new ConfirmedWriteQueue(clock, ackTimeoutMs);
  }

  get outputs(): InterlockOutput[] {
    return [...this.#channels.keys()];
  }

  write(output: InterlockOutput, on: boolean): Promise<void> {
    const channel = this.#channels.get(output);
    const context = { output, serial: this.#relay.serial, channel };
    if (channel === undefined) return Promise.reject(new TransportError(`dcttech board ${this.#relay.serial} has no channel for ${output}`, { step: 'interlock-write', ...context }));
    return this.#queue.run(`dcttech ${this.#relay.serial} channel ${channel} ${on ? 'on' : 'off'} (${output})`, context, () => this.#relay.set(channel, on));
  }
}

/** The `power3v3` output on one port of a hub with per-port power switching. */
export class HubPortPowerOutput implements InterlockOutputs {
  readonly #hub: PortPowerSwitch;
  readonly #port: number;
  readonly #queue: ConfirmedWriteQueue;

  constructor(hub: PortPowerSwitch, port: number, clock: Clock, ackTimeoutMs: number) {
    this.#hub = hub;
    this.#port = port;
    this.#queue = new ConfirmedWriteQueue(clock, ackTimeoutMs);
  }

  write(output: InterlockOutput, on: boolean): Promise<void> {
    const context = { output, usbPath: this.#hub.usbPath, port: this.#port };
    if (output !== 'power3v3') return Promise.reject(new TransportError(`hub port ${this.#hub.usbPath}:${this.#port} only switches power3v3, not ${output}`, { step: 'interlock-write', ...context }));
    return this.#queue.run(`hub ${this.#hub.usbPath} port ${this.#port} power ${on ? 'on' : 'off'}`, context, () => this.#hub.setPower(this.#port, on));
  }
}

export interface SlotUsbOutputs {
  /** Output -> the backend that switches it. */
  routes: Map<InterlockOutput, InterlockOutputs>;
  /** Release every opened device. */
  close(): Promise<void>;
}

export interface OpenSlotUsbOptions {
  clock: Clock;
  /** How long a USB write + read-back may take (default 2000 ms: libusb's own timeout is 1000 ms per transfer). */
  ackTimeoutMs?: number;
}

function selectorOf(r: { serial?: string | undefined; usbPath?: string | undefined }): DcttechSelector {
  return { ...(r.serial !== undefined ? { serial: r.serial } : {}), ...(r.usbPath !== undefined ? { usbPath: r.usbPath } : {}) };
}

function describeSelector(s: DcttechSelector): string {
  return [s.serial !== undefined && `serial "${s.serial}"`, s.usbPath !== undefined && `at ${s.usbPath}`].filter(Boolean).join(' ');
}

/**
 * Open the USB devices a slot's loads and 3V3 use. Fails with a TransportError naming the slot, the
 * output and the board or hub that could not be opened; devices opened before the failure are closed.
 */
export async function openSlotUsbOutputs(source: UsbDeviceSource, slot: SlotSpec, options: OpenSlotUsbOptions): Promise<SlotUsbOutputs> {
  const ackTimeoutMs = options.ackTimeoutMs ?? 2000;
  const routes = new Map<InterlockOutput, InterlockOutputs>();
  const opened: Array<{ close(): Promise<void> }> = [];
  const close = async (): Promise<void> => {
    for (const d of opened.splice(0)) await d.close().catch(() => undefined);
  };
  const fail = async (what: string, users: string, context: Record<string, unknown>, e: unknown): Promise<never> => {
    await close();
    const why = e instanceof Error ? e.message : String(e);
    throw new TransportError(`slot ${slot.id}: cannot open ${what} for ${users}: ${why}`, { slot: slot.id, step: 'slot-usb-open', ...context }, { cause: e });
  };

  // One handle per board, shared by the slot's loads on it.
  const boards = new Map<string, { selector: DcttechSelector; channels: Map<InterlockOutput, number> }>();
  for (const load of slot.pins.loads) {
    if (!load.relay) continue;
    const selector = selectorOf(load.relay);
    const key = describeSelector(selector);
    const b = boards.get(key) ?? { selector, channels: new Map<InterlockOutput, number>() };
    boards.set(key, b);
    b.channels.set(`load:${load.name}`, load.relay.channel);
  }
  for (const [key, b] of boards) {
    const users = [...b.channels.keys()].join(', ');
    let relay: DcttechRelay;
    try {
      relay = await DcttechRelay.open(source, b.selector);
    } catch (e) {
      return fail(`dcttech relay board ${key}`, users, { ...b.selector }, e);
    }
    opened.push(relay);
    for (const [output, channel] of b.channels) {
      if (channel > relay.channels) {
        await close();
        throw new ConfigError(`slot ${slot.id}: ${output} uses channel ${channel} of dcttech board ${relay.serial}, which has ${relay.channels}`, {
          slot: slot.id,
          step: 'slot-usb-open',
          expected: `1..${relay.channels}`,
        });
      }
    }
    const outputs = new DcttechLoadOutputs(relay, b.channels, options.clock, ackTimeoutMs);
    for (const o of outputs.outputs) routes.set(o, outputs);
  }

  const p3 = slot.pins.power3v3;
  if (isHubPort(p3)) {
    let hub: HubPortPower;
    try {
      hub = await HubPortPower.open(source, p3.hubUsbPath, { clock: options.clock });
    } catch (e) {
      return fail(`USB hub ${p3.hubUsbPath}`, 'power3v3', { usbPath: p3.hubUsbPath, port: p3.port }, e);
    }
    opened.push(hub);
    if (p3.port > hub.ports) {
      await close();
      throw new ConfigError(`slot ${slot.id}: power3v3 uses port ${p3.port} of hub ${p3.hubUsbPath}, which has ${hub.ports}`, { slot: slot.id, step: 'slot-usb-open', expected: `1..${hub.ports}` });
    }
    routes.set('power3v3', new HubPortPowerOutput(hub, p3.port, options.clock, ackTimeoutMs));
  }
  return { routes, close };
}
