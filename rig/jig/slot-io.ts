import { resetStrategyFromSpec, type ResetStrategy } from '../bk7231/reset.ts';
import type { Clock } from '../core/clock.ts';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { SlotComponents, type JigComponents } from './components.ts';
import type { UsbDeviceSource } from '../usb/usb-source.ts';
import { CompositeInterlockOutputs } from './composite-outputs.ts';
import { J5InterlockPorts, type InterlockPins } from './interlock-j5.ts';
import { openSlotUsbOutputs, type SlotUsbOutputs } from './interlock-usb.ts';
import type { JigBoard } from './jig-board.ts';
import { isHubPort, slotUsesUsb, type JigSpec, type PinSpec, type SlotSpec } from './jig-config.ts';
import { heartbeatOf, type MainsHeartbeat } from './heartbeat.ts';
import { MainsInterlock, type InterlockOutputs } from './mains-interlock.ts';
import type { MainsGroup } from './mains-group.ts';

export interface SlotIoOptions {
  clock: Clock;
  log?: Logger;
  /** How long a relay write may take to be confirmed by PIN_STATE_RESPONSE. */
  ackTimeoutMs?: number;
  /**
   * USB bus for loads on dcttech relay boards and 3V3 on a hub port. Only used when the slot has
   * such outputs; default: the machine's bus through node-usb (NodeUsbSource).
   */
  usb?: UsbDeviceSource;
  /** The shared mains relay of the slot's group (required when the jig file puts the slot in one). */
  mainsGroup?: MainsGroup;
  /** Wraps the interlock's outputs, e.g. to publish every relay write to the slots sharing the mains supply. */
  observeOutputs?: (outputs: InterlockOutputs) => InterlockOutputs;
}

/**
 * One slot's jig I/O on an open board. The interlock receives the mains / UART-isolation / 3V3 /
 * load pins here and nowhere else; components only ever see ComponentPins.
 */
export class SlotIo {
  readonly slot: SlotSpec;
  readonly interlock: MainsInterlock;
  readonly #ports: J5InterlockPorts;
  readonly #usb: SlotUsbOutputs | undefined;
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  #components: JigComponents;
  /** The current board's heartbeat (jig file ioBoards.<io>.heartbeat); follows rebind(). */
  #heartbeat: MainsHeartbeat | undefined;
  readonly #heartbeatPin: PinSpec | undefined;

