import type { Clock } from '../core/clock.ts';
import { InterlockError, TimeoutError } from '../core/errors.ts';
import { newOutputTrack, type OutputTrack } from './output-track.ts';

/**
 * One mains relay feeding several slots (jig file `mainsGroups`): the members' interlocks share one
 * mains output track, and the relay only closes when it is safe for EVERY plug it feeds.
 *
 * Safety (checked synchronously right before the relay is written on): every member joined, none with
 * a latched fault or outputs not initialised, link up, lid closed and E-stop released at every member,
 * and every member's UART and 3V3 confirmed off for at least settleMs. Any member connecting its
 * UART/3V3 breaks the shared relay first (its partners lose mains: that is the hardware).
 *
 * Scheduling (a barrier, as a batch station does it): mains goes on once every member still running
 * has asked for it, and goes off once none of them wants it any more, so a power cycle of one plug is
 * a power cycle of the group, taken together. A member waiting at the barrier lends out its shared
 * instruments (the `waits` hooks), so two slots sharing a meter never wait for each other in a circle.
 */

/** What the group asks of each member interlock. */
export interface MainsGroupMember {
  readonly slot: number | string;
  /** Why mains may not close for this member's plug now (undefined: it may). Synchronous. */
  mainsBlockedBy(now: number): string | undefined;
  /** When this member's UART side will have been off for settleMs (Infinity: it is not off). */
  uartSideSettledAt(): number;
  /** A latched fault that stops this member's plug getting mains until reset (undefined: none). */
  fault(): string | undefined;
  /** Issue this member's load relays off at once and cancel its makes in progress (the shared relay is about to open). */
  dropLoadsNow(): void;
}

/** Called around a member's wait at the barrier: lend shared instruments, take them back. */
export interface MainsGroupWaitHooks {
  begin(slot: number): void;
  end(slot: number): Promise<void>;
}

