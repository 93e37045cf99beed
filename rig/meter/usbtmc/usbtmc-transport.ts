import { getDeviceList, type Device, type Endpoint, type InEndpoint, type OutEndpoint, type Interface } from 'usb';
import { InstrumentError, TimeoutError, TransportError } from '../../core/errors.ts';
import type { ScpiTransport } from '../scpi/scpi-transport.ts';
import {
  encodeRequestDevDepMsgIn,
  nextTag,
  parseCapabilities,
  parseDevDepMsgIn,
  splitDevDepMsgOut,
  USBTMC_HEADER_SIZE,
  USBTMC_INTERFACE_CLASS,
  USBTMC_INTERFACE_SUBCLASS,
  USBTMC_REQTYPE_ENDPOINT_IN,
  USBTMC_REQTYPE_INTERFACE_IN,
  USBTMC_REQUEST,
  USBTMC_STATUS,
  type UsbtmcCapabilities,
} from './usbtmc-codec.ts';

/**
 * The few USB operations USBTMC needs, so the transport can be tested with a fake that records transfers.
 * Implementations reject with TimeoutError when a transfer times out.
 */
export interface UsbtmcDevice {
  readonly interfaceNumber: number;
  readonly bulkInAddress: number;
  readonly bulkOutAddress: number;
  bulkOut(data: Uint8Array, timeoutMs: number): Promise<void>;
  bulkIn(maxLength: number, timeoutMs: number): Promise<Uint8Array>;
  controlIn(bmRequestType: number, bRequest: number, wValue: number, wIndex: number, length: number): Promise<Uint8Array>;
  clearHalt(endpointAddress: number): Promise<void>;
  close(): Promise<void>;
}

export interface UsbtmcTransportOptions {
  /** Payload bytes per DEV_DEP_MSG_OUT transfer. */
  maxTransferSize?: number;
  /** TransferSize asked for in each REQUEST_DEV_DEP_MSG_IN. */
  readSize?: number;
  /** Timeout of bulk-OUT transfers, ms. */
  writeTimeoutMs?: number;
  /** How often CHECK_ABORT_*_STATUS is polled before giving up. */
  abortPolls?: number;
}

/** SCPI over USBTMC: messages framed by DEV_DEP_MSG_OUT / REQUEST_DEV_DEP_MSG_IN (instruments.md §B3). */
export class UsbtmcTransport implements ScpiTransport {
  readonly address: string;
  readonly #dev: UsbtmcDevice;
  readonly #maxTransfer: number;
  readonly #readSize: number;
  readonly #writeTimeoutMs: number;
  readonly #abortPolls: number;
  #tag = 0;

  constructor(dev: UsbtmcDevice, address: string, o: UsbtmcTransportOptions = {}) {
    this.#dev = dev;
    this.address = address;
    this.#maxTransfer = o.maxTransferSize ?? 1024 * 1024;
    this.#readSize = o.readSize ?? 4096;
    this.#writeTimeoutMs = o.writeTimeoutMs ?? 2000;
    this.#abortPolls = o.abortPolls ?? 10;
  }

  async capabilities(): Promise<UsbtmcCapabilities> {
    const d = this.#dev;
    return parseCapabilities(await d.controlIn(USBTMC_REQTYPE_INTERFACE_IN, USBTMC_REQUEST.GET_CAPABILITIES, 0, d.interfaceNumber, 0x18));
  }

