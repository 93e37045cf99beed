import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import type { ResultEvent } from '../suites/model/events.ts';
import type { MeasurementSpec } from '../suites/model/measurement.ts';
import { runSlot } from '../suites/runner/run-slot.ts';
import type { Step } from '../suites/runner/step.ts';

const log = createLogger({}, 'silent');

function recorder() {
  const events: ResultEvent[] = [];
  return { events, sink: { emit: (e: ResultEvent) => void events.push(e) } };
}

const volts: MeasurementSpec = {
  id: 'volts',
  name: 'mains voltage',
  unit: 'V',
  limits: { tolerancePct: 10 },
  uncertainty: { contributions: [{ name: 'reference', distribution: 'rectangular' }] },
};

function safe(ran: string[]): Step {
  return { name: 'safe state', kind: 'safe-state', run: async () => void ran.push('safe state') };
}

t.test('a step passes or fails on the verdicts the model gives; events in order', async (t) => {
  const clock = new VirtualClock();
  const { events, sink } = recorder();
  const ran: string[] = [];
  const r = await runSlot(
    [
      {
        name: 'meter',
        measurements: [volts],
        run: async (ctx) => {
          await ctx.clock.sleep(1000, ctx.signal);
          ctx.measure('volts', 231, { nominal: 230, contributions: { reference: 1.15 } });
          ctx.check('relay closed', true);
          ctx.unit({ mac: 'c8:47:8c:00:00:01' });
        },
      },
      safe(ran),
    ],
    { slot: 3, clock, log, sink },
  );
  t.equal(r.verdict, 'pass');
  t.same(r.unit, { mac: 'c8:47:8c:00:00:01' });
  const m = r.steps[0]!.measurements[0]!;
  t.match(m, { id: 'volts', taken: true, value: 231, k: 2, verdict: 'pass', decision: 'accept', attempt: 1, limits: { low: 207, high: 253, nominal: 230 } });
  t.ok(Math.abs(m.U - (2 * 1.15) / Math.sqrt(3)) < 1e-12, 'U from the declared rectangular term');
  t.equal(m.t, 1000, 'timestamp on the slot clock');
  t.equal(r.steps[0]!.ms, 1000, 'step timing on the slot clock');
  t.same(
    events.map((e) => e.type),
    ['slot-started', 'step-started', 'measurement', 'check', 'unit', 'step-finished', 'step-started', 'step-finished', 'slot-finished'],
  );
});

t.test('a declared measurement that was never taken fails the step with a clear reason', async (t) => {
  const clock = new VirtualClock();
  const { sink } = recorder();
  const r = await runSlot(
    [
      { name: 'meter', measurements: [volts, { ...volts, id: 'watts', name: 'load power', unit: 'W' }], run: async (ctx) => void ctx.measure('volts', 230, { nominal: 230, contributions: { reference: 1 } }) },
      safe([]),
    ],
    { slot: 1, clock, log, sink },
  );
  t.equal(r.verdict, 'fail');
  const st = r.steps[0]!;
  t.equal(st.status, 'fail');
  t.match(st.reason, /load power: declared but never taken/);
  t.match(st.measurements[1], { id: 'watts', taken: false, verdict: 'fail', decision: 'reject' });
  t.equal(st.measurements[0]!.verdict, 'pass', 'the one taken is still judged on its own');
});

t.test('measuring something undeclared, or a contribution left out, is an error of the step', async (t) => {
  const clock = new VirtualClock();
  const r = await runSlot(
    [
      { name: 'a', run: async (ctx) => void ctx.measure('volts', 230) },
      { name: 'b', measurements: [volts], run: async (ctx) => void ctx.measure('volts', 230, { nominal: 230 }) },
      safe([]),
    ],
    { slot: 1, clock, log, sink: recorder().sink },
  );
  t.match(r.steps[0], { status: 'fail', error: { name: 'ConfigError', message: /took measurement 'volts', which it did not declare/ } });
  t.match(r.steps[1], { status: 'fail', error: { message: /contribution 'reference' has no value/ } });
});

t.test('bounded retries: attempts numbered, earlier attempts kept; a marginal retest then a pass', async (t) => {
  const clock = new VirtualClock();
  let n = 0;
  const values = [251, 240]; // 251 is inside the marginal band of 207..253 (5 % → 250.7): retest
  const r = await runSlot(
    [
      {
        name: 'meter',
        retries: 2,
        measurements: [{ ...volts, limits: { tolerancePct: 10, marginalPct: 5 } }],
        run: async (ctx) => void ctx.measure('volts', values[n++]!, { nominal: 230, contributions: { reference: 0 } }),
      },
      {
        name: 'flaky',
        retries: 1,
        run: async (ctx) => {
          if (ctx.attempt === 1) throw new Error('first try fails');
        },
      },
      { name: 'always bad', retries: 1, run: async (ctx) => void ctx.check('never', false) },
      safe([]),
    ],
    { slot: 1, clock, log, sink: recorder().sink },
  );
  const [meter, flaky, bad] = r.steps;
  t.match(meter, { status: 'pass', attempt: 2, maxAttempts: 3 });
  t.match(meter!.earlierAttempts, [{ attempt: 1, status: 'retest', reason: /marginal band, retest/ }]);
  t.equal(meter!.earlierAttempts[0]!.measurements[0]!.decision, 'retest');
  t.equal(meter!.measurements[0]!.attempt, 2);
  t.match(flaky, { status: 'pass', attempt: 2, earlierAttempts: [{ attempt: 1, status: 'fail', error: { message: 'first try fails' } }] });
  t.match(bad, { status: 'fail', attempt: 2, maxAttempts: 2 });
  t.equal(n, 2, 'no attempt after the pass');
});

