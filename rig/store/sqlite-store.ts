import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { ConfigError } from '../core/errors.ts';
import type { RunInfo } from '../../suites/model/events.ts';
import type { MeasurementResult } from '../../suites/model/measurement.ts';
import type { SlotResult, StepResult } from '../../suites/model/step-result.ts';
import { checkNotNewer, loadMigrations, SCHEMA_VERSION_DDL, type Migration } from './migrations.ts';
import { SqliteConnection } from './sqlite-connection.ts';
import type { SqlDb, SqlValue } from './sql-db.ts';
import { StoreError } from './store-error.ts';
import type { StoredCalibrationFactor, StoredFirmwareImage, StoredInstrument, StoredStation, StoredUnitEvent } from './types.ts';

/** What a run is beyond the runner's RunInfo: which station, firmware origin, instruments. */
export interface RunMeta {
  station: StoredStation;
  image?: StoredFirmwareImage;
  instruments: StoredInstrument[];
}

export interface AbortedRun {
  runId: string;
  startedAt: string;
  /** Units that had not finished, with the last step each had stored. */
  unfinished: Array<{ unitId: string; slot: number; mac?: string; lastStep?: { index: number; name: string } }>;
}

/** Encode a measured number: SQLite stores NaN as NULL, so non-finite values travel as text. */
export function encodeNumber(v: number | undefined): { value: number | null; text: string | null } {
  if (v === undefined) return { value: null, text: null };
  return Number.isFinite(v) ? { value: v, text: null } : { value: null, text: String(v) };
}

export function imageKey(image: StoredFirmwareImage): string {
  return image.sha256 ? `sha256:${image.sha256}` : `name:${image.name}`;
}

export function instrumentKey(i: StoredInstrument, stationId: string): string {
  return [i.manufacturer ?? '', i.model, i.serial ?? `${stationId}/${i.id}`].join('|');
}

export function unitIdOf(runId: string, slot: number): string {
  return `${runId}:${slot}`;
}

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

/**
 * The station's own store (and outbox): one SQLite file in WAL mode with foreign keys on, every
 * write synchronous. Writes are synchronous too (better-sqlite3), so a step and its measurements go
 * into one transaction that no other slot's write can interleave with.
 */
export class SqliteStore {
  readonly db: SqliteConnection;
  readonly path: string;

  private constructor(db: SqliteConnection, path: string) {
    this.db = db;
    this.path = path;
  }

