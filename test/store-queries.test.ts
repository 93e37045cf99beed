import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { normaliseMac, StoreQueries } from '../rig/store/queries.ts';
import { SqliteStore } from '../rig/store/sqlite-store.ts';
import type { SlotResult } from '../suites/model/step-result.ts';
import { fixtureRun, macOf, type FixtureRun, type UnitPlan } from './store-run-fixture.ts';

// Six runs on two stations, two firmware versions and two reference meters; the unit of MAC 1 is
// tested again in a later run after failing. Every expectation is computed from the runner's results.
const dir = mkdtempSync(join(tmpdir(), 'plugrig-store-q-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const store = SqliteStore.open(join(dir, 'plugrig.sqlite'));
t.teardown(() => store.close());
const q = new StoreQueries(store.sql());

const METERS = { a: { model: 'PZEM-004T', serial: 'PZEM-A-1', calibrationDate: '2026-06-01' }, b: { model: 'PZEM-004T', serial: 'PZEM-B-7', calibrationDate: '2026-03-15' } };
const SPECS: Array<{ station: string; version: string; meter: keyof typeof METERS; units: UnitPlan[] }> = [
  { station: 'station-a', version: '1.18.42', meter: 'a', units: [{ slot: 1, mac: macOf(1), serial: 'SN-1', relayFails: true }, { slot: 2, mac: macOf(2), serial: 'SN-2' }, { slot: 3, mac: macOf(3), firstPowerErrorPct: 1.9 }] },
  { station: 'station-b', version: '1.18.42', meter: 'b', units: [{ slot: 1, mac: macOf(4), relayFails: true }, { slot: 2, mac: macOf(5), relayFails: true }] },
  { station: 'station-a', version: '1.18.43', meter: 'a', units: [{ slot: 1, mac: macOf(1), serial: 'SN-1' }, { slot: 2, mac: macOf(6) }, { slot: 3, mac: macOf(7), firstPowerErrorPct: 2.3 }] },
  { station: 'station-b', version: '1.18.43', meter: 'b', units: [{ slot: 1, mac: macOf(8) }, { slot: 2, mac: macOf(9), firstPowerErrorPct: -1.95 }, { slot: 3, mac: macOf(13), powerErrorPct: 3.1 }] },
  { station: 'station-a', version: '1.18.43', meter: 'b', units: [{ slot: 1, mac: macOf(10) }, { slot: 4, mac: macOf(11), relayFails: true }] },
  { station: 'station-b', version: '1.18.42', meter: 'a', units: [{ slot: 3, mac: macOf(12) }, { slot: 4, mac: macOf(14), powerErrorPct: -2.8 }] },
];
const runs: FixtureRun[] = [];
t.before(async () => {
  let at = Date.parse('2026-11-30T08:00:00Z');
  for (const [i, s] of SPECS.entries()) {
    at += 3_600_000;
    runs.push(await fixtureRun({ store, seed: 50 + i, stationId: s.station, firmwareVersion: s.version, instrument: METERS[s.meter], units: s.units, startedAt: new Date(at).toISOString() }));
  }
});

const final = (r: SlotResult) => r.steps;
const yieldOf = (rs: SlotResult[]) => {
  const passed = rs.filter((r) => r.verdict === 'pass').length;
  const failed = rs.filter((r) => r.verdict === 'fail').length;
  return { units: rs.length, passed, failed, unfinished: rs.length - passed - failed, yield: passed + failed ? passed / (passed + failed) : null };
};

t.test('unit history by MAC in any spelling, or by serial, oldest first', async (t) => {
  const want = runs.flatMap((f) => f.results.filter((r) => r.unit.mac === macOf(1)).map((r) => ({ runId: f.run.runId, verdict: r.verdict, failed: final(r).filter((s) => s.status === 'fail').map((s) => s.name) })));
  t.equal(want.length, 2, 'the unit was in two runs');
  t.same(want.map((w) => w.verdict), ['fail', 'pass'], 'failed first, passed on the retest');
  for (const key of [macOf(1), macOf(1).toUpperCase(), macOf(1).replace(/:/g, ''), macOf(1).replace(/:/g, '-'), 'SN-1']) {
    const h = await q.unitHistory(key);
    t.same(
      h.map((e) => ({ runId: e.runId, verdict: e.verdict, failed: e.failedSteps.map((s) => s.name) })),
      want,
      `found by ${key}`,
    );
  }
  const [first] = await q.unitHistory('SN-1');
  t.match(first, { stationId: 'station-a', firmware: '1.18.42', slot: 1, serial: 'SN-1', mac: macOf(1), complete: true, attempts: 1, failedSteps: [{ name: 'button toggles the relay' }] });
  t.same(await q.unitHistory('c8:47:8c:ff:ff:ff'), [], 'an unknown MAC has no history');
  t.same(await q.unitHistory('SN-404'), []);
  t.equal(normaliseMac('C8-47-8C-00-00-01'), 'c8:47:8c:00:00:01');
  t.equal(normaliseMac('SN-1'), undefined);
});

t.test('yield per run and per station', async (t) => {
  const perRun = await q.yieldPerRun();
  t.same(
    perRun.map(({ runId, stationId, ...y }) => ({ runId, stationId, ...y, startedAt: undefined })),
    runs.map((f, i) => ({ runId: f.run.runId, stationId: SPECS[i]!.station, ...yieldOf(f.results), startedAt: undefined })),
  );
  t.ok(perRun.some((r) => r.yield === 0) && perRun.some((r) => r.yield === 1), 'the fixture spans 0 % and 100 % runs');
  const stations = ['station-a', 'station-b'];
  t.same(
    await q.yieldPerStation(),
    stations.map((id) => {
      const mine = runs.filter((_, i) => SPECS[i]!.station === id);
      return { stationId: id, runs: mine.length, ...yieldOf(mine.flatMap((f) => f.results)) };
    }),
  );
  t.same((await q.yieldPerRun({ stationId: 'station-b' })).map((r) => r.runId), runs.filter((_, i) => SPECS[i]!.station === 'station-b').map((f) => f.run.runId));
});

t.test('per-step failure Pareto', async (t) => {
  const count = new Map<string, number>();
  for (const s of runs.flatMap((f) => f.results.flatMap(final))) if (s.status === 'fail') count.set(s.name, (count.get(s.name) ?? 0) + 1);
  const total = [...count.values()].reduce((a, b) => a + b, 0);
  const want = [...count.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  t.ok(want.length >= 2, 'more than one failing step in the fixture');
  const p = await q.failurePareto();
  t.same(p.map((r) => [r.step, r.failures]), want);
  let cum = 0;
  p.forEach((r) => {
    cum += r.failures;
    t.equal(r.share, r.failures / total);
    t.equal(r.cumulative, cum / total);
  });
  t.equal(p.at(-1)!.cumulative, 1);
  const onlyB = await q.failurePareto({ stationId: 'station-b' });
  t.equal(onlyB.reduce((a, r) => a + r.failures, 0), runs.filter((_, i) => SPECS[i]!.station === 'station-b').flatMap((f) => f.results.flatMap(final)).filter((s) => s.status === 'fail').length);
});

t.test('metering error trends per firmware version and per reference instrument', async (t) => {
  const stats = (values: number[], Us: number[]) => {
    const n = values.length;
    const mean = values.reduce((a, v) => a + v, 0) / n;
    return { n, mean, sd: n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0, min: Math.min(...values), max: Math.max(...values), meanU: Us.reduce((a, v) => a + v, 0) / n };
  };
  const expected = (keyOf: (i: number) => string) => {
    const g = new Map<string, { values: number[]; Us: number[] }>();
    runs.forEach((f, i) => {
      for (const m of f.results.flatMap((r) => r.steps.flatMap((s) => s.measurements))) {
        if (!['voltageErrorPct', 'powerErrorPct'].includes(m.id) || !m.taken) continue;
        const k = `${keyOf(i)} ${m.id}`;
        const e = g.get(k) ?? { values: [], Us: [] };
        e.values.push(m.value!);
        e.Us.push(m.U);
        g.set(k, e);
      }
    });
    return new Map([...g].map(([k, e]) => [k, stats(e.values, e.Us)]));
  };
  const close = (t: Tap, got: Record<string, number>, want: Record<string, number>, what: string) => {
    for (const k of Object.keys(want)) t.ok(Math.abs(got[k]! - want[k]!) < 1e-9, `${what} ${k}: ${got[k]} = ${want[k]}`);
  };
  for (const [by, keyOf] of [
    ['firmware', (i: number) => SPECS[i]!.version],
    ['instrument', (i: number) => `Peacefair PZEM-004T ${METERS[SPECS[i]!.meter].serial}`],
  ] as const) {
    const want = expected(keyOf);
    const got = await q.meteringErrorTrend(by);
    t.equal(got.length, want.size, `${by}: one row per group and measurement`);
    for (const r of got) {
      const w = want.get(`${r.key} ${r.measurementId}`);
      t.ok(w, `${by} ${r.key} ${r.measurementId} expected`);
      if (w) close(t, r as unknown as Record<string, number>, w, `${by} ${r.key} ${r.measurementId}`);
      t.equal(r.unit, '%');
    }
  }
  // Only the final attempt counts: the retested units' marginal first readings are not in the trend.
  const v43 = (await q.meteringErrorTrend('firmware', { measurementIds: ['powerErrorPct'] })).find((r) => r.key === '1.18.43')!;
  const units43 = SPECS.filter((s) => s.version === '1.18.43').reduce((a, s) => a + s.units.length, 0);
  const attempts43 = runs.filter((_, i) => SPECS[i]!.version === '1.18.43').flatMap((f) => f.results.flatMap((r) => r.steps.filter((s) => s.suite === 'metering'))).reduce((a, s) => a + s.attempt, 0);
  t.ok(attempts43 > units43, 'some 1.18.43 units were metered twice');
  t.equal(v43.n, units43, 'one value per unit: the final attempt');
  t.same(await q.meteringErrorTrend('firmware', { measurementIds: [] }), []);
});

type Tap = { ok(v: unknown, m: string): unknown };
