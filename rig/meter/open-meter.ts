import type { Clock } from '../core/clock.ts';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { nativeEndpoints } from '../endpoints/native.ts';
import type { EndpointRegistry } from '../endpoints/registry.ts';
import { openSerialPort } from '../endpoints/serial-port.ts';
import type { MeterSpec } from '../jig/jig-config.ts';
import { Pzem004tMeter } from './pzem004t.ts';
import type { ReferenceMeter } from './reference-meter.ts';
import type { RetryPolicy } from './retry.ts';
import { ScpiClient } from './scpi/scpi-client.ts';
import type { ScpiTransport } from './scpi/scpi-transport.ts';
import { StreamScpiTransport } from './scpi/stream-transport.ts';
import { Wt310eMeter } from './scpi/wt310e-meter.ts';

export interface OpenMeterOptions {
  clock: Clock;
  /** Who resolves the meter's port or address; default: the machine's native endpoints only. */
  endpoints?: EndpointRegistry;
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

async function openScpiTransport(address: ScpiAddress, o: OpenMeterOptions): Promise<ScpiTransport> {
  const endpoints = o.endpoints ?? nativeEndpoints();
  if (address.kind !== 'serial') return endpoints.scpi.resolve(address)(o.clock);
  const stream = await openSerialPort(endpoints, address.path, { baudRate: address.baudRate, clock: o.clock, what: 'meter port' });
  return new StreamScpiTransport(stream, o.clock, address.path);
}

const WT_MODELS = /^WT3(10E?|00E?|32E?|33E?)$/i;

/** Open the reference meter a jig file's `meters` entry describes. */
export async function openMeter(spec: MeterSpec, o: OpenMeterOptions): Promise<ReferenceMeter> {
  const ids = { ...(spec.serial !== undefined ? { serial: spec.serial } : {}), ...(spec.calibrationDate !== undefined ? { calibrationDate: spec.calibrationDate } : {}) };
  if (spec.kind === 'pzem004t') {
    const stream = await openSerialPort(o.endpoints ?? nativeEndpoints(), spec.port, { baudRate: 9600, clock: o.clock, what: 'meter port' });
    try {
      return await Pzem004tMeter.open({
        stream,
        clock: o.clock,
        address: spec.address,
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(o.retry ? { retry: o.retry } : {}),
        ...(o.log ? { log: o.log } : {}),
        ...ids,
      });
    } catch (e) {
      await new Promise<void>((res) => (stream.isOpen ? stream.close(() => res()) : res()));
      throw e;
    }
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
