import type pg from 'pg';
import type { PostgresStore } from './postgres-store.ts';
import type { SqliteStore } from './sqlite-store.ts';
import { StoreError } from './store-error.ts';

type Row = Record<string, unknown>;

export interface ForwardResult {
  /** Units written to the central store by this pass. */
  forwarded: number;
  /** Units the central store already had (their earlier forward committed, its acknowledgement was lost). */
  alreadyThere: number;
  /** Runs whose final status (finished / aborted) was forwarded. */
  runs: number;
  /** Units still waiting in the outbox (unfinished, or not forwarded because of an error). */
  pending: number;
}

/** Columns that are the station's outbox bookkeeping, not record data: never copied. */
const LOCAL_ONLY = new Set(['forwarded_at', 'forwarded_status']);

/**
 * Forward a station's finished units from its SQLite store (the outbox) to the central PostgreSQL
 * store. Each unit goes in ONE PostgreSQL transaction with everything it references (station, image,
 * template, instruments, run) and everything it owns (slot attempts, steps, earlier attempts,
 * measurements, calibration factors); only after that commit is it marked forwarded locally. Every
 * insert is keyed by the station's ids (run UUID, "<run>:<slot>" unit id, step keys) with ON CONFLICT
 * DO NOTHING, and a unit the server already has is skipped whole: so a pass cut short by an outage
 * loses nothing (the unit stays in the outbox), and a unit whose commit reached the server but whose
 * acknowledgement did not is never counted twice. A unit is forwarded when it is final: finished, or
 * in a run marked aborted.
 */
export async function forwardOutbox(local: SqliteStore, central: PostgresStore, o: { onUnit?: (unitId: string) => void | Promise<void> } = {}): Promise<ForwardResult> {
  const db = local.db;
  const pending = db
    .prepare(
      "SELECT u.unit_id, u.run_id FROM units u JOIN runs r ON r.run_id = u.run_id WHERE u.forwarded_at IS NULL AND (u.complete = 1 OR r.status = 'aborted') ORDER BY r.started_at, u.slot",
    )
    .all() as Array<{ unit_id: string; run_id: string }>;
  let forwarded = 0;
  let alreadyThere = 0;
  let runs = 0;
  try {
    for (const { unit_id: unitId, run_id: runId } of pending) {
      const rows = unitRows(local, runId, unitId);
      const inserted = await central.transaction(async (c) => {
        await copyReferences(c, rows);
        // A unit the server holds incomplete (an aborted try forwarded before its run was resumed) is
        // brought up to date; one it holds complete was committed by an earlier pass, children and all.
        const u = await c.query('INSERT INTO units (' + cols(rows.unit) + ') VALUES (' + marks(rows.unit) + ') ON CONFLICT (unit_id) DO UPDATE SET ' + updates(rows.unit, 'unit_id') + ' WHERE units.complete = 0 RETURNING unit_id', values(rows.unit));
        if (u.rowCount === 0) return false;
        for (const [table, list] of [
          ['slot_attempts', rows.slotAttempts],
          ['steps', rows.steps],
          ['step_attempts', rows.stepAttempts],
          ['measurements', rows.measurements],
          ['calibration_factors', rows.calibration],
          ['unit_events', rows.events],
        ] as const)
          await insertMany(c, table, list);
        return true;
      });
      db.prepare('UPDATE units SET forwarded_at = ? WHERE unit_id = ?').run(new Date().toISOString(), unitId);
      if (inserted) forwarded++;
      else alreadyThere++;
      await o.onUnit?.(unitId);
    }
    // Runs whose final status the server has not seen yet (units may all have gone before the run ended).
    const changed = db.prepare("SELECT run_id, status FROM runs WHERE status <> 'running' AND (forwarded_status IS NULL OR forwarded_status <> status) ORDER BY started_at").all() as Array<{ run_id: string; status: string }>;
    for (const r of changed) {
      const rows = unitRows(local, r.run_id);
      await central.transaction((c) => copyReferences(c, rows));
      db.prepare('UPDATE runs SET forwarded_status = ? WHERE run_id = ?').run(r.status, r.run_id);
      runs++;
    }
  } catch (e) {
    const left = (db.prepare('SELECT COUNT(*) AS n FROM units WHERE forwarded_at IS NULL').get() as { n: number }).n;
    throw new StoreError(`forwarding to ${central.where} stopped after ${forwarded + alreadyThere} unit(s): ${(e as Error).message}; ${left} unit(s) stay in the outbox for the next pass`, { store: central.where }, { cause: e });
  }
  const left = (db.prepare('SELECT COUNT(*) AS n FROM units WHERE forwarded_at IS NULL').get() as { n: number }).n;
  return { forwarded, alreadyThere, runs, pending: left };
}

