import { ConfigError, InstrumentError, ProtocolError, TransportError } from '../core/errors.ts';
import { hex } from '../core/hex.ts';
import type { ControlSetup, UsbDeviceHandle, UsbDeviceInfo, UsbDeviceSource } from './usb-source.ts';

/**
 * dcttech "USBRelayN" HID relay boards (instruments.md §B4). No report descriptor parsing is
 * needed: the boards take an 8-byte Feature report through HID class control requests on
 * interface 0, and answer a Feature GET_REPORT with their serial and relay bitmask.
 */

export const DCTTECH_VID = 0x16c0;
export const DCTTECH_PID = 0x05df;
export const DCTTECH_REPORT_LENGTH = 8;

/** HID SET_REPORT, Feature report ID 0, to interface 0 (class | interface, as hidapi sends it). */
export const DCTTECH_SET_REPORT: ControlSetup = { bmRequestType: 0x21, bRequest: 0x09, wValue: 0x0300, wIndex: 0 };
/** HID GET_REPORT, Feature report ID 0, from interface 0. */
export const DCTTECH_GET_REPORT: ControlSetup = { bmRequestType: 0xa1, bRequest: 0x01, wValue: 0x0300, wIndex: 0 };

export const DCTTECH_CMD_ON = 0xff;
export const DCTTECH_CMD_OFF = 0xfd;
export const DCTTECH_CMD_ALL_ON = 0xfe;
export const DCTTECH_CMD_ALL_OFF = 0xfc;

export type DcttechCommand = { kind: 'on' | 'off'; channel: number } | { kind: 'all-on' | 'all-off' };

/** Channel count from the product string "USBRelay4" -> 4; undefined if it is not such a board. */
export function dcttechChannelCount(product: string | undefined): number | undefined {
  const m = product?.match(/^USBRelay([1-8])$/);
  return m ? Number(m[1]) : undefined;
}

/** The 8-byte Feature report for a command: [cmd, channel, 0 ×6]. */
export function encodeDcttechCommand(command: DcttechCommand): Uint8Array {
  const report = new Uint8Array(DCTTECH_REPORT_LENGTH);
  switch (command.kind) {
    case 'on':
    case 'off':
      if (!Number.isInteger(command.channel) || command.channel < 1 || command.channel > 8) {
        throw new ConfigError(`dcttech relay channel must be 1..8, got ${command.channel}`, { expected: '1..8' });
      }
      report[0] = command.kind === 'on' ? DCTTECH_CMD_ON : DCTTECH_CMD_OFF;
      report[1] = command.channel;
      break;
    case 'all-on':
      report[0] = DCTTECH_CMD_ALL_ON;
      break;
    case 'all-off':
      report[0] = DCTTECH_CMD_ALL_OFF;
      break;
  }
  return report;
}

export interface DcttechState {
  /** The board's 5-character ID (bytes 0–4), NULs and padding removed. */
  serial: string;
  /** Bit n-1 = relay n is on. */
  mask: number;
}

/** Parse a Feature GET_REPORT reply: bytes 0–4 serial, byte 7 relay bitmask. */
export function decodeDcttechState(report: Uint8Array): DcttechState {
  if (report.length < DCTTECH_REPORT_LENGTH) {
    throw new ProtocolError(`dcttech feature report too short: ${report.length} of 8 bytes`, { bytesSeen: report, expected: '8 bytes' });
  }
  const serial = String.fromCharCode(...report.subarray(0, 5)).replace(/[^\x20-\x7e]/g, '').trim();
  return { serial, mask: report[7]! };
}

export interface DcttechBoardInfo {
  usbPath: string;
  product?: string;
  channels?: number;
  serial?: string;
  mask?: number;
  /** Why the board could not be read (permission, stall, unplugged). */
  error?: string;
}

function isDcttech(info: UsbDeviceInfo): boolean {
  return info.vid === DCTTECH_VID && info.pid === DCTTECH_PID;
}

async function readState(handle: UsbDeviceHandle): Promise<DcttechState> {
  return decodeDcttechState(await handle.controlIn(DCTTECH_GET_REPORT, DCTTECH_REPORT_LENGTH));
}

/**
 * Every dcttech board on the bus with its serial and relay state. Each board is opened briefly;
 * one that cannot be opened is listed with its error rather than aborting the scan.
 */
export async function findDcttechBoards(source: UsbDeviceSource): Promise<DcttechBoardInfo[]> {
  const boards: DcttechBoardInfo[] = [];
  for (const device of await source.list()) {
    if (!isDcttech(device.info)) continue;
    const base = { usbPath: device.info.usbPath, product: device.info.product, channels: dcttechChannelCount(device.info.product) };
    let handle: UsbDeviceHandle | undefined;
    try {
      handle = await device.open();
      await handle.claimInterface(0);
      boards.push({ ...base, ...(await readState(handle)) });
    } catch (err) {
      boards.push({ ...base, error: err instanceof Error ? err.message : String(err) });
    } finally {
      await handle?.close();
    }
  }
  return boards;
}

