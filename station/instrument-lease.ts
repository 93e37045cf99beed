import type { Clock } from '../rig/core/clock.ts';
import { TimeoutError } from '../rig/core/errors.ts';

/** Who asks for an instrument: a slot and the step it is about to run. */
export interface LeaseHolder {
  slot: number;
  step: string;
}

/** What a lease reports, for the slot timeline (waits and holds per step). */
export type LeaseEvent =
  | { kind: 'wait'; instrument: string; holder: LeaseHolder; t: number; queuedBehind: number; heldBy?: LeaseHolder }
  | { kind: 'acquired'; instrument: string; holder: LeaseHolder; t: number; waitedMs: number }
  | { kind: 'released'; instrument: string; holder: LeaseHolder; t: number; heldMs: number }
  | { kind: 'timeout'; instrument: string; holder: LeaseHolder; t: number; waitedMs: number; heldBy?: LeaseHolder };

interface Waiter {
  holder: LeaseHolder;
  since: number;
  grant: () => void;
  fail: (e: unknown) => void;
}

export type Release = () => void;

/**
 * One shared instrument (a reference meter behind a mux, a load bank, a Modbus bus): at most one
 * holder at a time, waiters served strictly in arrival order. A wait gives up after its timeout
 * (TimeoutError naming the holder) or when its signal aborts; either way it leaves the queue, so a
 * slot that gave up never gets the instrument later. `onGrant` runs before the holder goes on (the
 * station switches the meter mux there) and `onRelease` before the next holder is served.
 */
export class InstrumentLease {
  readonly name: string;
  readonly #clock: Clock;
  readonly #queue: Waiter[] = [];
  #holder: { holder: LeaseHolder; since: number } | undefined;
  readonly #onEvent: (e: LeaseEvent) => void;
  readonly #onGrant: ((h: LeaseHolder) => Promise<void>) | undefined;
  readonly #onRelease: ((h: LeaseHolder) => Promise<void>) | undefined;
  /** Serialises the grant/release hooks (a mux must finish one switch before the next). */
  #hooks: Promise<void> = Promise.resolve();

  constructor(name: string, o: { clock: Clock; onEvent?: (e: LeaseEvent) => void; onGrant?: (h: LeaseHolder) => Promise<void>; onRelease?: (h: LeaseHolder) => Promise<void> }) {
    this.name = name;
    this.#clock = o.clock;
    this.#onEvent = o.onEvent ?? ((): void => undefined);
    this.#onGrant = o.onGrant;
    this.#onRelease = o.onRelease;
  }

  /** Who holds it now (undefined: free). */
  heldBy(): LeaseHolder | undefined {
    return this.#holder?.holder;
  }

  /** Resolves when the grant/release hooks in flight are done (a release frees the lease after its hook). */
  async settled(): Promise<void> {
    await this.#hooks;
    await Promise.resolve();
  }

  /** How many wait behind the holder. */
  waiting(): number {
    return this.#queue.length;
  }

  /** Wait (FIFO) for the instrument; resolves with the release function once held. */
  acquire(holder: LeaseHolder, o: { timeoutMs: number; signal?: AbortSignal }): Promise<Release> {
    return new Promise<Release>((resolve, reject) => {
      if (o.signal?.aborted) {
        reject(o.signal.reason);
        return;
      }
      const since = this.#clock.now();
      let settled = false;
      const cleanup = (): void => {
        settled = true;
        cancelTimer();
        o.signal?.removeEventListener('abort', onAbort);
        const i = this.#queue.indexOf(w);
        if (i >= 0) this.#queue.splice(i, 1);
      };
      const w: Waiter = {
        holder,
        since,
        grant: () => {
          if (settled) return;
          cleanup();
          this.#holder = { holder, since: this.#clock.now() };
          const granted = this.#runHook(this.#onGrant, holder);
          granted.then(
            () => {
              this.#onEvent({ kind: 'acquired', instrument: this.name, holder, t: this.#clock.now(), waitedMs: this.#clock.now() - since });
              resolve(this.#releaser(holder));
            },
            (e: unknown) => {
              // The instrument could not be switched to this holder: it is not theirs, serve the next.
              this.#holder = undefined;
              this.#serveNext();
              reject(e);
            },
          );
        },
        fail: (e) => {
          if (settled) return;
          cleanup();
          reject(e);
        },
      };
      const onAbort = (): void => w.fail(o.signal?.reason);
      const cancelTimer = this.#clock.at(since + o.timeoutMs, () => {
        if (settled) return;
        const heldBy = this.#holder?.holder;
        this.#onEvent({ kind: 'timeout', instrument: this.name, holder, t: this.#clock.now(), waitedMs: this.#clock.now() - since, ...(heldBy ? { heldBy } : {}) });
        w.fail(
          new TimeoutError(`slot ${holder.slot} waited ${o.timeoutMs} ms for ${this.name}${heldBy ? ` (held by slot ${heldBy.slot}, '${heldBy.step}')` : ''}`, {
            slot: holder.slot,
            step: holder.step,
            instrument: this.name,
            timeoutMs: o.timeoutMs,
            ...(heldBy ? { heldBy } : {}),
          }),
        );
      });
      o.signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(w);
      if (this.#holder || this.#queue.length > 1) {
        const heldBy = this.#holder?.holder;
        this.#onEvent({ kind: 'wait', instrument: this.name, holder, t: since, queuedBehind: this.#queue.length - 1 + (this.#holder ? 1 : 0), ...(heldBy ? { heldBy } : {}) });
      }
      if (!this.#holder) this.#serveNext();
    });
  }

  #releaser(holder: LeaseHolder): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const since = this.#holder?.since ?? this.#clock.now();
      this.#onEvent({ kind: 'released', instrument: this.name, holder, t: this.#clock.now(), heldMs: this.#clock.now() - since });
      void this.#runHook(this.#onRelease, holder)
        .catch(() => undefined)
        .then(() => {
          this.#holder = undefined;
          this.#serveNext();
        });
    };
  }

  #serveNext(): void {
    if (this.#holder) return;
    const next = this.#queue[0];
    next?.grant();
  }

  #runHook(hook: ((h: LeaseHolder) => Promise<void>) | undefined, holder: LeaseHolder): Promise<void> {
    const run = this.#hooks.then(() => (hook ? hook(holder) : undefined));
    this.#hooks = run.catch(() => undefined);
    return run;
  }
}

/**
 * The station's shared instruments by name. A step that needs several takes them in name order,
 * so two steps needing the same pair can never hold one each and wait for the other.
 */
export class InstrumentPool {
  readonly #leases = new Map<string, InstrumentLease>();

  add(lease: InstrumentLease): void {
    this.#leases.set(lease.name, lease);
  }

  get(name: string): InstrumentLease | undefined {
    return this.#leases.get(name);
  }

  names(): string[] {
    return [...this.#leases.keys()];
  }

  async acquireAll(names: readonly string[], holder: LeaseHolder, o: { timeoutMs: number; signal?: AbortSignal }): Promise<Release> {
    const releases: Release[] = [];
    const releaseAll = (): void => {
      for (const r of releases.reverse()) r();
    };
    try {
      for (const n of [...new Set(names)].sort()) {
        const lease = this.#leases.get(n);
        if (!lease) continue;
        releases.push(await lease.acquire(holder, o));
      }
    } catch (e) {
      releaseAll();
      throw e;
    }
    return releaseAll;
  }
}
