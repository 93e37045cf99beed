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
  /**
   * Whether V / I were counted in this window. They alternate on CF1: each window shows one fresh
   * and the other as counted a window earlier (re-divided by this window's length), so a value
   * equal to the one the window before showed is stale: its count belongs to the previous second
   * (which, after a load switch, mixed two loads).
   */
  fresh: { voltage: boolean; current: boolean };
  /** The window before this one was taken too, so its stale V or I is a clean count (PF = P/(V·I) is valid). */
  follows: boolean;
}

/**
 * One measurement step's windows across its attempts: a retest adds its run to the earlier ones
 * (each run telescopes its counts on its own), so it narrows U instead of starting over.
 */
export interface WindowPool {
  windows: AlignedWindow[];
  runs: number;
  /** Every run was consecutive. */
  consecutive: boolean;
  /** Values (percent) of the quantities the last attempt left marginal: what the retest must resolve. */
  marginal: Partial<Record<'volts' | 'amps' | 'watts', number>>;
}

export function emptyWindowPool(): WindowPool {
  return { windows: [], runs: 0, consecutive: true, marginal: {} };
}

export interface WindowRun {
  windows: AlignedWindow[];
  /** Per window: the snapshot published just before it and whether that was the adjacent window. */
  priors: Array<{ snapshot: ObkEnergy; adjacent: boolean }>;
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
 * and a half and takes the reading as it is. `discardFirst`: the window running when the sampling
 * starts is thrown away (a load was just switched: that window mixes two loads), which costs less
 * than a fixed settling wait and never keeps a mixed window. `count` may be a function of the first
 * window taken (planning from a reading that shows the new load, with the instrument's ranges).
 */
export async function sampleAlignedWindows(
  src: WindowSources,
  count: number | ((first: AlignedWindow) => number),
  o: { discardFirst?: boolean; continues?: AlignedWindow } = {},
): Promise<WindowRun> {
  const windows: AlignedWindow[] = [];
  let prev = await energy(src);
  let lastSeen = o.continues?.seenAt ?? src.clock.now();
  let consecutive = true;
  const before: Array<{ snapshot: ObkEnergy; adjacent: boolean }> = [];
  // A function decides the count from the first window taken (its reading shows this load's ranges).
  let total = typeof count === 'number' ? count : 1;
  for (let i = o.discardFirst ? -1 : 0; i < total; i++) {
    const deadline = src.clock.now() + 1.5 * WINDOW_MS;
    let cur = prev;
    while (sameWindow(cur, prev) && src.clock.now() < deadline) {
      await src.clock.sleep(POLL_MS, src.signal);
      cur = await energy(src);
    }
    const seenAt = src.clock.now();
    if (i >= 0) {
      const ref = await src.reference();
      // A gap of more than a window and a half since the last boundary means one was missed.
      if (i > 0 && seenAt - lastSeen > 1.5 * WINDOW_MS) consecutive = false;
      windows.push({ plug: cur, ref, seenAt, offsetMs: Math.max(0, ref.timestamp - seenAt), fresh: { voltage: true, current: true }, follows: i > 0 || (o.continues !== undefined && seenAt - lastSeen <= 1.5 * WINDOW_MS) });
      before.push({ snapshot: prev, adjacent: seenAt - lastSeen <= 1.5 * WINDOW_MS });
      if (i === 0 && typeof count === 'function') total = Math.max(1, count(windows[0]!));
    }
    lastSeen = seenAt;
    prev = cur;
    // Nothing changes within the next ~0.9 s: sleep most of the window, then poll again.
    const sleep = WINDOW_MS - POLL_MS * 2 - (src.clock.now() - seenAt);
    if (sleep > 0 && i < total - 1) await src.clock.sleep(sleep, src.signal);
  }
  markFreshness(windows, before);
  return { windows, priors: before, consecutive };
}

/** A run continued by another taken right after it: one run when no boundary was missed between them. */
export function joinRuns(a: WindowRun, b: WindowRun): WindowRun {
  const windows = [...a.windows, ...b.windows];
  const priors = [...a.priors, ...b.priors];
  markFreshness(windows, priors);
  return { windows, priors, consecutive: a.consecutive && b.consecutive && (b.priors[0]?.adjacent ?? true) };
}

/**
 * Take `count` readings one window apart without waiting for boundaries: at no load nothing the
 * plug publishes moves, so a boundary cannot be seen; each reading is the window last published.
 */
export async function sampleTimedWindows(src: WindowSources, count: number): Promise<WindowRun> {
  const windows: AlignedWindow[] = [];
  for (let i = 0; i < count; i++) {
    await src.clock.sleep(WINDOW_MS, src.signal);
    const plug = await energy(src);
    const seenAt = src.clock.now();
    const ref = await src.reference();
    windows.push({ plug, ref, seenAt, offsetMs: Math.max(0, ref.timestamp - seenAt), fresh: { voltage: true, current: true }, follows: false });
  }
  return { windows, priors: windows.map((w) => ({ snapshot: w.plug, adjacent: false })), consecutive: false };
}

/**
 * Which of V and I each window counted. The driver toggles SEL every window, so within a stretch of
 * adjacent windows the counted quantity alternates; which parity it is follows from the evidence:
 * a stale value is the previous one re-divided by this window's length, so it repeats exactly unless
 * the window length changed, while a counted one changes unless its count happens to repeat (likely
 * at a few dozen counts). The parity contradicted least by "changed where it should be stale" wins.
 * `before[i]`: the snapshot published just before window i and whether it was the adjacent window.
 */
export function markFreshness(windows: AlignedWindow[], before: ReadonlyArray<{ snapshot: ObkEnergy; adjacent: boolean }>): void {
  let start = 0;
  while (start < windows.length) {
    let end = start + 1;
    while (end < windows.length && before[end]!.adjacent) end++;
    // windows[start..end) are adjacent; before[start] is the window right before the first if adjacent.
    const against = [0, 0];
    for (let i = start; i < end; i++) {
      const b = before[i]!;
      if (!b.adjacent) continue;
      const vChanged = windows[i]!.plug.voltage !== b.snapshot.voltage;
      const iChanged = windows[i]!.plug.current !== b.snapshot.current;
      for (const h of [0, 1]) {
        const vFresh = (i - start + h) % 2 === 0;
        if ((vChanged && !vFresh) || (iChanged && vFresh)) against[h]!++;
      }
    }
    const h = against[0]! <= against[1]! ? 0 : 1;
    for (let i = start; i < end; i++) {
      const vFresh = (i - start + h) % 2 === 0;
      windows[i]!.fresh = { voltage: vFresh, current: !vFresh };
      windows[i]!.follows &&= i > start || before[i]!.adjacent;
    }
    start = end;
  }
}

/**
 * The windows that counted quantity q (V or I: the fresh ones; P: all), or all of them when none
 * is marked fresh (a quantity that reads the same twice, e.g. 0).
 */
export function windowsCounting(windows: readonly AlignedWindow[], q: 'voltage' | 'current' | 'power'): AlignedWindow[] {
  if (q === 'power') return [...windows];
  const fresh = windows.filter((w) => w.fresh[q]);
  return fresh.length ? fresh : [...windows];
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
