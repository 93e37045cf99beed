import type { SqlDb } from './sql-db.ts';
import type { StoredUnit } from './types.ts';

/** The metering suite's error measurements (plug vs reference), what the trends follow by default. */
export const METERING_ERROR_IDS: readonly string[] = ['voltageErrorPct', 'currentErrorPct', 'powerErrorPct', 'pfError'];

/** One run of a unit: the stored unit's identity and verdict, with where and what it ran. */
export interface UnitHistoryEntry extends Pick<StoredUnit, 'unitId' | 'runId' | 'slot' | 'mac' | 'serial' | 'verdict' | 'flagged' | 'aborted' | 'complete' | 'reason' | 'startedAt' | 'finishedAt'> {
  stationId: string;
  plan: string;
  firmware?: string;
  /** Slot attempts of the unit in that run. */
  attempts: number;
  /** Final attempts of steps that failed. */
  failedSteps: Array<{ index: number; name: string; reason?: string }>;
}

export interface YieldRow {
  units: number;
  passed: number;
  failed: number;
  /** Units without a verdict (aborted or still running). */
  unfinished: number;
  /** passed / (passed + failed); null when nothing finished. */
  yield: number | null;
}

export interface ParetoRow {
  step: string;
  failures: number;
  /** Of all step failures in the selection. */
  share: number;
  cumulative: number;
}

export interface TrendRow {
  /** Firmware version (or image name when unversioned), or instrument "model serial". */
  key: string;
  measurementId: string;
  unit: string;
  n: number;
  mean: number;
  /** Sample standard deviation (0 for n = 1). */
  sd: number;
  min: number;
  max: number;
  /** Mean expanded uncertainty of the values. */
  meanU: number;
  firstAt: string;
  lastAt: string;
}

/** Normalise a MAC as the store keeps it (lower case, colon-separated) when `s` looks like one. */
export function normaliseMac(s: string): string | undefined {
  const hex = s.toLowerCase().replace(/[:\-.]/g, '');
  return /^[0-9a-f]{12}$/.test(hex) ? hex.match(/../g)!.join(':') : undefined;
}

const ratio = (passed: number, failed: number): number | null => (passed + failed === 0 ? null : passed / (passed + failed));
const opt = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));

/** The store's questions, one SQL for SQLite and PostgreSQL. */
export class StoreQueries {
  readonly #db: SqlDb;
  constructor(db: SqlDb) {
    this.#db = db;
  }

