import type { Clock } from '../../rig/core/clock.ts';
import { DutError, InstrumentError } from '../../rig/core/errors.ts';
import type { ObkEnergy } from '../../rig/dut/obk-http-client.ts';
import type { MeterReading } from '../../rig/meter/reference-meter.ts';

/** What sampling needs of the plug and the reference (the HTTP client and a ReferenceMeter satisfy it). */
export interface WindowSources {
  clock: Clock;
  plugEnergy(): Promise<ObkEnergy | undefined>;
  reference(): Promise<MeterReading>;
  /** The reference's update interval, ms (a reading shows an interval this long that ended up to this long ago). */
  referenceUpdateMs?: number;
  signal?: AbortSignal;
  /**
   * The mains supply this slot shares with others: a window (or a reference reading) during which a
   * switch somewhere on it moved the voltage is not kept (each slot's own `cleanAfter` only covers
   * its own switches). Absent: nothing else switches on this slot's feed.
   */
  supply?: SupplyWatch;
}

/**
 * What a slot's metering sees of the switching on its mains supply (the station implements it from
 * every slot's load and mains relay writes on the same feed).
 */
export interface SupplyWatch {
  /**
   * Whether a switch on the supply that can move its voltage beyond what the metering budget covers
   * was under way at any moment of [from, to] (clock ms): from the write being issued until the
   * contact has surely moved after its confirmation; one still unconfirmed counts up to now.
   */
  disturbedBetween(from: number, to: number): boolean;
  /**
   * This slot's window run: expected to end at `until` (clock ms), or over (undefined). A slot about
   * to switch a big load waits for runs of others that end within a window or so (see beforeSwitch).
   */
  measuring?(until: number | undefined): void;
  /**
   * Before this slot switches `load` (on or off): when the switch would step the supply's voltage,
   * wait (bounded, about a window) for the other slots' window runs that are about to end, so their
   * last window is not lost to it. Never throws; an aborted signal ends the wait.
   */
  beforeSwitch?(load: { watts: number; pf: number }, signal?: AbortSignal): Promise<void>;
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
  /** Values (percent; the PF error in PF units) of the quantities the last attempt left marginal: what the retest must resolve. */
  marginal: Partial<Record<'volts' | 'amps' | 'watts' | 'pf', number>>;
  /** The load stayed on after the last window (a retest follows at once): the next attempt can continue the run. */
  loadStayedOn: boolean;
}

