import type { Clock } from '../../rig/core/clock.ts';
import type { JigSpec } from '../../rig/jig/jig-config.ts';
import { VirtualSerialBus } from '../serial/virtual-binding.ts';
import { VirtualJig } from './virtual-jig.ts';

/** Does this jig name any in-process virtual device (`sim:` port)? */
export function usesSim(jig: JigSpec): boolean {
  const ports = [
    ...Object.values(jig.ioBoards).map((b) => b.port),
    ...Object.values(jig.meters).map((m) => (m.kind === 'pzem004t' ? m.port : m.address)),
    ...jig.slots.map((s) => s.uart.port),
  ];
  return ports.some((p) => p?.startsWith('sim:'));
}

/** The in-process virtual jig: every `sim:` device of the jig file on one virtual serial bus. */
export function startVirtualJig(jig: JigSpec, o: { clock: Clock; seed?: number }): { bus: VirtualSerialBus; vj: VirtualJig } {
  const bus = new VirtualSerialBus(o.clock);
  const vj = VirtualJig.fromSpec(jig, { clock: o.clock, seed: o.seed ?? 1 });
  vj.attachTo(bus);
  return { bus, vj };
}
