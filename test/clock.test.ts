import t from 'tap';
import { VirtualClock, RealClock, hostIo, type Clock } from '../rig/core/clock.ts';

t.test('virtual clock fires timers in time order and jumps when idle', async (t) => {
  const clock = new VirtualClock();
  const order: string[] = [];
  clock.at(30, () => order.push('c@' + clock.now()));
  clock.at(10, () => order.push('a@' + clock.now()));
  clock.at(10, () => order.push('b@' + clock.now()));
  const started = performance.now();
  await clock.sleep(1000);
  t.same(order, ['a@10', 'b@10', 'c@30']);
  t.equal(clock.now(), 1000);
  t.ok(performance.now() - started < 500, 'a virtual second takes far less than a real one');
});

t.test('virtual clock: cancelled timers never fire; abort rejects sleep', async (t) => {
  const clock = new VirtualClock();
  let fired = false;
  const cancel = clock.at(5, () => (fired = true));
  cancel();
  const ac = new AbortController();
  const p = clock.sleep(100, ac.signal);
  ac.abort(new Error('stop'));
  await t.rejects(p, { message: 'stop' });
  await clock.sleep(10);
  t.equal(fired, false);
  t.equal(clock.pending(), 0);
});

t.test('virtual clock waits for promise chains before advancing', async (t) => {
  const clock = new VirtualClock();
  const seen: number[] = [];
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      // Streams hop through microtasks and nextTicks; one setImmediate hop per step is
      // within the clock's idle budget.
      for (let k = 0; k < 20; k++) await Promise.resolve();
      await new Promise<void>((r) => process.nextTick(r));
      if (i === 0) await new Promise<void>((r) => setImmediate(r));
      seen.push(clock.now());
    }
  };
  const w = worker();
  await clock.sleep(50);
  await w;
  t.same(seen, [0, 0, 0, 0, 0], 'work that never sleeps runs at the instant it started');
});

t.test('real clock sleeps roughly the asked time', async (t) => {
  const clock = new RealClock();
  const t0 = clock.now();
  await clock.sleep(20);
  t.ok(clock.now() - t0 >= 19);
});

t.test('real clock keeps sub-millisecond order of timers scheduled at different moments', async (t) => {
  const clock = new RealClock();
  const fired: number[] = [];
  const base = clock.now() + 5;
  // Later deadline scheduled first with a longer delay; earlier deadline scheduled after a pause.
  clock.at(base + 1.45, () => fired.push(2));
  await new Promise((r) => setTimeout(r, 2));
  clock.at(base + 1.4, () => fired.push(1));
  clock.at(base + 1.5, () => fired.push(3));
  await clock.sleepUntil(base + 3);
  t.same(fired, [1, 2, 3]);
});

t.test('real clock: timers later than the armed wake-up re-use it (no Node timer per at())', async (t) => {
  const clock = new RealClock();
  const realSetTimeout = globalThis.setTimeout;
  let created = 0;
  // Count the Node timers the clock creates; each still runs as the real one.
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    created++;
    return realSetTimeout(fn, ms);
  }) as typeof setTimeout;
  const fired: number[] = [];
  try {
    const base = clock.now();
    clock.at(base + 20, () => fired.push(0));
    // What a serial read does per command: a later timeout (and a watch), both cancelled on the reply.
    for (let i = 1; i <= 50; i++) {
      const cancel = clock.at(base + 30 + i, () => fired.push(-i));
      clock.at(base + 25 + i / 10, () => fired.push(i));
      cancel();
    }
    await clock.sleepUntil(base + 90);
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  t.same(fired, [0, ...Array.from({ length: 50 }, (_, i) => i + 1)], 'every live timer fired, in deadline order; cancelled ones never');
  t.ok(created <= 20, `Node timers created: ${created} (one per wake-up, not one per at(): 101 at() calls here; other code in the process may add a few)`);
});

t.test('virtual clock: hold() keeps time still during wall-time I/O, release resumes', async (t) => {
  const clock = new VirtualClock();
  // A periodic device timer (like a Firmata board's sampling) that would otherwise race ahead.
  let ticks = 0;
  let stop = false;
  const tick = (): void => {
    ticks++;
    if (!stop) clock.at(clock.now() + 19, tick);
  };
  clock.at(19, tick);
  await clock.sleep(100);
  const before = clock.now();
  const release = clock.hold();
  await new Promise((r) => setTimeout(r, 30)); // a file write on wall time
  t.equal(clock.now(), before, 'no model time passed during the held I/O');
  const ticksHeld = ticks;
  release();
  release(); // idempotent
  await clock.sleep(38);
  t.equal(clock.now(), before + 38);
  t.ok(ticks > ticksHeld, 'timers run again after the release');
  const r1 = clock.hold();
  const r2 = clock.hold();
  r1();
  const at = clock.now();
  await new Promise((r) => setTimeout(r, 10));
  t.equal(clock.now(), at, 'still held by the second hold');
  r2();
  await clock.sleep(1);
  stop = true;
  t.equal((new RealClock() as Clock).hold, undefined, 'wall time has no hold');
});

t.test('virtual clock: io() holds time until every host I/O in flight is done, then resumes the callers in the order they started', async (t) => {
  const clock = new VirtualClock();
  let ticks = 0;
  let stop = false;
  const tick = (): void => {
    ticks++;
    if (!stop) clock.at(clock.now() + 7, tick);
  };
  clock.at(7, tick);
  await clock.sleep(50);
  const at = clock.now();
  const resumed: string[] = [];
  // Slot A's write is slow on the disk, slot B's fast: B's finishes first on wall time.
  const a = clock.io(() => new Promise<string>((r) => setTimeout(() => r('a'), 40))).then((v) => void resumed.push(v));
  const b = clock.io(() => new Promise<string>((r) => setTimeout(() => r('b'), 5))).then((v) => void resumed.push(v));
  const failed = clock.io(() => Promise.reject(new Error('disk full'))).catch((e: Error) => void resumed.push(e.message));
  await new Promise((r) => setTimeout(r, 20));
  t.same(resumed, [], 'nobody resumes while other host I/O is still in flight');
  t.equal(clock.now(), at, 'and model time stands still');
  await Promise.all([a, b, failed]);
  t.same(resumed, ['a', 'b', 'disk full'], 'the callers resume in the order their I/O started, not the order the disk finished it');
  t.equal(clock.now(), at, 'no model time passed for the I/O');
  const ticksAfter = ticks;
  await clock.sleep(21);
  t.ok(ticks >= ticksAfter + 3, 'time moves again once all of it is done');
  stop = true;
  t.equal((new RealClock() as Clock).io, undefined, 'wall time has no io(): hostIo runs the work as it is');
  t.equal(await hostIo(new RealClock(), async () => 5), 5);
});