interface UnitRows {
  station: Row;
  image?: Row;
  templates: Row[];
  instruments: Row[];
  run: Row;
  runInstruments: Row[];
  unit: Row;
  slotAttempts: Row[];
  steps: Row[];
  stepAttempts: Row[];
  measurements: Row[];
  calibration: Row[];
  events: Row[];
}

/** The rows of one unit (or, without unitId, only the run and what it references), as stored. */
function unitRows(local: SqliteStore, runId: string, unitId?: string): UnitRows {
  const db = local.db;
  const one = (sql: string, ...p: unknown[]): Row => {
    const r = db.prepare(sql).get(...p) as Row | undefined;
    if (!r) throw new StoreError(`outbox row missing: ${sql} ${p.join(', ')}`);
    return strip(r);
  };
  const many = (sql: string, ...p: unknown[]): Row[] => (db.prepare(sql).all(...p) as Row[]).map(strip);
  const run = one('SELECT * FROM runs WHERE run_id = ?', runId);
  const u = unitId ? one('SELECT * FROM units WHERE unit_id = ?', unitId) : {};
  return {
    station: one('SELECT * FROM stations WHERE station_id = ?', run.station_id),
    ...(run.image_key !== null ? { image: one('SELECT * FROM firmware_images WHERE image_key = ?', run.image_key) } : {}),
    templates: unitId && u.template_key !== null ? many('SELECT * FROM device_templates WHERE template_key = ?', u.template_key) : [],
    instruments: many('SELECT i.* FROM instruments i JOIN run_instruments ri ON ri.instrument_key = i.instrument_key WHERE ri.run_id = ? ORDER BY i.instrument_key', runId),
    run,
    runInstruments: many('SELECT * FROM run_instruments WHERE run_id = ? ORDER BY instrument_id', runId),
    unit: u,
    slotAttempts: unitId ? many('SELECT * FROM slot_attempts WHERE unit_id = ? ORDER BY attempt', unitId) : [],
    steps: unitId ? many('SELECT * FROM steps WHERE unit_id = ? ORDER BY slot_attempt, step_index', unitId) : [],
    stepAttempts: unitId ? many('SELECT * FROM step_attempts WHERE unit_id = ? ORDER BY slot_attempt, step_index, attempt', unitId) : [],
    measurements: unitId ? many('SELECT * FROM measurements WHERE unit_id = ? ORDER BY slot_attempt, step_index, step_attempt, seq', unitId) : [],
    calibration: unitId ? many('SELECT * FROM calibration_factors WHERE unit_id = ? ORDER BY quantity, load', unitId) : [],
    events: unitId ? many('SELECT * FROM unit_events WHERE unit_id = ? ORDER BY seq', unitId) : [],
  };
}

/** Station, image, templates, instruments, the run (a finished run is final; an aborted one may be resumed) and its instruments. */
async function copyReferences(c: pg.PoolClient, r: UnitRows): Promise<void> {
  await insertMany(c, 'stations', [r.station]);
  if (r.image) await insertMany(c, 'firmware_images', [r.image]);
  await insertMany(c, 'device_templates', r.templates);
  for (const i of r.instruments)
    await c.query(
      `INSERT INTO instruments (${cols(i)}) VALUES (${marks(i)}) ON CONFLICT (instrument_key) DO UPDATE SET calibration_date = CASE WHEN excluded.calibration_date > COALESCE(instruments.calibration_date, '') THEN excluded.calibration_date ELSE instruments.calibration_date END`,
      values(i),
    );
  await c.query(
    `INSERT INTO runs (${cols(r.run)}) VALUES (${marks(r.run)}) ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at, aborted_at = excluded.aborted_at, abort_reason = excluded.abort_reason WHERE runs.status <> 'finished'`,
    values(r.run),
  );
  await insertMany(c, 'run_instruments', r.runInstruments);
}

/** Multi-row INSERT ... ON CONFLICT DO NOTHING, in chunks that stay below PostgreSQL's 65535 parameters. */
async function insertMany(c: pg.PoolClient, table: string, rows: readonly Row[]): Promise<void> {
  if (rows.length === 0) return;
  const names = Object.keys(rows[0]!);
  const per = Math.max(1, Math.floor(30000 / names.length));
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per);
    const params: unknown[] = [];
    const tuples = chunk.map((row) => '(' + names.map((n) => (params.push(row[n] ?? null), `$${params.length}`)).join(', ') + ')');
    await c.query(`INSERT INTO ${table} (${names.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`, params);
  }
}

function strip(r: Row): Row {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !LOCAL_ONLY.has(k)));
}
const cols = (r: Row): string => Object.keys(r).join(', ');
const marks = (r: Row): string => Object.keys(r).map((_, i) => `$${i + 1}`).join(', ');
const values = (r: Row): unknown[] => Object.values(r);
const updates = (r: Row, key: string): string =>
  Object.keys(r)
    .filter((k) => k !== key)
    .map((k) => `${k} = excluded.${k}`)
    .join(', ');
