import { existsSync } from 'node:fs';
import { autoDetect } from '@serialport/bindings-cpp';
import type { Clock } from '../core/clock.ts';
import { ConfigError, TransportError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { SIM_PREFIX, type VirtualSerialBus } from '../../sim/serial/virtual-binding.ts';
import { SerialLink } from './serial-link.ts';

/** How often a waiting read on a native port checks that the device node still exists. */
const VANISH_CHECK_MS = 250;

export interface OpenLinkOptions {
  baudRate: number;
  clock: Clock;
  /** Needed for `sim:<name>` paths: the in-process virtual jig's bus. */
  bus?: VirtualSerialBus;
  log?: Logger;
}

/**
 * Open a SerialLink on a jig port: `sim:<name>` goes to the virtual bus, anything else (a
 * /dev/tty* device, a pty symlink) to serialport's native binding.
 */
export async function openLink(path: string, o: OpenLinkOptions): Promise<SerialLink> {
  const common = { path, baudRate: o.baudRate, clock: o.clock, ...(o.log ? { log: o.log } : {}) };
  if (path.startsWith(SIM_PREFIX)) {
    if (!o.bus) {
      throw new ConfigError(`port ${path} is a virtual device but no virtual jig (VirtualSerialBus) is running`, {
        path,
      });
    }
    return SerialLink.open({ ...common, binding: o.bus.binding });
  }
  // Windows COM names are not filesystem paths; everywhere else a missing node means no device.
  if (process.platform !== 'win32' && !existsSync(path)) {
    throw new TransportError(`serial port ${path} does not exist (adapter unplugged, or wrong path?)`, {
      path,
      errno: 'ENOENT',
    });
  }
  return SerialLink.open({ ...common, binding: autoDetect(), vanishCheckMs: VANISH_CHECK_MS });
}
