import type { Clock } from '../core/clock.ts';
import { TimeoutError } from '../core/errors.ts';
import type { JigBoard } from './jig-board.ts';

/** A probe goes out at most this often (the heartbeat's tick). */
export const LIVENESS_PROBE_MS = 100;
/**
 * An unanswered probe older than this marks the board silent. Generous against event-loop lag
 * on a loaded host (a REPORT_VERSION round trip is under 1 ms of wire time at 57600 baud).
 */
export const LIVENESS_TIMEOUT_MS = 400;
/**
 * Stated bound: a board that stops answering is marked lost at most this long after its last
 * answer (the next probe leaves within one period, then its timeout runs).
 */
export const SILENT_BOARD_DETECTION_MS = LIVENESS_PROBE_MS + LIVENESS_TIMEOUT_MS;

/** The Firmata call a probe uses (firmata.js `reportVersion`: F9 out, F9 major minor back). */
interface ProbeIo {
  reportVersion(cb: () => void): void;
}

/**
 * Watches that a board with an open port still answers: call tick() periodically (the heartbeat
 * does, every 100 ms, for as long as mains may be on). One REPORT_VERSION probe is in flight at a
 * time; when one stays unanswered for LIVENESS_TIMEOUT_MS the board is marked silent, which the
 * interlock sees as a lost link: it trips and drives everything off through what it still
 * controls, and the heartbeat stops, so the watchdog relay drops mains even if the board never
 * executes another command.
 */
export class BoardLiveness {
  readonly #jb: JigBoard;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  #probeSentAt: number | undefined;
  #lastAnswerAt: number;

  constructor(jb: JigBoard, clock: Clock, timeoutMs = LIVENESS_TIMEOUT_MS) {
    this.#jb = jb;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#lastAnswerAt = clock.now();
  }

  /** Clock time of the last probe answer (or of the start). */
  get lastAnswerAt(): number {
    return this.#lastAnswerAt;
  }

  /** Send a probe if none is in flight; mark the board silent if the one in flight is too old. */
  tick(): void {
    if (!this.#jb.connected) return;
    const now = this.#clock.now();
    if (this.#probeSentAt !== undefined) {
      if (now - this.#probeSentAt >= this.#timeoutMs) {
        this.#jb.markSilent(
          new TimeoutError(`I/O board ${this.#jb.name}: no answer to REPORT_VERSION within ${this.#timeoutMs} ms (port open, board silent)`, {
            step: 'board-liveness',
            unit: this.#jb.name,
            lastAnswerAt: this.#lastAnswerAt,
          }),
        );
      }
      return;
    }
    const sent = now;
    this.#probeSentAt = sent;
    (this.#jb.board.io as unknown as ProbeIo).reportVersion(() => {
      if (this.#probeSentAt !== sent) return;
      this.#probeSentAt = undefined;
      this.#lastAnswerAt = this.#clock.now();
    });
  }

  /** Forget a probe in flight (the heartbeat stopped; its answer no longer matters). */
  reset(): void {
    this.#probeSentAt = undefined;
    this.#lastAnswerAt = this.#clock.now();
  }
}
