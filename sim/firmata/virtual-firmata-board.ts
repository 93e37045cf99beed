import type { Clock } from '../../rig/core/clock.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from '../serial/uart-device.ts';
import {
  BOARD_LAYOUTS,
  analogChannelOf,
  isDigitalPin,
  pinCapabilities,
  type FirmataBoardLayout,
  type FirmataLayoutName,
} from './board-layouts.ts';
import {
  FIRMATA,
  FIRMATA_VERSION,
  FirmataParser,
  PIN_MODE,
  encodeString,
  sevenBit,
  type FirmataMessage,
} from './firmata-protocol.ts';

export interface VirtualFirmataBoardOptions {
  /** Pin layout; default 'uno'. */
  layout?: FirmataLayoutName;
  /** Name in REPORT_FIRMWARE; StandardFirmata reports its sketch file name. */
  firmwareName?: string;
  /** Time from reset to the sketch's first byte (bootloader wait), ms. Default 0. */
  bootMs?: number;
  /** Reset when the host asserts DTR, like an Uno/Mega's auto-reset capacitor. Default true. */
  autoResetOnDtr?: boolean;
}

/** Source of an analog input: a fixed reading or a function sampled at every conversion. */
export type AnalogSource = number | (() => number);

/** StandardFirmata's default analog sampling interval, ms. */
const DEFAULT_SAMPLING_MS = 19;
const MIN_SAMPLING_MS = 1;

interface PinState {
  /** Firmata pin mode; undefined while the sketch is not running (pin is a floating input). */
  mode: number | undefined;
  /** AVR PORT bit: the output level, or the pull-up enable while the pin is an input. */
  latch: boolean;
  /** Firmata's pinState (what PIN_STATE_RESPONSE reports). */
  state: number;
  /** Level the simulation drives onto the pin from outside, if any. */
  external: boolean | undefined;
}

/**
 * A StandardFirmata 2.5 board (Arduino Uno or Mega 2560) behind a virtual UART at 57600 baud.
 * The host side sees the real Firmata protocol; the simulation side sees pins: output levels
 * (`onOutput`, `driven`) and inputs it drives (`setInput`, `setAnalog`). Digital inputs are
 * reported on change for reported ports, analog channels every sampling interval on the Clock.
 */
export class VirtualFirmataBoard implements VirtualUartDevice {
  readonly layout: FirmataBoardLayout;
  readonly firmwareName: string;
  readonly #bootMs: number;
  readonly #autoReset: boolean;
  #tx: UartTx | undefined;
  #clock: Clock | undefined;
  #parser = new FirmataParser();
  #running = false;
  #resetting = false;
  #cancelBoot: (() => void) | undefined;
  #cancelSample: (() => void) | undefined;
  #samplingMs = DEFAULT_SAMPLING_MS;
  #pins: PinState[];
  #analog: AnalogSource[];
  #analogReport = 0;
  #reportPorts: boolean[];
  #previousPorts: number[];
  #lastDriven: Array<boolean | undefined>;
  #dtr = false;
  #outputListeners = new Set<(pin: number, level: boolean | undefined) => void>();
  #pending: number[] = [];
  /** Fault: the sketch hangs (port still open): no replies, no commands executed, outputs hold. */
  #frozen = false;
  /** Outputs an earlier host left high, applied at the first boot (leaveOutputsHigh). */
  #leftHigh: number[] = [];

  constructor(options: VirtualFirmataBoardOptions = {}) {
    this.layout = BOARD_LAYOUTS[options.layout ?? 'uno'];
    this.firmwareName = options.firmwareName ?? 'StandardFirmata.ino';
    this.#bootMs = options.bootMs ?? 0;
    this.#autoReset = options.autoResetOnDtr ?? true;
    const n = this.layout.totalPins;
    this.#pins = Array.from({ length: n }, () => ({ mode: undefined, latch: false, state: 0, external: undefined }));
    this.#analog = this.layout.analogPins.map(() => 0);
    const ports = Math.ceil(n / 8);
    this.#reportPorts = Array.from({ length: ports }, () => false);
    this.#previousPorts = Array.from({ length: ports }, () => 0);
    this.#lastDriven = Array.from({ length: n }, () => undefined);
  }

