import type { Clock } from '../core/clock.ts';
import { BoardLiveness } from './board-liveness.ts';
import type { JigBoard } from './jig-board.ts';
import { pinNumber, type PinSpec } from './jig-config.ts';

/** Half-period of the heartbeat square wave: one edge every HEARTBEAT_PERIOD_MS. */
export const HEARTBEAT_PERIOD_MS = 100;
/** Edges the charge pump needs before its relay pulls in (fixtures/jigs/README.md). */
export const HEARTBEAT_PULL_IN_EDGES = 2;

/**
 * What the MainsInterlock needs from a heartbeat: holders keep it toggling; it stops when the last
 * one lets go. `acquire` resolves once enough edges went out for the watchdog relay to pull in.
 */
export interface MainsHeartbeat {
  acquire(holder: object): Promise<void>;
  release(holder: object): void;
  running(): boolean;
}

/** The Firmata calls a heartbeat uses (johnny-five's `board.io`). */
interface HeartbeatIo {
  MODES: { OUTPUT: number };
  pinMode(pin: number, mode: number): void;
  digitalWrite(pin: number, value: number): void;
}

/**
 * Toggles one output of a Firmata board every HEARTBEAT_PERIOD_MS while any holder (a slot's
 * interlock whose mains may be on) holds it. The pin feeds a charge-pump watchdog relay in series
 * with the mains contactor coils: if this process dies, however it dies, the toggling stops and the
 * relay drops mains without the host. Writes are not confirmed (Firmata keeps serial order, so the
 * edges reach the board before the mains write that follows them). Every tick also probes that
 * the board still answers (BoardLiveness): a silent board with its port open is marked lost within
 * SILENT_BOARD_DETECTION_MS, which trips the interlock and stops the toggling.
 */
export class BoardHeartbeat implements MainsHeartbeat {
  readonly #jb: JigBoard;
  readonly #pin: number;
  readonly #clock: Clock;
  readonly #holders = new Set<object>();
  #level = 0;
  #edges = 0;
  #cancelTick: (() => void) | undefined;
  #waiters: Array<{ edges: number; resolve: () => void }> = [];
  readonly #liveness: BoardLiveness;

  constructor(jb: JigBoard, pin: PinSpec, clock: Clock) {
    this.#jb = jb;
    this.#pin = pinNumber(pin);
    this.#clock = clock;
    this.#liveness = new BoardLiveness(jb, clock);
  }

  running(): boolean {
    return this.#cancelTick !== undefined && this.#jb.connected;
  }

  acquire(holder: object): Promise<void> {
    this.#holders.add(holder);
    if (!this.#cancelTick) {
      if (!this.#jb.connected) return Promise.resolve();
      const io = this.#jb.board.io as unknown as HeartbeatIo;
      io.pinMode(this.#pin, io.MODES.OUTPUT);
      this.#edges = 0;
      this.#liveness.reset();
      this.#tick();
    }
    if (this.#edges >= HEARTBEAT_PULL_IN_EDGES) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ edges: HEARTBEAT_PULL_IN_EDGES, resolve }));
  }

  release(holder: object): void {
    this.#holders.delete(holder);
    if (this.#holders.size === 0) this.#stop();
  }

  #tick(): void {
    this.#liveness.tick();
    if (!this.#jb.connected) {
      this.#stop();
      return;
    }
    this.#level ^= 1;
    (this.#jb.board.io as unknown as HeartbeatIo).digitalWrite(this.#pin, this.#level);
    this.#edges++;
    this.#cancelTick = this.#clock.at(this.#clock.now() + HEARTBEAT_PERIOD_MS, () => this.#tick());
    const ready = this.#waiters.filter((w) => this.#edges >= w.edges);
    this.#waiters = this.#waiters.filter((w) => this.#edges < w.edges);
    for (const w of ready) w.resolve();
  }

  #stop(): void {
    this.#cancelTick?.();
    this.#cancelTick = undefined;
    // Nobody waits forever: the interlock sees running() false and refuses mains.
    for (const w of this.#waiters.splice(0)) w.resolve();
  }
}

const perBoard = new WeakMap<JigBoard, BoardHeartbeat>();

/** The one heartbeat of a board (slots sharing a board share it), created on first use. */
export function heartbeatOf(jb: JigBoard, pin: PinSpec, clock: Clock): BoardHeartbeat {
  let hb = perBoard.get(jb);
  if (!hb) {
    hb = new BoardHeartbeat(jb, pin, clock);
    perBoard.set(jb, hb);
  }
  return hb;
}
