import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { mulberry32 } from '../rig/core/prng.ts';
import { MainsGroup } from '../rig/jig/mains-group.ts';
import { MainsInterlock, type InterlockInputState, type InterlockInputs, type InterlockOutput, type InterlockOutputs } from '../rig/jig/mains-interlock.ts';
import { createLogger } from '../rig/core/log.ts';
import { runSlot } from '../suites/runner/run-slot.ts';
import { StepPause } from '../suites/runner/step-pause.ts';
import type { Step } from '../suites/runner/step.ts';

/**
 * One mains relay feeding two slots (rig/jig/mains-group.ts): a fake board with ONE physical mains
 * output and each slot's own UART/3V3/loads, whose outputs change some time after a write and
 * acknowledge later. The physical edges are checked as they happen: the shared relay never closes
 * while any member's UART or 3V3 is connected (or was, less than settleMs ago) or any lid is open, and
 * no member's UART/3V3 connects while the relay is closed.
 */

const SETTLE = 50;
const APPLY_MS = 3;
const ACK_MS = 6;
const LOADS = ['R100'] as const;

class SharedMainsBoard {
  readonly physical = new Map<string, boolean>();
  readonly offSince = new Map<string, number>();
  readonly violations: string[] = [];
  readonly mainsEdges: Array<{ at: number; on: boolean }> = [];
  readonly inputs = new Map<number, InterlockInputState>();
  readonly #subs = new Map<number, Set<(s: InterlockInputState) => void>>();
  constructor(
    readonly clock: VirtualClock,
    readonly slots: number[],
  ) {
    this.physical.set('mains', false);
    this.offSince.set('mains', -Infinity);
    for (const s of slots) {
      for (const o of ['uart', 'power3v3', ...LOADS.map((l) => `load:${l}`)]) {
        this.physical.set(`${s}:${o}`, false);
        this.offSince.set(`${s}:${o}`, -Infinity);
      }
      this.inputs.set(s, { linkUp: true, lidClosed: true, estopClear: true });
      this.#subs.set(s, new Set());
    }
  }

  /** The InterlockOutputs/Inputs one slot's interlock sees: 'mains' is the shared relay. */
  port(slot: number): InterlockOutputs & InterlockInputs {
    return {
      write: (o: InterlockOutput, on: boolean) => this.#write(o === 'mains' ? 'mains' : `${slot}:${o}`, on),
      read: () => ({ ...this.inputs.get(slot)! }),
      subscribe: (fn) => {
        this.#subs.get(slot)!.add(fn);
        return () => this.#subs.get(slot)!.delete(fn);
      },
    };
  }

  setLid(slot: number, closed: boolean): void {
    this.inputs.set(slot, { ...this.inputs.get(slot)!, lidClosed: closed });
    for (const fn of this.#subs.get(slot)!) fn({ ...this.inputs.get(slot)! });
    if (!closed) {
      // Mains may still be live for a write already on its way; it must be gone soon after.
      const at = this.clock.now();
      this.clock.at(at + 2 * ACK_MS, () => {
        if (this.physical.get('mains') && !this.inputs.get(slot)!.lidClosed) this.violations.push(`t=${this.clock.now()}: mains still live ${2 * ACK_MS} ms after slot ${slot}'s lid opened at ${at}`);
      });
    }
  }

  #write(key: string, on: boolean): Promise<void> {
    if (key === 'mains' && on) {
      // The lid is judged when the make is issued (a lid opening after that trips it, checked above).
      for (const s of this.slots) if (!this.inputs.get(s)!.lidClosed) this.violations.push(`t=${this.clock.now()}: mains make issued with slot ${s}'s lid open`);
    }
    return new Promise<void>((resolve) => {
      this.clock.at(this.clock.now() + APPLY_MS, () => this.#apply(key, on));
      this.clock.at(this.clock.now() + ACK_MS, resolve);
    });
  }

  #apply(key: string, on: boolean): void {
    const was = this.physical.get(key)!;
    if (was === on) return;
    const now = this.clock.now();
    this.physical.set(key, on);
    if (!on) this.offSince.set(key, now);
    if (key === 'mains') this.mainsEdges.push({ at: now, on });
    if (!on) return;
    // Physical rule check at every make edge (the acks come APPLY..ACK later, so settle is measured on edges).
    const uartSide = (s: number): string[] => [`${s}:uart`, `${s}:power3v3`];
    if (key === 'mains') {
      for (const s of this.slots) {
        for (const k of uartSide(s)) {
          if (this.physical.get(k)) this.violations.push(`t=${now}: mains closed while ${k} connected`);
          else if (now - this.offSince.get(k)! < SETTLE - ACK_MS + APPLY_MS) this.violations.push(`t=${now}: mains closed ${now - this.offSince.get(k)!} ms after ${k} opened`);
        }
      }
    } else if (/:(uart|power3v3)$/.test(key)) {
      if (this.physical.get('mains')) this.violations.push(`t=${now}: ${key} connected while mains is closed`);
      else if (now - this.offSince.get('mains')! < SETTLE - ACK_MS + APPLY_MS) this.violations.push(`t=${now}: ${key} connected ${now - this.offSince.get('mains')!} ms after mains opened`);
    }
  }
}

