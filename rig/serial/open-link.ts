import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import { nativeEndpoints } from '../endpoints/native.ts';
import type { EndpointRegistry } from '../endpoints/registry.ts';
import { resolvePresentSerial, VANISH_CHECK_MS } from '../endpoints/serial-port.ts';
import { SerialLink } from './serial-link.ts';

export interface OpenLinkOptions {
  baudRate: number;
  clock: Clock;
  /** Who resolves the path; default: the machine's native endpoints only. */
  endpoints?: EndpointRegistry;
  log?: Logger;
}

/**
 * Open a SerialLink on a jig port, through whichever endpoint resolver claims the path. A device
 * that is not there fails at once; one that vanishes later fails the waiting read.
 */
export async function openLink(path: string, o: OpenLinkOptions): Promise<SerialLink> {
  const ep = resolvePresentSerial(o.endpoints ?? nativeEndpoints(), path);
  return SerialLink.open({
    path: ep.path,
    baudRate: o.baudRate,
    clock: o.clock,
    binding: ep.binding,
    ...(o.log ? { log: o.log } : {}),
    ...(ep.present ? { present: ep.present, vanishCheckMs: VANISH_CHECK_MS } : {}),
  });
}
