import five from 'johnny-five';
import type { Clock } from '../core/clock.ts';
import { TimeoutError, TransportError } from '../core/errors.ts';
import type { JigBoard } from './jig-board.ts';
import { pinActiveLow, pinNumber, type PinSpec } from './jig-config.ts';
import type { InterlockInputState, InterlockInputs, InterlockOutput, InterlockOutputs } from './mains-interlock.ts';

/** The Firmata IO calls this adapter needs (johnny-five's `board.io`, untyped in @types/johnny-five). */
export interface FirmataIo {
  MODES: { INPUT: number; OUTPUT: number };
  pins: Array<{ state?: number }>;
  digitalWrite(pin: number, value: number): void;
  digitalRead(pin: number, cb: (value: number) => void): void;
  queryPinState(pin: number, cb: () => void): void;
  on(event: string, fn: () => void): unknown;
  removeListener(event: string, fn: (...args: never[]) => void): unknown;
}

/** The pins only the interlock may hold. */
export interface InterlockPins {
  mains: PinSpec;
  uartIsolation: PinSpec;
  /** Absent when 3V3 is switched elsewhere (a hub port): then no pin of the board is 3V3. */
  power3v3?: PinSpec;
  loads: ReadonlyArray<{ name: string; pin: PinSpec }>;
  lid: PinSpec;
  estop: PinSpec;
}

interface OutputPin {
  pin: number;
  activeLow: boolean;
  relay: five.Relay;
  /** Expected levels of writes whose PIN_STATE_RESPONSE has not arrived yet, in order. */
  verifying: Array<{ level: number; resolve: () => void; reject: (e: Error) => void; cancel: () => void }>;
  onState: () => void;
}

/**
 * InterlockOutputs/InterlockInputs over johnny-five on a StandardFirmata board. Every write is a
 * `five.Relay` close/open followed by a PIN_STATE_QUERY; it resolves only when the board reports
 * the pin at the written level (Firmata keeps serial order, so responses match queries FIFO).
 * Lid and E-stop are `five.Switch` inputs (pull-up, fail-safe: unknown = lid open / E-stop pressed);
 * the interlock listens to the raw digital reports, undebounced, so a trip is not delayed.
 */
export class J5InterlockPorts implements InterlockOutputs, InterlockInputs {
  readonly #pins: InterlockPins;
  readonly #clock: Clock;
  readonly #ackTimeoutMs: number;
  #board: JigBoard | undefined;
  #io: FirmataIo | undefined;
  #outputs = new Map<InterlockOutput, OutputPin>();
  #inputs: { lid: number | undefined; estop: number | undefined } = { lid: undefined, estop: undefined };
  #subs = new Set<(s: InterlockInputState) => void>();
  #detach: Array<() => void> = [];

  constructor(pins: InterlockPins, clock: Clock, ackTimeoutMs = 500) {
    this.#pins = pins;
    this.#clock = clock;
    this.#ackTimeoutMs = ackTimeoutMs;
  }

