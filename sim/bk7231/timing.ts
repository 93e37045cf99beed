/**
 * Timing of the BK7231N ROM itself (the flash part's own times are in flash-parts.ts).
 * None of these is stated by a public source (bk7231-protocol.md §10.3, §16); each default is a
 * documented assumption and every one can be overridden per chip.
 */
export interface ChipTiming {
  /**
   * Time from the last byte of a command to the start of the reply (or of the flash operation),
   * ms. ASSUMPTION 0.05 ms: a few thousand CPU cycles of frame dispatch at tens of MHz.
   */
  turnaroundMs: number;
  /**
   * CheckCRC throughput, bytes/s. ASSUMPTION 4 MB/s: the ROM reads the flash over SPI and runs a
   * table-driven CRC-32 (about 6 cycles per byte). If the ROM still runs on the 26 MHz crystal
   * that is ~4.3 MB/s, and a 50 MHz single-line SPI read (6.25 MB/s) keeps up with it. It is 10x
   * above the 400 kB/s that bk7231tools budgets, so no tool times out.
   */
  crcBytesPerSec: number;
  /**
   * Flash read rate for FlashRead4K, bytes/s; undefined = the part's read rate
   * (flash-parts.ts, 50 MHz single-line).
   */
  readBytesPerSec?: number;
  /**
   * SetBaudRate delay unit, ms per count. The N ROM presumably waits milliseconds (HCI-boot
   * waits 1 ms ticks; l_boot on T waits 2 ms ticks): bk7231-protocol.md §3.4 marks it UNCERTAIN.
   */
  baudDelayUnitMs: number;
  /**
   * How long after reset the ROM accepts a LinkCheck before booting the app, ms. ASSUMPTION 300
   * (users report "within about 200 ms"; libretiny says "a few hundred milliseconds").
   * Infinity = stay in the ROM (e.g. a jig that straps the chip into download mode).
   */
  linkWindowMs: number;
  /** Time from reset release (CEN high, power on, watchdog) until the ROM listens on UART1, ms. ASSUMPTION 1. */
  resetToRomMs: number;
  /**
   * Bytes the chip can hold while it is busy with a command (erase, CRC, read, program, sending
   * a reply); further bytes are dropped. ASSUMPTION 128: the ROM source is not public; we assume
   * it polls the UART between operations, so only the UART's hardware RX FIFO buffers.
   */
  rxBufferBytes: number;
  /** App-side delay between receiving the reboot text and resetting, ms. ASSUMPTION 10. */
  appRebootMs: number;
}

export const DEFAULT_CHIP_TIMING: Readonly<ChipTiming> = Object.freeze({
  turnaroundMs: 0.05,
  crcBytesPerSec: 4e6,
  baudDelayUnitMs: 1,
  linkWindowMs: 300,
  resetToRomMs: 1,
  rxBufferBytes: 128,
  appRebootMs: 10,
});

/** Seconds a UART needs for `bytes` at `baud` with 8N1 framing (10 bit times per byte), in ms. */
export function uartWireMs(bytes: number, baud: number): number {
  return (bytes * 10 * 1000) / baud;
}
