import { statSync } from 'node:fs';
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

/**
 * A path that exists but cannot be a serial port (a directory, a regular file, a FIFO or socket):
 * named as such instead of the binding's "Inappropriate ioctl" or a hang on a FIFO.
 */
export function notASerialPortError(path: string, what = 'serial port'): TransportError | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return undefined;
  }
  const kind = st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isBlockDevice() ? 'a block device' : undefined;
  return kind ? new TransportError(`${what} ${path} is ${kind}, not a serial port`, { path, errno: 'ENOTTY' }) : undefined;
}

/** The binding's open failure in words: ENOTTY (e.g. /dev/null) means the device is no terminal. */
export function openFailureMessage(path: string, err: Error, what = 'serial port'): string {
  return /Inappropriate ioctl|ENOTTY/.test(err.message)
    ? `cannot open ${what} ${path}: it is not a serial port (the device takes no terminal settings: ${err.message})`
    : `cannot open ${what} ${path}: ${err.message}`;
}

/** Resolve a serial path and refuse it at once when its device is not there or is no serial device. */
export function resolvePresentSerial(endpoints: EndpointRegistry, path: string, what?: string): SerialEndpoint {
  const ep = endpoints.serial.resolve(path);
  if (ep.present && !ep.present()) throw missingPortError(path, what);
  // Only native ports have a node on disk to look at (`present`); virtual ones are named by the registry.
  const notSerial = ep.present ? notASerialPortError(ep.path, what) : undefined;
  if (notSerial) throw notSerial;
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
    stream.open((e) => (e ? reject(new TransportError(openFailureMessage(path, e, o.what), { path, baudRate: o.baudRate }, { cause: e })) : resolve())),
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
