/**
 * Time source shared by the flasher, the instruments and the simulators.
 *
 * RealClock: wall time; used with real hardware, ptys and real-time benches.
 * VirtualClock: simulated time that jumps to the next timer whenever the process has nothing
 * else to do, so a batch of hundreds of virtual flashes finishes in seconds while every
 * modelled duration (wire time, erase time, timeouts) stays exact in virtual milliseconds.
 * A VirtualClock must only be combined with in-process devices: real I/O (a pty, a socket)
 * keeps running on wall time while virtual time races ahead.
 */
export interface Clock {
  /** Milliseconds (fractional) since the clock's origin. */
  now(): number;
  /** Run fn at absolute clock time t (ms). Returns a cancel function. */
  at(t: number, fn: () => void): () => void;
  /** Resolve after ms; rejects with the signal's reason if aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Resolve at absolute clock time t. */
  sleepUntil(t: number, signal?: AbortSignal): Promise<void>;
  readonly kind: 'real' | 'virtual';
  /**
   * Keep model time still until the returned release is called: for host-side I/O the model treats
   * as instantaneous (a result listener writing its files). A no-op on wall time.
   */
  hold?(): () => void;
  /**
   * Run host-side I/O the model treats as instantaneous (a result listener's files, a backup): model
   * time stands still until every such I/O in flight has finished, and then their callers resume in
   * the order they started, all in one turn. Without that order, which of two slots' writes the disk
   * finished first would decide which of them runs on first, and a run would not repeat itself on
   * the same seed. Absent on wall time (just run the I/O).
   */
  io?<T>(work: () => Promise<T>): Promise<T>;
}

/** Run `work` through `clock.io` when the clock has it (model time), else as it is. */
export function hostIo<T>(clock: Clock, work: () => Promise<T>): Promise<T> {
  return clock.io ? clock.io(work) : work();
}

