import type { Clock } from '../core/clock.ts';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { SlotComponents } from './components.ts';
import { J5InterlockPorts } from './interlock-j5.ts';
import type { JigBoard } from './jig-board.ts';
import type { JigSpec, SlotSpec } from './jig-config.ts';
import { MainsInterlock } from './mains-interlock.ts';

export interface SlotIoOptions {
  clock: Clock;
  log?: Logger;
  /** How long a relay write may take to be confirmed by PIN_STATE_RESPONSE. */
  ackTimeoutMs?: number;
}

/**
 * One slot's jig I/O on an open board. The interlock receives the mains / UART-isolation / 3V3 /
 * load pins here and nowhere else; components only ever see ComponentPins.
 */
export class SlotIo {
  readonly slot: SlotSpec;
  readonly interlock: MainsInterlock;
  readonly #ports: J5InterlockPorts;
  readonly #clock: Clock;
  #components: SlotComponents;

  private constructor(jb: JigBoard, slot: SlotSpec, settleMs: number, options: SlotIoOptions) {
    this.slot = slot;
    this.#clock = options.clock;
    const p = slot.pins;
    this.#ports = new J5InterlockPorts(
      { mains: p.mains, uartIsolation: p.uartIsolation, power3v3: p.power3v3, loads: p.loads, lid: p.lid, estop: p.estop },
      options.clock,
      options.ackTimeoutMs,
    );
    this.#ports.bind(jb);
    this.interlock = new MainsInterlock({
      outputs: this.#ports,
      inputs: this.#ports,
      clock: options.clock,
      settleMs,
      loads: p.loads.map((l) => l.name),
      slot: slot.id,
      ...(options.log ? { log: options.log.child({ slot: slot.id }) } : {}),
    });
    this.#components = this.#makeComponents(jb);
  }

  /** Bind slot `slotId` of `jig` to an open board and drive its interlock outputs off (init). */
  static async open(jb: JigBoard, jig: JigSpec, slotId: number, options: SlotIoOptions): Promise<SlotIo> {
    const slot = jig.slots.find((s) => s.id === slotId);
    if (!slot) throw new ConfigError(`jig ${jig.name} has no slot ${slotId}`, { step: 'slot-io', slot: slotId });
    const io = new SlotIo(jb, slot, jig.interlock.settleMs, options);
    await io.interlock.init();
    return io;
  }

  get components(): SlotComponents {
    return this.#components;
  }

  /**
   * After a lost board came back (a new JigBoard on the re-opened port): re-bind every component.
   * The interlock stays faulted until an explicit `interlock.reset()`.
   */
  rebind(jb: JigBoard): void {
    this.#components.dispose();
    this.#ports.bind(jb);
    this.#components = this.#makeComponents(jb);
  }

  dispose(): void {
    this.#components.dispose();
    this.interlock.dispose();
  }

  #makeComponents(jb: JigBoard): SlotComponents {
    const { cen, button, ledSensor, relaySense, lid, estop } = this.slot.pins;
    return new SlotComponents(jb.board, { cen, button, ledSensor, relaySense, lid, estop }, this.#clock);
  }
}
