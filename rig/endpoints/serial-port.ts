import { SerialPortStream } from '@serialport/stream';
import type { Clock } from '../core/clock.ts';
import { TransportError } from '../core/errors.ts';
import type { EndpointRegistry, SerialEndpoint } from './registry.ts';

/** How often an open native port checks that its device node still exists. */
export const VANISH_CHECK_MS = 250;

export function missingPortError(path: string, what = 'serial port'): TransportError {
  return new TransportError(`${what} ${path} does not exist (adapter unplugged, or wrong path?)`, { path, errno: 'ENOENT' });
}

export function vanishedPortError(path: string): TransportError {
  return new TransportError(`serial port ${path} vanished (adapter unplugged or pty gone)`, { path, errno: 'ENOENT' });
}

/** Resolve a serial path and refuse it at once when its device is not there. */
export function resolvePresentSerial(endpoints: EndpointRegistry, path: string, what?: string): SerialEndpoint {
  const ep = endpoints.serial.resolve(path);
  if (ep.present && !ep.present()) throw missingPortError(path, what);
  return ep;
}

/**
 * Open a serial endpoint as a SerialPortStream (I/O boards, meters). While it is open, a device
 * that vanishes destroys the stream with a TransportError, so its user sees 'error' and 'close'
 * exactly as for an unplug the binding noticed itself.
 */
export async function openSerialPort(endpoints: EndpointRegistry, path: string, o: { baudRate: number; clock: Clock; what?: string }): Promise<SerialPortStream> {
  const ep = resolvePresentSerial(endpoints, path, o.what);
  const stream = new SerialPortStream({ binding: ep.binding, path: ep.path, baudRate: o.baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) =>
    stream.open((e) => (e ? reject(new TransportError(`cannot open ${o.what ?? 'serial port'} ${path}: ${e.message}`, { path, baudRate: o.baudRate }, { cause: e })) : resolve())),
  );
  const present = ep.present;
  if (present) {
    let cancel = (): void => undefined;
    const tick = (): void => {
      if (stream.destroyed || !stream.isOpen) return;
      if (present()) {
        cancel = o.clock.at(o.clock.now() + VANISH_CHECK_MS, tick);
        return;
      }
      stream.destroy(vanishedPortError(path));
    };
    cancel = o.clock.at(o.clock.now() + VANISH_CHECK_MS, tick);
    stream.once('close', () => cancel());
  }
  return stream;
}
