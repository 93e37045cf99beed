import { join } from 'node:path';
import t from 'tap';
import { forwardOutbox } from '../rig/store/forward.ts';
import { loadMigrations } from '../rig/store/migrations.ts';
import { PostgresStore } from '../rig/store/postgres-store.ts';
import { StoreQueries } from '../rig/store/queries.ts';
import { SqlRunReader } from '../rig/store/run-reader.ts';
import { SqliteStore } from '../rig/store/sqlite-store.ts';
import { fixtureRun, macOf, type UnitPlan } from './store-run-fixture.ts';
import { usePgServer } from './store-pg-server.ts';

const { bin, dir, server } = usePgServer(t, { skipWhy: 'the PostgreSQL store tests', tmpPrefix: 'plugrig-store-pg-' });

const TABLES = ['stations', 'firmware_images', 'instruments', 'runs', 'run_instruments', 'units', 'slot_attempts', 'steps', 'step_attempts', 'measurements', 'calibration_factors', 'unit_events'];

async function pgCounts(pg: PostgresStore): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const x of TABLES) out[x] = Number((await pg.pool.query(`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM ${x}`)).rows[0].n);
  return out;
}
function sqliteCounts(stores: SqliteStore[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of TABLES.filter((x) => !['stations', 'firmware_images', 'instruments'].includes(x)))
    out[x] = stores.reduce((a, s) => a + (s.db.prepare(`SELECT COUNT(*) AS n FROM ${x}`).get() as { n: number }).n, 0);
  return out;
}

let nextUnit = 0;
/** A 4-slot batch: one unit fails its relay check, one is retested on a marginal power error. */
function batch(): UnitPlan[] {
  return [1, 2, 3, 4].map((slot) => {
    const n = ++nextUnit;
    return { slot, mac: macOf(n), serial: `SN-${String(n).padStart(5, '0')}`, ...(slot === 2 ? { relayFails: true } : {}), ...(slot === 3 ? { firstPowerErrorPct: 1.9 } : {}) };
  });
}
let clock = Date.parse('2026-12-01T06:00:00Z');
async function runOn(store: SqliteStore, stationId: string, seed: number): Promise<void> {
  clock += 60_000;
  await fixtureRun({ store, seed, stationId, units: batch(), startedAt: new Date(clock).toISOString(), firmwareVersion: seed % 2 ? '1.18.42' : '1.18.43' });
}

if (bin) t.test('the same migrations build the schema on PostgreSQL; stations opening at once apply them once', async (t) => {
  const [a, b] = await Promise.all([PostgresStore.open(server.url), PostgresStore.open(server.url)]);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  t.equal(await a.schemaVersion(), loadMigrations().length);
  const rows = (await a.pool.query('SELECT version FROM schema_version ORDER BY version')).rows.map((r) => Number(r.version));
  t.same(rows, loadMigrations().map((m) => m.version), 'one row per migration');
  await t.rejects(a.pool.query("INSERT INTO units (unit_id, run_id, slot, planned_steps, started_at) VALUES ('u', 'no-such-run', 1, '[]', 'x')"), /foreign key/, 'foreign keys hold on PostgreSQL too');
});

if (bin) t.test('a forwarded run reads back from PostgreSQL exactly as from the station', async (t) => {
  const local = SqliteStore.open(join(dir, 'single.sqlite'));
  const pg = await PostgresStore.open(server.url);
  t.teardown(async () => {
    local.close();
    await pg.close();
  });
  const f = await fixtureRun({ store: local, seed: 11, stationId: 'station-solo', units: batch() });
  // A non-finite value on the way (SQLite keeps it as text, PostgreSQL gets the same encoding).
  const step = structuredClone(f.results[0]!.steps.find((s) => s.suite === 'metering')!);
  step.index = 60;
  step.measurements[0]!.value = NaN;
  local.commitStep(`${f.run.runId}:1`, 1, step);
  const r = await forwardOutbox(local, pg);
  t.match(r, { forwarded: 4, alreadyThere: 0, runs: 1, pending: 0 });
  const fromStation = await new SqlRunReader(local.sql()).readRun(f.run.runId);
  const fromCentral = await new SqlRunReader(pg.sql()).readRun(f.run.runId);
  t.ok(fromCentral);
  t.strictSame(fromCentral, fromStation, 'field for field, both dialects through the same reader');
  t.ok(Number.isNaN(fromCentral!.units[0]!.steps.find((s) => s.index === 60)!.measurements[0]!.value));
  t.same(await forwardOutbox(local, pg), { forwarded: 0, alreadyThere: 0, runs: 0, pending: 0 }, 'a second pass has nothing to do');
});

