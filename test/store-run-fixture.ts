// Shared by the store tests: runs of synthetic steps through the REAL slot runner (suites/runner), so
// the store sees exactly the events and shapes a station produces. The measured values come from a
// seeded generator: each unit's values differ, and the tests compute every expectation from the
// runner's own SlotResults, never from constants.
import { randomUUID } from 'node:crypto';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import type { ResultEvent, ResultSink, RunInfo } from '../suites/model/events.ts';
import type { MeasurementSpec } from '../suites/model/measurement.ts';
import type { SlotResult } from '../suites/model/step-result.ts';
import { runSlot } from '../suites/runner/run-slot.ts';
import type { Step } from '../suites/runner/step.ts';
import type { RunMeta, SqliteStore } from '../rig/store/sqlite-store.ts';
import { StoreSink } from '../rig/store/store-sink.ts';

const log = createLogger({}, 'silent');

export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const flashTime: MeasurementSpec = { id: 'flashTime', name: 'flash time', unit: 's', limits: { high: 60 } };
const volts: MeasurementSpec = { id: 'mainsVoltage', name: 'mains voltage', unit: 'V', limits: { nominal: 230, tolerancePct: 10, marginalPct: 5 }, uncertainty: { contributions: [{ name: 'reference', distribution: 'rectangular' }] } };
const errSpec = (id: string, name: string): MeasurementSpec => ({ id, name, unit: '%', limits: { low: -2, high: 2 }, uncertainty: { contributions: [{ name: 'reference accuracy', distribution: 'rectangular' }] }, onMarginal: 'retest' });

export interface UnitPlan {
  slot: number;
  mac: string;
  serial?: string;
  /** Make the relay step fail (a check fails). */
  relayFails?: boolean;
  /** Power error of the first metering attempt; marginal values get retested. */
  firstPowerErrorPct?: number;
  /** Power error of every metering attempt (a unit that meters wrong). */
  powerErrorPct?: number;
}

export interface FixtureRun {
  run: RunInfo;
  meta: RunMeta;
  slotInstruments: Map<number, string>;
  results: SlotResult[];
  events: ResultEvent[];
}

/** Steps of one synthetic unit: flash, relay check, metering (with retries), calibration, safe state. */
function steps(u: UnitPlan, rnd: () => number): Step[] {
  let meterAttempt = 0;
  return [
    {
      name: 'flash OpenBK7231N',
      suite: 'flash',
      critical: true,
      measurements: [flashTime],
      run: async (ctx) => {
        await ctx.clock.sleep(9000 + Math.round(rnd() * 2000), ctx.signal);
        ctx.unit({ mac: u.mac, ...(u.serial ? { serial: u.serial } : {}) });
        ctx.measure('flashTime', 9 + rnd() * 2);
        return { sectorsWritten: 247 };
      },
    },
    {
      name: 'button toggles the relay',
      suite: 'relay',
      run: async (ctx) => {
        await ctx.clock.sleep(500, ctx.signal);
        ctx.check('relay followed the button', !u.relayFails, { sensed: !u.relayFails });
      },
    },
    {
      name: 'metering at R100',
      suite: 'metering',
      retries: 1,
      needs: ['meter'],
      measurements: [volts, errSpec('voltageErrorPct', 'voltage error'), errSpec('powerErrorPct', 'power error')],
      run: async (ctx) => {
        meterAttempt++;
        await ctx.clock.sleep(4000, ctx.signal);
        ctx.measure('mainsVoltage', 228 + rnd() * 4, { contributions: { reference: 0.8 } });
        ctx.measure('voltageErrorPct', (rnd() - 0.5) * 0.8, { contributions: { 'reference accuracy': 0.3 } });
        const p = u.powerErrorPct ?? (meterAttempt === 1 && u.firstPowerErrorPct !== undefined ? u.firstPowerErrorPct : (rnd() - 0.5) * 1.2);
        ctx.measure('powerErrorPct', p, { contributions: { 'reference accuracy': 0.4 } });
      },
    },
    {
      name: 'calibrate at R100',
      suite: 'calibrate',
      run: async (ctx) => {
        await ctx.clock.sleep(3000, ctx.signal);
        const ratios = { voltage: 1 + (rnd() - 0.5) * 0.02, current: 1 + (rnd() - 0.5) * 0.04, power: 1 + (rnd() - 0.5) * 0.04 };
        ctx.unit({ calibration: { load: 'R100', ratios, reference: { model: 'PZEM-004T', serial: 'PZEM-SIM-0001', calibrationDate: '2026-06-01' } } });
        return { ratios };
      },
    },
    { name: 'safe state', kind: 'safe-state', run: async (ctx) => void (await ctx.clock.sleep(100, ctx.signal)) },
  ];
}