  /** Every run a unit was in, oldest first, found by MAC (any common spelling) or by serial. */
  async unitHistory(macOrSerial: string): Promise<UnitHistoryEntry[]> {
    const mac = normaliseMac(macOrSerial);
    const rows = await this.#db.all(
      `SELECT u.*, r.station_id, r.plan_name, i.version, i.name AS image_name,
         CAST((SELECT COUNT(*) FROM slot_attempts a WHERE a.unit_id = u.unit_id) AS INTEGER) AS attempts
       FROM units u JOIN runs r ON r.run_id = u.run_id LEFT JOIN firmware_images i ON i.image_key = r.image_key
       WHERE u.serial = ? OR (u.mac IS NOT NULL AND LOWER(u.mac) = ?)
       ORDER BY u.started_at, u.unit_id`,
      [macOrSerial, mac ?? macOrSerial.toLowerCase()],
    );
    const out: UnitHistoryEntry[] = [];
    for (const u of rows) {
      const failed = await this.#db.all("SELECT step_index, name, reason FROM steps WHERE unit_id = ? AND status = 'fail' ORDER BY slot_attempt, step_index", [String(u.unit_id)]);
      const firmware = opt(u.version) ?? opt(u.image_name);
      out.push({
        unitId: String(u.unit_id),
        runId: String(u.run_id),
        stationId: String(u.station_id),
        plan: String(u.plan_name),
        ...(firmware ? { firmware } : {}),
        slot: Number(u.slot),
        ...(opt(u.mac) ? { mac: opt(u.mac)! } : {}),
        ...(opt(u.serial) ? { serial: opt(u.serial)! } : {}),
        verdict: (opt(u.verdict) ?? null) as UnitHistoryEntry['verdict'],
        flagged: Number(u.flagged) === 1,
        aborted: Number(u.aborted) === 1,
        complete: Number(u.complete) === 1,
        ...(opt(u.reason) ? { reason: opt(u.reason)! } : {}),
        attempts: Number(u.attempts),
        failedSteps: failed.map((f) => ({ index: Number(f.step_index), name: String(f.name), ...(opt(f.reason) ? { reason: opt(f.reason)! } : {}) })),
        startedAt: String(u.started_at),
        ...(opt(u.finished_at) ? { finishedAt: opt(u.finished_at)! } : {}),
      });
    }
    return out;
  }

  async yieldPerRun(filter: { stationId?: string } = {}): Promise<Array<YieldRow & { runId: string; stationId: string; startedAt: string }>> {
    const rows = await this.#db.all(
      `SELECT r.run_id, r.station_id, r.started_at,
         CAST(COUNT(u.unit_id) AS INTEGER) AS units,
         CAST(SUM(CASE WHEN u.verdict = 'pass' THEN 1 ELSE 0 END) AS INTEGER) AS passed,
         CAST(SUM(CASE WHEN u.verdict = 'fail' THEN 1 ELSE 0 END) AS INTEGER) AS failed
       FROM runs r LEFT JOIN units u ON u.run_id = r.run_id
       ${filter.stationId !== undefined ? 'WHERE r.station_id = ?' : ''}
       GROUP BY r.run_id, r.station_id, r.started_at ORDER BY r.started_at, r.run_id`,
      filter.stationId !== undefined ? [filter.stationId] : [],
    );
    return rows.map((r) => {
      const units = Number(r.units);
      const passed = Number(r.passed ?? 0);
      const failed = Number(r.failed ?? 0);
      return { runId: String(r.run_id), stationId: String(r.station_id), startedAt: String(r.started_at), units, passed, failed, unfinished: units - passed - failed, yield: ratio(passed, failed) };
    });
  }

  async yieldPerStation(): Promise<Array<YieldRow & { stationId: string; runs: number }>> {
    const rows = await this.#db.all(
      `SELECT r.station_id,
         CAST(COUNT(DISTINCT r.run_id) AS INTEGER) AS runs,
         CAST(COUNT(u.unit_id) AS INTEGER) AS units,
         CAST(SUM(CASE WHEN u.verdict = 'pass' THEN 1 ELSE 0 END) AS INTEGER) AS passed,
         CAST(SUM(CASE WHEN u.verdict = 'fail' THEN 1 ELSE 0 END) AS INTEGER) AS failed
       FROM runs r LEFT JOIN units u ON u.run_id = r.run_id
       GROUP BY r.station_id ORDER BY r.station_id`,
    );
    return rows.map((r) => {
      const units = Number(r.units);
      const passed = Number(r.passed ?? 0);
      const failed = Number(r.failed ?? 0);
      return { stationId: String(r.station_id), runs: Number(r.runs), units, passed, failed, unfinished: units - passed - failed, yield: ratio(passed, failed) };
    });
  }

  /** Which steps fail most (final attempts), most first, with the cumulative share a Pareto chart draws. */
  async failurePareto(filter: { stationId?: string; runId?: string } = {}): Promise<ParetoRow[]> {
    const where: string[] = ["s.status = 'fail'"];
    const params: string[] = [];
    if (filter.stationId !== undefined) {
      where.push('r.station_id = ?');
      params.push(filter.stationId);
    }
    if (filter.runId !== undefined) {
      where.push('r.run_id = ?');
      params.push(filter.runId);
    }
    const rows = await this.#db.all(
      `SELECT s.name, CAST(COUNT(*) AS INTEGER) AS n FROM steps s JOIN units u ON u.unit_id = s.unit_id JOIN runs r ON r.run_id = u.run_id
       WHERE ${where.join(' AND ')} GROUP BY s.name ORDER BY n DESC, s.name`,
      params,
    );
    const total = rows.reduce((a, r) => a + Number(r.n), 0);
    let cum = 0;
    return rows.map((r) => {
      const n = Number(r.n);
      cum += n;
      return { step: String(r.name), failures: n, share: n / total, cumulative: cum / total };
    });
  }

  /**
   * Metering error (plug vs reference) per firmware version or per reference instrument: count,
   * mean, spread and range of each error measurement, over the final attempts of every step, in the
   * order the groups first appeared.
   */
  async meteringErrorTrend(by: 'firmware' | 'instrument', o: { measurementIds?: readonly string[]; stationId?: string } = {}): Promise<TrendRow[]> {
    const ids = o.measurementIds ?? METERING_ERROR_IDS;
    if (ids.length === 0) return [];
    const key =
      by === 'firmware'
        ? 'COALESCE(i.version, i.name)'
        : "COALESCE(ins.manufacturer || ' ', '') || ins.model || ' ' || COALESCE(ins.serial, ri.instrument_id)";
    const rows = await this.#db.all(
      `SELECT ${key} AS k, m.measurement_id, m.unit, m.value, m.u_expanded, r.started_at
       FROM measurements m
         JOIN steps s ON s.unit_id = m.unit_id AND s.slot_attempt = m.slot_attempt AND s.step_index = m.step_index AND s.attempt = m.step_attempt
         JOIN units u ON u.unit_id = m.unit_id JOIN runs r ON r.run_id = u.run_id
         LEFT JOIN firmware_images i ON i.image_key = r.image_key
         LEFT JOIN run_instruments ri ON ri.run_id = r.run_id AND ri.instrument_id = u.instrument_id
         LEFT JOIN instruments ins ON ins.instrument_key = ri.instrument_key
       WHERE m.taken = 1 AND m.value IS NOT NULL AND m.measurement_id IN (${ids.map(() => '?').join(', ')})
         ${o.stationId !== undefined ? 'AND r.station_id = ?' : ''}
       ORDER BY r.started_at, m.unit_id, m.step_index, m.seq`,
      [...ids, ...(o.stationId !== undefined ? [o.stationId] : [])],
    );
    const groups = new Map<string, { key: string; id: string; unit: string; values: number[]; Us: number[]; first: string; last: string }>();
    for (const r of rows) {
      if (r.k === null || r.k === undefined) continue; // no firmware image / no instrument recorded
      const g = `${String(r.k)}\u0000${String(r.measurement_id)}`;
      let e = groups.get(g);
      if (!e) groups.set(g, (e = { key: String(r.k), id: String(r.measurement_id), unit: String(r.unit), values: [], Us: [], first: String(r.started_at), last: String(r.started_at) }));
      e.values.push(Number(r.value));
      e.Us.push(Number(r.u_expanded));
      e.last = String(r.started_at);
    }
    return [...groups.values()].map((g) => {
      const n = g.values.length;
      const mean = g.values.reduce((a, v) => a + v, 0) / n;
      const sd = n > 1 ? Math.sqrt(g.values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
      return { key: g.key, measurementId: g.id, unit: g.unit, n, mean, sd, min: Math.min(...g.values), max: Math.max(...g.values), meanU: g.Us.reduce((a, v) => a + v, 0) / n, firstAt: g.first, lastAt: g.last };
    });
  }
}
