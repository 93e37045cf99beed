import type { Clock } from '../../rig/core/clock.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import type { EndpointRegistry } from '../../rig/endpoints/registry.ts';
import type { JigSpec } from '../../rig/jig/jig-config.ts';
import { registerVirtualBus } from '../serial/bus-endpoints.ts';
import { SIM_PREFIX, VirtualSerialBus } from '../serial/virtual-binding.ts';
import { VirtualJig } from './virtual-jig.ts';

/** Does this jig name any in-process virtual device (`sim:` port)? */
export function usesSim(jig: JigSpec): boolean {
  const ports = [
    ...Object.values(jig.ioBoards).map((b) => b.port),
    ...Object.values(jig.meters).map((m) => (m.kind === 'pzem004t' ? m.port : m.address)),
    ...jig.slots.map((s) => s.uart.port),
  ];
  return ports.some((p) => p?.startsWith(SIM_PREFIX));
}

export interface InProcessJig {
  bus: VirtualSerialBus;
  vj: VirtualJig;
  /** The registry the virtual jig's resolvers were registered in. */
  endpoints: EndpointRegistry;
}

/**
 * The in-process virtual jig: every `sim:` device of the jig file on one virtual serial bus, its
 * USB relay boards and hubs on a fake USB bus, both registered as endpoint resolvers in
 * `endpoints` (default: a fresh registry of the machine's native endpoints).
 */
export function startVirtualJig(jig: JigSpec, o: { clock: Clock; seed?: number; endpoints?: EndpointRegistry }): InProcessJig {
  const endpoints = o.endpoints ?? nativeEndpoints();
  const bus = new VirtualSerialBus(o.clock);
  const vj = VirtualJig.fromSpec(jig, { clock: o.clock, seed: o.seed ?? 1 });
  vj.attachTo(bus);
  registerVirtualBus(endpoints, bus);
  return { bus, vj, endpoints };
}
