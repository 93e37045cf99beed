import type { Clock } from '../../rig/core/clock.ts';
import { TransportError } from '../../rig/core/errors.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import type { EndpointRegistry } from '../../rig/endpoints/registry.ts';
import type { JigSpec } from '../../rig/jig/jig-config.ts';
import { registerVirtualBus } from '../serial/bus-endpoints.ts';
import { SIM_PREFIX, VirtualSerialBus } from '../serial/virtual-binding.ts';
import { VirtualJig, type VirtualJigOptions } from './virtual-jig.ts';

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

const startedListeners = new Set<(jig: InProcessJig) => void>();

/**
 * Be told of every in-process virtual jig started from now on (a test checks that a refused command
 * left each one de-energised). Returns the unsubscribe.
 */
export function onVirtualJigStarted(listener: (jig: InProcessJig) => void): () => void {
  startedListeners.add(listener);
  return () => {
    startedListeners.delete(listener);
  };
}

/**
 * The in-process virtual jig: every `sim:` device of the jig file on one virtual serial bus, its
 * USB relay boards and hubs on a fake USB bus, both registered as endpoint resolvers in
 * `endpoints` (default: a fresh registry of the machine's native endpoints).
 */
export function startVirtualJig(
  jig: JigSpec,
  o: { clock: Clock; seed?: number; endpoints?: EndpointRegistry } & Pick<VirtualJigOptions, 'plugModel' | 'wifi' | 'network' | 'http' | 'defects' | 'httpFaults' | 'chipOptions' | 'preflashed'>,
): InProcessJig {
  const { clock, seed, endpoints: given, ...plugs } = o;
  const endpoints = given ?? nativeEndpoints();
  const bus = new VirtualSerialBus(clock);
  const vj = VirtualJig.fromSpec(jig, { clock, seed: seed ?? 1, ...plugs });
  vj.attachTo(bus);
  registerVirtualBus(endpoints, bus);
  endpoints.usb.register({ name: 'virtual jig USB', matches: (r) => vj.usb.models(r.ref), resolve: () => vj.usb.source });
  // A slot's `plug.url` "sim:<name>" is that slot's virtual plug, wherever it serves HTTP right now.
  const plugSlot = (address: string): number | undefined => jig.slots.find((s) => s.plug?.url === address)?.id;
  endpoints.http.register({
    name: 'virtual jig plug (sim:)',
    matches: (a) => a.startsWith(SIM_PREFIX) && plugSlot(a) !== undefined,
    resolve: (a) => {
      const slot = plugSlot(a)!;
      const url = vj.slot(slot).plugUrl();
      if (!url) throw new TransportError(`virtual plug ${a} (slot ${slot}) serves no HTTP: it is not powered or does not run OpenBeken`, { slot, step: 'locate-plug', endpoint: a });
      return { baseUrl: url, via: `virtual plug of slot ${slot}` };
    },
  });
  const started = { bus, vj, endpoints };
  for (const listener of startedListeners) listener(started);
  return started;
}