interface OnWaiter {
  member: MainsGroupMember;
  /** Performs the relay make in this member's context (its epoch); resolves when confirmed. */
  perform: () => Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** How long a member waits at the barrier for its partners by default (the station's lease timeout is of the same order). */
const DEFAULT_WAIT_TIMEOUT_MS = 600_000;

export class MainsGroup {
  readonly name: string;
  /** Slot ids the relay feeds (jig file order). */
  readonly slots: readonly number[];
  /** The shared mains output's state: the track every member interlock uses as its own mains output. */
  readonly track: OutputTrack = newOutputTrack();
  readonly #clock: Clock;
  readonly #members = new Map<number, MainsGroupMember>();
  /** Members that asked for mains and have not let go of it since. */
  readonly #claims = new Set<number>();
  /** Members whose program ended: the barrier no longer waits for them (their plug is still on the relay). */
  readonly #left = new Set<number>();
  #onWaiters: OnWaiter[] = [];
  #offWaiters: Array<{ slot: number; resolve: () => void; breakNow: () => Promise<void> }> = [];
  #making = false;
  #hooks: MainsGroupWaitHooks | undefined;
  /** The barrier's own bound: how long a member waits for its partners (its step's timeout stands still meanwhile). */
  readonly waitTimeoutMs: number;

  constructor(name: string, slots: readonly number[], clock: Clock, o: { waitTimeoutMs?: number } = {}) {
    this.name = name;
    this.slots = [...slots];
    this.#clock = clock;
    this.waitTimeoutMs = o.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  }

  /** The station's lease lending while a member waits (set once the station is open). */
  setWaitHooks(hooks: MainsGroupWaitHooks | undefined): void {
    this.#hooks = hooks;
  }

  join(member: MainsGroupMember): void {
    const id = Number(member.slot);
    if (!this.slots.includes(id)) throw new InterlockError(`slot ${id} is not fed by mains group ${this.name}`, { slot: id, step: 'mains-group' });
    if (this.#members.has(id)) throw new InterlockError(`slot ${id} joined mains group ${this.name} twice`, { slot: id, step: 'mains-group' });
    this.#members.set(id, member);
  }

  /** Why the shared relay may not close now (undefined: it may), over every plug it feeds. Synchronous. */
  blockedBy(): string | undefined {
    const missing = this.slots.filter((s) => !this.#members.has(s));
    if (missing.length) return `slot ${missing.join(', ')} of mains group ${this.name} is not under an interlock`;
    const now = this.#clock.now();
    for (const [id, m] of this.#members) {
      const why = m.mainsBlockedBy(now);
      if (why) return `mains group ${this.name}, slot ${id}: ${why}`;
    }
    return undefined;
  }

  /**
   * When every member's UART side will have been off for settleMs (the performer waits for it):
   * -Infinity for none, Infinity when some member's UART side is not off at all.
   */
  settledAt(): number {
    let at = -Infinity;
    for (const m of this.#members.values()) at = Math.max(at, m.uartSideSettledAt());
    return at;
  }

  /** The shared relay is commanded or confirmed on, or a make is in flight. */
  live(): boolean {
    const t = this.track;
    return t.commanded || t.confirmed !== false || t.inflight > 0;
  }

  onNow(): boolean {
    const t = this.track;
    return t.commanded && t.confirmed === true && t.inflight === 0;
  }

  claims(slot: number): boolean {
    return this.#claims.has(slot);
  }

  /**
   * `member` wants mains (its own UART side already isolated). Resolves once the relay is confirmed
   * on: at once if it already is, else when the last running member asks (which switches it once).
   */
  async requestOn(member: MainsGroupMember, perform: () => Promise<void>): Promise<void> {
    const id = Number(member.slot);
    for (const [other, m] of this.#members) {
      const fault = m.fault();
      // Waiting would be for nothing: that plug gets no mains until its interlock is reset.
      if (fault) throw new InterlockError(`slot ${id}: mainsOn refused: mains group ${this.name}, slot ${other}: latched fault (${fault})`, { slot: id, step: 'mainsOn', group: this.name });
    }
    this.#claims.add(id);
    if (this.onNow()) return;
    let waiter!: OnWaiter;
    const done = new Promise<void>((resolve, reject) => this.#onWaiters.push((waiter = { member, perform, resolve, reject })));
    const ready = this.#barrierComplete();
    if (!ready) this.#hooks?.begin(id);
    this.#maybeMake();
    // Partners that never ask (a slot hung elsewhere) must not hold this one for ever: the barrier's bound.
    const unbound = this.#makingOrDone(waiter)
      ? (): void => undefined
      : this.#clock.at(this.#clock.now() + this.waitTimeoutMs, () => {
          if (this.#making || !this.#onWaiters.includes(waiter)) return;
          const missing = this.pending();
          this.#onWaiters = this.#onWaiters.filter((w) => w !== waiter);
          this.#claims.delete(id);
          waiter.reject(new TimeoutError(`mains group ${this.name}: slot ${id} waited ${this.waitTimeoutMs} ms for slot ${missing.join(', ')} to ask for mains (the barrier's bound)`, { slot: id, step: 'mainsOn', group: this.name, timeoutMs: this.waitTimeoutMs }));
        });
    try {
      await done;
    } finally {
      unbound();
      if (!ready) await this.#hooks?.end(id);
    }
  }

  /**
   * `member` no longer needs mains. The relay opens when no running member wants it; resolves once it
   * is confirmed off. `breakNow` writes it off (called by the member when it is the last claimant).
   */
  async release(member: MainsGroupMember, breakNow: () => Promise<void>): Promise<void> {
    const id = Number(member.slot);
    this.#claims.delete(id);
    if (this.#offNow()) return;
    if (this.#claims.size === 0) {
      for (const [other, m] of this.#members) if (other !== id) m.dropLoadsNow();
      await breakNow();
      return;
    }
    this.#hooks?.begin(id);
    const waiter = { slot: id, resolve: (): void => undefined, breakNow };
    const unbound = this.#clock.at(this.#clock.now() + this.waitTimeoutMs, () => {
      if (!this.#offWaiters.includes(waiter)) return;
      this.#offWaiters = this.#offWaiters.filter((w) => w !== waiter);
      waiter.resolve = (): void => undefined;
      rejectOff(new TimeoutError(`mains group ${this.name}: slot ${id} waited ${this.waitTimeoutMs} ms for slot ${[...this.#claims].join(', ')} to let go of mains (the barrier's bound)`, { slot: id, step: 'mainsOff', group: this.name, timeoutMs: this.waitTimeoutMs }));
    });
    let rejectOff: (e: unknown) => void = () => undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        waiter.resolve = resolve;
        rejectOff = reject;
        this.#offWaiters.push(waiter);
      });
    } finally {
      unbound();
      await this.#hooks?.end(id);
    }
  }

  /**
   * `member` is about to break the shared relay itself (it connects its UART, or it trips): every
   * partner's loads go off first and their makes are cancelled; the member's claim is gone.
   */
  forceOff(member: MainsGroupMember): void {
    const id = Number(member.slot);
    this.#claims.delete(id);
    for (const [other, m] of this.#members) if (other !== id) m.dropLoadsNow();
  }

  /** A member tripped: nobody waiting for mains on gets it. */
  tripped(member: MainsGroupMember, error: InterlockError): void {
    this.#claims.delete(Number(member.slot));
    for (const w of this.#onWaiters.splice(0)) w.reject(error);
  }

  /** A member's safe state cancelled its own wait for mains on. */
  cancel(member: MainsGroupMember, error: InterlockError): void {
    const id = Number(member.slot);
    this.#claims.delete(id);
    const mine = this.#onWaiters.filter((w) => w.member === member);
    this.#onWaiters = this.#onWaiters.filter((w) => w.member !== member);
    for (const w of mine) w.reject(error);
  }

  /** The member's program ended: the barrier stops waiting for it. */
  leave(slot: number): void {
    this.#left.add(slot);
    this.#claims.delete(slot);
    const breaker = this.#offWaiters[0];
    if (this.#claims.size === 0 && breaker) {
      // Those waiting for "off" were waiting for this member's claim: nobody wants mains now.
      for (const m of this.#members.values()) m.dropLoadsNow();
      breaker.breakNow().catch(() => undefined);
    }
    this.#maybeMake();
  }

  /** Told by the member that wrote it: the shared relay is confirmed off. */
  confirmedOff(): void {
    if (!this.#offNow()) return;
    for (const w of this.#offWaiters.splice(0)) w.resolve();
  }

  /** Members the barrier waits for (joined, program not ended) that have not asked for mains yet. */
  pending(): number[] {
    return this.slots.filter((s) => !this.#left.has(s) && !this.#claims.has(s));
  }

  /** The relay make is under way (or done) for this waiter: the make has bounds of its own. */
  #makingOrDone(w: OnWaiter): boolean {
    return this.#making || !this.#onWaiters.includes(w);
  }

  #offNow(): boolean {
    const t = this.track;
    return !t.commanded && t.confirmed === false && t.inflight === 0;
  }

  #barrierComplete(): boolean {
    return this.pending().length === 0;
  }

  #maybeMake(): void {
    if (this.#making || !this.#onWaiters.length || !this.#barrierComplete()) return;
    const performer = this.#onWaiters[0]!;
    this.#making = true;
    performer.perform().then(
      () => {
        this.#making = false;
        for (const w of this.#onWaiters.splice(0)) w.resolve();
      },
      (e: unknown) => {
        this.#making = false;
        for (const w of this.#onWaiters.splice(0)) w.reject(e);
      },
    );
  }
}