  // ---- VirtualUartDevice -------------------------------------------------------------

  baudRate(): number {
    return 57600;
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
    this.reset();
  }

  receive(bytes: Uint8Array): void {
    if (!this.#running || this.#frozen) return; // the bootloader/dead/hung board ignores host bytes
    for (const msg of this.#parser.push(bytes)) this.#handle(msg);
    this.#afterStep();
  }

  modemLines(lines: ModemLines): void {
    const rising = lines.dtr && !this.#dtr;
    this.#dtr = lines.dtr;
    if (rising && this.#autoReset && this.#clock) this.reset();
  }

  // ---- Simulation side ---------------------------------------------------------------

  /** Hardware reset: pins float, then after bootMs the sketch starts and announces itself. */
  reset(): void {
    const clock = this.#requireClock();
    this.#halt();
    this.#cancelBoot = clock.at(clock.now() + this.#bootMs, () => {
      this.#cancelBoot = undefined;
      this.#boot();
    });
  }

  /**
   * Fault injection, the silent-but-open board: the MCU hangs (a stuck ISR, a brown-out of the
   * AVR alone). The USB-serial chip keeps the port open, but nothing answers, no command runs, no
   * report goes out, and every output holds the level it had (a toggling pin stops toggling).
   * A reset (DTR, reset()) recovers it.
   */
  freeze(): void {
    this.#frozen = true;
    this.#cancelSample?.();
    this.#cancelSample = undefined;
    this.#pending = [];
  }

  /**
   * Fault injection, the board a station died on: once the sketch runs, these outputs are set
   * OUTPUT and written high, as the dead station's last commands left them. Only a board that is
   * not reset when the next host opens its port (autoResetOnDtr false) still holds them then.
   */
  leaveOutputsHigh(pins: readonly number[]): void {
    this.#leftHigh = [...pins];
  }

  /** True while frozen by freeze(). */
  frozen(): boolean {
    return this.#frozen;
  }

  /** Unplug the board's USB power: pins float and every timer stops (call when a test ends). */
  powerOff(): void {
    this.#halt();
  }

  /** True once the sketch runs (after reset + bootMs). */
  running(): boolean {
    return this.#running;
  }

  /** Level the board drives on a pin (OUTPUT, or PWM with a non-zero duty), or undefined when not driving. */
  driven(pin: number): boolean | undefined {
    const p = this.#pins[pin];
    if (!this.#running || !p) return undefined;
    if (p.mode === PIN_MODE.OUTPUT) return p.latch;
    if (p.mode === PIN_MODE.PWM) return p.state > 0;
    return undefined;
  }

  /** Current Firmata mode of a pin (undefined before the sketch runs). */
  pinMode(pin: number): number | undefined {
    return this.#running ? this.#pins[pin]?.mode : undefined;
  }

  /** Subscribe to changes of driven output levels. Returns an unsubscribe function. */
  onOutput(listener: (pin: number, level: boolean | undefined) => void): () => void {
    this.#outputListeners.add(listener);
    return () => this.#outputListeners.delete(listener);
  }

  /** Drive a pin from outside (a sensor, a switch); undefined releases it. */
  setInput(pin: number, level: boolean | undefined): void {
    const p = this.#pins[pin];
    if (!p) throw new RangeError(`pin ${pin} does not exist on ${this.layout.name}`);
    p.external = level;
    this.#afterStep();
  }

  /** Feed an analog channel (0..1023, or a function sampled at each conversion). */
  setAnalog(channel: number, value: AnalogSource): void {
    if (channel < 0 || channel >= this.#analog.length) throw new RangeError(`analog channel ${channel} does not exist on ${this.layout.name}`);
    this.#analog[channel] = value;
  }

  // ---- Firmware ----------------------------------------------------------------------

  #requireClock(): Clock {
    if (!this.#clock) throw new Error('VirtualFirmataBoard used before connect()');
    return this.#clock;
  }

  #halt(): void {
    this.#frozen = false;
    this.#cancelBoot?.();
    this.#cancelBoot = undefined;
    this.#cancelSample?.();
    this.#cancelSample = undefined;
    this.#running = false;
    this.#parser = new FirmataParser();
    for (const p of this.#pins) Object.assign(p, { mode: undefined, latch: false, state: 0 });
    this.#emitOutputs();
  }

  /** setup() of StandardFirmata: Firmata.begin() announces version and firmware, then systemReset. */
  #boot(): void {
    this.#running = true;
    this.#samplingMs = DEFAULT_SAMPLING_MS;
    this.#sendVersion();
    this.#sendFirmware();
    this.#systemReset();
    // An earlier host's session (after this power-up): SET_PIN_MODE OUTPUT, then the pin written high.
    for (const pin of this.#leftHigh.splice(0)) {
      this.#handle({ kind: 'setPinMode', pin, mode: PIN_MODE.OUTPUT });
      this.#handle({ kind: 'setPinValue', pin, value: 1 });
    }
    this.#afterStep();
  }

  #systemReset(): void {
    this.#resetting = true;
    for (let pin = 0; pin < this.layout.totalPins; pin++) {
      if (analogChannelOf(this.layout, pin) !== undefined) this.#setPinMode(pin, PIN_MODE.ANALOG);
      else if (isDigitalPin(this.layout, pin)) this.#setPinMode(pin, PIN_MODE.OUTPUT);
    }
    this.#reportPorts.fill(false);
    this.#previousPorts.fill(0);
    this.#analogReport = 0; // by default, do not report any analog inputs
    this.#resetting = false;
  }

  #handle(msg: FirmataMessage): void {
    switch (msg.kind) {
      case 'reportVersion':
        return this.#sendVersion();
      case 'systemReset':
        return this.#systemReset();
      case 'setPinMode':
        return this.#setPinMode(msg.pin, msg.mode);
      case 'digital':
        return this.#writePort(msg.port, msg.value);
      case 'setPinValue': {
        const p = this.#pins[msg.pin];
        if (p && isDigitalPin(this.layout, msg.pin) && p.mode === PIN_MODE.OUTPUT) {
          p.state = msg.value;
          p.latch = msg.value !== 0;
        }
        return;
      }
      case 'analog':
        return this.#analogWrite(msg.channel, msg.value);
      case 'reportAnalog':
        return this.#reportAnalog(msg.channel, msg.enable);
      case 'reportDigital':
        if (msg.port < this.#reportPorts.length) {
          this.#reportPorts[msg.port] = msg.enable;
          if (msg.enable) this.#outputPort(msg.port, true);
        }
        return;
      case 'sysex':
        return this.#sysex(msg.command, msg.data);
    }
  }