  async send(message: Uint8Array): Promise<void> {
    const { transfers, lastTag } = splitDevDepMsgOut(message, this.#maxTransfer, this.#tag);
    let tag = this.#tag;
    this.#tag = lastTag;
    for (const transfer of transfers) {
      tag = nextTag(tag);
      try {
        await this.#dev.bulkOut(transfer, this.#writeTimeoutMs);
      } catch (e) {
        if (e instanceof TimeoutError) await this.#abortBulkOut(tag);
        throw new InstrumentError(`${this.address}: bulk-OUT failed: ${(e as Error).message}`, { step: 'usbtmc-write', instrument: this.address, bTag: tag }, { cause: e });
      }
    }
  }

  async receive(timeoutMs: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (;;) {
      this.#tag = nextTag(this.#tag);
      const tag = this.#tag;
      await this.#dev.bulkOut(encodeRequestDevDepMsgIn(tag, this.#readSize), this.#writeTimeoutMs);
      const first = await this.#bulkIn(tag, timeoutMs);
      const h = parseDevDepMsgIn(first, tag);
      parts.push(h.data);
      // TransferSize may exceed one bulk-IN transfer: keep reading until it has all arrived.
      let got = h.data.length;
      while (got < h.transferSize) {
        const more = await this.#bulkIn(tag, timeoutMs);
        const take = more.subarray(0, h.transferSize - got);
        parts.push(take);
        got += take.length;
      }
      if (h.eom) break;
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    // Instruments end text responses with LF inside the message; strip it as the line transports do.
    return out.length && out[out.length - 1] === 0x0a ? out.subarray(0, out.length - 1) : out;
  }

  discardInput(): void {
    // Bulk-IN data is only sent on request; there is nothing buffered host-side.
  }

  close(): Promise<void> {
    return this.#dev.close();
  }

  async #bulkIn(tag: number, timeoutMs: number): Promise<Uint8Array> {
    try {
      return await this.#dev.bulkIn(this.#readSize + USBTMC_HEADER_SIZE + 3, timeoutMs);
    } catch (e) {
      if (e instanceof TimeoutError) await this.#abortBulkIn(tag);
      throw new InstrumentError(`${this.address}: no response: ${(e as Error).message}`, { step: 'usbtmc-read', instrument: this.address, bTag: tag }, { cause: e });
    }
  }

  /** INITIATE_ABORT_BULK_IN, then poll CHECK_ABORT_BULK_IN_STATUS, draining bulk-IN while asked to. */
  async #abortBulkIn(tag: number): Promise<void> {
    const d = this.#dev;
    const init = await d.controlIn(USBTMC_REQTYPE_ENDPOINT_IN, USBTMC_REQUEST.INITIATE_ABORT_BULK_IN, tag, d.bulkInAddress, 2);
    if (init[0] !== USBTMC_STATUS.SUCCESS) return; // FAILED: no transfer in progress, nothing to abort
    for (let i = 0; i < this.#abortPolls; i++) {
      const st = await d.controlIn(USBTMC_REQTYPE_ENDPOINT_IN, USBTMC_REQUEST.CHECK_ABORT_BULK_IN_STATUS, 0, d.bulkInAddress, 8);
      if (st[0] !== USBTMC_STATUS.PENDING) return;
      if ((st[1]! & 0x01) !== 0) await d.bulkIn(this.#readSize + USBTMC_HEADER_SIZE, 100).catch(() => undefined);
    }
  }

  /** INITIATE_ABORT_BULK_OUT, poll CHECK_ABORT_BULK_OUT_STATUS, then clear the halt on bulk-OUT. */
  async #abortBulkOut(tag: number): Promise<void> {
    const d = this.#dev;
    const init = await d.controlIn(USBTMC_REQTYPE_ENDPOINT_IN, USBTMC_REQUEST.INITIATE_ABORT_BULK_OUT, tag, d.bulkOutAddress, 2);
    if (init[0] !== USBTMC_STATUS.SUCCESS) return;
    for (let i = 0; i < this.#abortPolls; i++) {
      const st = await d.controlIn(USBTMC_REQTYPE_ENDPOINT_IN, USBTMC_REQUEST.CHECK_ABORT_BULK_OUT_STATUS, 0, d.bulkOutAddress, 8);
      if (st[0] !== USBTMC_STATUS.PENDING) break;
    }
    await d.clearHalt(d.bulkOutAddress);
  }
}

const LIBUSB_TRANSFER_TYPE_BULK = 2;
const LIBUSB_ERROR_TIMEOUT = -7;
const LIBUSB_TRANSFER_TIMED_OUT = 2;

function usbError(what: string, e: unknown): Error {
  const errno = (e as { errno?: number } | undefined)?.errno;
  if (errno === LIBUSB_ERROR_TIMEOUT || errno === LIBUSB_TRANSFER_TIMED_OUT) return new TimeoutError(`${what} timed out`, { step: 'usb' }, { cause: e });
  return new TransportError(`${what} failed: ${(e as Error)?.message ?? String(e)}`, { step: 'usb' }, { cause: e });
}