if (bin) t.test('two stations forwarding concurrently with an outage in the middle: nothing lost, nothing counted twice', async (t) => {
  const a = SqliteStore.open(join(dir, 'station-a.sqlite'));
  const b = SqliteStore.open(join(dir, 'station-b.sqlite'));
  const pa = await PostgresStore.open(server.url);
  const pb = await PostgresStore.open(server.url);
  t.teardown(async () => {
    a.close();
    b.close();
    await pa.close();
    await pb.close();
  });
  const base = await pgCounts(pa); // rows of the earlier subtest

  // Two runs each, forwarded by both stations at the same time.
  for (let i = 0; i < 2; i++) {
    await runOn(a, 'station-a', 100 + i);
    await runOn(b, 'station-b', 200 + i);
  }
  const [ra, rb] = await Promise.all([forwardOutbox(a, pa), forwardOutbox(b, pb)]);
  t.match([ra, rb], [{ forwarded: 8, alreadyThere: 0, runs: 2, pending: 0 }, { forwarded: 8, alreadyThere: 0, runs: 2, pending: 0 }]);

  // Two more runs each; the server goes down while both are forwarding them.
  for (let i = 2; i < 4; i++) {
    await runOn(a, 'station-a', 100 + i);
    await runOn(b, 'station-b', 200 + i);
  }
  let seenA = 0;
  const cut = await Promise.allSettled([
    forwardOutbox(a, pa, {
      onUnit: () => {
        if (++seenA === 3) server.stop();
      },
    }),
    forwardOutbox(b, pb),
  ]);
  t.equal(cut[0].status, 'rejected', 'station A saw the outage');
  t.match((cut[0] as PromiseRejectedResult).reason, { code: 'E_STORE', message: /stay in the outbox/ });
  const pendingA = (a.db.prepare('SELECT COUNT(*) AS n FROM units WHERE forwarded_at IS NULL').get() as { n: number }).n;
  t.ok(pendingA >= 5, `units wait in station A's outbox (${pendingA})`);

  // The stations keep testing during the outage; a pass meanwhile fails and keeps everything.
  await runOn(a, 'station-a', 104);
  await runOn(b, 'station-b', 204);
  await t.rejects(forwardOutbox(b, pb), { code: 'E_STORE' }, 'no server: the forward fails, nothing is marked');

  server.start();
  const [ra2, rb2] = await Promise.all([forwardOutbox(a, pa), forwardOutbox(b, pb)]);
  t.equal(ra2.pending + rb2.pending, 0, 'every unit arrived');
  const units = 2 * 5 * 4;
  const now = await pgCounts(pa);
  const diff = Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - base[k]!]));
  const local = sqliteCounts([a, b]);
  for (const k of Object.keys(local)) t.equal(diff[k], local[k], `${k}: central = sum of the stations (${local[k]})`);
  t.equal(diff.units, units, `${units} units, each once`);
  t.equal(diff.runs, 10);
  t.equal(diff.stations, 2);
  const statuses = (await pa.pool.query("SELECT status, CAST(COUNT(*) AS INTEGER) AS n FROM runs WHERE station_id IN ('station-a', 'station-b') GROUP BY status")).rows;
  t.same(statuses, [{ status: 'finished', n: 10 }], 'every run reached the server as finished');

  // A commit that reached the server whose acknowledgement was lost: the unit is still in the outbox.
  a.db.prepare("UPDATE units SET forwarded_at = NULL WHERE unit_id IN (SELECT unit_id FROM units ORDER BY unit_id LIMIT 3)").run();
  const again = await forwardOutbox(a, pa);
  t.match(again, { forwarded: 0, alreadyThere: 3, pending: 0 }, 'found on the server, not inserted again');
  t.same(await pgCounts(pa), now, 'not one row more');

  // The central store answers the queries as the stations do.
  const central = new StoreQueries(pa.sql());
  const perStation = await central.yieldPerStation();
  for (const [id, s] of [['station-a', a], ['station-b', b]] as const) {
    const [mine] = await new StoreQueries(s.sql()).yieldPerStation();
    t.same(perStation.find((r) => r.stationId === id), mine, `${id}: yield per station, central = local`);
  }
  const history = await central.unitHistory('SN-00010');
  t.equal(history.length, 1, 'a unit is found once by its serial');
});

