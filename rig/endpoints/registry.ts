import type { BindingInterface } from '@serialport/bindings-interface' with { 'resolution-mode': 'require' }; // its exports map has no ESM types
import type { Clock } from '../core/clock.ts';
import { ConfigError } from '../core/errors.ts';
import type { DcttechRelayRef, HubPortRef } from '../jig/jig-config.ts';
import type { ScpiTransport } from '../meter/scpi/scpi-transport.ts';
import type { UsbDeviceSource } from '../usb/usb-source.ts';
import type { UartRef, UsbUartAdapter } from '../usb/usb-uart.ts';

/**
 * Every endpoint a jig file names (serial ports, I/O boards on them, meters, USB relay boards and
 * hubs, and the plug's HTTP address) is turned into something openable here, by the first resolver
 * that claims it. rig/ registers the native resolvers (endpoints/native.ts); a simulator registers
 * its own (the virtual jig's `sim:` devices); the composition root (cli/) decides which exist.
 * Code in rig/, suites/ and station/ asks the registry and never looks at an address's spelling.
 */

/** A serial endpoint: the binding that opens it, and how to tell that its device has gone. */
export interface SerialEndpoint {
  path: string;
  binding: BindingInterface;
  /**
   * Is the device still there? Checked before opening and polled while the port is open
   * (a pty whose master died makes the native binding spin on EOF without reporting anything).
   * Absent when the binding reports unplugs itself.
   */
  present?: () => boolean;
  /** Who resolved it, for messages ("native serial", "virtual jig"). */
  via: string;
}

/** A SCPI address that is not a serial port. */
export type ScpiNetworkAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'usbtmc'; vendorId: number; productId: number; serial?: string };

/** Opens a SCPI transport on the clock the caller runs on. */
export type ScpiOpener = (clock: Clock) => Promise<ScpiTransport>;

/** A USB device a slot switches through (load relay channel, hub port for 3V3). */
export interface UsbRequest {
  slot: number;
  ref: DcttechRelayRef | HubPortRef;
}

/** Where the plug's web server is reached (the next stages' HTTP client takes it from here). */
export interface HttpEndpoint {
  /** e.g. http://192.168.4.1 or http://127.0.0.1:40123 */
  baseUrl: string;
  via: string;
}

/**
 * Where the USB-UART adapters a slot or I/O board is bound to (by USB path or serial number) are
 * listed: the machine's sysfs, or a virtual jig's adapters. Scanned again before every use, since
 * an adapter that was unplugged and came back may have another tty name.
 */
export interface UsbUartSource {
  scan(): Promise<UsbUartAdapter[]>;
  /** For messages: "sysfs", "virtual jig". */
  via: string;
}

export interface Resolver<Req, Res> {
  /** For messages: "native serial", "virtual jig (sim:)". */
  readonly name: string;
  matches(request: Req): boolean;
  resolve(request: Req): Res;
}

/** Resolvers of one kind of endpoint; the most recently registered is asked first. */
export class ResolverList<Req, Res> {
  readonly #what: string;
  readonly #describe: (request: Req) => string;
  #resolvers: Array<Resolver<Req, Res>> = [];

  constructor(what: string, describe: (request: Req) => string) {
    this.#what = what;
    this.#describe = describe;
  }

  /** Returns the function that removes it again. */
  register(resolver: Resolver<Req, Res>): () => void {
    this.#resolvers.unshift(resolver);
    return () => {
      this.#resolvers = this.#resolvers.filter((r) => r !== resolver);
    };
  }

  names(): string[] {
    return this.#resolvers.map((r) => r.name);
  }

  /** The first claiming resolver's answer; a ConfigError naming the endpoint when none claims it. */
  resolve(request: Req): Res {
    const r = this.#resolvers.find((x) => x.matches(request));
    if (!r) {
      const known = this.#resolvers.length ? this.#resolvers.map((x) => x.name).join(', ') : 'none registered';
      throw new ConfigError(`no resolver for ${this.#what} ${this.#describe(request)} (resolvers: ${known})`, { step: 'endpoints', endpoint: this.#describe(request) });
    }
    return r.resolve(request);
  }
}

export class EndpointRegistry {
  readonly serial = new ResolverList<string, SerialEndpoint>('serial port', (p) => p);
  readonly scpi = new ResolverList<ScpiNetworkAddress, ScpiOpener>('SCPI address', describeScpi);
  readonly usb = new ResolverList<UsbRequest, UsbDeviceSource>('USB device', (r) => `${describeUsb(r.ref)} (slot ${r.slot})`);
  readonly http = new ResolverList<string, HttpEndpoint>('HTTP address', (a) => a);
  /** USB-UART adapters for a port reference by USB path / serial number (a `port` is a serial path, above). */
  readonly usbUarts = new ResolverList<UartRef, UsbUartSource>('USB-UART adapter', describeUartRef);
}

export function describeUartRef(ref: UartRef): string {
  const parts = [ref.usbPath !== undefined ? `at USB path ${ref.usbPath}` : undefined, ref.serialNumber !== undefined ? `with serial "${ref.serialNumber}"` : undefined].filter(Boolean);
  return ref.port ?? (parts.join(' ') || '(no port, USB path or serial)');
}

function describeScpi(a: ScpiNetworkAddress): string {
  if (a.kind === 'tcp') return `tcp://${a.host}:${a.port}`;
  const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
  return `usbtmc:${hex4(a.vendorId)}:${hex4(a.productId)}${a.serial ? `:${a.serial}` : ''}`;
}

export function describeUsb(ref: DcttechRelayRef | HubPortRef): string {
  if (ref.kind === 'hub-port') return `hub ${ref.hubUsbPath} port ${ref.port}`;
  return `dcttech relay ${ref.serial !== undefined ? `"${ref.serial}"` : `at ${ref.usbPath}`} channel ${ref.channel}`;
}
