import type { ResolvedLimits } from '../../suites/model/limits.ts';
import type { SqlDb } from './sql-db.ts';
import type {
  RunReader,
  RunStatus,
  StoredAttempt,
  StoredCalibrationFactor,
  StoredInstrument,
  StoredMeasurement,
  StoredRun,
  StoredRunSummary,
  StoredStep,
  StoredUnit,
  StoredUnitEvent,
} from './types.ts';

type Row = Record<string, unknown>;

const str = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : String(v));
const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
/** Copy only the keys whose value is present, so an absent field stays absent (as the runner left it). */
function present<T extends object>(o: { [K in keyof T]: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
const parse = <T>(v: unknown): T | undefined => (v === null || v === undefined ? undefined : (JSON.parse(String(v)) as T));

/** Decode a stored value: SQLite keeps NaN/±Infinity as text. */
export function decodeNumber(value: unknown, text: unknown): number | undefined {
  if (text !== null && text !== undefined) return Number(text);
  return num(value);
}

export function measurementFromRow(r: Row): StoredMeasurement {
  const limits = present<ResolvedLimits>({ low: num(r.limit_low), high: num(r.limit_high), nominal: num(r.limit_nominal), marginalLow: num(r.marginal_low), marginalHigh: num(r.marginal_high) });
  return present<StoredMeasurement>({
    id: String(r.measurement_id),
    name: String(r.name),
    unit: String(r.unit),
    taken: Number(r.taken) === 1,
    value: decodeNumber(r.value, r.value_text),
    u: Number(r.u_std),
    k: Number(r.k),
    U: Number(r.u_expanded),
    contributions: JSON.parse(String(r.contributions)) as StoredMeasurement['contributions'],
    limits: Object.keys(limits).length ? limits : undefined,
    guardBand: String(r.guard_band) as StoredMeasurement['guardBand'],
    verdict: String(r.verdict) as StoredMeasurement['verdict'],
    decision: String(r.decision) as StoredMeasurement['decision'],
    reason: String(r.reason),
    attempt: Number(r.step_attempt),
    t: num(r.t),
    at: str(r.taken_at),
    diag: parse<Record<string, unknown>>(r.diag),
    stepIndex: Number(r.step_index),
    seq: Number(r.seq),
  });
}

/** Reads whole runs back from either dialect (the same SQL), in the runner's shapes. */
export class SqlRunReader implements RunReader {
  readonly #db: SqlDb;
  constructor(db: SqlDb) {
    this.#db = db;
  }

  async listRuns(filter: { stationId?: string; limit?: number } = {}): Promise<StoredRunSummary[]> {
    const where = filter.stationId !== undefined ? 'WHERE r.station_id = ?' : '';
    const params = filter.stationId !== undefined ? [filter.stationId] : [];
    const rows = await this.#db.all(
      `SELECT r.run_id, r.station_id, r.plan_name, r.status, r.started_at, r.finished_at, i.sha256, i.name AS image_name, i.version, i.origin,
         CAST((SELECT COUNT(*) FROM units u WHERE u.run_id = r.run_id) AS INTEGER) AS n,
         CAST((SELECT COUNT(*) FROM units u WHERE u.run_id = r.run_id AND u.verdict = 'pass') AS INTEGER) AS passed,
         CAST((SELECT COUNT(*) FROM units u WHERE u.run_id = r.run_id AND u.verdict = 'fail') AS INTEGER) AS failed
       FROM runs r LEFT JOIN firmware_images i ON i.image_key = r.image_key ${where}
       ORDER BY r.started_at DESC, r.run_id DESC ${filter.limit !== undefined ? `LIMIT ${Math.max(0, Math.floor(filter.limit))}` : ''}`,
      params,
    );
    return rows.map((r) =>
      present<StoredRunSummary>({
        runId: String(r.run_id),
        stationId: String(r.station_id),
        plan: String(r.plan_name),
        image: r.image_name !== null && r.image_name !== undefined ? present({ sha256: str(r.sha256), name: String(r.image_name), version: str(r.version), origin: str(r.origin) }) : undefined,
        status: String(r.status) as RunStatus,
        startedAt: String(r.started_at),
        finishedAt: str(r.finished_at),
        units: Number(r.n),
        passed: Number(r.passed),
        failed: Number(r.failed),
      }),
    );
  }

  async readRun(runId: string): Promise<StoredRun | undefined> {
    const [r] = await this.#db.all(
      `SELECT r.*, s.name AS station_name, s.line AS station_line, i.sha256 AS image_sha256, i.name AS image_name, i.version AS image_version, i.origin AS image_origin
       FROM runs r JOIN stations s ON s.station_id = r.station_id LEFT JOIN firmware_images i ON i.image_key = r.image_key WHERE r.run_id = ?`,
      [runId],
    );
    if (!r) return undefined;
    const instruments = (
      await this.#db.all(
        'SELECT ri.instrument_id, ri.calibration_date, i.kind, i.manufacturer, i.model, i.serial, i.firmware FROM run_instruments ri JOIN instruments i ON i.instrument_key = ri.instrument_key WHERE ri.run_id = ? ORDER BY ri.instrument_id',
        [runId],
      )
    ).map((x) =>
      present<StoredInstrument>({ id: String(x.instrument_id), kind: str(x.kind), manufacturer: str(x.manufacturer), model: String(x.model), serial: str(x.serial), firmware: str(x.firmware), calibrationDate: str(x.calibration_date) }),
    );
    const units = await this.#units(runId);
    return present<StoredRun>({
      runId: String(r.run_id),
      station: present({ id: String(r.station_id), name: String(r.station_name), line: str(r.station_line) }),
      plan: { name: String(r.plan_name), sha256: String(r.plan_sha256), source: String(r.plan_source) },
      jig: { name: String(r.jig_name), source: String(r.jig_source) },
      image: r.image_name !== null && r.image_name !== undefined ? present({ sha256: str(r.image_sha256), name: String(r.image_name), version: str(r.image_version), origin: str(r.image_origin) }) : undefined,
      instruments,
      status: String(r.status) as RunStatus,
      startedAt: String(r.started_at),
      finishedAt: str(r.finished_at),
      abortedAt: str(r.aborted_at),
      abortReason: str(r.abort_reason),
      units,
    });
  }

  /** Whole units of one run (or, with `unitIds`, just those), steps and measurements included. */
  async #units(runId: string): Promise<StoredUnit[]> {
    const rows = await this.#db.all('SELECT * FROM units WHERE run_id = ? ORDER BY slot', [runId]);
    const attempts = await this.#db.all('SELECT unit_id, CAST(MAX(attempt) AS INTEGER) AS n FROM slot_attempts WHERE unit_id IN (SELECT unit_id FROM units WHERE run_id = ?) GROUP BY unit_id', [runId]);
    const steps = await this.#db.all('SELECT s.* FROM steps s JOIN units u ON u.unit_id = s.unit_id WHERE u.run_id = ? ORDER BY s.unit_id, s.slot_attempt, s.step_index', [runId]);
    const earlier = await this.#db.all('SELECT a.* FROM step_attempts a JOIN units u ON u.unit_id = a.unit_id WHERE u.run_id = ? ORDER BY a.unit_id, a.slot_attempt, a.step_index, a.attempt', [runId]);
    const ms = await this.#db.all('SELECT m.* FROM measurements m JOIN units u ON u.unit_id = m.unit_id WHERE u.run_id = ? ORDER BY m.unit_id, m.slot_attempt, m.step_index, m.step_attempt, m.seq', [runId]);
    const events = await this.#db.all('SELECT e.unit_id, e.payload FROM unit_events e JOIN units u ON u.unit_id = e.unit_id WHERE u.run_id = ? ORDER BY e.unit_id, e.seq', [runId]);
    const cal = await this.#db.all('SELECT c.* FROM calibration_factors c JOIN units u ON u.unit_id = c.unit_id WHERE u.run_id = ? ORDER BY c.unit_id, c.quantity, c.load', [runId]);
    const key = (x: Row, attempt: unknown = x.step_attempt): string => `${String(x.unit_id)}\u0000${Number(x.slot_attempt)}\u0000${Number(x.step_index)}\u0000${Number(attempt)}`;
    const byStepAttempt = group(ms, (m) => key(m));
    return rows.map((u) => {
      const unitId = String(u.unit_id);
      const unitSteps = steps
        .filter((s) => s.unit_id === unitId)
        .map((s): StoredStep => {
          const earlierAttempts = earlier
            .filter((a) => a.unit_id === unitId && Number(a.slot_attempt) === Number(s.slot_attempt) && Number(a.step_index) === Number(s.step_index))
            .map((a) =>
              present<StoredAttempt>({
                attempt: Number(a.attempt),
                status: String(a.status) as StoredAttempt['status'],
                reason: String(a.reason),
                measurements: (byStepAttempt.get(key(s, a.attempt)) ?? []).map(measurementFromRow),
                checks: JSON.parse(String(a.checks)) as StoredAttempt['checks'],
                error: parse(a.error),
                ms: Number(a.ms),
              }),
            );
          return present<StoredStep>({
            index: Number(s.step_index),
            name: String(s.name),
            suite: str(s.suite),
            kind: String(s.kind) as StoredStep['kind'],
            status: String(s.status) as StoredStep['status'],
            flagged: Number(s.flagged) === 1,
            reason: str(s.reason),
            attempt: Number(s.attempt),
            maxAttempts: Number(s.max_attempts),
            earlierAttempts,
            measurements: (byStepAttempt.get(key(s, s.attempt)) ?? []).map(measurementFromRow),
            checks: JSON.parse(String(s.checks)) as StoredStep['checks'],
            error: parse(s.error),
            data: parse(s.data),
            startedT: Number(s.started_t),
            finishedT: Number(s.finished_t),
            ms: Number(s.ms),
            startedAt: String(s.started_at),
            finishedAt: String(s.finished_at),
          });
        });
      const calibration = cal
        .filter((c) => c.unit_id === unitId)
        .map((c) =>
          present<StoredCalibrationFactor>({
            quantity: String(c.quantity) as StoredCalibrationFactor['quantity'],
            factor: Number(c.factor),
            load: c.load === '' ? undefined : str(c.load),
            reference: present({ model: str(c.reference_model), serial: str(c.reference_serial), calibrationDate: str(c.reference_calibration_date) }),
            at: String(c.set_at),
          }),
        );
      return present<StoredUnit>({
        unitId,
        runId: String(u.run_id),
        slot: Number(u.slot),
        mac: str(u.mac),
        serial: str(u.serial),
        verdict: (str(u.verdict) ?? null) as StoredUnit['verdict'],
        flagged: Number(u.flagged) === 1,
        aborted: Number(u.aborted) === 1,
        complete: Number(u.complete) === 1,
        reason: str(u.reason),
        attempt: Number(attempts.find((a) => a.unit_id === unitId)?.n ?? 1),
        instrumentId: str(u.instrument_id),
        template: str(u.template_key),
        facts: JSON.parse(String(u.facts)) as Record<string, unknown>,
        plannedSteps: JSON.parse(String(u.planned_steps)) as string[],
        steps: unitSteps,
        calibration,
        timeline: events.filter((e) => e.unit_id === unitId).map((e) => JSON.parse(String(e.payload)) as StoredUnitEvent),
        startedAt: String(u.started_at),
        finishedAt: str(u.finished_at),
        ms: num(u.ms),
      });
    });
  }
}

function group<T>(rows: T[], key: (r: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}
