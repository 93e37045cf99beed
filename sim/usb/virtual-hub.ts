import type { ControlSetup } from '../../rig/usb/usb-source.ts';
import type { FakeUsbDeviceSpec, FakeUsbResponder } from './fake-usb-source.ts';
import { USB_CLASS_HUB } from '../../rig/usb/usb-source.ts';
import {
  HUB_DESCRIPTOR_USB2,
  HUB_DESCRIPTOR_USB3,
  PORT_FEATURE_POWER,
  PORT_STAT_CONNECTION,
  USB2_PORT_STAT_POWER,
  USB3_PORT_STAT_POWER,
} from '../../rig/usb/hub-power.ts';

export interface VirtualHubOptions {
  ports: number;
  superSpeed?: boolean;
  /** wHubCharacteristics; default 0x0001 (per-port power switching). */
  characteristics?: number;
  vid?: number;
  pid?: number;
}

/**
 * One half (USB2 or USB3) of a hub on the fake bus. Answers the class requests uhubctl uses:
 * hub descriptor (only of its own type), port GET_STATUS, SET/CLEAR_FEATURE(PORT_POWER).
 */
export class VirtualHub implements FakeUsbResponder {
  readonly ports: number;
  readonly superSpeed: boolean;
  readonly characteristics: number;
  readonly vid: number;
  readonly pid: number;
  /** Index 0 = port 1. All ports start powered, as after enumeration. */
  readonly powered: boolean[];
  readonly connected: boolean[];
  /** Fault: the hub acknowledges CLEAR_FEATURE but keeps the port powered. */
  ignorePowerOff = false;
  readonly #listeners = new Set<(port: number, powered: boolean) => void>();

  constructor(options: VirtualHubOptions) {
    this.ports = options.ports;
    this.superSpeed = options.superSpeed ?? false;
    this.characteristics = options.characteristics ?? 0x0001;
    this.vid = options.vid ?? 0x2109;
    this.pid = options.pid ?? (this.superSpeed ? 0x0817 : 0x2817);
    this.powered = Array.from({ length: this.ports }, () => true);
    this.connected = Array.from({ length: this.ports }, () => false);
  }

  spec(where: { busNumber?: number; portNumbers?: number[] }): FakeUsbDeviceSpec {
    return {
      vid: this.vid,
      pid: this.pid,
      ...where,
      bcdUsb: this.superSpeed ? 0x0320 : 0x0210,
      deviceClass: USB_CLASS_HUB,
      interfaces: [{ number: 0, class: USB_CLASS_HUB, subClass: 0, protocol: this.superSpeed ? 3 : 1 }],
      product: this.superSpeed ? 'USB3.0 Hub' : 'USB2.0 Hub',
      responder: this,
    };
  }

  descriptor(): Uint8Array {
    const lo = this.characteristics & 0xff;
    const hi = this.characteristics >> 8;
    return this.superSpeed
      ? Uint8Array.of(12, HUB_DESCRIPTOR_USB3, this.ports, lo, hi, 50, 0, 0, 0, 0, 0, 0)
      : Uint8Array.of(9, HUB_DESCRIPTOR_USB2, this.ports, lo, hi, 50, 100, 0, 0xff);
  }

  controlIn(setup: ControlSetup, length: number): Uint8Array {
    const ownType = this.superSpeed ? HUB_DESCRIPTOR_USB3 : HUB_DESCRIPTOR_USB2;
    if (setup.bmRequestType === 0xa0 && setup.bRequest === 0x06 && setup.wValue === ownType << 8 && setup.wIndex === 0) {
      return this.descriptor().subarray(0, length);
    }
    if (setup.bmRequestType === 0xa3 && setup.bRequest === 0x00 && setup.wValue === 0 && length === 4) {
      const i = this.#portIndex(setup.wIndex);
      const status = (this.powered[i] ? (this.superSpeed ? USB3_PORT_STAT_POWER : USB2_PORT_STAT_POWER) : 0) | (this.powered[i] && this.connected[i] ? PORT_STAT_CONNECTION : 0);
      return Uint8Array.of(status & 0xff, status >> 8, 0, 0);
    }
    throw new Error('unsupported IN request');
  }

  controlOut(setup: ControlSetup, data: Uint8Array): void {
    if (setup.bmRequestType !== 0x23 || setup.wValue !== PORT_FEATURE_POWER || data.length !== 0) throw new Error('unsupported OUT request');
    const i = this.#portIndex(setup.wIndex);
    if (setup.bRequest === 0x03) this.powered[i] = true;
    else if (setup.bRequest === 0x01) this.powered[i] = this.ignorePowerOff ? this.powered[i]! : false;
    else throw new Error('unsupported OUT request');
    for (const fn of this.#listeners) fn(setup.wIndex, this.powered[i]!);
  }

  /** Called with (port, powered) after every accepted SET/CLEAR_FEATURE(PORT_POWER). */
  onPowerChange(fn: (port: number, powered: boolean) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #portIndex(port: number): number {
    if (port < 1 || port > this.ports) throw new Error(`no port ${port}`);
    return port - 1;
  }
}
