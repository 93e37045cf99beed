import type { ObkEnergy } from '../../rig/dut/obk-http-client.ts';
import { mean, windowsCounting, type AlignedWindow } from './sample-windows.ts';

export type CalQuantity = 'voltage' | 'current' | 'power';
const REF_FIELD = { voltage: 'volts', current: 'amps', power: 'watts' } as const;
export const CAL_COMMAND = { voltage: 'VoltageSet', current: 'CurrentSet', power: 'PowerSet' } as const;

/**
 * The factor change each quantity needs: the reference over the plug, averaged over the windows as
 * paired ratios (each window against the reference reading of the same second; V and I only over
 * the windows that counted them).
 */
export function correctionRatios(windows: readonly AlignedWindow[]): Record<CalQuantity, number> {
  const r = (q: CalQuantity): number => mean(windowsCounting(windows, q).map((w) => w.ref[REF_FIELD[q]] / w.plug[q]));
  return { voltage: r('voltage'), current: r('current'), power: r('power') };
}

/**
 * The X to send so that OpenBeken's `cal = X / raw` lands on old·ratio, where raw is the count of the
 * window the plug shows now: that window reads raw·old·500/ticks, so X = ratio·shown·ticks/500. The
 * command must reach the plug before its next boundary (the suite sends it right after one) and
 * `ticks` is 500 unless the window was stretched (a skipped second).
 */
export function commandValue(ratio: number, shownInLastWindow: number, ticks = 500): number {
  return (ratio * shownInLastWindow * ticks) / 500;
}

/** The naive one-point value: the reference reading itself, whatever window the plug divides by. */
export function naiveCommandValue(reference: number): number {
  return reference;
}

/** Text for the command: nine significant digits reach float32 exactly (atof then f32). */
export function commandText(q: CalQuantity, x: number): string {
  return `${CAL_COMMAND[q]} ${x.toPrecision(9)}`;
}

export function shown(e: ObkEnergy, q: CalQuantity): number {
  return e[q];
}
