import { parentPort, workerData } from 'node:worker_threads';
import { EventEmitter } from 'node:events';
import type { Clock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { InterlockError } from '../rig/core/errors.ts';
import {
  MainsInterlock,
  type InterlockInputState,
  type InterlockInputs,
  type InterlockOutput,
  type InterlockOutputs,
} from '../rig/jig/mains-interlock.ts';
import { installProcessGuard, type GuardedProcess } from '../rig/jig/process-guard.ts';
import { mulberry32 as prng } from '../rig/core/prng.ts';
import type { MainsHeartbeat } from '../rig/jig/heartbeat.ts';

/**
 * Worker half of test/jig-interlock-property.test.ts (runs off tap's async hooks, which make every
 * promise ~50x dearer). Property test: random command sequences against the interlock and a recording fake board whose
 * outputs change physically some time after a write and acknowledge later still (FIFO), and which
 * can lose writes, drop off the bus and come back reset. The physical history is checked afterwards.
 */

const SILENT = createLogger({}, 'silent');
const SETTLE = 20;
/** A hung board is detected (BoardLiveness) at most this long after it went silent. */
const DETECT_MS = 500;
/** An unconfirmed write fails after this long (J5InterlockPorts' ack timeout). */
const ACK_TIMEOUT_MS = 500;
/** Heartbeat half-period; the watchdog relay pulls in after 2 edges and drops this long after the last. */
const HEARTBEAT_MS = 100;
const WATCHDOG_HOLD_MS = 300;
/** Mains may be live with the lid open / E-stop pressed at most this long (a hung board: detection + the watchdog's hold). */
const HAZARD_BOUND_MS = DETECT_MS + WATCHDOG_HOLD_MS + HEARTBEAT_MS;
const LOADS = ['R25', 'R100'] as const;
const OUTPUTS: InterlockOutput[] = ['mains', 'uart', 'power3v3', ...LOADS.map((l) => `load:${l}` as const)];


/** Minimal discrete-event clock driven explicitly by the test (cheaper than VirtualClock's idle turns). */
class SteppedClock implements Clock {
  readonly kind = 'virtual' as const;
  #now = 0;
  #seq = 0;
  #timers: { t: number; seq: number; fn: () => void; live: boolean }[] = [];
  now(): number {
    return this.#now;
  }
  at(time: number, fn: () => void): () => void {
    const timer = { t: Math.max(time, this.#now), seq: this.#seq++, fn, live: true };
    this.#timers.push(timer);
    return () => {
      timer.live = false;
    };
  }
  sleep(ms: number): Promise<void> {
    return this.sleepUntil(this.#now + ms);
  }
  sleepUntil(time: number): Promise<void> {
    return new Promise((resolve) => this.at(time, resolve));
  }
  /** Fire the earliest live timer if it is due by `limit`; false when none is. */
  step(limit = Infinity): boolean {
    let best = -1;
    for (let i = 0; i < this.#timers.length; i++) {
      const x = this.#timers[i]!;
      if (!x.live) continue;
      if (best < 0 || x.t < this.#timers[best]!.t || (x.t === this.#timers[best]!.t && x.seq < this.#timers[best]!.seq)) best = i;
    }
    if (best < 0) {
      this.#timers.length = 0;
      return false;
    }
    if (this.#timers[best]!.t > limit) return false;
    const [x] = this.#timers.splice(best, 1);
    this.#now = x!.t;
    x!.fn();
    return true;
  }
}

/**
 * Let pending promise continuations run. The interlock and the fake only use promises, and any
 * interleaving must be safe anyway, so a bounded number of microtask hops is enough (a macrotask hop
 * per event would cost ~20 µs and make 100 000 sequences too slow).
 */
async function drain(): Promise<void> {
  for (let i = 0; i < DRAIN_HOPS; i++) await undefined;
}
const DRAIN_HOPS = 8;

type Fault = 'reject' | 'apply-then-reject';

/** Fake board: records issues, physical edges and acks; checks the invariants as they happen. */
class RecordingBoard implements InterlockOutputs, InterlockInputs {
  readonly physical = new Map<InterlockOutput, boolean>(OUTPUTS.map((o) => [o, false]));
  readonly lastIssued = new Map<InterlockOutput, boolean>(OUTPUTS.map((o) => [o, false]));
  readonly lastOffEdge = new Map<InterlockOutput, number>(OUTPUTS.map((o) => [o, 0]));
  readonly violations: string[] = [];
  edges = 0;
  /** What the interlock was last told (a hung board reports nothing). */
  inputs: InterlockInputState = { linkUp: true, lidClosed: true, estopClear: true };
  /** The switches as they physically are. */
  physicalLidClosed = true;
  physicalEstopClear = true;
  /** Hung with its port open: writes neither apply nor acknowledge, inputs are not reported. */
  silent = false;
  /** The watchdog relay in series with mains (closed = mains can reach the plug). */
  watchdogClosed = false;
  #hbEdges = 0;
  #lastEdge = -Infinity;
  /** Since when mains has been live at the plug with the lid open or the E-stop pressed. */
  #hazardSince: number | undefined;
  /** The checker's own idea of "a fault must be latched now". */
  latched = false;
  pendingFault: Fault | undefined;
  #linkEpoch = 0;
  #applyAt = 0;
  #ackAt = 0;
  #subs = new Set<(s: InterlockInputState) => void>();

  constructor(
    readonly clock: SteppedClock,
    readonly rnd: () => number,
  ) {}

  #violate(what: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.clock.now()}: ${what}`);
  }

  read(): InterlockInputState {
    return { ...this.inputs };
  }
  subscribe(fn: (s: InterlockInputState) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }
  #notify(): void {
    for (const fn of this.#subs) fn(this.read());
  }

  write(o: InterlockOutput, on: boolean): Promise<void> {
    const now = this.clock.now();
    if (on) {
      if (this.latched) this.#violate(`${o} on issued while a fault must be latched`);
      if (o === 'mains' || o.startsWith('load:')) {
        if (!this.inputs.lidClosed) this.#violate(`${o} on issued with lid open`);
        if (!this.inputs.estopClear) this.#violate(`${o} on issued with E-stop pressed`);
        if (!this.inputs.linkUp) this.#violate(`${o} on issued with the link down`);
      }
      if (o.startsWith('load:') && !this.lastIssued.get('mains')) this.#violate(`${o} on issued while mains is off`);
      if (o === 'mains' && (this.lastIssued.get('uart') || this.lastIssued.get('power3v3'))) this.#violate('mains on issued while the UART side is commanded on');
      if ((o === 'uart' || o === 'power3v3') && this.lastIssued.get('mains')) this.#violate(`${o} on issued while mains is commanded on`);
    }
    this.lastIssued.set(o, on);
    const epoch = this.#linkEpoch;
    if (this.silent) {
      // Nothing is executed; the write fails when its confirmation times out.
      return new Promise((_, reject) =>
        this.clock.at(now + ACK_TIMEOUT_MS, () => {
          this.latched = true;
          reject(new Error(`fake board: write ${o} unconfirmed (board silent)`));
        }),
      );
    }
    const fault = this.inputs.linkUp ? this.pendingFault : 'reject';
    this.pendingFault = undefined;
    this.#applyAt = Math.max(this.#applyAt, now + Math.floor(this.rnd() * 4));
    this.#ackAt = Math.max(this.#ackAt, this.#applyAt + Math.floor(this.rnd() * 4));
    const applyAt = this.#applyAt;
    return new Promise((resolve, reject) => {
      // A board that hung meanwhile neither applies nor confirms what was still on its way.
      if (fault !== 'reject') this.clock.at(applyAt, () => epoch === this.#linkEpoch && !this.silent && this.#apply(o, on));
      this.clock.at(this.#ackAt, () => {
        if (!fault && epoch === this.#linkEpoch && this.silent) {
          // Hung before it confirmed: the host's ack timeout runs out.
          this.clock.at(Math.max(this.clock.now(), now + ACK_TIMEOUT_MS), () => {
            this.latched = true;
            reject(new Error(`fake board: write ${o} unconfirmed (board hung)`));
          });
        } else if (fault || epoch !== this.#linkEpoch) {
          // The interlock learns of the failure now, and must latch.
          this.latched = true;
          reject(new Error(`fake board: write ${o} lost`));
        }
        else resolve();
      });
    });
  }

  #apply(o: InterlockOutput, on: boolean): void {
    const now = this.clock.now();
    const was = this.physical.get(o)!;
    if (was === on) return;
    this.edges++;
    this.physical.set(o, on);
    if (!on) {
      this.lastOffEdge.set(o, now);
      return;
    }
    const uartSide = ['uart', 'power3v3'] as const;
    if (o === 'mains') {
      for (const u of uartSide) {
        if (this.physical.get(u)) this.#violate(`mains closed while ${u} is connected`);
        if (now - this.lastOffEdge.get(u)! < SETTLE) this.#violate(`mains closed ${now - this.lastOffEdge.get(u)!} ms after ${u} opened`);
      }
    }
    if (o === 'uart' || o === 'power3v3') {
      if (this.physical.get('mains')) this.#violate(`${o} connected while mains is closed`);
      if (now - this.lastOffEdge.get('mains')! < SETTLE) this.#violate(`${o} connected ${now - this.lastOffEdge.get('mains')!} ms after mains opened`);
    }
  }

  /** One heartbeat edge reaches the board (only a board that runs toggles the pin). */
  heartbeatEdge(): void {
    if (this.silent || !this.inputs.linkUp) return;
    this.#hbEdges++;
    this.#lastEdge = this.clock.now();
    if (this.#hbEdges >= 2) this.watchdogClosed = true;
    const edge = this.#lastEdge;
    this.clock.at(edge + WATCHDOG_HOLD_MS, () => {
      if (this.#lastEdge === edge) {
        this.watchdogClosed = false;
        this.#hbEdges = 0;
      }
    });
  }

  /** Mains reaches the plug: relay closed and watchdog pulled in. */
  mainsAtPlug(): boolean {
    return this.physical.get('mains')! && this.watchdogClosed;
  }

  /** Mains live at the plug with the lid open or the E-stop pressed: allowed only for HAZARD_BOUND_MS. */
  checkHazard(): void {
    const hazard = this.mainsAtPlug() && (!this.physicalLidClosed || !this.physicalEstopClear);
    const now = this.clock.now();
    if (!hazard) {
      this.#hazardSince = undefined;
      return;
    }
    this.#hazardSince ??= now;
    if (now - this.#hazardSince > HAZARD_BOUND_MS) {
      this.#violate(`mains live at the plug for ${now - this.#hazardSince} ms with ${this.physicalLidClosed ? 'the E-stop pressed' : 'the lid open'}`);
      this.#hazardSince = now; // one report per bound
    }
  }

  mainsSideLive(): boolean {
    return OUTPUTS.some((o) => (o === 'mains' || o.startsWith('load:')) && (this.physical.get(o) || this.lastIssued.get(o)));
  }

  setLid(closed: boolean): void {
    this.physicalLidClosed = closed;
    if (this.silent) return; // a hung board reports nothing
    if (!closed && this.inputs.lidClosed && this.mainsSideLive()) this.latched = true;
    this.inputs = { ...this.inputs, lidClosed: closed };
    this.#notify();
  }
  setEstop(pressed: boolean): void {
    this.physicalEstopClear = !pressed;
    if (this.silent) return;
    if (pressed) this.latched = true;
    this.inputs = { ...this.inputs, estopClear: !pressed };
    this.#notify();
  }
  disconnect(): void {
    if (!this.inputs.linkUp) return;
    this.latched = true;
    this.#linkEpoch++;
    this.inputs = { ...this.inputs, linkUp: false };
    this.#notify();
  }
  /**
   * The board hangs with its port open: outputs hold, nothing answers; the liveness probe marks it
   * lost within DETECT_MS (as BoardLiveness does), which the interlock sees as a lost link.
   */
  hang(detectAfterMs: number): void {
    if (this.silent || !this.inputs.linkUp) return;
    this.silent = true;
    this.clock.at(this.clock.now() + Math.min(DETECT_MS, detectAfterMs), () => this.disconnect());
  }
  /** A re-opened StandardFirmata board resets: every output drops; its inputs are read afresh. */
  reconnect(): void {
    if (this.inputs.linkUp) return;
    this.silent = false;
    for (const o of OUTPUTS) {
      this.#apply(o, false);
      this.lastIssued.set(o, false);
    }
    this.inputs = { linkUp: true, lidClosed: this.physicalLidClosed, estopClear: this.physicalEstopClear };
    this.#notify();
  }
  onReset(): void {
    const s = this.inputs;
    if (!s.linkUp || !s.lidClosed || !s.estopClear || this.silent) this.#violate(`fault cleared with ${JSON.stringify(s)}${this.silent ? ' on a hung board' : ''}`);
    this.latched = false;
  }
  /** While a fault must be latched, nothing may stay commanded on (a hung board cannot be told; it is judged at the plug). */
  checkLatchedAllOff(): void {
    this.checkHazard();
    if (!this.latched || this.silent) return;
    for (const o of OUTPUTS) if (this.lastIssued.get(o)) this.#violate(`${o} still commanded on while a fault must be latched`);
  }
}

/**
 * The interlock's heartbeat (rig/jig/heartbeat.ts) reduced to its contract: toggles while held,
 * through the board (a hung or lost board makes no edges), ready after two edges.
 */
class FakeHeartbeat implements MainsHeartbeat {
  readonly #holders = new Set<object>();
  #cancel: (() => void) | undefined;
  #edges = 0;
  #waiters: Array<() => void> = [];
  constructor(
    readonly clock: SteppedClock,
    readonly board: RecordingBoard,
  ) {}
  running(): boolean {
    return this.#cancel !== undefined && this.board.inputs.linkUp;
  }
  acquire(holder: object): Promise<void> {
    this.#holders.add(holder);
    if (!this.#cancel) {
      if (!this.board.inputs.linkUp) return Promise.resolve();
      this.#edges = 0;
      this.#tick();
    }
    if (this.#edges >= 2) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release(holder: object): void {
    this.#holders.delete(holder);
    if (this.#holders.size === 0) this.#stop();
  }
  #tick(): void {
    if (!this.board.inputs.linkUp) {
      this.#stop();
      return;
    }
    this.board.heartbeatEdge();
    this.#edges++;
    this.#cancel = this.clock.at(this.clock.now() + HEARTBEAT_MS, () => this.#tick());
    if (this.#edges >= 2) for (const w of this.#waiters.splice(0)) w();
  }
  #stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    for (const w of this.#waiters.splice(0)) w();
  }
}

class FakeProcess extends EventEmitter implements GuardedProcess {
  exits: number[] = [];
  exit(code?: number): void {
    this.exits.push(code ?? 0);
  }
}

interface SequenceResult {
  violations: string[];
  commands: number;
  mainsOnOk: number;
  refused: number;
  edges: number;
}

export async function runSequence(seed: number): Promise<SequenceResult> {
  const rnd = prng(seed);
  const clock = new SteppedClock();
  const board = new RecordingBoard(clock, rnd);
  const heartbeat = new FakeHeartbeat(clock, board);
  const interlock = new MainsInterlock({ outputs: board, inputs: board, clock, settleMs: SETTLE, loads: LOADS, slot: 1, heartbeat });
  interlock.on('reset', () => board.onReset());
  const proc = new FakeProcess();
  const uninstall = installProcessGuard(() => [interlock], { proc, clock, flushMs: 50, log: SILENT });
  const res: SequenceResult = { violations: board.violations, commands: 0, mainsOnOk: 0, refused: 0, edges: 0 };
  const track = (p: Promise<void>, what: string): void => {
    p.then(
      () => {
        if (what === 'mainsOn') res.mainsOnOk++;
      },
      (e: unknown) => {
        if (e instanceof InterlockError) res.refused++;
        else board.violations.push(`${what} rejected with a non-InterlockError: ${String(e)}`);
      },
    );
  };
  track(interlock.init(), 'init');

  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const n = 4 + Math.floor(rnd() * 22);
  let at = 0;
  for (let i = 0; i < n; i++) {
    // A third of the commands land at the same instant as the previous one (concurrent, un-awaited).
    at += rnd() < 0.33 ? 0 : Math.floor(rnd() * 3 * SETTLE);
    clock.at(at, () => {
      res.commands++;
      const r = rnd();
      if (r < 0.14) track(interlock.mainsOn(), 'mainsOn');
      else if (r < 0.22) track(interlock.mainsOff(), 'mainsOff');
      else if (r < 0.32) track(interlock.connectUart(), 'connectUart');
      else if (r < 0.38) track(interlock.disconnectUart(), 'disconnectUart');
      else if (r < 0.46) track(interlock.power3v3(rnd() < 0.6), 'power3v3');
      else if (r < 0.56) track(interlock.setLoad(pick(LOADS), rnd() < 0.7), 'setLoad');
      else if (r < 0.66) track(interlock.reset(), 'reset');
      else if (r < 0.71) board.setLid(!board.inputs.lidClosed);
      else if (r < 0.75) board.setEstop(board.inputs.estopClear && rnd() < 0.5);
      else if (r < 0.79) board.pendingFault = pick(['reject', 'apply-then-reject'] as const);
      else if (r < 0.80) board.disconnect();
      else if (r < 0.82) board.hang(1 + Math.floor(rnd() * DETECT_MS));
      else if (r < 0.86) board.reconnect();
      else if (r < 0.88) {
        board.latched = true;
        proc.emit(pick(['SIGINT', 'SIGTERM', 'exit', 'uncaughtException']), new Error('simulated crash'));
      } else if (r < 0.92) track(interlock.safeState(), 'safeState');
      else {
        // Burst: several commands in the same instant without awaiting.
        track(interlock.connectUart(), 'connectUart');
        track(interlock.mainsOn(), 'mainsOn');
        track(interlock.setLoad(pick(LOADS), true), 'setLoad');
        track(interlock.power3v3(true), 'power3v3');
      }
    });
  }
  await drain();
  board.checkLatchedAllOff();
  // The heartbeat ticks for as long as mains may be on: run to a while after the last command.
  const end = at + DETECT_MS + ACK_TIMEOUT_MS + 2 * WATCHDOG_HOLD_MS;
  while (clock.step(end)) {
    await drain();
    board.checkLatchedAllOff();
  }
  // End of run: the station's teardown drives everything off (on a healthy link, with no injected fault).
  board.pendingFault = undefined;
  if (board.inputs.linkUp && !board.silent) {
    track(interlock.safeState(), 'safeState');
    await drain();
    while (clock.step(end + 5000)) await drain();
    for (const o of OUTPUTS) if (board.physical.get(o)) board.violations.push(`${o} still on after the final safeState()`);
  } else {
    while (clock.step(end + 5000)) await drain();
  }
  if (heartbeat.running()) board.violations.push('heartbeat still running at the end (mains watchdog held)');
  if (board.mainsAtPlug()) board.violations.push('mains still live at the plug at the end');
  if (proc.exits.some((c) => c === 0)) board.violations.push('a signal/crash exited with status 0');
  uninstall();
  interlock.dispose();
  res.edges = board.edges;
  return res;
}

export interface BatchResult {
  sequences: number;
  commands: number;
  mainsOnOk: number;
  refused: number;
  edges: number;
  violations: number;
  examples: string[];
}

/** Run seeds [from, to). */
export async function runBatch(from: number, to: number): Promise<BatchResult> {
  const out: BatchResult = { sequences: 0, commands: 0, mainsOnOk: 0, refused: 0, edges: 0, violations: 0, examples: [] };
  for (let seed = from; seed < to; seed++) {
    const r = await runSequence(seed);
    out.sequences++;
    out.commands += r.commands;
    out.mainsOnOk += r.mainsOnOk;
    out.refused += r.refused;
    out.edges += r.edges;
    if (r.violations.length) {
      out.violations += r.violations.length;
      if (out.examples.length < 5) out.examples.push(`seed ${seed}: ${r.violations.join('; ')}`);
    }
  }
  return out;
}

if (parentPort && workerData) {
  // Refusals are expected by the hundred thousand; their stacks are not needed here (own isolate).
  Error.stackTraceLimit = 1;
  const { from, to } = workerData as { from: number; to: number };
  parentPort.postMessage(await runBatch(from, to));
}