  private constructor(jb: JigBoard, slot: SlotSpec, settleMs: number, options: SlotIoOptions, usb: SlotUsbOutputs | undefined, heartbeatPin: PinSpec | undefined) {
    this.slot = slot;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#usb = usb;
    this.#ports = new J5InterlockPorts(boardPins(slot), options.clock, options.ackTimeoutMs);
    this.#ports.bind(jb);
    this.#heartbeatPin = heartbeatPin;
    this.#heartbeat = heartbeatPin !== undefined ? heartbeatOf(jb, heartbeatPin, options.clock) : undefined;
    const p = slot.pins;
    const outputs: InterlockOutputs = usb ? new CompositeInterlockOutputs(usb.routes, this.#ports) : this.#ports;
    this.interlock = new MainsInterlock({
      outputs: options.observeOutputs ? options.observeOutputs(outputs) : outputs,
      inputs: this.#ports,
      clock: options.clock,
      settleMs,
      loads: p.loads.map((l) => l.name),
      slot: slot.id,
      ...(options.mainsGroup ? { group: options.mainsGroup } : {}),
      ...(heartbeatPin !== undefined
        ? {
            heartbeat: {
              acquire: (holder: object) => this.#heartbeat?.acquire(holder) ?? Promise.resolve(),
              release: (holder: object) => this.#heartbeat?.release(holder),
              running: () => this.#heartbeat?.running() ?? false,
            },
          }
        : {}),
      ...(options.log ? { log: options.log.child({ slot: slot.id }) } : {}),
    });
    this.#components = this.#makeComponents(jb);
  }

  /**
   * Bind slot `slotId` of `jig` to an open board, open the slot's USB relay boards / hub (if any) and
   * drive every interlock output off (init). A USB device that is not there fails with a
   * TransportError naming it.
   */
  static async open(jb: JigBoard, jig: JigSpec, slotId: number, options: SlotIoOptions): Promise<SlotIo> {
    const slot = jig.slots.find((s) => s.id === slotId);
    if (!slot) throw new ConfigError(`jig ${jig.name} has no slot ${slotId}`, { step: 'slot-io', slot: slotId });
    // A slot on a shared mains relay switched on its own would energise its partners unchecked.
    const group = Object.entries(jig.mainsGroups ?? {}).find(([, g]) => g.slots.includes(slotId));
    if (group && options.mainsGroup?.name !== group[0]) {
      throw new ConfigError(`slot ${slotId} is fed by mains group ${group[0]}: its interlock needs that group (slots ${group[1].slots.join(', ')})`, { step: 'slot-io', slot: slotId });
    }
    const usb = slotUsesUsb(slot) ? await openSlotUsbOutputs(options.usb ?? (await nodeUsbSource()), slot, { clock: options.clock }) : undefined;
    const io = new SlotIo(jb, slot, jig.interlock.settleMs, options, usb, jig.ioBoards[slot.io]?.heartbeat);
    await io.interlock.init();
    return io;
  }

  get components(): JigComponents {
    return this.#components;
  }

  /**
   * How this slot puts its chip into the ROM, as its jig file's `reset` says: jig CEN pulled low
   * for pulseMs, the adapter's DTR/RTS sequence, the module's 3V3 switched off for offMs (through
   * the interlock, so only while the UART side is connected and mains is off), or nothing.
   */
  resetStrategy(): ResetStrategy {
    return resetStrategyFromSpec(this.slot.reset, {
      cen: { assert: async () => this.#components.setCen(false), release: async () => this.#components.setCen(true) },
      power: { assert: () => this.interlock.power3v3(false), release: () => this.interlock.power3v3(true) },
    });
  }

  /**
   * After a lost board came back (a new JigBoard on the re-opened port): re-bind every component.
   * The interlock stays faulted until an explicit `interlock.reset()`.
   */
  rebind(jb: JigBoard): void {
    this.#components.dispose();
    this.#ports.bind(jb);
    this.#heartbeat?.release(this.interlock);
    if (this.#heartbeatPin !== undefined) this.#heartbeat = heartbeatOf(jb, this.#heartbeatPin, this.#clock);
    this.#components = this.#makeComponents(jb);
  }

  /** Stop the components and the interlock's input listener and release the USB devices (outputs stay as they are). */
  dispose(): void {
    this.#components.dispose();
    this.interlock.dispose();
    this.#usb?.close().catch((e: unknown) => this.#log?.warn({ slot: this.slot.id, err: e }, 'closing USB outputs failed'));
  }

  #makeComponents(jb: JigBoard): JigComponents {
    const { cen, button, ledSensor, relaySense, lid, estop } = this.slot.pins;
    return new SlotComponents(jb.board, { cen, button, ledSensor, relaySense, lid, estop }, this.#clock);
  }
}

/** The outputs J5InterlockPorts drives on the I/O board: mains, UART isolation, and the loads and 3V3 that are wired to pins. */
function boardPins(slot: SlotSpec): InterlockPins {
  const p = slot.pins;
  const loads = p.loads.flatMap((l) => (l.pin !== undefined ? [{ name: l.name, pin: l.pin }] : []));
  return { mains: p.mains, uartIsolation: p.uartIsolation, ...(isHubPort(p.power3v3) ? {} : { power3v3: p.power3v3 }), loads, lid: p.lid, estop: p.estop };
}

/** Loaded on demand: node-usb is a native addon that pin-only jigs never need. */
async function nodeUsbSource(): Promise<UsbDeviceSource> {
  const { NodeUsbSource } = await import('../usb/node-usb-source.ts');
  return new NodeUsbSource();
}
