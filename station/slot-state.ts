import { ConfigError } from '../rig/core/errors.ts';
import type { StepKind } from '../suites/model/step-result.ts';

/**
 * Where a slot stands. The main phases follow the unit through the plan; `record` is the cleanup
 * steps, `safe` the interlock's safe state (always run, from any phase), `done` the finished record.
 */
export const SLOT_PHASES = ['idle', 'power-link', 'flash', 'provision', 'boot', 'verify', 'calibrate', 're-verify', 'record', 'safe', 'done'] as const;
export type SlotPhase = (typeof SLOT_PHASES)[number];

const rank = (p: SlotPhase): number => SLOT_PHASES.indexOf(p);

/** The phase a step belongs to, from its kind, suite and name. */
export function phaseOfStep(step: { name: string; kind?: StepKind; suite?: string }): SlotPhase {
  if (step.kind === 'safe-state') return 'safe';
  if (step.kind === 'cleanup') return 'record';
  const n = step.name;
  switch (step.suite) {
    case undefined:
      return 'power-link';
    case 'flash':
      return /^connect UART/.test(n) ? 'power-link' : 'flash';
    case 'provision':
      return 'provision';
    case 'smoke':
    case 'identity':
      return /mains on|boots/.test(n) ? 'boot' : 'verify';
    case 'calibrate':
      return /^re-verify/.test(n) ? 're-verify' : /^mains on/.test(n) ? 'boot' : 'calibrate';
    default:
      return 'verify';
  }
}

/**
 * One slot's state machine. Main phases only move forward (a plan may skip phases; a step whose
 * phase lies behind, such as a metering point after calibration, stays in the current phase, so
 * metering after `calibrate` counts as `re-verify`); `safe` is reachable from every phase and
 * `done` only from `safe`. Anything else is a bug and throws.
 */
export class SlotStateMachine {
  readonly slot: number;
  #phase: SlotPhase = 'idle';

  constructor(slot: number, from: SlotPhase = 'idle') {
    this.slot = slot;
    this.#phase = from;
  }

  get phase(): SlotPhase {
    return this.#phase;
  }

  /** The phase a step moves the slot into (no change when it belongs to the current one). */
  next(step: { name: string; kind?: StepKind; suite?: string }): SlotPhase {
    let want = phaseOfStep(step);
    // After calibration, verification steps re-verify.
    if (want === 'verify' && rank(this.#phase) >= rank('calibrate') && rank(this.#phase) <= rank('re-verify')) want = 're-verify';
    if (want === 'safe' || want === 'record') return this.to(want);
    return rank(want) > rank(this.#phase) ? this.to(want) : this.#phase;
  }

  to(p: SlotPhase): SlotPhase {
    const from = this.#phase;
    if (p === from) return p;
    const ok =
      from !== 'done' &&
      (p === 'safe' ? true : p === 'done' ? from === 'safe' : from === 'safe' ? false : rank(p) > rank(from));
    if (!ok) throw new ConfigError(`slot ${this.slot}: no transition ${from} -> ${p}`, { slot: this.slot, step: 'slot-state', from, to: p });
    this.#phase = p;
    return p;
  }
}
