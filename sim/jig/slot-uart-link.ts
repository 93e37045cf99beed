import type { Clock } from '../../rig/core/clock.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from '../serial/uart-device.ts';

/**
 * The slot's USB-UART as it reaches the module through the jig's UART-isolation relay. While the
 * relay is open, bytes in either direction go nowhere and the adapter's modem lines reach nothing.
 * The chip is connected at construction (and a replacement unit's chip when it is seated), so it
 * runs on the clock even before (or without) a host adapter being attached.
 */
export class SlotUartLink implements VirtualUartDevice {
  chip: VirtualUartDevice;
  readonly #clock: Clock;
  #hostTx: UartTx | undefined;
  #closed = false;
  #lines: ModemLines = { dtr: false, rts: false };
  readonly #onModemLines: (lines: ModemLines | undefined) => void;
  /** Bytes lost at the open isolation relay, per direction. */
  readonly dropped = { toChip: 0, toHost: 0 };

  /** `onModemLines` gets the adapter's lines as the module sees them (undefined: isolated). */
  constructor(chip: VirtualUartDevice, clock: Clock, onModemLines: (lines: ModemLines | undefined) => void) {
    this.#clock = clock;
    this.#onModemLines = onModemLines;
    this.chip = chip;
    this.#wire(chip);
  }

  /** Another unit seated in the slot: its chip gets the link; the old one's bytes go nowhere. */
  replaceChip(chip: VirtualUartDevice): void {
    this.chip = chip;
    this.#wire(chip);
  }

  #wire(chip: VirtualUartDevice): void {
    chip.connect(
      {
        send: (bytes) => {
          if (this.chip === chip && this.#closed && this.#hostTx) this.#hostTx.send(bytes);
          else this.dropped.toHost += bytes.length;
        },
      },
      this.#clock,
    );
  }

  /** The isolation relay: closed connects TX/RX/GND (and the modem lines) to the module. */
  setConnected(closed: boolean): void {
    if (closed === this.#closed) return;
    this.#closed = closed;
    this.#onModemLines(closed ? { ...this.#lines } : undefined);
  }

  connected(): boolean {
    return this.#closed;
  }

  baudRate(): number {
    return this.chip.baudRate();
  }

  connect(tx: UartTx): void {
    this.#hostTx = tx;
  }

  receive(bytes: Uint8Array, atMs?: number): void {
    if (this.#closed) this.chip.receive(bytes, atMs);
    else this.dropped.toChip += bytes.length;
  }

  modemLines(lines: ModemLines): void {
    this.#lines = { ...lines };
    if (this.#closed) this.#onModemLines({ ...lines });
  }

  hostClosed(): void {
    this.chip.hostClosed?.();
  }
}
