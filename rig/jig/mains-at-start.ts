import type { Clock } from '../core/clock.ts';
import { TimeoutError } from '../core/errors.ts';
import type { FirmataIo } from './interlock-j5.ts';
import type { JigBoard } from './jig-board.ts';
import { pinActiveLow, pinNumber, type JigSpec } from './jig-config.ts';

/** One mains relay output as the board reported it before the station wrote anything. */
export interface MainsAtStart {
  board: string;
  pin: number;
  /** The slots this relay feeds (several for a mains group). */
  slots: number[];
  /** PIN_STATE_RESPONSE: the pin's mode and its latched output level (StandardFirmata's pinState). */
  mode: number | undefined;
  state: number | undefined;
  /** The relay coil is driven: mains is switched on at this output. */
  energised: boolean;
}

/**
 * Ask each board for the state of every mains relay output (Firmata PIN_STATE_QUERY
 * `F0 6D pin F7`, answered by PIN_STATE_RESPONSE `F0 6E pin mode state… F7`) before the interlocks
 * bind and drive everything off. A board that kept running after the station that drove it died (no
 * auto-reset on open) still holds the level it was left at: an output found energised is reported
 * by `jig check` and the station start, then driven off like every other output. Inferring it from
 * a meter alone misses a jig whose meter is shared, unselected or not on the live side.
 */
export async function readMainsAtStart(jig: JigSpec, boards: ReadonlyMap<string, JigBoard>, slots: readonly number[], o: { clock: Clock; timeoutMs?: number }): Promise<MainsAtStart[]> {
  const outputs = new Map<string, { board: string; pin: number; activeLow: boolean; slots: number[] }>();
  for (const s of jig.slots) {
    if (!slots.includes(s.id) || !boards.has(s.io)) continue;
    const pin = pinNumber(s.pins.mains);
    const key = `${s.io}:${pin}`;
    const known = outputs.get(key);
    if (known) known.slots.push(s.id);
    else outputs.set(key, { board: s.io, pin, activeLow: pinActiveLow(s.pins.mains), slots: [s.id] });
  }
  const timeoutMs = o.timeoutMs ?? 500;
  const out: MainsAtStart[] = [];
  for (const x of outputs.values()) {
    const jb = boards.get(x.board)!;
    const io = jb.board.io as FirmataIo & { pins: Array<{ mode?: number; state?: number }> };
    await new Promise<void>((resolve, reject) => {
      const cancel = o.clock.at(o.clock.now() + timeoutMs, () => reject(new TimeoutError(`I/O board ${x.board}: no PIN_STATE_RESPONSE for mains relay pin ${x.pin} within ${timeoutMs} ms`, { step: 'open-station', unit: x.board, pin: x.pin })));
      io.queryPinState(x.pin, () => {
        cancel();
        resolve();
      });
    });
    const p = io.pins[x.pin];
    const state = p?.state;
    const energised = state !== undefined && (state !== 0) !== x.activeLow;
    out.push({ board: x.board, pin: x.pin, slots: x.slots, mode: p?.mode, state, energised });
  }
  return out;
}

/** The operator's words for an output found energised. */
export function describeMainsAtStart(m: MainsAtStart): string {
  return `mains relay output pin ${m.pin} of I/O board ${m.board} reads ${m.state} (relay coil driven: mains on, unless a heartbeat watchdog in series dropped it) before anything was switched (left on by a station that died? a board that kept running?); driven off`;
}
