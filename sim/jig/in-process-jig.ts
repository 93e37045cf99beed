import type { Clock } from '../../rig/core/clock.ts';
import { TransportError } from '../../rig/core/errors.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import type { EndpointRegistry, HttpEndpoint } from '../../rig/endpoints/registry.ts';
import type { HttpAddressResolver } from '../../rig/dut/plug-locator.ts';
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

/** `sim:plug<N>`: slot N's plug on the in-process virtual jig (the address of a slot whose jig entry has no plug section). */
export function simPlugAddress(slotId: number): string {
  return `sim:plug${slotId}`;
}

const SIM_PLUG = /^sim:plug(\d+)$/;

export interface InProcessJig {
  bus: VirtualSerialBus;
  vj: VirtualJig;
  /** The registry the virtual jig's resolvers were registered in. */
  endpoints: EndpointRegistry;
  /**
   * A plug address for locatePlug: a virtual plug's (`sim:plug<N>`, or a slot's `sim:` plug.url) is
   * where it serves HTTP right now, undefined while it serves nothing (unpowered, not OpenBeken yet);
   * any other address through the registry.
   */
  resolvePlug: HttpAddressResolver;
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
  // Slots bound by USB path / serial: the virtual jig's adapters are what a sysfs scan would list.
  const uarts = vj.usbUarts;
  if (uarts) endpoints.usbUarts.register({ name: 'virtual jig USB-UARTs', matches: (r) => r.port === undefined && uarts.has(r), resolve: () => ({ scan: uarts.scan, via: 'virtual jig' }) });
  endpoints.usb.register({ name: 'virtual jig USB', matches: (r) => vj.usb.models(r.ref), resolve: () => vj.usb.source });
  // A slot's `plug.url` "sim:<name>", or `sim:plug<N>` for slot N, is that slot's virtual plug, wherever it serves HTTP right now.
  const plugSlot = (address: string): number | undefined => {
    const named = jig.slots.find((s) => s.plug?.url === address)?.id;
    if (named !== undefined) return named;
    const n = Number(SIM_PLUG.exec(address)?.[1]);
    return jig.slots.some((s) => s.id === n) ? n : undefined;
  };
  const plugEndpoint = (slot: number): HttpEndpoint | undefined => {
    const url = vj.slot(slot).plugUrl();
    return url ? { baseUrl: url, via: `virtual plug of slot ${slot}` } : undefined;
  };
  endpoints.http.register({
    name: 'virtual jig plug (sim:)',
    matches: (a) => a.startsWith(SIM_PREFIX) && plugSlot(a) !== undefined,
    resolve: (a) => {
      const slot = plugSlot(a)!;
      const found = plugEndpoint(slot);
      if (!found) throw new TransportError(`virtual plug ${a} (slot ${slot}) serves no HTTP: it is not powered or does not run OpenBeken`, { slot, step: 'locate-plug', endpoint: a });
      return found;
    },
  });
  const resolvePlug: HttpAddressResolver = (a) => {
    const slot = a.startsWith(SIM_PREFIX) ? plugSlot(a) : undefined;
    return slot === undefined ? endpoints.http.resolve(a) : plugEndpoint(slot);
  };
  const started = { bus, vj, endpoints, resolvePlug };
  for (const listener of startedListeners) listener(started);
  return started;
}
