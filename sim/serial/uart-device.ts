import type { Clock } from '../../rig/core/clock.ts';

/** Levels of the USB-UART adapter's modem-control outputs (true = asserted, i.e. pin driven low). */
export interface ModemLines {
  dtr: boolean;
  rts: boolean;
}

/** What a virtual device uses to transmit on its TX pin. */
export interface UartTx {
  /**
   * Transmit bytes at the device's current baud rate. The wire serialises them after anything
   * already queued and delivers them to the host at their arrival times (garbled if the host
   * listens at another rate).
   */
  send(bytes: Uint8Array): void;
}

/**
 * A simulated device on the far end of a virtual UART (the BK7231N ROM, a StandardFirmata
 * board, a PZEM-004T ...). Devices know nothing about serialport, ptys or timing of the wire:
 * the VirtualUartWire does that.
 */
export interface VirtualUartDevice {
  /** Baud rate the device's UART is set to right now. */
  baudRate(): number;
  /** Called once when the wire connects the device. */
  connect(tx: UartTx, clock: Clock): void;
  /**
   * Bytes that arrived on RX, as the device's UART decoded them. `atMs` is the MODELLED clock time
   * at which the last of them finished arriving (the wire's ideal timeline; the callback itself
   * may run later under a real clock). Undefined: they arrived now. Devices that do not model
   * time may ignore it.
   */
  receive(bytes: Uint8Array, atMs?: number): void;
  /** Modem lines changed on the host adapter (only on wiring that routes them, e.g. DTR/RTS to CEN). */
  modemLines?(lines: ModemLines): void;
  /** The host closed the port (the device keeps running; a real chip does not notice). */
  hostClosed?(): void;
}
