import type { ControlSetup } from '../../rig/usb/usb-source.ts';
import type { FakeUsbDeviceSpec, FakeUsbResponder } from './fake-usb-source.ts';
import {
  DCTTECH_CMD_ALL_OFF,
  DCTTECH_CMD_ALL_ON,
  DCTTECH_CMD_OFF,
  DCTTECH_CMD_ON,
  DCTTECH_PID,
  DCTTECH_REPORT_LENGTH,
  DCTTECH_VID,
} from '../../rig/usb/dcttech-relay.ts';

/** 0xFA <5 bytes>: set the board serial (open-firmware clones). */
const CMD_SET_SERIAL = 0xfa;

/**
 * A dcttech USBRelayN board on the fake bus: keeps relay state and serial, answers Feature
 * GET_REPORT with [serial×5, 0, 0, mask], and STALLs anything that is not a Feature report to
 * interface 0 — so a client sending the wrong setup fields fails the way it would on hardware.
 */
export class VirtualDcttechRelay implements FakeUsbResponder {
  serial: string;
  readonly channels: number;
  mask = 0;
  /** Relays whose contacts are welded/stuck: commands to them are accepted but change nothing. */
  readonly stuck = new Set<number>();

  constructor(serial: string, channels: number) {
    this.serial = serial;
    this.channels = channels;
  }

  readonly #listeners = new Set<(mask: number) => void>();

  /** Called with the relay bitmask after every command the board accepted. */
  onChange(fn: (mask: number) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** The device as it enumerates: 16c0:05df, "USBRelayN", one HID interface. */
  spec(where: { busNumber?: number; portNumbers?: number[] } = {}): FakeUsbDeviceSpec {
    return {
      vid: DCTTECH_VID,
      pid: DCTTECH_PID,
      ...where,
      bcdUsb: 0x0110,
      manufacturer: 'www.dcttech.com',
      product: `USBRelay${this.channels}`,
      interfaces: [{ number: 0, class: 0x03, subClass: 0, protocol: 0 }],
      responder: this,
    };
  }

  controlIn(setup: ControlSetup, length: number): Uint8Array {
    if ((setup.bmRequestType !== 0xa1 && setup.bmRequestType !== 0xa0) || setup.bRequest !== 0x01 || setup.wValue !== 0x0300 || setup.wIndex !== 0) {
      throw new Error('unsupported IN request');
    }
    const report = new Uint8Array(DCTTECH_REPORT_LENGTH);
    report.set(Buffer.from(this.serial.padEnd(5, '\0').slice(0, 5), 'latin1'), 0);
    report[7] = this.mask;
    return report.subarray(0, length);
  }

  controlOut(setup: ControlSetup, data: Uint8Array): void {
    if ((setup.bmRequestType !== 0x21 && setup.bmRequestType !== 0x20) || setup.bRequest !== 0x09 || setup.wValue !== 0x0300 || setup.wIndex !== 0) {
      throw new Error('unsupported OUT request');
    }
    if (data.length !== DCTTECH_REPORT_LENGTH) throw new Error('feature report must be 8 bytes');
    const all = (1 << this.channels) - 1;
    const channel = data[1]!;
    const bit = channel >= 1 && channel <= this.channels && !this.stuck.has(channel) ? 1 << (channel - 1) : 0;
    const free = all & ~this.#stuckMask();
    switch (data[0]) {
      case DCTTECH_CMD_ON:
        this.mask |= bit;
        break;
      case DCTTECH_CMD_OFF:
        this.mask &= ~bit;
        break;
      case DCTTECH_CMD_ALL_ON:
        this.mask |= free;
        break;
      case DCTTECH_CMD_ALL_OFF:
        this.mask &= ~free;
        break;
      case CMD_SET_SERIAL:
        this.serial = Buffer.from(data.subarray(1, 6)).toString('latin1');
        break;
      default:
        // Real firmware ignores unknown commands; the state simply does not change.
        break;
    }
    for (const fn of this.#listeners) fn(this.mask);
  }

  #stuckMask(): number {
    let m = 0;
    for (const c of this.stuck) m |= 1 << (c - 1);
    return m;
  }
}