  /**
   * Take over a freshly opened board (at startup and after a reconnect): pre-write every output's
   * off level, then create the components, then start the input reports.
   */
  bind(jb: JigBoard): void {
    this.#unbind();
    const board = jb.board;
    const io = board.io as FirmataIo;
    this.#board = jb;
    this.#io = io;
    const outs: Array<[InterlockOutput, PinSpec]> = [
      ['mains', this.#pins.mains],
      ['uart', this.#pins.uartIsolation],
      ...(this.#pins.power3v3 !== undefined ? [['power3v3', this.#pins.power3v3] as [InterlockOutput, PinSpec]] : []),
      ...this.#pins.loads.map((l) => [`load:${l.name}`, l.pin] as [InterlockOutput, PinSpec]),
    ];
    for (const [name, spec] of outs) {
      const pin = pinNumber(spec);
      const activeLow = pinActiveLow(spec);
      io.digitalWrite(pin, activeLow ? 1 : 0);
      const relay = new five.Relay({ pin, board, type: activeLow ? 'NC' : 'NO' });
      relay.open();
      const out: OutputPin = { pin, activeLow, relay, verifying: [], onState: () => this.#onPinState(out) };
      io.on(`pin-state-${pin}`, out.onState);
      this.#detach.push(() => io.removeListener(`pin-state-${pin}`, out.onState));
      this.#outputs.set(name, out);
    }
    this.#inputs = { lid: undefined, estop: undefined };
    for (const which of ['lid', 'estop'] as const) {
      const spec = this.#pins[which];
      const pin = pinNumber(spec);
      // Switch sets INPUT, enables the pull-up and turns on the port's digital reports.
      new five.Switch({ pin, board, type: 'NO' } as five.SwitchOption);
      const onLevel = (v: number): void => {
        if (this.#board !== jb || this.#inputs[which] === v) return;
        this.#inputs[which] = v;
        this.#notify();
      };
      io.digitalRead(pin, onLevel);
      this.#detach.push(() => io.removeListener(`digital-read-${pin}`, onLevel));
    }
    const onLost = (): void => {
      for (const out of this.#outputs.values()) this.#failVerifications(out, new TransportError(`I/O board ${jb.name} lost`, { step: 'interlock-write', unit: jb.name }));
      this.#notify();
    };
    jb.on('lost', onLost);
    this.#detach.push(() => jb.off('lost', onLost));
    this.#notify();
  }

  read(): InterlockInputState {
    const jb = this.#board;
    const level = (which: 'lid' | 'estop'): boolean | undefined => {
      const v = this.#inputs[which];
      return v === undefined ? undefined : (v === 1) !== pinActiveLow(this.#pins[which]);
    };
    return {
      linkUp: jb !== undefined && jb.connected,
      // Lid switch active = closed; E-stop input active = pressed (NC contact opening pulls it high).
      lidClosed: level('lid') === true,
      estopClear: level('estop') === false,
    };
  }

  subscribe(fn: (s: InterlockInputState) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  write(output: InterlockOutput, on: boolean): Promise<void> {
    const out = this.#outputs.get(output);
    const jb = this.#board;
    const io = this.#io;
    if (!out || !jb || !io) return Promise.reject(new TransportError(`no I/O board bound for ${output}`, { step: 'interlock-write', output }));
    if (!jb.connected) {
      // A silent board's port is still open: send the break anyway (it may only have lost its TX
      // line), never a make; it stays unconfirmed, so the write still fails.
      if (!on && jb.loss?.reason === 'silent') out.relay.open();
      return Promise.reject(new TransportError(`I/O board ${jb.name} lost (${jb.loss?.reason ?? 'gone'})`, { step: 'interlock-write', unit: jb.name, output }));
    }
    if (on) out.relay.close();
    else out.relay.open();
    const level = on !== out.activeLow ? 1 : 0;
    return new Promise<void>((resolve, reject) => {
      const entry = {
        level,
        resolve,
        reject,
        cancel: this.#clock.at(this.#clock.now() + this.#ackTimeoutMs, () => {
          const i = out.verifying.indexOf(entry);
          if (i >= 0) out.verifying.splice(i, 1);
          reject(new TimeoutError(`I/O board ${jb.name}: no PIN_STATE_RESPONSE for pin ${out.pin} within ${this.#ackTimeoutMs} ms`, { step: 'interlock-write', unit: jb.name, output, pin: out.pin }));
        }),
      };
      out.verifying.push(entry);
      io.queryPinState(out.pin, () => undefined);
    });
  }

  #onPinState(out: OutputPin): void {
    const entry = out.verifying.shift();
    if (!entry) return;
    entry.cancel();
    const state = this.#io?.pins[out.pin]?.state;
    if (state === entry.level) entry.resolve();
    else entry.reject(new TransportError(`pin ${out.pin} reads ${String(state)} after writing ${entry.level}`, { step: 'interlock-write', pin: out.pin, expected: String(entry.level) }));
  }

  #failVerifications(out: OutputPin, e: Error): void {
    for (const entry of out.verifying.splice(0)) {
      entry.cancel();
      entry.reject(e);
    }
  }

  #notify(): void {
    const s = this.read();
    for (const fn of this.#subs) fn(s);
  }

  #unbind(): void {
    for (const d of this.#detach.splice(0)) d();
    for (const out of this.#outputs.values()) this.#failVerifications(out, new TransportError('I/O board replaced', { step: 'interlock-write' }));
    this.#outputs.clear();
    this.#board = undefined;
    this.#io = undefined;
  }
}
