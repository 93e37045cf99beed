/**
 * Injectable view of the USB bus. Code that talks to USB devices (relay boards, hubs, report)
 * depends only on UsbDeviceSource, so it runs against the node-usb implementation on a station
 * and against FakeUsbSource in tests and on machines without USB.
 */

/** One interface of the active configuration (class codes decide what a device is). */
export interface UsbInterfaceInfo {
  number: number;
  class: number;
  subClass: number;
  protocol: number;
}

/** What is known about a device without talking to it (descriptors, topology, strings). */
export interface UsbDeviceInfo {
  vid: number;
  pid: number;
  busNumber: number;
  /** Port chain from the root hub, e.g. [1, 3]; empty for a root hub. */
  portNumbers: number[];
  /** Topology path as named in /sys/bus/usb/devices: "1-1.3", or "usb1" for a root hub. */
  usbPath: string;
  /** bcdUSB of the device descriptor (0x0300 and up = SuperSpeed). */
  bcdUsb: number;
  /** bDeviceClass (0x09 = hub). */
  deviceClass: number;
  interfaces: UsbInterfaceInfo[];
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  /** Set when the strings could not be read (typically EACCES: no udev rule for this device). */
  accessError?: string;
}

/** The 8-byte SETUP packet minus wLength (which follows from the data or the requested length). */
export interface ControlSetup {
  bmRequestType: number;
  bRequest: number;
  wValue: number;
  wIndex: number;
}

/** An opened device: control transfers on endpoint 0. */
export interface UsbDeviceHandle {
  readonly info: UsbDeviceInfo;
  /** Detach a kernel driver bound to the interface (usbhid for relay boards) and claim it. */
  claimInterface(interfaceNumber: number): Promise<void>;
  /** Device-to-host transfer; resolves with the bytes the device returned (may be shorter than length). */
  controlIn(setup: ControlSetup, length: number): Promise<Uint8Array>;
  /** Host-to-device transfer with a data stage (possibly empty). */
  controlOut(setup: ControlSetup, data: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface UsbDevice {
  readonly info: UsbDeviceInfo;
  open(): Promise<UsbDeviceHandle>;
}

export interface UsbDeviceSource {
  /** Devices visible right now. Never throws for "no bus": an empty list is the answer then. */
  list(): Promise<UsbDevice[]>;
}

/** Topology path in the /sys/bus/usb/devices naming: bus "-" ports joined by ".". */
export function usbPathOf(busNumber: number, portNumbers: readonly number[]): string {
  return portNumbers.length === 0 ? `usb${busNumber}` : `${busNumber}-${portNumbers.join('.')}`;
}

/** "1a86:7523" */
export function vidPidText(vid: number, pid: number): string {
  return `${vid.toString(16).padStart(4, '0')}:${pid.toString(16).padStart(4, '0')}`;
}

export const USB_CLASS_HUB = 0x09;
