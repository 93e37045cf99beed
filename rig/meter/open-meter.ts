import { SerialPortStream } from '@serialport/stream';
import type { BindingInterface } from '@serialport/bindings-interface' with { 'resolution-mode': 'require' }; // its exports map has no ESM types
import { autoDetect } from '@serialport/bindings-cpp';
import type { Clock } from '../core/clock.ts';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { MeterSpec } from '../jig/jig-config.ts';
import { Pzem004tMeter } from './pzem004t.ts';
import type { ReferenceMeter } from './reference-meter.ts';
import type { RetryPolicy } from './retry.ts';
import { ScpiClient } from './scpi/scpi-client.ts';
import type { ScpiTransport } from './scpi/scpi-transport.ts';
import { connectTcpScpi, StreamScpiTransport } from './scpi/stream-transport.ts';
import { Wt310eMeter } from './scpi/wt310e-meter.ts';
import { openUsbtmcDevice, UsbtmcTransport } from './usbtmc/usbtmc-transport.ts';

export interface OpenMeterOptions {
  clock: Clock;
  /** The virtual jig's serial bus; required for `sim:` ports. */
  bus?: { binding: BindingInterface };
  log?: Logger;
  /** Reply timeout per exchange, ms (PZEM default 200, SCPI default 2000). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Meter channel/element from the slot's `meter.channel`. */
  channel?: number;
}

export type ScpiAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'serial'; path: string; baudRate: number }
  | { kind: 'usbtmc'; vendorId: number; productId: number; serial?: string };

/** `tcp://host:port` | `usbtmc:VID:PID[:serial]` (hex ids) | a serial path, optionally `path@baud`. */
export function parseScpiAddress(address: string): ScpiAddress {
  const tcp = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(address);
  if (tcp) {
    const port = Number(tcp[2]);
    if (port < 1 || port > 65535) throw new ConfigError(`SCPI address ${address}: port out of range`, { step: 'open-meter' });
    return { kind: 'tcp', host: tcp[1]!.replace(/^\[|\]$/g, ''), port };
  }
  if (address.startsWith('tcp:')) throw new ConfigError(`SCPI address ${address}: expected tcp://host:port`, { step: 'open-meter' });
  if (address.startsWith('usbtmc:')) {
    const m = /^usbtmc:([0-9a-f]{4}):([0-9a-f]{4})(?::(.+))?$/i.exec(address);
    if (!m) throw new ConfigError(`SCPI address ${address}: expected usbtmc:VID:PID[:serial] with 4-digit hex ids`, { step: 'open-meter' });
    return { kind: 'usbtmc', vendorId: parseInt(m[1]!, 16), productId: parseInt(m[2]!, 16), ...(m[3] ? { serial: m[3] } : {}) };
  }
  const serial = /^(.+?)(?:@(\d+))?$/.exec(address)!;
  return { kind: 'serial', path: serial[1]!, baudRate: serial[2] ? Number(serial[2]) : 9600 };
}

function serialStream(path: string, baudRate: number, o: OpenMeterOptions): SerialPortStream {
  let binding: BindingInterface;
  if (path.startsWith('sim:')) {
    if (!o.bus) throw new ConfigError(`meter port ${path} is simulated but no virtual bus was given`, { step: 'open-meter' });
    binding = o.bus.binding;
  } else binding = autoDetect();
  return new SerialPortStream({ binding, path, baudRate, autoOpen: false });
}

async function openScpiTransport(address: ScpiAddress, o: OpenMeterOptions): Promise<ScpiTransport> {
  switch (address.kind) {
    case 'tcp':
      return connectTcpScpi(address.host, address.port, o.clock);
    case 'serial': {
      const stream = serialStream(address.path, address.baudRate, o);
      await new Promise<void>((resolve, reject) => stream.open((err) => (err ? reject(err) : resolve())));
      return new StreamScpiTransport(stream, o.clock, address.path);
    }
    case 'usbtmc': {
      const dev = await openUsbtmcDevice(address.vendorId, address.productId, address.serial);
      const id = `usbtmc:${address.vendorId.toString(16).padStart(4, '0')}:${address.productId.toString(16).padStart(4, '0')}`;
      return new UsbtmcTransport(dev, id);
    }
  }
}

const WT_MODELS = /^WT3(10E?|00E?|32E?|33E?)$/i;

/** Open the reference meter a jig file's `meters` entry describes. */
export async function openMeter(spec: MeterSpec, o: OpenMeterOptions): Promise<ReferenceMeter> {
  const ids = { ...(spec.serial !== undefined ? { serial: spec.serial } : {}), ...(spec.calibrationDate !== undefined ? { calibrationDate: spec.calibrationDate } : {}) };
  if (spec.kind === 'pzem004t') {
    return Pzem004tMeter.open({
      stream: serialStream(spec.port, 9600, o),
      clock: o.clock,
      address: spec.address,
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.retry ? { retry: o.retry } : {}),
      ...(o.log ? { log: o.log } : {}),
      ...ids,
    });
  }
  if (!WT_MODELS.test(spec.model)) {
    throw new ConfigError(`SCPI meter model "${spec.model}" is not supported (WT310E/WT300E family)`, { step: 'open-meter' });
  }
  const transport = await openScpiTransport(parseScpiAddress(spec.address), o);
  const scpi = new ScpiClient(transport, { ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), ...(o.log ? { log: o.log } : {}) });
  try {
    return await Wt310eMeter.open(scpi, { clock: o.clock, element: o.channel ?? 1, ...ids });
  } catch (e) {
    await scpi.close().catch(() => undefined);
    throw e;
  }
}
