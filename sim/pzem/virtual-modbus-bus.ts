import type { Clock } from '../../rig/core/clock.ts';
import type { UartTx, VirtualUartDevice } from '../serial/uart-device.ts';

/**
 * Several Modbus-RTU slaves (PZEM-004T modules) on ONE serial line, as a jig wires them: the host's TX
 * reaches every slave, their TX outputs are joined onto the host's RX. Each slave decides for itself
 * whether a request is its own (VirtualPzem filters by address). Two slaves answering at once (both
 * reached by the general address 0xF8, or two set to one address) collide: the line carries the
 * wired-AND of what they drive (an idle UART line is high, a driven 0 wins), so the host sees garbage
 * that fails its CRC, as on a real shared line.
 */
export class VirtualModbusBus implements VirtualUartDevice {
  readonly #slaves: VirtualUartDevice[];
  #tx: UartTx | undefined;
  #clock: Clock | undefined;
  /** A reply being collected this instant (replies starting at the same clock time overlap). */
  #pending: { at: number; frames: Uint8Array[] } | undefined;
  /** Replies that collided on the line, for tests. */
  collisions = 0;

  constructor(slaves: readonly VirtualUartDevice[]) {
    if (slaves.length === 0) throw new Error('a Modbus bus needs at least one slave');
    const rate = slaves[0]!.baudRate();
    if (slaves.some((s) => s.baudRate() !== rate)) throw new Error('every slave on one Modbus line runs at one baud rate');
    this.#slaves = [...slaves];
  }

  baudRate(): number {
    return this.#slaves[0]!.baudRate();
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
    for (const s of this.#slaves) s.connect({ send: (bytes) => this.#slaveSends(bytes) }, clock);
  }

  receive(bytes: Uint8Array, atMs?: number): void {
    for (const s of this.#slaves) s.receive(bytes, atMs);
  }

  hostClosed(): void {
    for (const s of this.#slaves) s.hostClosed?.();
  }

  #slaveSends(bytes: Uint8Array): void {
    const clock = this.#clock;
    if (!clock || !this.#tx) return;
    const now = clock.now();
    if (this.#pending && this.#pending.at === now) {
      this.#pending.frames.push(bytes);
      return;
    }
    const pending = { at: now, frames: [bytes] };
    this.#pending = pending;
    // Everything that starts driving the line at this instant is on it together.
    clock.at(now, () => {
      if (this.#pending === pending) this.#pending = undefined;
      this.#tx!.send(pending.frames.length === 1 ? pending.frames[0]! : this.#collide(pending.frames));
    });
  }

  #collide(frames: Uint8Array[]): Uint8Array {
    this.collisions++;
    const n = Math.max(...frames.map((f) => f.length));
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = frames.reduce((acc, f) => acc & (i < f.length ? f[i]! : 0xff), 0xff);
    return out;
  }
}
