import type { ResultEvent, ResultSink } from '../suites/model/events.ts';
import { cliStderr, type CliStream } from './io.ts';

interface SlotView {
  phase: string;
  step?: string;
  attempt: number;
  done: number;
  planned: number;
  verdict?: string;
  /** Instrument this slot waits for, who holds it, since when (ms, performance clock). */
  waiting?: { instrument: string; heldBy?: number; since: number };
  startedAt: number;
}

/**
 * The operator's live view of a run, on stderr. On a terminal: one line per slot (state, step,
 * progress bar, verdict, instrument wait) redrawn in place; otherwise plain lines when a slot
 * changes state, waits for an instrument or finishes.
 */
export class RunView implements ResultSink {
  readonly #out: CliStream & { readonly columns?: number };
  readonly #tty: boolean;
  readonly #slots = new Map<number, SlotView>();
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(out: CliStream & { readonly columns?: number } = cliStderr()) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    if (this.#tty) {
      this.#timer = setInterval(() => this.#draw(), 250);
      this.#timer.unref();
    }
  }

  emit(e: ResultEvent): void {
    const now = performance.now();
    switch (e.type) {
      case 'slot-started':
        this.#slots.set(e.slot, { phase: 'idle', attempt: 1, done: 0, planned: e.steps.length, startedAt: now });
        break;
      case 'slot-state': {
        const s = this.#slots.get(e.slot);
        if (!s) return;
        s.phase = e.state;
        if (!this.#tty && e.state !== 'done') this.#line(`slot ${e.slot}  ${e.state}${e.step ? `  ${e.step}` : ''}`);
        break;
      }
      case 'step-started': {
        const s = this.#slots.get(e.slot);
        if (!s) return;
        s.step = e.name;
        s.attempt = e.attempt;
        if (!this.#tty && e.attempt > 1) this.#line(`slot ${e.slot}  retry ${e.attempt}: ${e.name}`);
        break;
      }
      case 'step-finished': {
        const s = this.#slots.get(e.slot);
        if (!s) return;
        s.done++;
        if (!this.#tty && e.result.status === 'fail') this.#line(`slot ${e.slot}  FAIL ${e.result.name}: ${e.result.reason ?? ''}`);
        break;
      }
      case 'instrument': {
        const s = this.#slots.get(e.slot);
        if (!s) return;
        if (e.kind === 'wait') {
          s.waiting = { instrument: e.instrument, ...(e.heldBy !== undefined ? { heldBy: e.heldBy } : {}), since: now };
          if (!this.#tty) this.#line(`slot ${e.slot}  waits for ${e.instrument}${e.heldBy !== undefined ? ` (slot ${e.heldBy} has it)` : ''}: ${e.step}`);
        } else if (e.kind === 'acquired' || e.kind === 'timeout') {
          if (!this.#tty && s.waiting) this.#line(`slot ${e.slot}  ${e.kind === 'acquired' ? 'got' : 'gave up waiting for'} ${e.instrument} after ${((e.waitedMs ?? 0) / 1000).toFixed(1)} s`);
          delete s.waiting;
        }
        break;
      }
      case 'slot-finished': {
        const s = this.#slots.get(e.slot);
        if (!s) return;
        s.verdict = e.result.aborted ? 'ABORTED' : e.result.verdict === 'pass' ? (e.result.flagged ? 'PASS (flagged)' : 'PASS') : 'FAIL';
        s.phase = 'done';
        if (!this.#tty) this.#line(`slot ${e.slot}  ${s.verdict}${e.result.reason && e.result.verdict !== 'pass' ? `: ${e.result.reason}` : ''}`);
        break;
      }
      case 'run-finished':
        this.close();
        return;
      default:
        return;
    }
    if (this.#tty) this.#draw();
  }

  /** Stop redrawing (the final frame stays on the terminal). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#tty) this.#draw();
  }

  #line(text: string): void {
    this.#out.write(`${text}\n`);
  }

  #draw(): void {
    const now = performance.now();
    const lines = [...this.#slots.entries()]
      .sort(([a], [b]) => a - b)
      .map(([id, s]) => {
        const width = 20;
        const filled = s.planned ? Math.round((s.done / s.planned) * width) : 0;
        const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${s.done}/${s.planned}`;
        const wait = s.waiting ? `  waiting ${((now - s.waiting.since) / 1000).toFixed(1)} s for ${s.waiting.instrument}${s.waiting.heldBy !== undefined ? ` (slot ${s.waiting.heldBy})` : ''}` : '';
        const what = s.verdict ?? `${s.step ?? ''}${s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}`;
        return `slot ${id}  ${s.phase.padEnd(10)} ${bar}  ${((now - s.startedAt) / 1000).toFixed(0).padStart(3)} s  ${what}${wait}`.slice(0, (this.#out.columns ?? 160) - 1);
      });
    // Move up over the previous frame and rewrite it line by line.
    let text = this.#drawn ? `\x1b[${this.#drawn}A` : '';
    for (const l of lines) text += `\r\x1b[2K${l}\n`;
    this.#out.write(text);
    this.#drawn = lines.length;
  }
}
