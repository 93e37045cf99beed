import type { Clock } from '../rig/core/clock.ts';
import { InstrumentError, TimeoutError } from '../rig/core/errors.ts';
import type { JigBoard } from '../rig/jig/jig-board.ts';
import { pinActiveLow, pinNumber, type PinSpec } from '../rig/jig/jig-config.ts';
import type { FirmataIo } from '../rig/jig/interlock-j5.ts';

/** Time a mux relay's contacts take to settle after its coil is switched (a small signal relay: ~5 ms, with margin). */
export const MUX_SETTLE_MS = 20;

/**
 * The relays that route one shared reference meter to one slot at a time (`slots[].meter.select`
 * in the jig file). Break-before-make: the previous slot's relay is opened and confirmed before the
 * next one closes, so the meter never sees two slots' currents at once.
 */
export class MeterMux {
  readonly meter: string;
  readonly #clock: Clock;
  readonly #routes = new Map<number, { board: JigBoard; pin: number; activeLow: boolean }>();
  #selected: number | undefined;

  constructor(meter: string, clock: Clock) {
    this.meter = meter;
    this.#clock = clock;
  }

  /** Register a slot's select relay and drive it open. */
  add(slot: number, board: JigBoard, spec: PinSpec): void {
    const pin = pinNumber(spec);
    const activeLow = pinActiveLow(spec);
    const io = board.board.io as unknown as FirmataIo & { pinMode(pin: number, mode: number): void };
    io.digitalWrite(pin, activeLow ? 1 : 0);
    io.pinMode(pin, io.MODES.OUTPUT);
    io.digitalWrite(pin, activeLow ? 1 : 0);
    this.#routes.set(slot, { board, pin, activeLow });
  }

  selected(): number | undefined {
    return this.#selected;
  }

  async select(slot: number): Promise<void> {
    if (!this.#routes.has(slot)) throw new InstrumentError(`meter ${this.meter} has no mux relay for slot ${slot}`, { slot, instrument: this.meter });
    if (this.#selected === slot) return;
    await this.deselect();
    await this.#write(slot, true);
    this.#selected = slot;
  }

  async deselect(): Promise<void> {
    const prev = this.#selected;
    if (prev === undefined) return;
    this.#selected = undefined;
    await this.#write(prev, false);
  }

  /** Write, then read the pin back (PIN_STATE_QUERY) and wait out the contact settle time. */
  async #write(slot: number, on: boolean): Promise<void> {
    const r = this.#routes.get(slot)!;
    const io = r.board.board.io as unknown as FirmataIo;
    const level = on !== r.activeLow ? 1 : 0;
    io.digitalWrite(r.pin, level);
    const acked = new Promise<void>((resolve, reject) => {
      const cancel = this.#clock.at(this.#clock.now() + 500, () => reject(new TimeoutError(`meter ${this.meter} mux relay of slot ${slot} (pin ${r.pin}) not confirmed`, { slot, instrument: this.meter, pin: r.pin })));
      io.queryPinState(r.pin, () => {
        cancel();
        const state = io.pins[r.pin]?.state;
        if (state === level) resolve();
        else reject(new InstrumentError(`meter ${this.meter} mux relay of slot ${slot} (pin ${r.pin}) reads ${String(state)}, wrote ${level}`, { slot, instrument: this.meter, pin: r.pin }));
      });
    });
    await acked;
    await this.#clock.sleep(MUX_SETTLE_MS);
  }
}