if (bin) t.test('a unit forwarded from an aborted run, then resumed and finished, reaches the server complete, once', async (t) => {
  const local = SqliteStore.open(join(dir, 'resumed.sqlite'));
  const scratch = SqliteStore.open(join(dir, 'resumed-scratch.sqlite'));
  const pg = await PostgresStore.open(server.url);
  t.teardown(async () => {
    local.close();
    scratch.close();
    await pg.close();
  });
  const units = [{ slot: 1, mac: macOf(0x501), serial: 'SN-RESUME' }];
  // The first try: the run begins, the unit finishes its first step, the station dies.
  const shape = await fixtureRun({ store: scratch, seed: 51, stationId: 'station-r', units });
  const runId = '0c5e0000-0000-4000-8000-000000000051';
  local.beginRun({ ...shape.run, runId }, { ...shape.meta, station: { id: 'station-r', name: 'Station R' } });
  const { unitId, attempt } = local.startUnit({ runId, slot: 1, plannedSteps: shape.results[0]!.steps.map((s) => s.name), at: shape.run.startedAt, sessionId: 'first-try' });
  local.commitStep(unitId, attempt, shape.results[0]!.steps[0]!);
  local.db.prepare('UPDATE runs SET owner_pid = 2147483646 WHERE run_id = ?').run(runId); // a pid that is gone
  t.equal(local.abortUnfinishedRuns('station-r', { reason: 'test: the station died', isAlive: () => false }).length, 1);
  t.match(await forwardOutbox(local, pg), { forwarded: 1, pending: 0 }, 'the aborted try is final for now: forwarded');
  const one = async (sql: string): Promise<Record<string, unknown>> => (await pg.pool.query(sql, [runId])).rows[0] as Record<string, unknown>;
  t.match(await one('SELECT status FROM runs WHERE run_id = $1'), { status: 'aborted' });
  t.match(await one('SELECT complete FROM units WHERE run_id = $1'), { complete: 0 });

  // The resume: the same run id, a new session; the unit runs again and finishes.
  await fixtureRun({ store: local, seed: 51, stationId: 'station-r', units, runId, startedAt: shape.run.startedAt });
  t.match(local.db.prepare('SELECT status FROM runs WHERE run_id = ?').get(runId), { status: 'finished' }, 'the resumed run finished in the station store');
  t.match(await forwardOutbox(local, pg), { forwarded: 1, alreadyThere: 0, runs: 1, pending: 0 }, 'the finished unit is forwarded again');
  t.match(await one('SELECT status FROM runs WHERE run_id = $1'), { status: 'finished' }, 'the server has the run finished');
  t.match(await one('SELECT CAST(COUNT(*) AS INTEGER) AS n, MIN(complete) AS complete, MIN(verdict) AS verdict FROM units WHERE run_id = $1'), { n: 1, complete: 1, verdict: shape.results[0]!.verdict }, 'one unit, complete');
  t.match(await one("SELECT CAST(COUNT(*) AS INTEGER) AS n FROM slot_attempts WHERE unit_id = (SELECT unit_id FROM units WHERE run_id = $1)"), { n: 2 }, 'both tries on the server');
  const steps = (local.db.prepare('SELECT COUNT(*) AS n FROM steps WHERE unit_id = ?').get(unitId) as { n: number }).n;
  t.match(await one('SELECT CAST(COUNT(*) AS INTEGER) AS n FROM steps WHERE unit_id = (SELECT unit_id FROM units WHERE run_id = $1)'), { n: steps }, `every step of both tries (${steps})`);
  t.same(await forwardOutbox(local, pg), { forwarded: 0, alreadyThere: 0, runs: 0, pending: 0 }, 'and nothing more');
});
