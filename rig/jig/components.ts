import { EventEmitter } from 'node:events';
import five from 'johnny-five';
import type { Clock } from '../core/clock.ts';
import { pinActiveLow, pinNumber, type PinSpec } from './jig-config.ts';
import type { FirmataIo } from './interlock-j5.ts';

/**
 * The slot pins components may use. Mains, UART isolation, 3V3 and the load bank are deliberately
 * absent: only the interlock (slot-io.ts) gets those numbers.
 */
export interface ComponentPins {
  cen: PinSpec;
  button: PinSpec;
  ledSensor: { analog: number; threshold: number };
  relaySense: PinSpec;
  lid: PinSpec;
  estop: PinSpec;
}

/**
 * A slot's low-voltage jig I/O as suites and commands use it, whatever drives the pins (as
 * MainsInterlock is behind InterlockOutputs/InterlockInputs). Logical levels: the jig file's
 * activeLow is already applied. Input events fire on every reported level change.
 */
export interface JigComponents {
  /** Drive the CEN line (high = chip enabled/running, low = held in reset). */
  setCen(high: boolean): void;
  /** Hold CEN low for ms, then release it. */
  pulseCen(ms: number): Promise<void>;
  /** Push the plug's button with the actuator for ms. */
  press(ms?: number): Promise<void>;
  /** Two short presses, inside OpenBeken's double-click window. */
  doubleClick(pressMs?: number, gapMs?: number): Promise<void>;
  /** Latest light-sensor reading (0..1023), undefined before the first report. */
  lightLevel(): number | undefined;
  /** Is the plug's LED lit (reading above the jig file's threshold)? */
  ledLit(): boolean;
  /** Plug relay output closed? undefined until the board reported the pin. */
  relayOn(): boolean | undefined;
  lidClosed(): boolean | undefined;
  estopPressed(): boolean | undefined;
  on(event: 'relay' | 'lid' | 'estop', fn: (value: boolean) => void): this;
  off(event: 'relay' | 'lid' | 'estop', fn: (value: boolean) => void): this;
  /** Stop reporting and release listeners (the board stays open). */
  dispose(): void;
}

/** Sensor options and methods @types/johnny-five omits (both exist in johnny-five 2.1.0). */
type SensorOptions = five.SensorOption & { freq: number };
type DisablableSensor = five.Sensor & { disable(): void };

/**
 * JigComponents through johnny-five on a StandardFirmata board: CEN line, button actuator,
 * light sensor over the plug's LED, relay-output sense, lid switch and E-stop. Input events fire on
 * every reported level change: 'relay' (plug relay closed?), 'lid' (closed?), 'estop' (pressed?).
 * Logical levels honour `activeLow` from the jig file.
 */
export class SlotComponents extends EventEmitter<{ relay: [boolean]; lid: [boolean]; estop: [boolean] }> implements JigComponents {
  readonly #clock: Clock;
  readonly #pins: ComponentPins;
  readonly #cen: five.Pin;
  readonly #button: five.Pin;
  readonly #sensor: five.Sensor;
  readonly #levels = new Map<'relay' | 'lid' | 'estop', number>();
  readonly #io: FirmataIo;
  readonly #listeners: Array<() => void> = [];

  constructor(board: five.Board, pins: ComponentPins, clock: Clock) {
    super();
    this.#clock = clock;
    this.#pins = pins;
    this.#io = board.io as FirmataIo;
    // Outputs: pre-write the idle level so pinMode(OUTPUT) never glitches (CEN high = chip running).
    // The CEN pin's logical "active" is "hold the chip in reset" (it drives an open-drain pull-down).
    this.#io.digitalWrite(pinNumber(pins.cen), this.#level(pins.cen, false));
    this.#cen = new five.Pin({ pin: pinNumber(pins.cen), board });
    this.#drive(this.#cen, pins.cen, false);
    this.#io.digitalWrite(pinNumber(pins.button), this.#level(pins.button, false));
    this.#button = new five.Pin({ pin: pinNumber(pins.button), board });
    this.#drive(this.#button, pins.button, false);
    const sensorOptions: SensorOptions = { pin: `A${pins.ledSensor.analog}`, board, freq: 1000 };
    this.#sensor = new five.Sensor(sensorOptions);
    for (const [name, spec] of [['relay', pins.relaySense], ['lid', pins.lid], ['estop', pins.estop]] as const) {
      const pin = pinNumber(spec);
      new five.Switch({ pin, board, type: 'NO' } as five.SwitchOption);
      const onLevel = (v: number): void => {
        if (this.#levels.get(name) === v) return;
        this.#levels.set(name, v);
        this.emit(name, (v === 1) !== pinActiveLow(spec));
      };
      this.#io.digitalRead(pin, onLevel);
      this.#listeners.push(() => this.#io.removeListener(`digital-read-${pin}`, onLevel));
    }
  }

  /** Drive the CEN line (high = chip enabled/running, low = held in reset). */
  setCen(high: boolean): void {
    this.#drive(this.#cen, this.#pins.cen, !high);
  }

  /** Hold CEN low for ms, then release it. */
  async pulseCen(ms: number): Promise<void> {
    this.setCen(false);
    await this.#clock.sleep(ms);
    this.setCen(true);
  }

  /** Push the plug's button with the actuator for ms. */
  async press(ms = 150): Promise<void> {
    this.#drive(this.#button, this.#pins.button, true);
    await this.#clock.sleep(ms);
    this.#drive(this.#button, this.#pins.button, false);
  }

  /** Two short presses, inside OpenBeken's double-click window. */
  async doubleClick(pressMs = 80, gapMs = 120): Promise<void> {
    await this.press(pressMs);
    await this.#clock.sleep(gapMs);
    await this.press(pressMs);
  }

  /** Latest light-sensor reading (0..1023), undefined before the first analog report. */
  lightLevel(): number | undefined {
    const v = this.#sensor.raw as number | null;
    return v === null ? undefined : v;
  }

  /** Is the plug's LED lit (reading above the jig file's threshold)? */
  ledLit(): boolean {
    return (this.lightLevel() ?? 0) > this.#pins.ledSensor.threshold;
  }

  /** Plug relay output closed? undefined until the board reported the pin. */
  relayOn(): boolean | undefined {
    return this.#logical('relay', this.#pins.relaySense);
  }

  lidClosed(): boolean | undefined {
    return this.#logical('lid', this.#pins.lid);
  }

  estopPressed(): boolean | undefined {
    return this.#logical('estop', this.#pins.estop);
  }

  /** Stop the sensor's polling interval and the input listeners (the board stays open). */
  dispose(): void {
    (this.#sensor as DisablableSensor).disable();
    for (const off of this.#listeners.splice(0)) off();
  }

  #logical(name: 'relay' | 'lid' | 'estop', spec: PinSpec): boolean | undefined {
    const v = this.#levels.get(name);
    return v === undefined ? undefined : (v === 1) !== pinActiveLow(spec);
  }

  #level(spec: PinSpec, active: boolean): number {
    return active !== pinActiveLow(spec) ? 1 : 0;
  }

  #drive(pin: five.Pin, spec: PinSpec, active: boolean): void {
    if (this.#level(spec, active)) pin.high();
    else pin.low();
  }
}
