import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { runStationDetailed, type StationSignals } from '../station/run-station.ts';
import type { StationState } from '../station/station-state.ts';
import type { UnitRecord } from '../reports/unit-record.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { syntheticStationImage, virtualStationWiring } from './fixtures/virtual-station.ts';

const JIG = new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname;
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;

/** Signals a test can send: every handler the station installed, called like the process would. */
class FakeSignals implements StationSignals {
  readonly handlers = new Map<string, Set<() => void>>();
  on(sig: string, fn: () => void): void {
    if (!this.handlers.has(sig)) this.handlers.set(sig, new Set());
    this.handlers.get(sig)!.add(fn);
  }
  off(sig: string, fn: () => void): void {
    this.handlers.get(sig)?.delete(fn);
  }
  send(sig: string): void {
    for (const fn of this.handlers.get(sig) ?? []) fn();
  }
}

t.test('Ctrl-C while slot 1 has mains and a load on: mains and loads off at once, every slot to its safe state, records written; a second Ctrl-C does not stop that', async (t) => {
  const jig = loadJigFile(JIG);
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  t.teardown(() => sim.vj.dispose());
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-abort-'));
  const signals = new FakeSignals();
  let signalAt: number | undefined;
  // What the operator is told goes where the caller says (the CLI: cli/io's stderr), never to the process's stderr directly.
  const notices: string[] = [];
  const processStderr: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (processStderr.push(String(s)), true)) as typeof process.stderr.write;
  t.teardown(() => void (process.stderr.write = write));
  // The moment: slot 1's reference-meter load is on (mains on behind it).
  const off = sim.vj.slot(1).history.onChange((c) => {
    if (signalAt === undefined && c.state.loadsOn.length > 0 && c.state.mainsEnergised) {
      signalAt = clock.now();
      queueMicrotask(() => {
        signals.send('SIGINT');
        signals.send('SIGINT'); // the operator presses Ctrl-C again at once
      });
    }
  });
  t.teardown(off);
  const run = await runStationDetailed({
    jig,
    jigPath: JIG,
    plan: loadPlan('factory', PLANS),
    image: syntheticStationImage({ seed: 4, appBytes: 40_000 }),
    baudRate: 2_000_000,
    outDir,
    clock,
    log: createLogger({}, 'silent'),
    signals,
    notices: { write: (l: string) => notices.push(l) },
    ...virtualStationWiring(sim),
  });
  process.stderr.write = write;
  t.ok(signalAt !== undefined, 'the signal came while the load was on');
  t.equal(run.signal, 'SIGINT');
  t.equal(run.abortReason, 'SIGINT received');
  t.ok(notices.some((l) => /^plugrig: SIGINT: aborting: mains and loads off/.test(l)), 'the first Ctrl-C is answered on the notices stream');
  t.ok(notices.some((l) => /SIGINT again: still cleaning up/.test(l)), 'the second Ctrl-C is answered, not obeyed');
  t.same(processStderr.filter((l) => /SIGINT/.test(l)), [], "the station wrote nothing to the process's stderr itself");

  // Slot 1: mains and the load went off right at the signal (the trip), before the slot's steps noticed.
  const h1 = sim.vj.history(1).filter((e) => e.at >= signalAt!);
  const mainsOff = h1.find((e) => !e.state.mainsEnergised)!;
  const loadOff = h1.find((e) => e.state.loadsOn.length === 0)!;
  t.ok(mainsOff && mainsOff.at - signalAt! < 50, `mains off ${(mainsOff.at - signalAt!).toFixed(1)} ms after the signal`);
  t.ok(loadOff && loadOff.at - signalAt! < 50, `load off ${(loadOff.at - signalAt!).toFixed(1)} ms after the signal`);
  t.same(h1.filter((e) => e.state.mainsEnergised && (e.state.uartConnected || e.state.supply3v3)), [], 'never mains with the UART side');

  for (const r of run.slots) {
    t.equal(r.aborted, true, `slot ${r.slot} aborted`);
    const last = r.steps.at(-1)!;
    t.match(last, { name: /^safe state/, status: 'pass' }, `slot ${r.slot}: the safe state ran and passed`);
    t.match(sim.vj.physical(r.slot), { mainsEnergised: false, uartConnected: false, supply3v3: false, loadsOn: [] }, `slot ${r.slot} physically safe`);
    const rec = JSON.parse(readFileSync(join(outDir, `slot-${r.slot}.json`), 'utf8')) as UnitRecord;
    t.equal(rec.complete, true, `slot ${r.slot}: its record was finished after the safe state`);
    t.equal(rec.steps.at(-1)!.name, last.name);
    // The records come after the safe state: the record's last step is the safe state, written after it passed.
    t.ok(rec.steps.at(-1)!.finishedT >= mainsOff.at, 'record finished after mains went off');
  }
  const st = JSON.parse(readFileSync(join(outDir, 'station-state.json'), 'utf8')) as StationState;
  t.match(st, { status: 'aborted', abortReason: 'SIGINT received' });
  t.same(Object.values(st.slots).map((s) => s.phase), ['done', 'done', 'done', 'done']);
  t.equal(signals.handlers.get('SIGINT')?.size ?? 0, 0, 'the station removed its signal handlers');
});
