import t from 'tap';
import { VirtualClock, RealClock } from '../rig/core/clock.ts';

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
