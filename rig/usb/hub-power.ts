import { ConfigError, InstrumentError, ProtocolError, TransportError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import { hex } from '../core/hex.ts';
import { USB_CLASS_HUB, type ControlSetup, type UsbDeviceHandle, type UsbDeviceInfo, type UsbDeviceSource } from './usb-source.ts';

/**
 * Per-port power switching on USB hubs (instruments.md §B5, the uhubctl method). Used to
 * power-cycle a USB-UART adapter or a DUT fed from a hub port. Caveat: some hubs drop the data
 * lines but keep VBUS, so a switch verified here is "the hub says so"; suites that depend on a
 * real power cut must confirm it with the meter or by the device re-enumerating.
 */

export const HUB_DESCRIPTOR_USB2 = 0x29;
export const HUB_DESCRIPTOR_USB3 = 0x2a;
/** What uhubctl reads: the 7 fixed bytes plus room for the variable part. */
export const HUB_DESCRIPTOR_READ_LENGTH = 12;
const HUB_DESCRIPTOR_MIN_LENGTH = 9;
export const PORT_FEATURE_POWER = 8;
export const USB2_PORT_STAT_POWER = 0x0100;
export const USB3_PORT_STAT_POWER = 0x0200;
export const PORT_STAT_CONNECTION = 0x0001;
/** bcdUSB from which a hub is a SuperSpeed hub with a type-0x2A descriptor. */
const SUPERSPEED_BCD = 0x0300;
/** USB3 hubs take a moment to actually drop a port (uhubctl waits 150 ms). */
const USB3_POWER_OFF_SETTLE_MS = 150;

export type PowerSwitching = 'ganged' | 'per-port' | 'none';

export interface HubDescriptor {
  descriptorType: number;
  ports: number;
  characteristics: number;
  /** wHubCharacteristics bits 1:0 — 00 ganged, 01 per-port, 1x no switching. */
  powerSwitching: PowerSwitching;
  /** bPwrOn2PwrGood × 2 ms. */
  powerOnToGoodMs: number;
}

export function isSuperSpeedHub(info: Pick<UsbDeviceInfo, 'bcdUsb'>): boolean {
  return info.bcdUsb >= SUPERSPEED_BCD;
}

/** GET_DESCRIPTOR (class, device recipient) for the hub descriptor of the right type. */
export function hubDescriptorRequest(superSpeed: boolean): ControlSetup {
  return { bmRequestType: 0xa0, bRequest: 0x06, wValue: (superSpeed ? HUB_DESCRIPTOR_USB3 : HUB_DESCRIPTOR_USB2) << 8, wIndex: 0 };
}

/** SET_FEATURE / CLEAR_FEATURE PORT_POWER to a port (class, "other" recipient), no data stage. */
export function portPowerRequest(port: number, on: boolean): ControlSetup {
  return { bmRequestType: 0x23, bRequest: on ? 0x03 : 0x01, wValue: PORT_FEATURE_POWER, wIndex: port };
}

/** GET_STATUS of a port: 4 bytes, wPortStatus then wPortChange (little-endian). */
export function portStatusRequest(port: number): ControlSetup {
  return { bmRequestType: 0xa3, bRequest: 0x00, wValue: 0, wIndex: port };
}

export function parseHubDescriptor(bytes: Uint8Array): HubDescriptor {
  if (bytes.length < HUB_DESCRIPTOR_MIN_LENGTH || (bytes[1] !== HUB_DESCRIPTOR_USB2 && bytes[1] !== HUB_DESCRIPTOR_USB3)) {
    throw new ProtocolError(`not a hub descriptor (${bytes.length} bytes)`, { bytesSeen: bytes, expected: '>= 9 bytes, type 0x29 or 0x2A' });
  }
  const characteristics = bytes[3]! | (bytes[4]! << 8);
  const lpsm = characteristics & 3;
  return {
    descriptorType: bytes[1]!,
    ports: bytes[2]!,
    characteristics,
    powerSwitching: lpsm === 1 ? 'per-port' : lpsm === 0 ? 'ganged' : 'none',
    powerOnToGoodMs: bytes[5]! * 2,
  };
}

export interface PortStatus {
  port: number;
  /** wPortStatus as read. */
  status: number;
  change: number;
  powered: boolean;
  connected: boolean;
}

export function parsePortStatus(port: number, bytes: Uint8Array, superSpeed: boolean): PortStatus {
  if (bytes.length < 4) throw new ProtocolError(`port ${port} status too short: ${bytes.length} of 4 bytes`, { bytesSeen: bytes, expected: '4 bytes' });
  const status = bytes[0]! | (bytes[1]! << 8);
  return {
    port,
    status,
    change: bytes[2]! | (bytes[3]! << 8),
    powered: (status & (superSpeed ? USB3_PORT_STAT_POWER : USB2_PORT_STAT_POWER)) !== 0,
    connected: (status & PORT_STAT_CONNECTION) !== 0,
  };
}

/** The text after the bus number ("1-1.2" -> "1.2"): twins share it on Linux. */
function portChain(usbPath: string): string | undefined {
  const i = usbPath.indexOf('-');
  return i < 0 ? undefined : usbPath.slice(i + 1);
}

/**
 * The other half of a USB3 hub: it enumerates once on the SuperSpeed bus and once on the USB2
 * bus. The twin has the other speed, the same vendor, and (on Linux) the same port chain.
 */
export function findTwinHub<T extends Pick<UsbDeviceInfo, 'usbPath' | 'vid' | 'bcdUsb'>>(hub: T, hubs: readonly T[]): T | undefined {
  const candidates = hubs.filter((h) => h !== hub && h.usbPath !== hub.usbPath && isSuperSpeedHub(h) !== isSuperSpeedHub(hub) && h.vid === hub.vid);
  return candidates.find((h) => portChain(h.usbPath) === portChain(hub.usbPath));
}

export interface HubReportEntry {
  info: UsbDeviceInfo;
  descriptor?: HubDescriptor;
  /** USB path of the USB2/USB3 twin, if found. */
  twinPath?: string;
  error?: string;
}

async function readHubDescriptor(handle: UsbDeviceHandle): Promise<HubDescriptor> {
  return parseHubDescriptor(await handle.controlIn(hubDescriptorRequest(isSuperSpeedHub(handle.info)), HUB_DESCRIPTOR_READ_LENGTH));
}

/** All hubs (root hubs excluded) with their power-switching capability, for `plugrig devices`. */
export async function describeHubs(source: UsbDeviceSource): Promise<HubReportEntry[]> {
  const devices = (await source.list()).filter((d) => d.info.deviceClass === USB_CLASS_HUB && d.info.portNumbers.length > 0);
  const entries: HubReportEntry[] = [];
  for (const device of devices) {
    let handle: UsbDeviceHandle | undefined;
    try {
      handle = await device.open();
      entries.push({ info: device.info, descriptor: await readHubDescriptor(handle) });
    } catch (err) {
      entries.push({ info: device.info, error: err instanceof Error ? err.message : String(err) });
    } finally {
      await handle?.close();
    }
  }
  const infos = entries.map((e) => e.info);
  for (const e of entries) e.twinPath = findTwinHub(e.info, infos)?.usbPath;
  return entries;
}

interface OpenHub {
  handle: UsbDeviceHandle;
  descriptor: HubDescriptor;
  superSpeed: boolean;
}

export interface HubPortPowerOptions {
  /** Also switch the USB2/USB3 twin (default true; uhubctl's default too). */
  twin?: boolean;
  /** Extra CLEAR_FEATURE repeats for hubs that power a port back on (uhubctl -r). Default 1. */
  offRepeats?: number;
  clock: Clock;
}

/** Power control of the ports of one physical hub (both halves of a USB3 hub). */
export class HubPortPower {
  readonly usbPath: string;
  readonly ports: number;
  readonly #hubs: OpenHub[];
  readonly #clock: Clock;
  readonly #offRepeats: number;

  private constructor(usbPath: string, hubs: OpenHub[], options: HubPortPowerOptions) {
    this.usbPath = usbPath;
    this.#hubs = hubs;
    this.ports = hubs[0]!.descriptor.ports;
    this.#clock = options.clock;
    this.#offRepeats = Math.max(1, options.offRepeats ?? 1);
  }

  /** USB paths of every hub this controls (the requested one first, then its twin). */
  get hubPaths(): string[] {
    return this.#hubs.map((h) => h.handle.info.usbPath);
  }

  /** Open the hub at usbPath; refuses hubs whose descriptor does not declare per-port switching. */
  static async open(source: UsbDeviceSource, usbPath: string, options: HubPortPowerOptions): Promise<HubPortPower> {
    const devices = (await source.list()).filter((d) => d.info.deviceClass === USB_CLASS_HUB);
    const main = devices.find((d) => d.info.usbPath === usbPath);
    if (!main) {
      throw new TransportError(`no USB hub at ${usbPath} (hubs: ${devices.map((d) => d.info.usbPath).join(', ') || 'none'})`, { step: 'hub-open', usbPath });
    }
    const selected = [main];
    if (options.twin ?? true) {
      const twinInfo = findTwinHub(main.info, devices.map((d) => d.info));
      const twin = devices.find((d) => d.info === twinInfo);
      if (twin) selected.push(twin);
    }
    const opened: OpenHub[] = [];
    try {
      for (const device of selected) {
        const handle = await device.open();
        const hub: OpenHub = { handle, descriptor: await readHubDescriptor(handle).catch(async (err: unknown) => {
          await handle.close();
          throw err;
        }), superSpeed: isSuperSpeedHub(device.info) };
        opened.push(hub);
        const { descriptor } = hub;
        if (descriptor.powerSwitching !== 'per-port') {
          throw new ConfigError(
            `hub ${device.info.usbPath} has ${descriptor.powerSwitching} power switching (wHubCharacteristics 0x${descriptor.characteristics.toString(16).padStart(4, '0')}); per-port switching is required`,
            { step: 'hub-open', usbPath: device.info.usbPath, expected: 'wHubCharacteristics & 3 == 1' },
          );
        }
      }
    } catch (err) {
      for (const h of opened) await h.handle.close();
      throw err;
    }
    return new HubPortPower(usbPath, opened, options);
  }

  /** Port status on every half of the hub. */
  async status(port: number): Promise<Array<PortStatus & { usbPath: string }>> {
    this.#checkPort(port);
    const out: Array<PortStatus & { usbPath: string }> = [];
    for (const hub of this.#hubs) out.push({ usbPath: hub.handle.info.usbPath, ...(await this.#readStatus(hub, port)) });
    return out;
  }

  /** Switch a port on or off on every half, then confirm the power bit on each. */
  async setPower(port: number, on: boolean): Promise<void> {
    this.#checkPort(port);
    for (const hub of this.#hubs) {
      const repeats = on ? 1 : this.#offRepeats;
      for (let i = 0; i < repeats; i++) await hub.handle.controlOut(portPowerRequest(port, on), new Uint8Array(0));
    }
    if (!on && this.#hubs.some((h) => h.superSpeed)) await this.#clock.sleep(USB3_POWER_OFF_SETTLE_MS);
    for (const hub of this.#hubs) {
      const raw = await hub.handle.controlIn(portStatusRequest(port), 4);
      const status = parsePortStatus(port, raw, hub.superSpeed);
      if (status.powered !== on) {
        throw new InstrumentError(`hub ${hub.handle.info.usbPath} port ${port} still ${status.powered ? 'powered' : 'unpowered'} after power ${on ? 'on' : 'off'} (wPortStatus 0x${status.status.toString(16).padStart(4, '0')}, ${hex(raw)})`, {
          step: 'hub-power-verify',
          usbPath: hub.handle.info.usbPath,
          port,
          bytesSeen: raw,
          expected: `power bit ${on ? 'set' : 'clear'}`,
        });
      }
    }
  }

  async close(): Promise<void> {
    for (const h of this.#hubs) await h.handle.close();
  }

  async #readStatus(hub: OpenHub, port: number): Promise<PortStatus> {
    return parsePortStatus(port, await hub.handle.controlIn(portStatusRequest(port), 4), hub.superSpeed);
  }

  #checkPort(port: number): void {
    if (!Number.isInteger(port) || port < 1 || port > this.ports) {
      throw new ConfigError(`hub ${this.usbPath} has ports 1..${this.ports}, not ${port}`, { step: 'hub-port', usbPath: this.usbPath, expected: `1..${this.ports}` });
    }
  }
}