t.test('marginal with no attempt left is rejected; pass-with-flag passes flagged', async (t) => {
  const clock = new VirtualClock();
  const spec = { ...volts, limits: { tolerancePct: 10, marginalPct: 5 } };
  const r = await runSlot(
    [
      { name: 'retest', measurements: [{ ...spec, onMarginal: 'retest' }], run: async (ctx) => void ctx.measure('volts', 252, { nominal: 230, contributions: { reference: 0 } }) },
      { name: 'flag', measurements: [{ ...spec, onMarginal: 'pass-with-flag' }], run: async (ctx) => void ctx.measure('volts', 252, { nominal: 230, contributions: { reference: 0 } }) },
      safe([]),
    ],
    { slot: 1, clock, log, sink: recorder().sink },
  );
  t.match(r.steps[0], { status: 'fail', measurements: [{ verdict: 'marginal', decision: 'reject' }] });
  t.match(r.steps[1], { status: 'pass', flagged: true, measurements: [{ verdict: 'marginal', decision: 'accept-flagged' }] });
});

t.test('abort mid-step: the step fails, the rest is skipped, cleanup runs, the safe state runs last', async (t) => {
  const clock = new VirtualClock();
  const ac = new AbortController();
  const ran: string[] = [];
  const { events, sink } = recorder();
  clock.at(500, () => ac.abort(new Error('operator pressed Stop')));
  const r = await runSlot(
    [
      safe(ran), // declared first: still run last
      { name: 'long', critical: true, run: async (ctx) => {
        ran.push('long');
        await ctx.clock.sleep(60_000, ctx.signal);
        ran.push('long finished');
      } },
      { name: 'after', run: async () => void ran.push('after') },
      { name: 'loads off', kind: 'cleanup', run: async (ctx) => {
        t.notOk(ctx.signal.aborted, 'cleanup gets a live signal after the abort');
        await ctx.clock.sleep(10, ctx.signal);
        ran.push('loads off');
      } },
    ],
    { slot: 1, clock, log, sink, signal: ac.signal },
  );
  t.same(ran, ['long', 'loads off', 'safe state']);
  t.equal(r.aborted, true);
  t.equal(r.verdict, 'fail');
  t.same(r.steps.map((s) => [s.name, s.status]), [['long', 'fail'], ['after', 'skip'], ['loads off', 'pass'], ['safe state', 'pass']]);
  t.match(r.steps[0]!.error, { message: 'operator pressed Stop' });
  t.match(r.steps[1]!.reason, /slot aborted: operator pressed Stop/);
  t.equal(r.steps[0]!.finishedT, 500, 'the aborted step ended at the abort');
  const started = events.filter((e) => e.type === 'slot-started')[0] as Extract<ResultEvent, { type: 'slot-started' }>;
  t.same(started.steps.map((s) => s.name), ['long', 'after', 'loads off', 'safe state'], 'the announced order ends with the safe state');
});

t.test('a step that ignores its signal is cut off by its timeout; cleanup and safe state still run', async (t) => {
  const clock = new VirtualClock();
  const ran: string[] = [];
  const r = await runSlot(
    [
      { name: 'stuck', timeoutMs: 2000, run: () => new Promise(() => undefined) },
      { name: 'cleanup that also hangs', kind: 'cleanup', timeoutMs: 100, run: () => new Promise(() => undefined) },
      safe(ran),
    ],
    { slot: 2, clock, log, sink: recorder().sink },
  );
  t.match(r.steps[0], { status: 'fail', error: { name: 'TimeoutError', message: "step 'stuck' did not finish within 2000 ms" } });
  t.equal(r.steps[0]!.ms, 2000);
  t.match(r.steps[1], { status: 'fail', error: { name: 'TimeoutError' } });
  t.same(ran, ['safe state']);
});

t.test('a critical failure skips the remaining main steps only', async (t) => {
  const clock = new VirtualClock();
  const ran: string[] = [];
  const r = await runSlot(
    [
      { name: 'flash', critical: true, run: async (ctx) => void ctx.check('CRC matches', false) },
      { name: 'mains on', run: async () => void ran.push('mains on') },
      { name: 'log off', kind: 'cleanup', run: async () => void ran.push('log off') },
      safe(ran),
    ],
    { slot: 1, clock, log, sink: recorder().sink },
  );
  t.same(ran, ['log off', 'safe state']);
  t.match(r, { verdict: 'fail', reason: 'flash: check failed: CRC matches' });
});

t.test('a result sink that fails fails the slot, stops the main steps, still reaches the safe state', async (t) => {
  const clock = new VirtualClock();
  const ran: string[] = [];
  let n = 0;
  const sink = {
    emit: (e: ResultEvent) => {
      if (e.type === 'step-finished' && n++ === 0) throw new Error('disk full');
    },
  };
  const r = await runSlot([{ name: 'one', run: async () => void ran.push('one') }, { name: 'two', run: async () => void ran.push('two') }, safe(ran)], { slot: 1, clock, log, sink });
  t.same(ran, ['one', 'safe state']);
  t.match(r, { verdict: 'fail', reason: /result sink failed: disk full/ });
});

t.test('a slot program without exactly one safe-state step is refused', async (t) => {
  const clock = new VirtualClock();
  await t.rejects(runSlot([{ name: 'x', run: async () => undefined }], { slot: 1, clock, log, sink: recorder().sink }), { message: /exactly one safe-state step, got 0/ });
});
