/**
 * What is physically true on one slot of the virtual jig, independent of what any software
 * believes. Safety tests assert on its history (e.g. mains and UART never connected at once).
 */
export interface SlotPhysicalState {
  /** The plug's input terminals are live (jig mains relay closed, supply present). */
  mainsEnergised: boolean;
  /** The UART-isolation relay connects the USB-UART (and the jig's 3V3/CEN) to the module. */
  uartConnected: boolean;
  /** The jig's 3V3 reaches the module. */
  supply3v3: boolean;
  /** The module's CEN is pulled low (chip held in reset). */
  cenLow: boolean;
  /** The plug's own relay contact is closed. */
  plugRelayClosed: boolean;
  /** Load-bank relays that are closed, by name. */
  loadsOn: string[];
  lidClosed: boolean;
  estopPressed: boolean;
}

export interface PhysicalChange {
  /** Clock time of the change, ms. */
  at: number;
  /** Fields that differ from the previous entry (all fields for the first entry). */
  changed: Array<keyof SlotPhysicalState>;
  state: SlotPhysicalState;
}

function same(a: SlotPhysicalState[keyof SlotPhysicalState], b: SlotPhysicalState[keyof SlotPhysicalState]): boolean {
  return Array.isArray(a) && Array.isArray(b) ? a.length === b.length && a.every((x, i) => x === b[i]) : a === b;
}

/** Append-only record of a slot's physical state; one entry per instant something changed. */
export class PhysicalHistory {
  readonly #entries: PhysicalChange[] = [];
  readonly #listeners = new Set<(change: PhysicalChange) => void>();

  record(at: number, state: SlotPhysicalState): void {
    const prev = this.#entries.at(-1)?.state;
    const keys = Object.keys(state) as Array<keyof SlotPhysicalState>;
    const changed = prev ? keys.filter((k) => !same(prev[k], state[k])) : keys;
    if (changed.length === 0) return;
    const entry = { at, changed, state: { ...state, loadsOn: [...state.loadsOn] } };
    this.#entries.push(entry);
    for (const fn of this.#listeners) fn(entry);
  }

  current(): SlotPhysicalState | undefined {
    return this.#entries.at(-1)?.state;
  }

  entries(): readonly PhysicalChange[] {
    return this.#entries;
  }

  /** Entries where `predicate` held, e.g. (s) => s.mainsEnergised && s.uartConnected. */
  where(predicate: (s: SlotPhysicalState) => boolean): PhysicalChange[] {
    return this.#entries.filter((e) => predicate(e.state));
  }

  onChange(listener: (change: PhysicalChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