  /** Open (creating the file and its directory) and bring the schema up to date. */
  static open(path: string, o: { migrations?: Migration[] } = {}): SqliteStore {
    let db: SqliteConnection;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      db = new SqliteConnection(path);
    } catch (e) {
      // The operator named a path that cannot hold a store: bad input, not a store failure.
      throw new ConfigError(`cannot open the store ${path}: ${(e as Error).message}`, { step: 'store', path }, { cause: e });
    }
    try {
      db.pragma('journal_mode = WAL');
      // FULL: a committed step survives a power loss too, not only a killed process.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 10000');
      const store = new SqliteStore(db, path);
      store.#migrate(o.migrations ?? loadMigrations());
      return store;
    } catch (e) {
      db.close();
      if (e instanceof StoreError) throw e;
      // Locked, full, unwritable: the store failed. Anything else (not a database): the operator's path.
      const failed = storeFailure(e, path);
      if (failed) throw failed;
      throw new ConfigError(`cannot use ${path} as a plugrig store: ${(e as Error).message}`, { step: 'store', path }, { cause: e });
    }
  }

  #migrate(migrations: Migration[]): void {
    this.db.exec(SCHEMA_VERSION_DDL);
    // IMMEDIATE: two processes opening a fresh file at once must not both apply version 1.
    const apply = this.db.transaction(() => {
      const applied = (this.db.prepare('SELECT version FROM schema_version').all() as Array<{ version: number }>).map((r) => r.version);
      checkNotNewer(applied, migrations, this.path);
      for (const m of migrations) {
        if (applied.includes(m.version)) continue;
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
      }
    });
    apply.immediate();
  }

  schemaVersion(): number {
    return (this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_version').get() as { v: number }).v;
  }

  /** The async read interface the readers and queries share with PostgreSQL. */
  sql(): SqlDb {
    return {
      dialect: 'sqlite',
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => this.db.prepare(sql).all(...params) as T[],
      close: async () => undefined,
    };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Mark every run of this station that is still 'running' but whose writer is gone (another host's
   * process cannot be checked: only runs written from this host, or with no owner, are judged) as
   * aborted, and their unfinished units with it. The station calls this on start; StoreSink does at
   * run-started. Returns what it marked, for the operator.
   */
  abortUnfinishedRuns(stationId: string, o: { reason: string; now?: string; isAlive?: (pid: number) => boolean } = { reason: 'found unfinished at the next start' }): AbortedRun[] {
    const now = o.now ?? new Date().toISOString();
    const alive = o.isAlive ?? processAlive;
    const host = hostname();
    const tx = this.db.transaction((): AbortedRun[] => {
      const runs = this.db.prepare("SELECT run_id, started_at, owner_host, owner_pid FROM runs WHERE station_id = ? AND status = 'running' ORDER BY started_at").all(stationId) as Array<{ run_id: string; started_at: string; owner_host: string | null; owner_pid: number | null }>;
      const out: AbortedRun[] = [];
      for (const r of runs) {
        if (r.owner_pid !== null && r.owner_pid !== process.pid && r.owner_host === host && alive(r.owner_pid)) continue;
        if (r.owner_pid === process.pid && r.owner_host === host) continue; // our own run in progress
        if (r.owner_host !== null && r.owner_host !== host) continue;
        const units = this.db.prepare('SELECT unit_id, slot, mac FROM units WHERE run_id = ? AND complete = 0 ORDER BY slot').all(r.run_id) as Array<{ unit_id: string; slot: number; mac: string | null }>;
        const unfinished = units.map((u) => {
          const last = this.db.prepare('SELECT step_index, name FROM steps WHERE unit_id = ? ORDER BY slot_attempt DESC, step_index DESC LIMIT 1').get(u.unit_id) as { step_index: number; name: string } | undefined;
          return { unitId: u.unit_id, slot: u.slot, ...(u.mac ? { mac: u.mac } : {}), ...(last ? { lastStep: { index: last.step_index, name: last.name } } : {}) };
        });
        this.db.prepare("UPDATE runs SET status = 'aborted', aborted_at = ?, abort_reason = ? WHERE run_id = ? AND status = 'running'").run(now, o.reason, r.run_id);
        this.db.prepare('UPDATE units SET aborted = 1 WHERE run_id = ? AND complete = 0').run(r.run_id);
        this.db.prepare('UPDATE slot_attempts SET finished_at = ? WHERE finished_at IS NULL AND unit_id IN (SELECT unit_id FROM units WHERE run_id = ?)').run(now, r.run_id);
        out.push({ runId: r.run_id, startedAt: r.started_at, unfinished });
      }
      return out;
    });
    return this.#write(() => tx.immediate());
  }

  /**
   * Station, image, instruments and the run row (status running, owned by this process). Idempotent.
   * A run found aborted (its station died) and now resumed is running again, owned by this process;
   * aborted_at / abort_reason keep its last abort.
   */
  beginRun(run: RunInfo, meta: RunMeta): void {
    const tx = this.db.transaction(() => {
      this.db.prepare('INSERT INTO stations (station_id, name, line, first_seen) VALUES (?, ?, ?, ?) ON CONFLICT (station_id) DO NOTHING').run(meta.station.id, meta.station.name, meta.station.line ?? null, run.startedAt);
      const image = meta.image;
      let imgKey: string | null = null;
      if (image) {
        imgKey = imageKey(image);
        this.db.prepare('INSERT INTO firmware_images (image_key, sha256, name, version, origin) VALUES (?, ?, ?, ?, ?) ON CONFLICT (image_key) DO NOTHING').run(imgKey, image.sha256 ?? null, image.name, image.version ?? null, image.origin ?? null);
      }
      this.db
        .prepare("INSERT INTO runs (run_id, station_id, plan_name, plan_sha256, plan_source, jig_name, jig_source, image_key, status, started_at, owner_host, owner_pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET status = 'running', owner_host = excluded.owner_host, owner_pid = excluded.owner_pid, finished_at = NULL WHERE runs.status = 'aborted'")
        .run(run.runId, meta.station.id, run.plan.name, run.plan.sha256, run.plan.source, run.jig.name, run.jig.source, imgKey, run.startedAt, hostname(), process.pid);
      for (const i of meta.instruments) {
        const key = instrumentKey(i, meta.station.id);
        upsertInstrument(this.db, key, i);
        this.db.prepare('INSERT INTO run_instruments (run_id, instrument_id, instrument_key, calibration_date) VALUES (?, ?, ?, ?) ON CONFLICT (run_id, instrument_id) DO NOTHING').run(run.runId, i.id, key, i.calibrationDate ?? null);
      }
    });
    this.#write(() => tx.immediate());
  }

  /** The unit row (once per run and slot) and this session's slot attempt (once per session). */
  startUnit(o: { runId: string; slot: number; plannedSteps: string[]; at: string; instrumentId?: string; sessionId: string }): { unitId: string; attempt: number } {
    const unitId = unitIdOf(o.runId, o.slot);
    const tx = this.db.transaction(() => {
      this.db.prepare('INSERT INTO units (unit_id, run_id, slot, instrument_id, planned_steps, started_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id) DO NOTHING').run(unitId, o.runId, o.slot, o.instrumentId ?? null, JSON.stringify(o.plannedSteps), o.at);
      const mine = this.db.prepare('SELECT attempt FROM slot_attempts WHERE unit_id = ? AND session_id = ?').get(unitId, o.sessionId) as { attempt: number } | undefined;
      if (mine) return mine.attempt;
      const next = (this.db.prepare('SELECT COALESCE(MAX(attempt), 0) + 1 AS n FROM slot_attempts WHERE unit_id = ?').get(unitId) as { n: number }).n;
      this.db.prepare('INSERT INTO slot_attempts (unit_id, attempt, session_id, started_at) VALUES (?, ?, ?, ?)').run(unitId, next, o.sessionId, o.at);
      // A resumed unit is running again, and no longer final: an earlier forward of its aborted try is
      // superseded, so it goes to the central store again once it finishes.
      this.db.prepare('UPDATE units SET aborted = 0, forwarded_at = NULL WHERE unit_id = ? AND complete = 0').run(unitId);
      return next;
    });
    return { unitId, attempt: this.#write(() => tx.immediate()) };
  }

  /** Merge facts the steps found (MAC, serial, template, ...) into the unit. */
  addUnitFacts(unitId: string, facts: Record<string, unknown>): void {
    const tx = this.db.transaction(() => {
      const row = this.db.prepare('SELECT facts FROM units WHERE unit_id = ?').get(unitId) as { facts: string } | undefined;
      if (!row) throw new StoreError(`unit ${unitId} is not in the store (facts before slot-started)`, { unit: unitId });
      const merged = { ...(JSON.parse(row.facts) as Record<string, unknown>), ...facts };
      const template = typeof merged.template === 'string' ? merged.template : null;
      if (template) this.db.prepare('INSERT INTO device_templates (template_key, name) VALUES (?, ?) ON CONFLICT (template_key) DO NOTHING').run(template, template);
      this.db
        .prepare('UPDATE units SET facts = ?, mac = COALESCE(?, mac), serial = COALESCE(?, serial), template_key = COALESCE(?, template_key) WHERE unit_id = ?')
        .run(JSON.stringify(merged), typeof merged.mac === 'string' ? merged.mac : null, typeof merged.serial === 'string' ? merged.serial : null, template, unitId);
    });
    this.#write(() => tx.immediate());
  }

  /**
   * One finished step, its earlier attempts, all their measurements and the calibration factors it
   * set, in ONE transaction: either all of it is in the store or none. A step already stored (a
   * replayed event) is left as it is; returns whether it was new.
   */
  commitStep(unitId: string, slotAttempt: number, s: StepResult, calibration: StoredCalibrationFactor[] = []): boolean {
    const tx = this.db.transaction((): boolean => {
      const ins = this.db
        .prepare(
          'INSERT INTO steps (unit_id, slot_attempt, step_index, name, suite, kind, status, flagged, reason, attempt, max_attempts, checks, error, data, started_t, finished_t, ms, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id, slot_attempt, step_index) DO NOTHING',
        )
        .run(unitId, slotAttempt, s.index, s.name, s.suite ?? null, s.kind, s.status, s.flagged ? 1 : 0, s.reason ?? null, s.attempt, s.maxAttempts, JSON.stringify(s.checks), json(s.error), json(s.data), s.startedT, s.finishedT, s.ms, s.startedAt, s.finishedAt);
      if (ins.changes === 0) return false;
      for (const a of s.earlierAttempts) {
        this.db.prepare('INSERT INTO step_attempts (unit_id, slot_attempt, step_index, attempt, status, reason, checks, error, ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(unitId, slotAttempt, s.index, a.attempt, a.status, a.reason, JSON.stringify(a.checks), json(a.error), a.ms);
        a.measurements.forEach((m, seq) => insertMeasurement(this.db, unitId, slotAttempt, s.index, a.attempt, seq, m));
      }
      s.measurements.forEach((m, seq) => insertMeasurement(this.db, unitId, slotAttempt, s.index, s.attempt, seq, m));
      for (const c of calibration) {
        this.db
          .prepare('INSERT INTO calibration_factors (unit_id, quantity, load, factor, reference_model, reference_serial, reference_calibration_date, set_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id, quantity, load) DO UPDATE SET factor = excluded.factor, reference_model = excluded.reference_model, reference_serial = excluded.reference_serial, reference_calibration_date = excluded.reference_calibration_date, set_at = excluded.set_at')
          .run(unitId, c.quantity, c.load ?? '', c.factor, c.reference?.model ?? null, c.reference?.serial ?? null, c.reference?.calibrationDate ?? null, c.at);
      }
      return true;
    });
    return this.#write(() => tx.immediate());
  }

  /** A slot-state or instrument event on the unit's timeline (once: keyed by a digest of the event). */
  addUnitEvent(unitId: string, slotAttempt: number, e: StoredUnitEvent): void {
    const payload = JSON.stringify(e);
    const key = createHash('sha256').update(payload).digest('hex').slice(0, 32);
    this.#write(() => this.db
      .prepare('INSERT INTO unit_events (unit_id, slot_attempt, event_key, seq, type, t, at, payload) SELECT ?, ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ? FROM unit_events WHERE unit_id = ? ON CONFLICT DO NOTHING')
      .run(unitId, slotAttempt, key, e.type, e.t, e.at, payload, unitId));
  }

  finishUnit(unitId: string, slotAttempt: number, r: SlotResult): void {
    const tx = this.db.transaction(() => {
      const row = this.db.prepare('SELECT facts FROM units WHERE unit_id = ?').get(unitId) as { facts: string } | undefined;
      if (!row) throw new StoreError(`unit ${unitId} is not in the store (slot-finished before slot-started)`, { unit: unitId });
      const facts = { ...(JSON.parse(row.facts) as Record<string, unknown>), ...r.unit };
      this.db
        .prepare('UPDATE units SET verdict = ?, flagged = ?, aborted = ?, complete = 1, reason = ?, facts = ?, mac = COALESCE(?, mac), serial = COALESCE(?, serial), finished_at = ?, ms = ? WHERE unit_id = ?')
        .run(r.verdict, r.flagged ? 1 : 0, r.aborted ? 1 : 0, r.reason ?? null, JSON.stringify(facts), typeof facts.mac === 'string' ? facts.mac : null, typeof facts.serial === 'string' ? facts.serial : null, r.finishedAt, r.ms, unitId);
      this.db.prepare('UPDATE slot_attempts SET finished_at = ? WHERE unit_id = ? AND attempt = ?').run(r.finishedAt, unitId, slotAttempt);
    });
    this.#write(() => tx.immediate());
  }

  finishRun(runId: string, finishedAt: string): void {
    this.#write(() => this.db.prepare("UPDATE runs SET status = 'finished', finished_at = ? WHERE run_id = ? AND status = 'running'").run(finishedAt, runId));
  }

  /** A write that SQLite refused (disk full, locked past the busy timeout, I/O) is a store failure. */
  #write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw storeFailure(e, this.path) ?? e;
    }
  }
}

