import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import type { EndpointRegistry } from '../../rig/endpoints/registry.ts';
import { SIM_PREFIX, type VirtualSerialBus } from './virtual-binding.ts';

/**
 * Let `registry` resolve `sim:<name>` serial paths to the virtual bus. A virtual port reports its
 * own unplug (the binding fails the pending read), so it needs no presence check. Returns the
 * function that removes the resolver.
 */
export function registerVirtualBus(registry: EndpointRegistry, bus: VirtualSerialBus): () => void {
  return registry.serial.register({
    name: 'virtual serial bus (sim:)',
    matches: (path) => path.startsWith(SIM_PREFIX),
    resolve: (path) => ({ path, binding: bus.binding, via: 'virtual serial bus' }),
  });
}

/** The machine's endpoints plus `sim:` paths on `bus` (tests, benchmarks, `--sim`). */
export function busEndpoints(bus: VirtualSerialBus): EndpointRegistry {
  const registry = nativeEndpoints();
  registerVirtualBus(registry, bus);
  return registry;
}