export function emptyWindowPool(): WindowPool {
  return { windows: [], runs: 0, consecutive: true, marginal: {}, loadStayedOn: false };
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
/** Windows dropped in a row for switching on the shared supply before the step gives up (no clean second in sight). */
const MAX_SUPPLY_DROPS = 30;
/** Windows a run takes beyond its count to get one that follows a kept window. */
const MAX_FOLLOWER_EXTRA = 3;

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
 * and a half and takes the reading as it is (use sampleQuietWindows there).
 *
 * `cleanAfter` (clock ms, e.g. the moment a load switch was confirmed plus any settling time): only
 * windows known to have started after it are kept, with a reference reading whose update interval
 * began after it too. A window starts at the boundary before it, and
 * a boundary seen as a change lies after the moment the last poll that still showed the old values
 * was sent, so a window is kept when that moment is not before `cleanAfter`; the window a switch
 * fell in (it mixes two loads) is never kept, and a settling time costs no more than the windows it
 * overlaps. `count` may be a function of the first window kept (planning from a reading that shows
 * the new load, with the instrument's ranges).
 */
export async function sampleAlignedWindows(
  src: WindowSources,
  count: number | ((first: AlignedWindow) => number),
  o: { cleanAfter?: number; continues?: AlignedWindow } = {},
): Promise<WindowRun> {
  const windows: AlignedWindow[] = [];
  if (o.cleanAfter !== undefined && o.cleanAfter > src.clock.now()) await src.clock.sleep(o.cleanAfter - src.clock.now(), src.signal);
  // When the last poll that showed `prev` was sent: the next boundary seen lies after it.
  let prevShownSince = src.clock.now();
  let prev = await energy(src);
  let lastSeen = o.continues?.seenAt ?? src.clock.now();
  // Whether the window now running started after cleanAfter (a continued run's is adjacent, clean).
  let runningIsClean = o.continues !== undefined || o.cleanAfter === undefined;
  // The earliest the running window can have started (for the shared supply's check): after the
  // last poll that still showed the window before it; unknown at the start: up to a late window ago.
  let runningStartLow = o.continues !== undefined ? o.continues.seenAt - 2 * POLL_MS : src.clock.now() - 1.5 * WINDOW_MS;
  let consecutive = true;
  // A clean window was dropped for a switch on the shared supply since the last one kept.
  let droppedSinceKept = false;
  let dropped = 0;
  const before: Array<{ snapshot: ObkEnergy; adjacent: boolean }> = [];
  // A function decides the count from the first window taken (its reading shows this load's ranges).
  let total = typeof count === 'number' ? count : 1;
  // PF = P/(V·I) takes the stale one of V/I from the window before: a run of two or more needs one
  // window whose previous one was kept (drops for the supply can leave none): then take more.
  const lacksFollower = (): boolean => windows.length >= 2 && !windows.some((w) => w.follows) && windows.length < total + MAX_FOLLOWER_EXTRA;
  try {
    return await takeWindows();
  } finally {
    src.supply?.measuring?.(undefined);
  }

  async function takeWindows(): Promise<WindowRun> {
    while (windows.length < total || lacksFollower()) {
      src.supply?.measuring?.(src.clock.now() + (total - windows.length) * WINDOW_MS + 2 * POLL_MS);
      const deadline = src.clock.now() + 1.5 * WINDOW_MS;
      let cur = prev;
      let curSent = prevShownSince;
      while (sameWindow(cur, prev) && src.clock.now() < deadline) {
        await src.clock.sleep(POLL_MS, src.signal);
        const sent = src.clock.now();
        cur = await energy(src);
        curSent = sent;
        if (sameWindow(cur, prev)) prevShownSince = sent;
      }
      const seenAt = src.clock.now();
      const boundaryAfter = prevShownSince;
      // The reference's reading must be clean too: it shows an update interval that ended up to one
      // interval before the query, so it began at most two intervals before it.
      const refSent = src.clock.now();
      const refClean = o.cleanAfter === undefined || refSent - 2 * (src.referenceUpdateMs ?? 0) >= o.cleanAfter;
      const ref = runningIsClean && refClean ? await src.reference() : undefined;
      // A switch elsewhere on the supply while the window ran or the reading's interval did: a mix of two mains levels.
      const supplyQuiet = ref === undefined || src.supply === undefined || !src.supply.disturbedBetween(Math.min(runningStartLow, refSent - 2 * (src.referenceUpdateMs ?? 0)), src.clock.now());
      if (ref !== undefined && supplyQuiet) {
        const i = windows.length;
        // A gap of more than a window and a half since the last boundary means one was missed; a
        // window dropped for the supply ends the run too (the counts no longer telescope across it).
        if (i > 0 && (seenAt - lastSeen > 1.5 * WINDOW_MS || droppedSinceKept)) consecutive = false;
        // The stale one of V/I was counted in the window before: only valid when that one was kept (or clean).
        windows.push({ plug: cur, ref, seenAt, offsetMs: Math.max(0, ref.timestamp - seenAt), fresh: { voltage: true, current: true }, follows: !droppedSinceKept && (i > 0 || (o.continues !== undefined && seenAt - lastSeen <= 1.5 * WINDOW_MS)) });
        before.push({ snapshot: prev, adjacent: seenAt - lastSeen <= 1.5 * WINDOW_MS && !droppedSinceKept });
        droppedSinceKept = false;
        dropped = 0;
        if (i === 0 && typeof count === 'function') total = Math.max(1, count(windows[0]!));
      } else if (ref !== undefined) {
        droppedSinceKept = true;
        if (++dropped > MAX_SUPPLY_DROPS) throw new InstrumentError(`metering: ${dropped} windows in a row mixed two mains levels (switching on the shared supply); no clean window to keep`, { step: 'metering' });
      }
      // The window that starts at this boundary is clean when the boundary is known to lie after cleanAfter.
      runningIsClean = o.cleanAfter === undefined || boundaryAfter >= o.cleanAfter;
      runningStartLow = boundaryAfter;
      lastSeen = seenAt;
      prev = cur;
      prevShownSince = curSent;
      // Nothing changes within the next ~0.9 s: sleep most of the window, then poll again.
      const sleep = WINDOW_MS - POLL_MS * 2 - (src.clock.now() - seenAt);
      if (sleep > 0 && (windows.length < total || lacksFollower())) await src.clock.sleep(sleep, src.signal);
    }
    markFreshness(windows, before);
    return { windows, priors: before, consecutive };
  }
}

/** The plug's readings at no load, and one reference reading taken alongside. */
export interface QuietRun {
  /** The snapshots, one window apart, each of a window that started after `cleanAfter`. */
  readings: Array<{ plug: ObkEnergy; seenAt: number }>;
  reference: MeterReading;
}

/**
 * `count` readings of windows that started after `cleanAfter`, at no load, where a boundary shows
 * only when some value moves (the voltage in every other window; nothing else at zero power): wait
 * for one change (a boundary after `cleanAfter`), then read one window length and a margin later,
 * `count` times (each reading is the window last published, which began at or after that boundary).
 * If nothing moves for three windows, the plug shows the same snapshot throughout (zero power and a
 * voltage count that repeats, or a driver that stopped) and it is read as it is. The reference is
 * read once, while the windows run.
 */
export async function sampleQuietWindows(src: WindowSources, count: number, o: { cleanAfter: number }): Promise<QuietRun> {
  if (o.cleanAfter > src.clock.now()) await src.clock.sleep(o.cleanAfter - src.clock.now(), src.signal);
  const first = await energy(src);
  const deadline = src.clock.now() + 3 * WINDOW_MS;
  let cur = first;
  while (sameWindow(cur, first) && src.clock.now() < deadline) {
    await src.clock.sleep(POLL_MS, src.signal);
    cur = await energy(src);
  }
  let boundary = src.clock.now();
  const reference = src.reference();
  const readings: QuietRun['readings'] = [];
  let last = cur;
  for (let i = 0; i < count; i++) {
    await src.clock.sleep(Math.max(0, boundary + WINDOW_MS + QUIET_MARGIN_MS - src.clock.now()), src.signal);
    let plug = await energy(src);
    // With power flowing the counter moves every window: the same snapshot is the same window (a late tick).
    const until = src.clock.now() + 1.5 * WINDOW_MS;
    while (last.power > 0 && sameWindow(plug, last) && src.clock.now() < until) {
      await src.clock.sleep(POLL_MS, src.signal);
      plug = await energy(src);
    }
    boundary = Math.max(boundary + WINDOW_MS, src.clock.now() - QUIET_MARGIN_MS);
    readings.push({ plug, seenAt: src.clock.now() });
    last = plug;
  }
  return { readings, reference: await reference };
}

/** How long after an expected boundary a quiet reading is taken (poll granularity plus the plug's late ticks). */
const QUIET_MARGIN_MS = 80;

/** A run continued by another taken right after it: one run when no boundary was missed between them. */
export function joinRuns(a: WindowRun, b: WindowRun): WindowRun {
  const windows = [...a.windows, ...b.windows];
  const priors = [...a.priors, ...b.priors];
  markFreshness(windows, priors);
  return { windows, priors, consecutive: a.consecutive && b.consecutive && (b.priors[0]?.adjacent ?? true) };
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
