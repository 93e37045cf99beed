import { existsSync } from 'node:fs';
import { EndpointRegistry } from './registry.ts';
import { nativeSerialBinding } from '../serial/native-binding.ts';
import { connectTcpScpi } from '../meter/scpi/stream-transport.ts';
import type { UsbDevice, UsbDeviceSource } from '../usb/usb-source.ts';
import { discoverUsbUarts } from '../usb/usb-uart.ts';

/** The machine's USB bus, loaded on first use: node-usb is a native addon that pin-only jigs never need. */
class LazyNodeUsbSource implements UsbDeviceSource {
  #source: Promise<UsbDeviceSource> | undefined;

  async list(): Promise<UsbDevice[]> {
    this.#source ??= import('../usb/node-usb-source.ts').then(({ NodeUsbSource }) => new NodeUsbSource());
    return (await this.#source).list();
  }
}

/**
 * The real machine's endpoints: every serial path through serialport's native binding (its device
 * node must exist, and is watched while open), SCPI over TCP and USBTMC, the USB bus through
 * node-usb, plain http:// addresses. They claim everything of their kind, so register them first:
 * a simulator's resolvers, registered later, are asked before them.
 */
export function nativeEndpoints(): EndpointRegistry {
  const registry = new EndpointRegistry();
  registry.serial.register({
    name: 'native serial',
    matches: () => true,
    resolve: (path) => ({
      path,
      binding: nativeSerialBinding(),
      // Windows COM names are not filesystem paths; everywhere else a missing node means no device.
      ...(process.platform !== 'win32' ? { present: () => existsSync(path) } : {}),
      via: 'native serial',
    }),
  });
  registry.scpi.register({
    name: 'SCPI over TCP / USBTMC',
    matches: () => true,
    resolve: (a) =>
      a.kind === 'tcp'
        ? (clock) => connectTcpScpi(a.host, a.port, clock)
        : async () => {
            // node-usb (a native addon) is loaded only when a USBTMC meter is opened, as for the USB source above.
            const { openUsbtmcDevice, UsbtmcTransport } = await import('../meter/usbtmc/usbtmc-transport.ts');
            const dev = await openUsbtmcDevice(a.vendorId, a.productId, a.serial);
            const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
            return new UsbtmcTransport(dev, `usbtmc:${hex4(a.vendorId)}:${hex4(a.productId)}`);
          },
  });
  const usb = new LazyNodeUsbSource();
  registry.usb.register({ name: 'node-usb', matches: () => true, resolve: () => usb });
  registry.usbUarts.register({ name: 'sysfs USB-UARTs', matches: () => true, resolve: () => ({ scan: () => discoverUsbUarts(), via: 'sysfs' }) });
  registry.http.register({
    name: 'network HTTP',
    matches: (a) => /^https?:\/\/[^/\s]+\/?$/i.test(a),
    resolve: (a) => ({ baseUrl: a.replace(/\/$/, ''), via: 'network HTTP' }),
  });
  return registry;
}
