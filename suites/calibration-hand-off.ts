import type { SlotHardware } from './slot-hardware.ts';
import type { AlignedWindow } from './metrology/sample-windows.ts';

/**
 * The calibration point's as-found windows, handed from the metering suite to the calibration that
 * follows it at the same load, so the calibration averages windows already taken instead of
 * switching the load off and on again and taking them anew. They are the same kind of window: clean
 * (begun after the load switch and its settling), paired with the reference reading of the same
 * second, counted with the factors the unit arrived with, at the calibration load.
 *
 * The calibrate suite states its load when it is built (`load`); the metering step measuring that
 * load as its suite's last point keeps the load on and leaves its windows here (`windows`, `leftAt`);
 * the calibration step takes them only if nothing can have changed what the plug measured since:
 * within HAND_OFF_MAX_GAP_MS (only the calibrate suite's mains-on/relay-closed step can have run,
 * which switches nothing that is already on) and with the interlock showing mains on, the calibration
 * load on and every other load off. Taking them clears them (a retry of the calibration starts afresh).
 */
export interface CalibrationHandOff {
  load: string;
  windows?: readonly AlignedWindow[];
  leftAt?: number;
}

/** Longest gap (ms) from the metering step's end to the calibration's start that still hands its windows over. */
export const HAND_OFF_MAX_GAP_MS = 2000;

/** The calibrate suite, when built: the metering suite's last point at `load` is to hand its windows over. */
export function expectHandOff(hw: Pick<SlotHardware, 'calibrationHandOff'>, load: string): void {
  hw.calibrationHandOff = { load };
}

/** Whether a metering step at `load` is to keep the load on and leave its windows for the calibration. */
export function handOffWanted(hw: Pick<SlotHardware, 'calibrationHandOff'>, load: string | undefined): boolean {
  return load !== undefined && hw.calibrationHandOff?.load === load;
}

/** The metering step leaves its windows (every attempt's, pooled) at clock time `at`. */
export function leaveHandOff(hw: Pick<SlotHardware, 'calibrationHandOff'>, windows: readonly AlignedWindow[], at: number): void {
  const h = hw.calibrationHandOff;
  if (!h) return;
  h.windows = [...windows];
  h.leftAt = at;
}

/** Forget windows left earlier (a metering attempt starting over, or one that failed before it measured). */
export function dropHandOff(hw: Pick<SlotHardware, 'calibrationHandOff'>): void {
  const h = hw.calibrationHandOff;
  if (h) {
    delete h.windows;
    delete h.leftAt;
  }
}

/**
 * The windows the calibration at `load` may average as its first ones, or undefined (then it
 * switches the load on and takes all of its own). Clears what it took either way.
 */
export function takeHandOff(hw: Pick<SlotHardware, 'calibrationHandOff' | 'io'>, load: string, now: number): readonly AlignedWindow[] | undefined {
  const h = hw.calibrationHandOff;
  const windows = h?.windows;
  const leftAt = h?.leftAt;
  if (h) dropHandOff(hw);
  if (!h || h.load !== load || !windows || windows.length === 0 || leftAt === undefined) return undefined;
  if (now - leftAt > HAND_OFF_MAX_GAP_MS || now < leftAt) return undefined;
  const s = hw.io.interlock.state();
  if (s.mains !== 'on' || s.fault !== undefined) return undefined;
  for (const [name, level] of Object.entries(s.loads)) if (level !== (name === load ? 'on' : 'off')) return undefined;
  return windows;
}