  #setPinMode(pin: number, mode: number): void {
    const p = this.#pins[pin];
    if (!p) return;
    const ch = analogChannelOf(this.layout, pin);
    if (ch !== undefined) this.#reportAnalog(ch, mode === PIN_MODE.ANALOG);
    p.state = 0;
    switch (mode) {
      case PIN_MODE.ANALOG:
        if (ch !== undefined) Object.assign(p, { mode, latch: false });
        return;
      case PIN_MODE.INPUT:
        if (isDigitalPin(this.layout, pin)) Object.assign(p, { mode, latch: false });
        return;
      case PIN_MODE.PULLUP:
        if (isDigitalPin(this.layout, pin)) Object.assign(p, { mode, latch: true, state: 1 });
        return;
      case PIN_MODE.OUTPUT:
        if (isDigitalPin(this.layout, pin)) {
          // The AVR keeps its PORT bit: a pin that was pulled up starts out driving HIGH.
          if (p.mode === PIN_MODE.PWM) p.latch = false;
          p.mode = mode;
        }
        return;
      case PIN_MODE.PWM:
        if (this.layout.pwmPins.has(pin)) Object.assign(p, { mode, latch: false });
        return;
      default:
        this.#sendString('Unknown pin mode');
    }
  }

  /** digitalWriteCallback: whole-port write; OUTPUT pins take the bit, INPUT pins with a 1 get the pull-up. */
  #writePort(port: number, value: number): void {
    for (let bit = 0; bit < 8; bit++) {
      const pin = port * 8 + bit;
      const p = this.#pins[pin];
      if (!p || !isDigitalPin(this.layout, pin)) continue;
      if (p.mode !== PIN_MODE.OUTPUT && p.mode !== PIN_MODE.INPUT) continue;
      const level = ((value >> bit) & 1) === 1;
      if (p.mode === PIN_MODE.OUTPUT || (level && p.state !== 1)) p.latch = level;
      p.state = level ? 1 : 0;
    }
  }

  #analogWrite(pin: number, value: number): void {
    const p = this.#pins[pin];
    if (p?.mode === PIN_MODE.PWM) p.state = Math.min(value, 255);
  }

  #reportAnalog(channel: number, enable: boolean): void {
    if (channel >= this.#analog.length) return;
    if (!enable) {
      this.#analogReport &= ~(1 << channel);
      return;
    }
    this.#analogReport |= 1 << channel;
    // StandardFirmata answers at once so a reconnecting host learns the value.
    if (!this.#resetting) this.#sendAnalog(channel);
  }

  #sysex(command: number, data: Uint8Array): void {
    switch (command) {
      case FIRMATA.REPORT_FIRMWARE:
        return this.#sendFirmware();
      case FIRMATA.CAPABILITY_QUERY: {
        const out: number[] = [FIRMATA.START_SYSEX, FIRMATA.CAPABILITY_RESPONSE];
        for (let pin = 0; pin < this.layout.totalPins; pin++) {
          for (const [mode, bits] of pinCapabilities(this.layout, pin)) out.push(mode, bits);
          out.push(0x7f);
        }
        out.push(FIRMATA.END_SYSEX);
        return this.#queue(out);
      }
      case FIRMATA.ANALOG_MAPPING_QUERY: {
        const out: number[] = [FIRMATA.START_SYSEX, FIRMATA.ANALOG_MAPPING_RESPONSE];
        for (let pin = 0; pin < this.layout.totalPins; pin++) out.push(analogChannelOf(this.layout, pin) ?? 0x7f);
        out.push(FIRMATA.END_SYSEX);
        return this.#queue(out);
      }
      case FIRMATA.PIN_STATE_QUERY: {
        if (data.length < 1) return;
        const pin = data[0]!;
        const out: number[] = [FIRMATA.START_SYSEX, FIRMATA.PIN_STATE_RESPONSE, pin];
        const p = this.#pins[pin];
        if (p) {
          out.push(p.mode ?? PIN_MODE.INPUT, p.state & 0x7f);
          if (p.state & 0xff80) out.push((p.state >> 7) & 0x7f);
          if (p.state & 0xc000) out.push((p.state >> 14) & 0x7f);
        }
        out.push(FIRMATA.END_SYSEX);
        return this.#queue(out);
      }
      case FIRMATA.SAMPLING_INTERVAL:
        if (data.length >= 2) this.#samplingMs = Math.max(MIN_SAMPLING_MS, data[0]! | (data[1]! << 7));
        else this.#sendString('Not enough data');
        return;
      case FIRMATA.EXTENDED_ANALOG:
        if (data.length >= 2) {
          let value = 0;
          for (let i = 1; i < data.length; i++) value |= data[i]! << (7 * (i - 1));
          this.#analogWrite(data[0]!, value);
        }
        return;
      default:
      // StandardFirmata ignores sysex commands it does not implement.
    }
  }

  // ---- Reports -----------------------------------------------------------------------

  /** What loop() does after each command: report changed inputs, notify outputs, keep sampling. */
  #afterStep(): void {
    if (this.#frozen) return;
    if (this.#running) {
      for (let port = 0; port < this.#reportPorts.length; port++) if (this.#reportPorts[port]) this.#outputPort(port, false);
    }
    this.#flush();
    this.#emitOutputs();
    this.#scheduleSampling();
  }

  #inputMask(port: number): number {
    let mask = 0;
    for (let bit = 0; bit < 8; bit++) {
      const pin = port * 8 + bit;
      const mode = this.#pins[pin]?.mode;
      if (isDigitalPin(this.layout, pin) && (mode === PIN_MODE.INPUT || mode === PIN_MODE.PULLUP)) mask |= 1 << bit;
    }
    return mask;
  }

  #readPort(port: number): number {
    let value = 0;
    for (let bit = 0; bit < 8; bit++) {
      const p = this.#pins[port * 8 + bit];
      if (p && (p.external ?? p.latch)) value |= 1 << bit;
    }
    return value & this.#inputMask(port);
  }

  #outputPort(port: number, force: boolean): void {
    const value = this.#readPort(port);
    if (!force && value === this.#previousPorts[port]) return;
    this.#previousPorts[port] = value;
    this.#queue([FIRMATA.DIGITAL_MESSAGE | port, value & 0x7f, (value >> 7) & 0x7f]);
  }

  #analogValue(channel: number): number {
    const src = this.#analog[channel] ?? 0;
    const v = typeof src === 'function' ? src() : src;
    return Math.max(0, Math.min(1023, Math.round(v)));
  }

  #sendAnalog(channel: number): void {
    this.#queue([FIRMATA.ANALOG_MESSAGE | channel, ...sevenBit(this.#analogValue(channel))]);
  }

  #scheduleSampling(): void {
    if (this.#cancelSample || !this.#running || this.#analogReport === 0) return;
    const clock = this.#requireClock();
    this.#cancelSample = clock.at(clock.now() + this.#samplingMs, () => {
      this.#cancelSample = undefined;
      if (!this.#running) return;
      this.layout.analogPins.forEach((pin, ch) => {
        if (this.#analogReport & (1 << ch) && this.#pins[pin]?.mode === PIN_MODE.ANALOG) this.#sendAnalog(ch);
      });
      this.#flush();
      this.#scheduleSampling();
    });
  }

  #sendVersion(): void {
    this.#queue([FIRMATA.REPORT_VERSION, FIRMATA_VERSION.major, FIRMATA_VERSION.minor]);
  }

  #sendFirmware(): void {
    this.#queue([
      FIRMATA.START_SYSEX,
      FIRMATA.REPORT_FIRMWARE,
      FIRMATA_VERSION.major,
      FIRMATA_VERSION.minor,
      ...encodeString(this.firmwareName),
      FIRMATA.END_SYSEX,
    ]);
  }

  #sendString(text: string): void {
    this.#queue([FIRMATA.START_SYSEX, FIRMATA.STRING_DATA, ...encodeString(text), FIRMATA.END_SYSEX]);
  }

  #queue(bytes: number[]): void {
    this.#pending.push(...bytes);
  }

  /** One tx.send per processing step, like the sketch filling its serial buffer in one loop(). */
  #flush(): void {
    if (this.#frozen) this.#pending = [];
    if (this.#pending.length === 0) return;
    const bytes = Uint8Array.from(this.#pending);
    this.#pending = [];
    this.#tx?.send(bytes);
  }

  #emitOutputs(): void {
    for (let pin = 0; pin < this.layout.totalPins; pin++) {
      const level = this.driven(pin);
      if (level === this.#lastDriven[pin]) continue;
      this.#lastDriven[pin] = level;
      for (const fn of this.#outputListeners) fn(pin, level);
    }
  }
}