/**
 * One run of `units` in parallel on a virtual clock, every event sent to `sink` (awaited, as the
 * station does) and recorded. `startedAt` orders runs in the queries.
 */
export async function fixtureRun(o: {
  /** Writes the run through a StoreSink into this store. */
  store?: SqliteStore;
  /** Another listener after the store (e.g. one that checks what is committed). */
  sink?: ResultSink;
  units: UnitPlan[];
  seed: number;
  stationId?: string;
  firmwareVersion?: string;
  instrument?: { model: string; serial: string; calibrationDate?: string };
  startedAt?: string;
  runId?: string;
}): Promise<FixtureRun> {
  const version = o.firmwareVersion ?? '1.18.42';
  const stationId = o.stationId ?? 'station-a';
  const run: RunInfo = {
    runId: o.runId ?? randomUUID(),
    plan: { name: 'factory', sha256: 'ab'.repeat(32), source: 'fixtures/plans/factory.json' },
    jig: { name: 'virtual-4slot', source: 'fixtures/jigs/virtual-4slot.json' },
    image: { name: `OpenBK7231N_QIO_${version}.bin`, sha256: `${version.replace(/\./g, '')}`.padEnd(64, 'f') },
    startedAt: o.startedAt ?? new Date().toISOString(),
  };
  const ins = o.instrument ?? { model: 'PZEM-004T', serial: 'PZEM-SIM-0001', calibrationDate: '2026-06-01' };
  const meta: RunMeta = {
    station: { id: stationId, name: `Station ${stationId}`, line: 'line-1' },
    image: { name: run.image!.name, sha256: run.image!.sha256!, version, origin: 'synthetic' },
    instruments: [{ id: 'ref0', kind: 'pzem004t', manufacturer: 'Peacefair', model: ins.model, serial: ins.serial, ...(ins.calibrationDate ? { calibrationDate: ins.calibrationDate } : {}) }],
  };
  const slotInstruments = new Map(o.units.map((u) => [u.slot, 'ref0']));
  const store = o.store ? new StoreSink(o.store, { meta, slotInstruments }) : undefined;
  const events: ResultEvent[] = [];
  const sink: ResultSink = {
    async emit(e) {
      events.push(e);
      await store?.emit(e);
      await o.sink?.emit(e);
    },
  };
  const clock = new VirtualClock();
  await sink.emit({ type: 'run-started', run });
  const rnd = prng(o.seed);
  // One reference meter for all slots, taken in FIFO order (as the station's lease does), each wait,
  // take and release on the timeline.
  let meterFree: Promise<void> = Promise.resolve();
  const acquire = (slot: number) => async (step: Step): Promise<() => void> => {
    const base = { slot, step: step.name, instrument: 'ref0' };
    const asked = clock.now();
    await sink.emit({ type: 'slot-state', slot, state: 'verify', from: 'flash', step: step.name, t: asked, at: new Date().toISOString() });
    await sink.emit({ type: 'instrument', ...base, kind: 'wait', t: asked, at: new Date().toISOString() });
    const before = meterFree;
    let free!: () => void;
    meterFree = new Promise((r) => (free = r));
    await before;
    const took = clock.now();
    await sink.emit({ type: 'instrument', ...base, kind: 'acquired', t: took, at: new Date().toISOString(), waitedMs: took - asked });
    return () => {
      void sink.emit({ type: 'instrument', ...base, kind: 'released', t: clock.now(), at: new Date().toISOString(), heldMs: clock.now() - took });
      free();
    };
  };
  const results = await Promise.all(o.units.map((u) => runSlot(steps(u, rnd), { slot: u.slot, clock, log, sink, onMarginal: 'retest', acquire: acquire(u.slot) })));
  results.sort((a, b) => a.slot - b.slot);
  await sink.emit({ type: 'run-finished', run, slots: results, finishedAt: new Date(Date.parse(run.startedAt) + 60_000).toISOString() });
  return { run, meta, slotInstruments, results, events };
}

export function macOf(n: number): string {
  return `c8:47:8c:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
}