function rig(slots = [1, 2], groupOptions: { waitTimeoutMs?: number } = {}) {
  const clock = new VirtualClock();
  const board = new SharedMainsBoard(clock, slots);
  const group = new MainsGroup('A', slots, clock, groupOptions);
  const il = new Map<number, MainsInterlock>();
  for (const s of slots) {
    const port = board.port(s);
    il.set(s, new MainsInterlock({ outputs: port, inputs: port, clock, settleMs: SETTLE, loads: [...LOADS], slot: s, group }));
  }
  const init = Promise.all([...il.values()].map((x) => x.init()));
  return { clock, board, group, il: (s: number) => il.get(s)!, init };
}

/** Settle state: run the clock until nothing is scheduled before `ms` from now. */
async function run(clock: VirtualClock, ms: number): Promise<void> {
  await clock.sleep(ms);
}

t.test('mains comes on once, when the last member asks; a member still on UART holds the whole group off', async (t) => {
  const r = rig();
  await r.init;
  await r.il(2).connectUart();
  await r.il(2).power3v3(true);
  let oneOn = false;
  const one = r.il(1).mainsOn().then(() => (oneOn = true));
  await run(r.clock, 5000);
  t.equal(oneOn, false, 'slot 1 waits: slot 2 is still on its UART');
  t.equal(r.board.physical.get('mains'), false, 'the shared relay stays open meanwhile');
  t.same(r.group.pending(), [2], 'the group waits for slot 2');
  await r.il(2).power3v3(false);
  await r.il(2).disconnectUart();
  await r.il(2).mainsOn();
  await one;
  t.equal(r.board.physical.get('mains'), true, 'both asked: mains on');
  t.same(r.board.mainsEdges.filter((e) => e.on).length, 1, 'switched once for the group');
  t.equal(r.il(1).state().mains, 'on', 'slot 1 sees the shared relay on');
  t.equal(r.il(2).state().mains, 'on', 'slot 2 too');
  t.same(r.board.violations, []);
});

t.test('a member connecting its UART opens the shared relay first: the partners\u2019 loads, then mains, then settle, then UART', async (t) => {
  const r = rig();
  await r.init;
  await Promise.all([r.il(1).mainsOn(), r.il(2).mainsOn()]);
  await r.il(1).setLoad('R100', true);
  t.equal(r.board.physical.get('1:load:R100'), true, 'slot 1 load on');
  await r.il(2).connectUart();
  t.equal(r.board.physical.get('mains'), false, 'mains opened for slot 2\u2019s UART');
  t.equal(r.board.physical.get('1:load:R100'), false, 'slot 1\u2019s load went off too');
  t.equal(r.board.physical.get('2:uart'), true, 'slot 2 UART connected');
  t.equal(r.il(1).state().mains, 'off', 'slot 1 sees mains off');
  await t.rejects(r.il(1).setLoad('R100', true), /only be switched on while mains is on/, 'slot 1 cannot use a load without mains');
  t.same(r.board.violations, []);
});

