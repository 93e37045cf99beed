import type { MainsBranch, MainsNetwork } from '../../mains/mains-network.ts';
import type { Bl0937Chip, Bl0937Input } from './bl0937-chip.ts';

/**
 * A BL0937's input on a mains branch: the divider senses the plug's input terminals (upstream of
 * the relay, so V reads with the relay open: UNCERTAIN for the RMC021), the shunt carries the load
 * current after the relay (the plug's own supply does not pass it). The chip samples it at the
 * midpoints of the stretches it integrates; wire syncOnMainsChange too, so a switch is a stretch
 * boundary and counts from its exact moment.
 */
export function bl0937InputFromBranch(branch: MainsBranch): (atMs: number) => Bl0937Input {
  return (atMs) => {
    const input = branch.measureAt('input', atMs);
    const output = branch.measureAt('output', atMs);
    return { volts: input.volts, amps: output.amps, watts: output.watts };
  };
}

/** Integrate the chip's outputs up to each mains change, before it applies. Returns an unsubscribe function. */
export function syncOnMainsChange(chip: Bl0937Chip, mains: MainsNetwork): () => void {
  return mains.onBeforeChange(() => chip.sync());
}
