import type { Clock } from '../../rig/core/clock.ts';
import { DutError } from '../../rig/core/errors.ts';
import type { ObkEnergy } from '../../rig/dut/obk-http-client.ts';
import type { MeterReading } from '../../rig/meter/reference-meter.ts';

/** What sampling needs of the plug and the reference (the HTTP client and a ReferenceMeter satisfy it). */
export interface WindowSources {
  clock: Clock;
  plugEnergy(): Promise<ObkEnergy | undefined>;
  reference(): Promise<MeterReading>;
  signal?: AbortSignal;
}

/** One of the plug's 1 s windows and the reference reading taken right after its boundary. */
export interface AlignedWindow {
  plug: ObkEnergy;
  ref: MeterReading;
  /** Clock time the new window was seen, ms. */
  seenAt: number;
  /** Time from seeing the window to the reference reading's timestamp, ms (the interval offset). */
  offsetMs: number;
}

export interface WindowRun {
  windows: AlignedWindow[];
  /** Every window was the one right after the previous (no boundary missed). */
  consecutive: boolean;
}

const POLL_MS = 50;
const WINDOW_MS = 1000;

/** A new window is published when any published value moves (the energy counter moves whenever P > 0). */
function sameWindow(a: ObkEnergy, b: ObkEnergy): boolean {
  return a.consumptionTotalWh === b.consumptionTotalWh && a.power === b.power && a.voltage === b.voltage && a.current === b.current;
}

async function energy(src: WindowSources): Promise<ObkEnergy> {
  const e = await src.plugEnergy();
  if (!e) throw new DutError('STATUS 8 has no ENERGY block: the BL0937 driver is not running (template without BL0937 pins?)', { step: 'metering' });
  return e;
}

/**
 * Take `count` windows synchronised to the plug's window boundary: poll STATUS 8 until it changes,
 * then read the reference at once, so both cover (nearly) the same second of the drifting mains.
 * When the values cannot show a boundary (no load: nothing moves) the poll gives up after a window
 * and a half and takes the reading as it is.
 */
export async function sampleAlignedWindows(src: WindowSources, count: number): Promise<WindowRun> {
  const windows: AlignedWindow[] = [];
  let prev = await energy(src);
  let lastSeen = src.clock.now();
  let consecutive = true;
  // The first boundary: wait for a change (up to 1.5 windows).
  for (let i = 0; i < count; i++) {
    const deadline = src.clock.now() + 1.5 * WINDOW_MS;
    let cur = prev;
    while (sameWindow(cur, prev) && src.clock.now() < deadline) {
      await src.clock.sleep(POLL_MS, src.signal);
      cur = await energy(src);
    }
    const seenAt = src.clock.now();
    const ref = await src.reference();
    // A gap of more than a window and a half since the last boundary means one was missed.
    if (i > 0 && seenAt - lastSeen > 1.5 * WINDOW_MS) consecutive = false;
    windows.push({ plug: cur, ref, seenAt, offsetMs: Math.max(0, ref.timestamp - seenAt) });
    lastSeen = seenAt;
    prev = cur;
    // Nothing changes within the next ~0.9 s: sleep most of the window, then poll again.
    const sleep = WINDOW_MS - POLL_MS * 2 - (src.clock.now() - seenAt);
    if (sleep > 0 && i < count - 1) await src.clock.sleep(sleep, src.signal);
  }
  return { windows, consecutive };
}

export function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Mean relative change between consecutive reference readings, percent (the mains' drift per window). */
export function driftPctPerWindow(values: readonly number[]): number {
  if (values.length < 2) return 0;
  let s = 0;
  for (let i = 1; i < values.length; i++) s += Math.abs(values[i]! - values[i - 1]!) / Math.max(Math.abs(values[i - 1]!), 1e-9);
  return (100 * s) / (values.length - 1);
}