t.test('the relay is judged over every plug it feeds, not only over who asked: a member that left but is on UART blocks it', async (t) => {
  const r = rig();
  await r.init;
  await r.il(2).connectUart();
  // Slot 2's program "ended" with its UART connected (a bug elsewhere): the barrier stops waiting for it,
  // the safety check does not.
  r.group.leave(2);
  await t.rejects(r.il(1).mainsOn(), /slot 2: UART not confirmed off/, 'mains refused: slot 2 is on its UART');
  t.equal(r.board.physical.get('mains'), false, 'the relay never closed');
  await r.il(2).disconnectUart();
  await r.il(1).mainsOn();
  t.equal(r.board.physical.get('mains'), true, 'once slot 2 is isolated (and settled) mains comes on');
  t.same(r.board.violations, []);
});

t.test('a lid opened at any member trips the shared relay; nobody waiting gets mains', async (t) => {
  const r = rig();
  await r.init;
  await Promise.all([r.il(1).mainsOn(), r.il(2).mainsOn()]);
  r.board.setLid(2, false);
  await run(r.clock, 20);
  t.equal(r.board.physical.get('mains'), false, 'mains opened by slot 2\u2019s lid');
  t.equal(r.il(2).state().fault?.reason, 'lid-open', 'slot 2 latched the fault');
  r.board.setLid(2, true);
  await t.rejects(r.il(1).mainsOn(), /slot 2: latched fault/, 'slot 1 cannot switch the shared relay back on past slot 2\u2019s fault');
  t.equal(r.board.physical.get('mains'), false);
  t.same(r.board.violations, []);
});

t.test('a power cycle is the group\u2019s: off once neither wants mains, on once both ask again', async (t) => {
  const r = rig();
  await r.init;
  await Promise.all([r.il(1).mainsOn(), r.il(2).mainsOn()]);
  let oneOff = false;
  const off1 = r.il(1).mainsOff().then(() => (oneOff = true));
  await run(r.clock, 2000);
  t.equal(oneOff, false, 'slot 1 waits for slot 2 to let go of mains');
  t.equal(r.board.physical.get('mains'), true, 'slot 2 still has mains');
  await r.il(2).mainsOff();
  await off1;
  t.equal(r.board.physical.get('mains'), false, 'both let go: off');
  await Promise.all([r.il(1).mainsOn(), r.clock.sleep(500).then(() => r.il(2).mainsOn())]);
  t.same(
    r.board.mainsEdges.map((e) => e.on),
    [true, false, true],
    'one edge per group transition',
  );
  t.same(r.board.violations, []);
});

t.test('a member that leaves releases the barrier; its safe state cancels its own wait', async (t) => {
  const r = rig();
  await r.init;
  const one = r.il(1).mainsOn();
  await run(r.clock, 100);
  t.equal(r.board.physical.get('mains'), false);
  r.group.leave(2);
  await one;
  t.equal(r.board.physical.get('mains'), true, 'slot 2 left (its plug isolated): slot 1 gets mains');
  await r.il(1).safeState();
  t.equal(r.board.physical.get('mains'), false, 'safe state opens the shared relay');

  const r2 = rig();
  await r2.init;
  const waiting = r2.il(1).mainsOn();
  await run(r2.clock, 100);
  await r2.il(1).safeState();
  await t.rejects(waiting, /cancelled by safeState/, 'the waiting mainsOn is cancelled, not left hanging');
  t.same([...r.board.violations, ...r2.board.violations], []);
});

/**
 * Random concurrent commands from both members (never awaited in order), lid flips and leaves: the
 * physical rules hold at every edge. 300 seeded sequences of 40 commands.
 */