/** A USBTMC interface of a node-usb Device (claimed, kernel driver detached). */
class NodeUsbtmcDevice implements UsbtmcDevice {
  readonly interfaceNumber: number;
  readonly bulkInAddress: number;
  readonly bulkOutAddress: number;
  constructor(
    readonly device: Device,
    readonly iface: Interface,
    readonly bulkInEp: InEndpoint,
    readonly bulkOutEp: OutEndpoint,
  ) {
    this.interfaceNumber = iface.interfaceNumber;
    this.bulkInAddress = bulkInEp.address;
    this.bulkOutAddress = bulkOutEp.address;
  }
  bulkOut(data: Uint8Array, timeoutMs: number): Promise<void> {
    this.bulkOutEp.timeout = timeoutMs;
    return new Promise((resolve, reject) => this.bulkOutEp.transfer(Buffer.from(data), (err) => (err ? reject(usbError('bulk-OUT', err)) : resolve())));
  }
  bulkIn(maxLength: number, timeoutMs: number): Promise<Uint8Array> {
    this.bulkInEp.timeout = timeoutMs;
    return new Promise((resolve, reject) =>
      this.bulkInEp.transfer(maxLength, (err, data) => (err ? reject(usbError('bulk-IN', err)) : resolve(new Uint8Array(data ?? Buffer.alloc(0))))),
    );
  }
  controlIn(bmRequestType: number, bRequest: number, wValue: number, wIndex: number, length: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) =>
      this.device.controlTransfer(bmRequestType, bRequest, wValue, wIndex, length, (err, data) =>
        err ? reject(usbError(`control request ${bRequest}`, err)) : resolve(Buffer.isBuffer(data) ? new Uint8Array(data) : new Uint8Array(0)),
      ),
    );
  }
  clearHalt(endpointAddress: number): Promise<void> {
    const ep = endpointAddress === this.bulkOutAddress ? this.bulkOutEp : this.bulkInEp;
    return new Promise((resolve, reject) => ep.clearHalt((err) => (err ? reject(usbError('clear halt', err)) : resolve())));
  }
  async close(): Promise<void> {
    try {
      await this.iface.releaseAsync();
    } finally {
      this.device.close();
    }
  }
}

function stringDescriptor(device: Device, index: number): Promise<string | undefined> {
  if (!index) return Promise.resolve(undefined);
  return new Promise((resolve) => device.getStringDescriptor(index, (err, value) => resolve(err ? undefined : value)));
}

/** Find, open and claim the USBTMC interface of VID:PID (and serial, if given). */
export async function openUsbtmcDevice(vendorId: number, productId: number, serial?: string): Promise<UsbtmcDevice> {
  const id = `usbtmc:${vendorId.toString(16).padStart(4, '0')}:${productId.toString(16).padStart(4, '0')}${serial ? `:${serial}` : ''}`;
  for (const device of getDeviceList()) {
    const dd = device.deviceDescriptor;
    if (dd.idVendor !== vendorId || dd.idProduct !== productId) continue;
    try {
      device.open();
    } catch (e) {
      throw new TransportError(`${id}: cannot open USB device: ${(e as Error).message}`, { instrument: id }, { cause: e });
    }
    if (serial && (await stringDescriptor(device, dd.iSerialNumber)) !== serial) {
      device.close();
      continue;
    }
    const iface = (device.interfaces ?? []).find(
      (i) => i.descriptor.bInterfaceClass === USBTMC_INTERFACE_CLASS && i.descriptor.bInterfaceSubClass === USBTMC_INTERFACE_SUBCLASS,
    );
    if (!iface) {
      device.close();
      throw new TransportError(`${id}: no USBTMC interface (class 0xFE subclass 3)`, { instrument: id });
    }
    try {
      if (process.platform === 'linux' && iface.isKernelDriverActive()) iface.detachKernelDriver();
      iface.claim();
    } catch (e) {
      device.close();
      throw new TransportError(`${id}: cannot claim interface ${iface.interfaceNumber}: ${(e as Error).message}`, { instrument: id }, { cause: e });
    }
    const bulk = (dir: 'in' | 'out'): Endpoint | undefined => iface.endpoints.find((ep) => ep.direction === dir && ep.transferType === LIBUSB_TRANSFER_TYPE_BULK);
    const bin = bulk('in');
    const bout = bulk('out');
    if (!bin || !bout) {
      device.close();
      throw new TransportError(`${id}: USBTMC interface lacks bulk endpoints`, { instrument: id });
    }
    return new NodeUsbtmcDevice(device, iface, bin as InEndpoint, bout as OutEndpoint);
  }
  throw new TransportError(`${id}: no such USB device`, { instrument: id });
}