function upsertInstrument(db: SqliteConnection, key: string, i: StoredInstrument): void {
  db.prepare(
    'INSERT INTO instruments (instrument_key, kind, manufacturer, model, serial, firmware, calibration_date) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instrument_key) DO UPDATE SET calibration_date = CASE WHEN excluded.calibration_date > COALESCE(instruments.calibration_date, \'\') THEN excluded.calibration_date ELSE instruments.calibration_date END',
  ).run(key, i.kind ?? null, i.manufacturer ?? null, i.model, i.serial ?? null, i.firmware ?? null, i.calibrationDate ?? null);
}

function insertMeasurement(db: SqliteConnection, unitId: string, slotAttempt: number, stepIndex: number, stepAttempt: number, seq: number, m: MeasurementResult): void {
  const v = encodeNumber(m.value);
  db.prepare(
    'INSERT INTO measurements (unit_id, slot_attempt, step_index, step_attempt, seq, measurement_id, name, unit, taken, value, value_text, u_std, k, u_expanded, contributions, limit_low, limit_high, limit_nominal, marginal_low, marginal_high, guard_band, verdict, decision, reason, t, taken_at, diag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(
    unitId, slotAttempt, stepIndex, stepAttempt, seq, m.id, m.name, m.unit, m.taken ? 1 : 0, v.value, v.text, m.u, m.k, m.U, JSON.stringify(m.contributions),
    m.limits?.low ?? null, m.limits?.high ?? null, m.limits?.nominal ?? null, m.limits?.marginalLow ?? null, m.limits?.marginalHigh ?? null,
    m.guardBand, m.verdict, m.decision, m.reason, m.t ?? null, m.at ?? null, json(m.diag),
  );
}

/** SQLite result codes that mean the store itself failed, not that the path names something else. */
const STORE_FAILURES: Array<[RegExp, string]> = [
  [/^SQLITE_FULL/, 'the disk (or the store) is full'],
  [/^SQLITE_(BUSY|LOCKED)/, 'another process holds the store locked past its busy timeout'],
  [/^SQLITE_IOERR/, 'an I/O error writing the store'],
  [/^SQLITE_READONLY/, 'the store is read-only'],
];

/** A better-sqlite3 error as a StoreError naming the cause, or undefined when it is not a store failure. */
export function storeFailure(e: unknown, path: string): StoreError | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  const hit = STORE_FAILURES.find(([re]) => re.test(code));
  if (!hit) return undefined;
  return new StoreError(`store ${path}: ${hit[1]} (${code}: ${(e as Error).message})`, { store: path, sqlite: code }, { cause: e });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
