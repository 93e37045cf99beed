import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { InstrumentLease, InstrumentPool, type LeaseEvent } from '../station/instrument-lease.ts';

const holder = (slot: number, step = 'meter step') => ({ slot, step });

t.test('FIFO: waiters are served in arrival order, one holder at a time, waits and holds reported', async (t) => {
  const clock = new VirtualClock();
  const events: LeaseEvent[] = [];
  const lease = new InstrumentLease('meter:ref1', { clock, onEvent: (e) => events.push(e) });
  const order: number[] = [];
  let holding = 0;
  let maxHolding = 0;
  const use = async (slot: number, arriveMs: number, holdMs: number): Promise<void> => {
    await clock.sleep(arriveMs);
    const release = await lease.acquire(holder(slot), { timeoutMs: 60_000 });
    holding++;
    maxHolding = Math.max(maxHolding, holding);
    order.push(slot);
    await clock.sleep(holdMs);
    holding--;
    release();
  };
  await Promise.all([use(3, 0, 1000), use(1, 10, 500), use(4, 20, 200), use(2, 30, 100)]);
  t.same(order, [3, 1, 4, 2], 'served in arrival order, not by slot number');
  t.equal(maxHolding, 1, 'never two holders');
  const acquired = events.filter((e) => e.kind === 'acquired');
  t.same(acquired.map((e) => [e.holder.slot, Math.round(e.t)]), [[3, 0], [1, 1000], [4, 1500], [2, 1700]]);
  t.same(acquired.map((e) => (e.kind === 'acquired' ? Math.round(e.waitedMs) : -1)), [0, 990, 1480, 1670], 'each wait measured from arrival');
  const waits = events.filter((e) => e.kind === 'wait');
  t.same(waits.map((e) => (e.kind === 'wait' ? [e.holder.slot, e.heldBy?.slot, e.queuedBehind] : [])), [[1, 3, 1], [4, 3, 2], [2, 3, 3]], 'a wait names the holder and the queue ahead');
  t.same(events.filter((e) => e.kind === 'released').map((e) => (e.kind === 'released' ? Math.round(e.heldMs) : -1)), [1000, 500, 200, 100]);
});

t.test('a wait times out with a TimeoutError naming the holder, and leaves the queue', async (t) => {
  const clock = new VirtualClock();
  const lease = new InstrumentLease('meter:ref1', { clock });
  const r1 = await lease.acquire(holder(1, 'calibrate'), { timeoutMs: 1000 });
  const late = lease.acquire(holder(2), { timeoutMs: 300 });
  await t.rejects(late, { name: 'TimeoutError', message: /slot 2 waited 300 ms for meter:ref1 \(held by slot 1, 'calibrate'\)/ });
  t.equal(clock.now(), 300);
  const third = lease.acquire(holder(3), { timeoutMs: 5000 });
  r1();
  const r3 = await third;
  t.same(lease.heldBy(), holder(3), 'the next live waiter got it; the timed-out one never does');
  r3();
  await lease.settled();
  t.equal(lease.heldBy(), undefined);
});

t.test('an aborted wait rejects with the abort reason and leaves the queue', async (t) => {
  const clock = new VirtualClock();
  const lease = new InstrumentLease('meter:ref1', { clock });
  const r1 = await lease.acquire(holder(1), { timeoutMs: 1000 });
  const ac = new AbortController();
  const waiting = lease.acquire(holder(2), { timeoutMs: 10_000, signal: ac.signal });
  t.equal(lease.waiting(), 1);
  ac.abort(new Error('slot 2 aborted'));
  await t.rejects(waiting, { message: 'slot 2 aborted' });
  t.equal(lease.waiting(), 0);
  r1();
});

t.test('grant/release hooks switch a mux break-before-make: the next holder is served after the release hook', async (t) => {
  const clock = new VirtualClock();
  const log: string[] = [];
  const lease = new InstrumentLease('meter:shared', {
    clock,
    onGrant: async (h) => {
      await clock.sleep(20);
      log.push(`select ${h.slot}`);
    },
    onRelease: async (h) => {
      await clock.sleep(20);
      log.push(`deselect ${h.slot}`);
    },
  });
  const use = async (slot: number): Promise<void> => {
    const release = await lease.acquire(holder(slot), { timeoutMs: 10_000 });
    log.push(`read ${slot}`);
    release();
  };
  await Promise.all([use(1), use(2), use(3)]);
  await lease.settled();
  t.same(log, ['select 1', 'read 1', 'deselect 1', 'select 2', 'read 2', 'deselect 2', 'select 3', 'read 3', 'deselect 3']);
});

t.test('a failing grant hook refuses that holder and serves the next', async (t) => {
  const clock = new VirtualClock();
  const lease = new InstrumentLease('meter:shared', {
    clock,
    onGrant: async (h) => {
      if (h.slot === 1) throw new Error('mux relay of slot 1 not confirmed');
    },
  });
  const a = lease.acquire(holder(1), { timeoutMs: 1000 });
  const b = lease.acquire(holder(2), { timeoutMs: 1000 });
  await t.rejects(a, { message: /not confirmed/ });
  const rb = await b;
  t.same(lease.heldBy(), holder(2));
  rb();
});

t.test('a pool takes several instruments in name order, so crossing needs cannot deadlock', async (t) => {
  const clock = new VirtualClock();
  const pool = new InstrumentPool();
  pool.add(new InstrumentLease('a', { clock }));
  pool.add(new InstrumentLease('b', { clock }));
  const done: number[] = [];
  const use = async (slot: number, names: string[]): Promise<void> => {
    const release = await pool.acquireAll(names, holder(slot), { timeoutMs: 5000 });
    await clock.sleep(100);
    done.push(slot);
    release();
  };
  await Promise.all([use(1, ['a', 'b']), use(2, ['b', 'a']), use(3, ['b'])]);
  t.same(done.sort(), [1, 2, 3], 'all finished (no deadlock, no timeout)');
  await pool.get('a')!.settled();
  await pool.get('b')!.settled();
  t.equal(pool.get('a')!.heldBy(), undefined);
  t.equal(pool.get('b')!.heldBy(), undefined);
});