export interface DcttechSelector {
  /** The 5-character ID in the feature report (all boards share one VID:PID). */
  serial?: string;
  /** USB topology path, e.g. "1-1.4". */
  usbPath?: string;
}

/** One opened relay board. Every switch is verified by reading the bitmask back. */
export class DcttechRelay {
  readonly usbPath: string;
  readonly serial: string;
  readonly channels: number;
  readonly #handle: UsbDeviceHandle;

  private constructor(handle: UsbDeviceHandle, serial: string, channels: number) {
    this.#handle = handle;
    this.usbPath = handle.info.usbPath;
    this.serial = serial;
    this.channels = channels;
  }

  /** Open the board matching the selector (both fields must match when both are given). */
  static async open(source: UsbDeviceSource, select: DcttechSelector): Promise<DcttechRelay> {
    if (!select.serial && !select.usbPath) throw new ConfigError('dcttech relay needs a serial or a usbPath', { step: 'relay-open' });
    const seen: string[] = [];
    for (const device of await source.list()) {
      if (!isDcttech(device.info)) continue;
      if (select.usbPath && device.info.usbPath !== select.usbPath) continue;
      const handle = await device.open();
      try {
        await handle.claimInterface(0);
        const state = await readState(handle);
        seen.push(`${device.info.usbPath}=${state.serial}`);
        if (select.serial && state.serial !== select.serial) {
          await handle.close();
          continue;
        }
        const channels = dcttechChannelCount(device.info.product);
        if (channels === undefined) {
          throw new InstrumentError(`USB device ${device.info.usbPath} is 16c0:05df but its product "${device.info.product ?? '?'}" is not USBRelayN`, {
            step: 'relay-open',
            usbPath: device.info.usbPath,
            expected: 'USBRelay1..8',
          });
        }
        return new DcttechRelay(handle, state.serial, channels);
      } catch (err) {
        await handle.close();
        throw err;
      }
    }
    throw new TransportError(`no dcttech relay board with ${describe(select)} (seen: ${seen.join(', ') || 'none'})`, {
      step: 'relay-open',
      ...select,
    });
  }

  /** Current state read from the board. */
  async read(): Promise<DcttechState> {
    return readState(this.#handle);
  }

  /** Switch one relay and confirm the board reports it in the new state. */
  async set(channel: number, on: boolean): Promise<void> {
    if (!Number.isInteger(channel) || channel < 1 || channel > this.channels) {
      throw new ConfigError(`relay channel ${channel} out of range 1..${this.channels} on board ${this.serial}`, {
        step: 'relay-set',
        usbPath: this.usbPath,
        expected: `1..${this.channels}`,
      });
    }
    await this.#handle.controlOut(DCTTECH_SET_REPORT, encodeDcttechCommand({ kind: on ? 'on' : 'off', channel }));
    await this.#verify(`relay ${channel} ${on ? 'on' : 'off'}`, (mask) => ((mask >> (channel - 1)) & 1) === (on ? 1 : 0));
  }

  /** Switch all relays of the board and confirm. */
  async setAll(on: boolean): Promise<void> {
    const all = (1 << this.channels) - 1;
    await this.#handle.controlOut(DCTTECH_SET_REPORT, encodeDcttechCommand({ kind: on ? 'all-on' : 'all-off' }));
    await this.#verify(`all relays ${on ? 'on' : 'off'}`, (mask) => (mask & all) === (on ? all : 0));
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }

  async #verify(what: string, ok: (mask: number) => boolean): Promise<void> {
    const raw = await this.#handle.controlIn(DCTTECH_GET_REPORT, DCTTECH_REPORT_LENGTH);
    const state = decodeDcttechState(raw);
    const context = { step: 'relay-verify', usbPath: this.usbPath, serial: this.serial, bytesSeen: raw, expected: what };
    if (state.serial !== this.serial) {
      throw new InstrumentError(`relay board at ${this.usbPath} now reports serial "${state.serial}", expected "${this.serial}" (board swapped?)`, context);
    }
    if (!ok(state.mask)) {
      throw new InstrumentError(`relay board ${this.serial} did not switch ${what}: read-back mask 0x${state.mask.toString(16).padStart(2, '0')} (${hex(raw)})`, context);
    }
  }
}

function describe(select: DcttechSelector): string {
  return [select.serial && `serial "${select.serial}"`, select.usbPath && `USB path ${select.usbPath}`].filter(Boolean).join(' and ');
}
