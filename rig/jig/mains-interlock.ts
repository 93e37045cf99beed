import { EventEmitter } from 'node:events';
import type { Clock } from '../core/clock.ts';
import { InterlockError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { MainsHeartbeat } from './heartbeat.ts';
import type { MainsGroup, MainsGroupMember } from './mains-group.ts';
import { newOutputTrack, type OutputTrack } from './output-track.ts';

/**
 * The single owner of everything that can make the plug dangerous: the mains relay, the load bank, and
 * the UART-isolation relay + 3V3 switch. The plug's BP2525 supply is non-isolated, so mains and the
 * UART/3V3 side must never be connected at once; mains is never on with the lid open or E-stop pressed.
 *
 * Rules enforced here:
 * - every make (an output switching on) is issued only after the opposite side's breaks were
 *   acknowledged by the board AND settleMs has elapsed since the last of those acknowledgements;
 * - commands run one at a time in call order (un-awaited concurrent calls queue up);
 * - a trip (E-stop, lid opening with mains/loads on, write failure, lost board, process exit) issues
 *   every output off synchronously, bypassing the queue, and latches a fault; no make is issued until
 *   reset() (link up, lid closed, E-stop released) re-drove every output off and cleared it.
 */

/** Logical outputs: true = energised (relay closed, 3V3 on, UART connected). */
export type InterlockOutput = 'mains' | 'uart' | 'power3v3' | `load:${string}`;

export interface InterlockOutputs {
  /**
   * Drive one output. Writes reach the board in call order (FIFO). Resolves only once the board
   * confirmed the new level; rejects if it could not be written or confirmed.
   */
  write(output: InterlockOutput, on: boolean): Promise<void>;
}

/** Unknown input levels must be reported as unsafe (lid open, E-stop pressed). */
export interface InterlockInputState {
  linkUp: boolean;
  lidClosed: boolean;
  estopClear: boolean;
}

export interface InterlockInputs {
  read(): InterlockInputState;
  /** fn runs synchronously on every change. Returns an unsubscribe function. */
  subscribe(fn: (state: InterlockInputState) => void): () => void;
}

export type TripReason = 'estop' | 'lid-open' | 'write-failed' | 'link-lost' | 'process-exit' | 'signal' | 'uncaught-exception' | 'operator';

export interface InterlockFault {
  reason: TripReason;
  at: number;
  detail?: string;
}

/** 'switching' = written, not yet confirmed; 'unknown' = a write failed (treated as possibly on). */
export type OutputLevel = 'on' | 'off' | 'switching' | 'unknown';

export interface InterlockState {
  mains: OutputLevel;
  uart: OutputLevel;
  power3v3: OutputLevel;
  loads: Record<string, OutputLevel>;
  fault: InterlockFault | undefined;
  /** Outputs must be re-driven (startup, after a lost link) before anything may be switched on. */
  needsReinit: boolean;
  inputs: InterlockInputState;
}

export interface MainsInterlockOptions {
  outputs: InterlockOutputs;
  inputs: InterlockInputs;
  clock: Clock;
  /** Break-before-make gap between the two sides (jig.interlock.settleMs). */
  settleMs: number;
  /** Names of the slot's load-bank relays. */
  loads: readonly string[];
  slot: number | string;
  log?: Logger;
  /**
   * The board's heartbeat feeding the watchdog relay in series with the mains contactor (jig file
   * `heartbeat`): held from before mains is switched on until it is confirmed off, let go at once
   * on a trip. Absent: the jig has no watchdog and mains stays on if this process dies.
   */
  heartbeat?: MainsHeartbeat;
  /**
   * The mains relay is shared with other slots (jig file `mainsGroups`): the mains output is the
   * group's, closed only when safe for every plug it feeds, switched once for the whole group.
   */
  group?: MainsGroup;
}

const UART_SIDE: readonly InterlockOutput[] = ['uart', 'power3v3'];

export class MainsInterlock extends EventEmitter<{ fault: [InterlockFault]; reset: []; change: [InterlockState] }> {
  readonly slot: number | string;
  readonly settleMs: number;
  readonly #outputs: InterlockOutputs;
  readonly #inputs: InterlockInputs;
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #loads: readonly InterlockOutput[];
  readonly #track = new Map<InterlockOutput, OutputTrack>();
  #fault: InterlockFault | undefined;
  #needsReinit = true;
  /** Bumped by every trip/safeState; a command that started in an older epoch may not make. */
  #epoch = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #input: InterlockInputState;
  readonly #unsubscribe: () => void;
  readonly #heartbeat: MainsHeartbeat | undefined;
  readonly #group: MainsGroup | undefined;
  /** What the group sees of this interlock. */
  readonly #member: MainsGroupMember;

  constructor(options: MainsInterlockOptions) {
    super();
    this.slot = options.slot;
    this.settleMs = options.settleMs;
    this.#outputs = options.outputs;
    this.#inputs = options.inputs;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#heartbeat = options.heartbeat;
    this.#loads = options.loads.map((n) => `load:${n}` as const);
    for (const o of ['mains', 'uart', 'power3v3', ...this.#loads] as InterlockOutput[]) {
      // Until init() we do not know what the board drives: assume the worst.
      this.#track.set(o, newOutputTrack());
    }
    this.#group = options.group;
    // One track for the shared relay: every member sees (and breaks) the same output.
    if (this.#group) this.#track.set('mains', this.#group.track);
    this.#member = {
      slot: this.slot,
      mainsBlockedBy: (now) => this.#mainsBlockedBy(now),
      uartSideSettledAt: () => {
        let at = -Infinity;
        for (const o of UART_SIDE) {
          const t = this.#t(o);
          if (t.commanded || t.confirmed !== false || t.inflight > 0) return Infinity;
          at = Math.max(at, t.offAckAt + this.settleMs);
        }
        return at;
      },
      fault: () => this.#fault?.reason,
      dropLoadsNow: () => {
        for (const l of this.#loads) {
          const t = this.#t(l);
          if (t.commanded || (t.confirmed !== false && t.inflight === 0)) this.#write('group-mains-off', l, false).catch(() => undefined);
        }
      },
    };
    this.#input = this.#inputs.read();
    this.#unsubscribe = this.#inputs.subscribe((s) => this.#onInputs(s));
    this.#group?.join(this.#member);
  }

  /** The mains group this slot's relay belongs to (undefined: the slot has its own mains relay). */
  get group(): MainsGroup | undefined {
    return this.#group;
  }

  // ---- commands (queued, run one at a time) -------------------------------------------------------

  /** Drive every output off and confirm it (startup). Does not clear a latched fault. */
  init(): Promise<void> {
    return this.#enqueue('init', () => this.#reinit('init'));
  }

  /** Clear a latched fault: needs the link up, lid closed, E-stop released; re-drives all outputs off. */
  reset(): Promise<void> {
    return this.#enqueue('reset', async () => {
      this.#requireInputs('reset', { lid: true });
      await this.#reinit('reset');
      this.#requireInputs('reset', { lid: true });
      this.#fault = undefined;
      this.emit('reset');
      this.#changed();
    });
  }

  /** Connect the USB-UART (isolation relay closed). Turns mains off first if needed. */
  connectUart(): Promise<void> {
    return this.#enqueue('connectUart', (epoch) => this.#makeUartSide('connectUart', epoch, 'uart'));
  }

  disconnectUart(): Promise<void> {
    return this.#enqueue('disconnectUart', () => this.#breakAll('disconnectUart', ['uart']));
  }

  /** Switch the module's 3V3 supply (UART side). Turning it on turns mains off first if needed. */
  power3v3(on: boolean): Promise<void> {
    return this.#enqueue('power3v3', (epoch) => (on ? this.#makeUartSide('power3v3', epoch, 'power3v3') : this.#breakAll('power3v3', ['power3v3'])));
  }

  /** Isolate the UART side, wait settleMs, then close the mains relay. */
  mainsOn(): Promise<void> {
    if (this.#group) return this.#enqueue('mainsOn', (epoch) => this.#groupMainsOn(this.#group!, epoch));
    return this.#enqueue('mainsOn', async (epoch) => {
      this.#requireMakeAllowed('mainsOn', epoch, { lid: true });
      const m = this.#t('mains');
      if (m.commanded && m.confirmed === true && m.inflight === 0) return;
      await this.#breakAll('mainsOn', UART_SIDE);
      await this.#settle('mainsOn', epoch, UART_SIDE);
      this.#requireMakeAllowed('mainsOn', epoch, { lid: true });
      if (this.#heartbeat) {
        await this.#heartbeat.acquire(this.#hbHolder());
        if (!this.#heartbeat.running()) {
          this.#releaseHeartbeatIfOff();
          throw this.#refuse('mainsOn', 'the heartbeat to the mains watchdog relay is not running');
        }
        try {
          this.#requireMakeAllowed('mainsOn', epoch, { lid: true });
        } catch (e) {
          this.#releaseHeartbeatIfOff();
          throw e;
        }
      }
      await this.#write('mainsOn', 'mains', true);
      this.#requireMakeAllowed('mainsOn', epoch, { lid: true });
    });
  }

  /**
   * Loads off, then mains off; both confirmed. In a mains group: this slot's loads off, then it waits
   * until no other running member wants mains (the last one switches the shared relay off).
   */
  mainsOff(): Promise<void> {
    const group = this.#group;
    if (group) {
      return this.#enqueue('mainsOff', async () => {
        await this.#breakAll('mainsOff', this.#loads);
        await group.release(this.#member, () => this.#breakAll('mainsOff', ['mains']));
        if (this.#t('mains').confirmed !== false) throw this.#refuse('mainsOff', 'the shared mains relay could not be confirmed off');
      });
    }
    return this.#enqueue('mainsOff', () => this.#breakAll('mainsOff', [...this.#loads, 'mains']));
  }

  /** Switch one load-bank relay. On needs mains on (loads change the mains current) and no fault. */
  setLoad(name: string, on: boolean): Promise<void> {
    const out = `load:${name}` as const;
    if (!this.#track.has(out)) {
      return Promise.reject(new InterlockError(`slot ${this.slot}: no load "${name}"`, { slot: this.slot, step: 'setLoad', load: name }));
    }
    return this.#enqueue('setLoad', async (epoch) => {
      if (!on) return this.#breakAll('setLoad', [out]);
      this.#requireMakeAllowed('setLoad', epoch, { lid: true });
      const m = this.#t('mains');
      if (!(m.commanded && m.confirmed === true && m.inflight === 0)) {
        throw this.#refuse('setLoad', 'loads may only be switched on while mains is on', { load: name });
      }
      await this.#write('setLoad', out, true);
      this.#requireMakeAllowed('setLoad', epoch, { lid: true });
    });
  }

  /**
   * Dry-switch one load relay (close, confirm, open, confirm) while mains is confirmed off, so a
   * jig check can prove the relay and its wiring without energising anything. Queued like every
   * command, so mains cannot come on in between.
   */
  dryTestLoad(name: string): Promise<void> {
    const out = `load:${name}` as const;
    if (!this.#track.has(out)) {
      return Promise.reject(new InterlockError(`slot ${this.slot}: no load "${name}"`, { slot: this.slot, step: 'dryTestLoad', load: name }));
    }
    return this.#enqueue('dryTestLoad', async () => {
      const m = this.#t('mains');
      if (m.commanded || m.confirmed !== false || m.inflight !== 0) {
        throw this.#refuse('dryTestLoad', 'a load relay is only dry-tested while mains is confirmed off', { load: name });
      }
      try {
        await this.#write('dryTestLoad', out, true);
      } finally {
        await this.#breakAll('dryTestLoad', [out]);
      }
    });
  }

  /**
   * Everything off now (mains first), bypassing the queue and aborting a command in progress, then
   * wait for the board's confirmations. Does not latch a fault.
   */
  async safeState(): Promise<void> {
    this.#epoch++;
    this.#group?.cancel(this.#member, this.#refuse('mainsOn', 'cancelled by safeState()'));
    const pending = this.#issueAllOff('safeState');
    const results = await Promise.allSettled(pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw this.#refuse('safeState', 'could not confirm the safe state', {}, failed.reason);
  }

  /**
   * Synchronous trip for emergencies (process exit, signals, an operator's stop button): issues every
   * output off at once and latches a fault.
   */
  emergencyOff(reason: TripReason, detail?: string): Promise<void> {
    this.#trip(reason, detail);
    return Promise.allSettled([...this.#track.values()].map((t) => t.settled)).then(() => undefined);
  }

  state(): InterlockState {
    const level = (o: InterlockOutput): OutputLevel => {
      const t = this.#t(o);
      if (t.confirmed === 'unknown') return 'unknown';
      if (t.inflight > 0) return 'switching';
      return t.confirmed ? 'on' : 'off';
    };
    const loads: Record<string, OutputLevel> = {};
    for (const l of this.#loads) loads[l.slice(5)] = level(l);
    return {
      mains: level('mains'),
      uart: level('uart'),
      power3v3: level('power3v3'),
      loads,
      fault: this.#fault,
      needsReinit: this.#needsReinit,
      inputs: { ...this.#input },
    };
  }

  /** Stop listening to the inputs (the outputs are left as they are: call safeState() first). */
  dispose(): void {
    this.#unsubscribe();
    this.#heartbeat?.release(this.#hbHolder());
  }

  // ---- internals ------------------------------------------------------------------------------------

  #t(o: InterlockOutput): OutputTrack {
    const t = this.#track.get(o);
    if (!t) throw new InterlockError(`slot ${this.slot}: unknown output ${o}`, { slot: this.slot, output: o });
    return t;
  }

  /** fn gets the epoch of the call: a trip or safeState() after the call cancels its makes. */
  #enqueue(step: string, fn: (epoch: number) => Promise<void>): Promise<void> {
    const epoch = this.#epoch;
    const go = (): Promise<void> => fn(epoch);
    const run = this.#queue.then(go, go);
    this.#queue = run.catch(() => undefined);
    this.#log?.debug({ slot: this.slot, step }, 'interlock command queued');
    return run;
  }

  #changed(): void {
    if (this.listenerCount('change') > 0) this.emit('change', this.state());
  }

  #refuse(step: string, why: string, extra: Record<string, unknown> = {}, cause?: unknown): InterlockError {
    return new InterlockError(`slot ${this.slot}: ${step} refused: ${why}`, { slot: this.slot, step, reason: why, fault: this.#fault, ...extra }, cause === undefined ? undefined : { cause });
  }

  #requireInputs(step: string, need: { lid: boolean }): void {
    const s = this.#input;
    if (!s.linkUp) throw this.#refuse(step, 'I/O board connection lost');
    if (!s.estopClear) throw this.#refuse(step, 'E-stop pressed');
    if (need.lid && !s.lidClosed) throw this.#refuse(step, 'lid open');
  }

  /** Checked synchronously right before every make write. */
  #requireMakeAllowed(step: string, epoch: number, need: { lid: boolean }): void {
    if (this.#fault) throw this.#refuse(step, `latched fault (${this.#fault.reason}); reset() required`);
    if (this.#needsReinit) throw this.#refuse(step, 'outputs not initialised; init() or reset() required');
    this.#requireInputs(step, need);
    if (epoch !== this.#epoch) throw this.#refuse(step, 'cancelled by a trip or safeState() after it was called');
  }

  #write(step: string, o: InterlockOutput, on: boolean): Promise<void> {
    const t = this.#t(o);
    t.commanded = on;
    t.inflight++;
    if (on) t.inflightOn++;
    t.driven = true;
    let p: Promise<void>;
    try {
      p = this.#outputs.write(o, on);
    } catch (e) {
      p = Promise.reject(e);
    }
    const done = p.then(
      () => {
        t.inflight--;
        if (on) t.inflightOn--;
        // Writes are FIFO, so the last acknowledgement is the current level.
        if (t.confirmed !== 'unknown' || t.inflight === 0) t.confirmed = on;
        if (!on) t.offAckAt = this.#clock.now();
        if (o === 'mains' && !on) {
          this.#releaseHeartbeatIfOff();
          this.#group?.confirmedOff();
        }
        this.#changed();
      },
      (e: unknown) => {
        t.inflight--;
        if (on) t.inflightOn--;
        t.confirmed = 'unknown';
        // Re-drive everything off (a failed make may still have reached the relay), except outputs
        // whose break just failed: re-issuing those would fail again, forever. Their 'unknown' level
        // and the latched fault block every make until reset().
        this.#trip('write-failed', `${o} <- ${on ? 'on' : 'off'}: ${(e as Error)?.message ?? String(e)}`, 'skip-failed-breaks');
        throw this.#refuse(step, `write ${o} ${on ? 'on' : 'off'} failed`, { output: o }, e);
      },
    );
    t.settled = done.catch(() => undefined);
    return done;
  }

  /** Break the given outputs (in order, each confirmed before the next). Always allowed. */
  async #breakAll(step: string, outputs: readonly InterlockOutput[]): Promise<void> {
    for (const o of outputs) {
      const t = this.#t(o);
      if (!t.commanded && t.confirmed === false && t.inflight === 0) continue;
      if (t.commanded || t.confirmed !== false) await this.#write(step, o, false);
      else await t.settled;
      if (this.#t(o).confirmed !== false) throw this.#refuse(step, `${o} could not be confirmed off`, { output: o });
    }
  }

  /** Wait until every output of `side` is confirmed off and settleMs passed since the last of them. */
  async #settle(step: string, epoch: number, side: readonly InterlockOutput[]): Promise<void> {
    for (;;) {
      let readyAt = -Infinity;
      for (const o of side) {
        const t = this.#t(o);
        if (t.inflight > 0) {
          await t.settled;
          readyAt = Infinity;
          break;
        }
        if (t.commanded || t.confirmed !== false) throw this.#refuse(step, `${o} is not confirmed off`, { output: o });
        readyAt = Math.max(readyAt, t.offAckAt + this.settleMs);
      }
      if (readyAt === Infinity) continue;
      if (this.#clock.now() >= readyAt) return;
      await this.#clock.sleepUntil(readyAt);
      if (epoch !== this.#epoch) throw this.#refuse(step, 'interrupted by a safe-state command');
    }
  }

  async #makeUartSide(step: string, epoch: number, o: 'uart' | 'power3v3'): Promise<void> {
    this.#requireMakeAllowed(step, epoch, { lid: false });
    const t = this.#t(o);
    if (t.commanded && t.confirmed === true && t.inflight === 0) return;
    // A shared relay opens for every plug it feeds: the partners' loads go first.
    this.#group?.forceOff(this.#member);
    await this.#breakAll(step, [...this.#loads, 'mains']);
    await this.#settle(step, epoch, ['mains']);
    this.#requireMakeAllowed(step, epoch, { lid: false });
    // A partner may have closed the shared relay since the settle: checked again, synchronously with the write.
    if (this.#group?.live()) throw this.#refuse(step, `mains group ${this.#group.name} switched mains on meanwhile`);
    await this.#write(step, o, true);
    this.#requireMakeAllowed(step, epoch, { lid: false });
  }

  /** Driving outputs off is always safe: only a link is needed. */
  async #reinit(step: string): Promise<void> {
    if (!this.#input.linkUp) throw this.#refuse(step, 'I/O board connection lost');
    const epoch = this.#epoch;
    const results = await Promise.allSettled(this.#issueAllOff(step, 'all'));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw this.#refuse(step, 'could not drive the outputs off', {}, failed.reason);
    // A trip while re-driving (even an E-stop pressed and released again) must not be cleared by it.
    if (epoch !== this.#epoch) throw this.#refuse(step, 'interrupted by a trip');
    if (!this.#input.linkUp) throw this.#refuse(step, 'I/O board connection lost');
    this.#needsReinit = false;
    this.#changed();
  }

  /** Issue off to every output that is or may be on, mains first. Synchronous issue; returns the acks. */
  #issueAllOff(step: string, which: 'all' | 'maybe-on' | 'skip-failed-breaks' = 'maybe-on'): Promise<void>[] {
    const pending: Promise<void>[] = [];
    for (const o of ['mains', ...this.#loads, 'uart', 'power3v3'] as InterlockOutput[]) {
      const t = this.#t(o);
      // An off already in flight will do; after a failed write only outputs commanded on get a new off.
      const needsOff =
        which === 'all' || t.commanded || (which === 'maybe-on' && t.confirmed !== false && t.inflight === 0);
      if (needsOff) pending.push(this.#write(step, o, false));
      else if (t.inflight > 0) pending.push(t.settled);
    }
    return pending;
  }

  #trip(reason: TripReason, detail?: string, which: 'maybe-on' | 'skip-failed-breaks' = 'maybe-on'): void {
    this.#epoch++;
    if (reason === 'link-lost') this.#needsReinit = true;
    if (!this.#fault) {
      this.#fault = { reason, at: this.#clock.now(), ...(detail ? { detail } : {}) };
      this.#log?.warn({ slot: this.slot, fault: this.#fault }, 'interlock tripped');
      this.emit('fault', this.#fault);
    }
    if (this.#group) {
      this.#group.forceOff(this.#member);
      this.#group.tripped(this.#member, this.#refuse('mainsOn', `slot ${this.slot} tripped (${reason})`));
    }
    for (const p of this.#issueAllOff(`trip:${reason}`, which)) p.catch(() => undefined);
    // Stopping the heartbeat drops the watchdog relay even if the mains write never arrives.
    this.#heartbeat?.release(this.#hbHolder());
    this.#changed();
  }

  #onInputs(s: InterlockInputState): void {
    const prev = this.#input;
    this.#input = { ...s };
    if (!s.linkUp && prev.linkUp) this.#trip('link-lost');
    // Pressing the E-stop always latches; a pressed (or not yet reported) E-stop without a press
    // seen only blocks mains, through the checks before every make.
    if (!s.estopClear && (prev.estopClear || this.#mainsSideLive())) this.#trip('estop');
    if (!s.lidClosed && prev.lidClosed && this.#mainsSideLive()) this.#trip('lid-open');
    this.#changed();
  }

  /** Let go of the heartbeat once mains is confirmed off (nothing of it in flight). */
  #releaseHeartbeatIfOff(): void {
    const m = this.#t('mains');
    if (!m.commanded && m.confirmed === false && m.inflight === 0) this.#heartbeat?.release(this.#hbHolder());
  }

  /** Who holds the board's heartbeat for this mains relay: the group when it is shared. */
  #hbHolder(): object {
    return this.#group ?? this;
  }

  /** Why the (shared) mains relay may not close for this slot's plug now. Synchronous. */
  #mainsBlockedBy(now: number): string | undefined {
    if (this.#fault) return `latched fault (${this.#fault.reason})`;
    if (this.#needsReinit) return 'outputs not initialised';
    const s = this.#input;
    if (!s.linkUp) return 'I/O board connection lost';
    if (!s.estopClear) return 'E-stop pressed';
    if (!s.lidClosed) return 'lid open';
    for (const o of UART_SIDE) {
      const t = this.#t(o);
      if (t.commanded || t.confirmed !== false || t.inflight > 0) return `${o === 'uart' ? 'UART' : '3V3'} not confirmed off`;
      if (now < t.offAckAt + this.settleMs) return `${o === 'uart' ? 'UART' : '3V3'} off for less than ${this.settleMs} ms`;
    }
    return undefined;
  }

  /**
   * mainsOn in a group: isolate this slot's UART side, then ask the group; the relay closes once
   * every running member asked, after checking every plug it feeds, right before the write.
   */
  async #groupMainsOn(group: MainsGroup, epoch: number): Promise<void> {
    const step = 'mainsOn';
    this.#requireMakeAllowed(step, epoch, { lid: true });
    await this.#breakAll(step, UART_SIDE);
    await this.#settle(step, epoch, UART_SIDE);
    this.#requireMakeAllowed(step, epoch, { lid: true });
    await group.requestOn(this.#member, async () => {
      const blocked = (): void => {
        this.#requireMakeAllowed(step, epoch, { lid: true });
        const why = group.blockedBy();
        if (why) throw this.#refuse(step, why);
      };
      // A partner that isolated its UART a moment ago: wait out its settle time, like our own.
      const settledAt = group.settledAt();
      if (Number.isFinite(settledAt) && settledAt > this.#clock.now()) await this.#clock.sleepUntil(settledAt);
      blocked();
      if (this.#heartbeat) {
        await this.#heartbeat.acquire(this.#hbHolder());
        if (!this.#heartbeat.running()) {
          this.#releaseHeartbeatIfOff();
          throw this.#refuse(step, 'the heartbeat to the mains watchdog relay is not running');
        }
      }
      try {
        blocked();
      } catch (e) {
        this.#releaseHeartbeatIfOff();
        throw e;
      }
      await this.#write(step, 'mains', true);
      blocked();
    });
    this.#requireMakeAllowed(step, epoch, { lid: true });
  }

  /** Mains or a load is, may be, or is about to be on. */
  #mainsSideLive(): boolean {
    return (['mains', ...this.#loads] as InterlockOutput[]).some((o) => {
      const t = this.#t(o);
      // 'unknown' counts only after a failed write: never driven = init() is about to drive it off,
      // and an off in flight is already on its way.
      return t.commanded || t.confirmed === true || t.inflightOn > 0 || (t.confirmed === 'unknown' && t.driven && t.inflight === 0);
    });
  }
}
