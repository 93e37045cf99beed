import type { Clock } from '../../rig/core/clock.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from './uart-device.ts';

export interface ReceivedChunk {
  t: number;
  bytes: Uint8Array;
}

/**
 * A minimal VirtualUartDevice for tests and demos: records what arrives (with clock times),
 * answers through an optional `reply` function (e.g. echo), and records modem-line changes.
 */
export class ScriptedDevice implements VirtualUartDevice {
  readonly received: ReceivedChunk[] = [];
  readonly modemLineLog: ModemLines[] = [];
  hostClosedCount = 0;
  #baud: number;
  #tx: UartTx | null = null;
  #clock: Clock | null = null;
  readonly #reply: ((bytes: Uint8Array, dev: ScriptedDevice) => Uint8Array | null) | undefined;

  constructor(baud: number, reply?: (bytes: Uint8Array, dev: ScriptedDevice) => Uint8Array | null) {
    this.#baud = baud;
    this.#reply = reply;
  }

  /** A device that sends back whatever it receives. */
  static echo(baud: number): ScriptedDevice {
    return new ScriptedDevice(baud, (bytes) => bytes);
  }

  baudRate(): number {
    return this.#baud;
  }

  setBaudRate(baud: number): void {
    this.#baud = baud;
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
  }

  receive(bytes: Uint8Array): void {
    this.received.push({ t: this.#clock?.now() ?? 0, bytes: bytes.slice() });
    const answer = this.#reply?.(bytes, this);
    if (answer && answer.length) this.send(answer);
  }

  send(bytes: Uint8Array): void {
    if (!this.#tx) throw new Error('ScriptedDevice is not connected to a wire');
    this.#tx.send(bytes);
  }

  modemLines(lines: ModemLines): void {
    this.modemLineLog.push({ ...lines });
  }

  hostClosed(): void {
    this.hostClosedCount++;
  }

  /** All received bytes, concatenated. */
  receivedBytes(): Uint8Array {
    return Uint8Array.from(this.received.flatMap((c) => Array.from(c.bytes)));
  }
}