t.test('random concurrent commands on both members never break the physical rules', async (t) => {
  let mainsOnEdges = 0;
  for (let seq = 0; seq < 300; seq++) {
    const rnd = mulberry32(seq + 1);
    const r = rig();
    await r.init;
    for (let k = 0; k < 40; k++) {
      const s = rnd() < 0.5 ? 1 : 2;
      const il = r.il(s);
      const pick = rnd();
      const ignore = (p: Promise<void>): void => void p.catch(() => undefined);
      if (pick < 0.2) ignore(il.mainsOn());
      else if (pick < 0.32) ignore(il.mainsOff());
      else if (pick < 0.44) ignore(il.connectUart());
      else if (pick < 0.52) ignore(il.disconnectUart());
      else if (pick < 0.6) ignore(il.power3v3(rnd() < 0.5));
      else if (pick < 0.7) ignore(il.setLoad('R100', rnd() < 0.7));
      else if (pick < 0.75) r.board.setLid(s, rnd() < 0.6);
      else if (pick < 0.78) ignore(il.reset());
      else if (pick < 0.8) r.group.leave(s);
      else if (pick < 0.83) ignore(il.safeState());
      await run(r.clock, Math.floor(rnd() * 3) * 40);
    }
    await run(r.clock, 2000);
    mainsOnEdges += r.board.mainsEdges.filter((e) => e.on).length;
    if (r.board.violations.length) {
      t.fail(`sequence ${seq}: ${r.board.violations.join('; ')}`);
      return;
    }
  }
  t.ok(mainsOnEdges > 100, `mains did come on in the sequences (${mainsOnEdges} make edges), so the rules were exercised`);
  t.pass('300 sequences, no physical rule broken');
});

/** Two slots' programs through runSlot, the group's barrier waits pausing their step timeouts as the station wires them. */
async function runPair(r: ReturnType<typeof rig>, programs: Record<number, Step[]>) {
  const pauses = new Map([1, 2].map((s) => [s, new StepPause()] as const));
  r.group.setWaitHooks({ begin: (s) => pauses.get(s)!.begin(), end: async (s) => pauses.get(s)!.end() });
  const log = createLogger({}, 'silent');
  const safe = (s: number): Step => ({ name: 'safe state', kind: 'safe-state', run: async () => void (await r.il(s).safeState()) });
  return Promise.all(
    [1, 2].map(async (s) => {
      const res = await runSlot([...programs[s]!, safe(s)], { slot: s, clock: r.clock, log, sink: { emit: () => undefined }, pause: pauses.get(s)! });
      r.group.leave(s);
      return res;
    }),
  );
}

t.test("a wait at the barrier for a slow partner does not count against the step's timeout", async (t) => {
  const r = rig();
  await r.init;
  const [one, two] = await runPair(r, {
    1: [{ name: 'mains on', timeoutMs: 1000, run: async () => void (await r.il(1).mainsOn()) }],
    2: [
      { name: 'slow flash', timeoutMs: 10_000, run: async () => void (await r.clock.sleep(5000)) },
      { name: 'mains on', timeoutMs: 1000, run: async () => void (await r.il(2).mainsOn()) },
    ],
  });
  t.equal(one!.verdict, 'pass', `slot 1: ${one!.reason ?? 'pass'}`);
  t.equal(two!.verdict, 'pass', `slot 2: ${two!.reason ?? 'pass'}`);
  const step1 = one!.steps[0]!;
  t.ok(step1.ms >= 5000, `slot 1's mains step took ${step1.ms} ms (its timeout is 1000 ms): the wait for slot 2 did not count`);
  t.same(r.board.mainsEdges.filter((e) => e.on).length, 1, 'the relay closed once, for both');
  t.same(r.board.violations, []);
});

t.test('the barrier keeps a bound of its own: a partner that never asks fails the waiting step, naming it', async (t) => {
  const r = rig([1, 2], { waitTimeoutMs: 3000 });
  await r.init;
  const [one] = await runPair(r, {
    1: [{ name: 'mains on', timeoutMs: 1000, run: async () => void (await r.il(1).mainsOn()) }],
    2: [{ name: 'hung elsewhere', timeoutMs: 20_000, run: async () => void (await r.clock.sleep(8000)) }],
  });
  t.equal(one!.verdict, 'fail');
  t.match(one!.steps[0]!.error, { code: 'E_TIMEOUT', message: /mains group A: slot 1 waited 3000 ms for slot 2 to ask for mains \(the barrier's bound\)/ });
  t.ok(one!.steps[0]!.ms >= 3000 && one!.steps[0]!.ms < 3500, `failed at the barrier's bound (${one!.steps[0]!.ms} ms), not the step's 1000 ms`);
  t.same(r.board.mainsEdges.filter((e) => e.on), [], 'the relay never closed');
  t.equal(r.group.pending().length, 0, 'both programs ended');
  t.same(r.board.violations, []);
});