abstract class ClockBase implements Clock {
  abstract readonly kind: 'real' | 'virtual';
  abstract now(): number;
  abstract at(t: number, fn: () => void): () => void;

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.sleepUntil(this.now() + Math.max(0, ms), signal);
  }

  sleepUntil(t: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        cancel();
        reject(signal?.reason);
      };
      const cancel = this.at(t, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * Wall-clock time. Timers are kept in one ordered queue behind a single setTimeout, because
 * Node rounds each setTimeout to whole milliseconds: two timers a fraction of a millisecond apart,
 * scheduled at different moments, could otherwise fire in the wrong order (bytes of a UART stream
 * delivered out of order).
 */
export class RealClock extends ClockBase {
  readonly kind = 'real' as const;
  readonly #origin = performance.now();
  readonly #queue = new TimerQueue();
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #armedFor = Infinity;

  now(): number {
    return performance.now() - this.#origin;
  }

  at(t: number, fn: () => void): () => void {
    const timer = this.#queue.add(t, fn);
    this.#arm();
    return () => {
      timer.cancelled = true;
    };
  }

  #arm(): void {
    const next = this.#queue.peek();
    if (!next) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#armedFor = Infinity;
      return;
    }
    // A wake-up is already due no later than this timer: it re-arms for whatever is left then. A
    // serial read adds two timers and cancels both on its reply; re-creating the Node timer for
    // each was a clearTimeout + setTimeout per at() call on the path of every command.
    if ((this.#timer || this.#immediate) && this.#armedFor <= next.t) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = next.t;
    const wait = next.t - this.now();
    // setTimeout wakes whole milliseconds late: sleep until just before the deadline, then poll
    // with setImmediate (I/O still runs between polls) so sub-millisecond steps stay sub-millisecond.
    if (wait > SPIN_MS) this.#timer = setTimeout(() => this.#fire(), Math.floor(wait - SPIN_MS));
    else if (!this.#immediate) this.#immediate = setImmediate(() => this.#fire());
  }

  #fire(): void {
    this.#timer = undefined;
    this.#immediate = undefined;
    this.#armedFor = Infinity;
    const now = this.now();
    for (let due = this.#queue.peek(); due && due.t <= now; due = this.#queue.peek()) this.#queue.pop()?.fn();
    this.#arm();
  }
}

/** How long before a deadline RealClock stops sleeping and starts polling, ms. */
const SPIN_MS = 1.5;

interface QueuedTimer {
  t: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Binary heap of timers ordered by (time, insertion). */
class TimerQueue {
  #heap: QueuedTimer[] = [];
  #seq = 0;

  add(t: number, fn: () => void): QueuedTimer {
    const timer: QueuedTimer = { t, seq: this.#seq++, fn, cancelled: false };
    this.#push(timer);
    return timer;
  }

  live(): number {
    return this.#heap.filter((x) => !x.cancelled).length;
  }

  peek(): QueuedTimer | undefined {
    while (this.#heap.length && this.#heap[0]!.cancelled) this.#popRaw();
    return this.#heap[0];
  }

  pop(): QueuedTimer | undefined {
    return this.peek() ? this.#popRaw() : undefined;
  }

  #less(a: QueuedTimer, b: QueuedTimer): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }

  #push(x: QueuedTimer): void {
    const h = this.#heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #popRaw(): QueuedTimer | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}


/**
 * Discrete-event clock. Timers fire in (time, insertion) order. Time advances only when the
 * event loop has been idle for `idleTurns` consecutive setImmediate turns (all promise
 * continuations and nextTicks of the previous step have run by then).
 */
export class VirtualClock extends ClockBase {
  readonly kind = 'virtual' as const;
  #now = 0;
  readonly #queue = new TimerQueue();
  #running = false;
  #holds = 0;
  readonly #idleTurns: number;

  constructor(options: { idleTurns?: number; start?: number } = {}) {
    super();
    this.#idleTurns = options.idleTurns ?? 3;
    this.#now = options.start ?? 0;
  }

  now(): number {
    return this.#now;
  }

  /** Number of pending timers (for tests and leak checks). */
  pending(): number {
    return this.#queue.live();
  }

  at(t: number, fn: () => void): () => void {
    const timer = this.#queue.add(Math.max(t, this.#now), fn);
    this.#kick();
    return () => {
      timer.cancelled = true;
    };
  }

  /**
   * Stop time while host-side I/O the model treats as instantaneous is in flight. Without it the
   * devices' periodic timers (board sampling, the plug's ticks) keep time racing ahead while a file
   * is written on wall time: modelled durations swell and timeouts fire that nothing modelled caused.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (this.#holds === 0) this.#kick();
    };
  }

  io<T>(work: () => Promise<T>): Promise<T> {
    if (this.#io.pending === 0) this.#io.release = this.hold();
    this.#io.pending++;
    const seq = this.#io.seq++;
    return new Promise<T>((resolve, reject) => {
      const finish = (settle: () => void): void => {
        this.#io.done.push({ seq, settle });
        if (--this.#io.pending > 0) return;
        // Everything in flight is done: resume the callers in the order they started, then let time move.
        const done = this.#io.done.splice(0).sort((a, b) => a.seq - b.seq);
        const release = this.#io.release;
        this.#io.release = undefined;
        for (const d of done) d.settle();
        release?.();
      };
      let p: Promise<T>;
      try {
        p = work();
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (v) => finish(() => resolve(v)),
        (e: unknown) => finish(() => reject(e)),
      );
    });
  }

  /** Host I/O in flight (io()): how many, the callers waiting to resume, the hold they share. */
  readonly #io: { pending: number; seq: number; done: Array<{ seq: number; settle: () => void }>; release: (() => void) | undefined } = { pending: 0, seq: 0, done: [], release: undefined };

  #kick(): void {
    if (this.#running || this.#holds > 0) return;
    this.#running = true;
    let idle = 0;
    const step = (): void => {
      if (idle < this.#idleTurns) {
        idle++;
        setImmediate(step);
        return;
      }
      idle = 0;
      if (this.#holds > 0) {
        this.#running = false; // release() starts stepping again
        return;
      }
      const next = this.#queue.pop();
      if (!next) {
        this.#running = false;
        return;
      }
      this.#now = Math.max(this.#now, next.t);
      // Fire every timer due at this same instant before yielding, in order.
      next.fn();
      for (let due = this.#queue.peek(); due && due.t <= this.#now; due = this.#queue.peek()) {
        this.#queue.pop()?.fn();
      }
      setImmediate(step);
    };
    setImmediate(step);
  }

}
