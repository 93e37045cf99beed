-- plugrig traceability store, schema 1. One dialect for SQLite and PostgreSQL: TEXT ids chosen by the
-- station (run UUIDs, "<run>:<slot>" unit ids) so no autoincrement is needed and a record keeps its
-- keys when it is forwarded; DOUBLE PRECISION for every measured or timed number (SQLite gives it REAL
-- affinity, PostgreSQL float8); ISO-8601 UTC timestamps as TEXT (they sort as time); JSON as TEXT;
-- booleans as INTEGER 0/1.

CREATE TABLE stations (
  station_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  line TEXT,
  first_seen TEXT NOT NULL
);

-- Keyed by SHA-256 when known ("sha256:<hex>"), else by name ("name:<file name>").
CREATE TABLE firmware_images (
  image_key TEXT PRIMARY KEY,
  sha256 TEXT,
  name TEXT NOT NULL,
  version TEXT,
  origin TEXT
);

CREATE TABLE device_templates (
  template_key TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  source TEXT
);

-- One physical instrument: "<manufacturer>|<model>|<serial>" (a station-scoped key when it has no serial).
CREATE TABLE instruments (
  instrument_key TEXT PRIMARY KEY,
  kind TEXT,
  manufacturer TEXT,
  model TEXT NOT NULL,
  serial TEXT,
  firmware TEXT,
  -- The newest calibration date seen; each run keeps its own in run_instruments.
  calibration_date TEXT
);

CREATE TABLE runs (
  run_id TEXT PRIMARY KEY,
  station_id TEXT NOT NULL REFERENCES stations (station_id),
  plan_name TEXT NOT NULL,
  plan_sha256 TEXT NOT NULL,
  plan_source TEXT NOT NULL,
  jig_name TEXT NOT NULL,
  jig_source TEXT NOT NULL,
  image_key TEXT REFERENCES firmware_images (image_key),
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'aborted')),
  started_at TEXT NOT NULL,
  finished_at TEXT,
  aborted_at TEXT,
  abort_reason TEXT,
  -- The process that writes the run: a later start aborts a running run only when its owner is gone.
  owner_host TEXT,
  owner_pid INTEGER,
  -- Outbox bookkeeping (station SQLite only): the status last forwarded to the central store.
  forwarded_status TEXT
);
CREATE INDEX runs_station ON runs (station_id, started_at);

-- The instruments a run used, under the jig file's key, with their calibration date at the time.
CREATE TABLE run_instruments (
  run_id TEXT NOT NULL REFERENCES runs (run_id),
  instrument_id TEXT NOT NULL,
  instrument_key TEXT NOT NULL REFERENCES instruments (instrument_key),
  calibration_date TEXT,
  PRIMARY KEY (run_id, instrument_id)
);

CREATE TABLE units (
  unit_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs (run_id),
  slot INTEGER NOT NULL,
  mac TEXT,
  serial TEXT,
  verdict TEXT CHECK (verdict IN ('pass', 'fail')),
  flagged INTEGER NOT NULL DEFAULT 0,
  aborted INTEGER NOT NULL DEFAULT 0,
  complete INTEGER NOT NULL DEFAULT 0,
  reason TEXT,
  instrument_id TEXT,
  template_key TEXT REFERENCES device_templates (template_key),
  facts TEXT NOT NULL DEFAULT '{}',
  planned_steps TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  ms DOUBLE PRECISION,
  -- Outbox bookkeeping (station SQLite only): when the unit reached the central store.
  forwarded_at TEXT,
  UNIQUE (run_id, slot)
);
CREATE INDEX units_mac ON units (mac);
CREATE INDEX units_serial ON units (serial);

-- Each time a slot ran the unit within its run (a resumed unit gets attempt 2, ...); session_id is the
-- writing process's, so a replayed slot-started of the same session maps to the same attempt.
CREATE TABLE slot_attempts (
  unit_id TEXT NOT NULL REFERENCES units (unit_id),
  attempt INTEGER NOT NULL,
  session_id TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  PRIMARY KEY (unit_id, attempt),
  UNIQUE (unit_id, session_id)
);

CREATE TABLE steps (
  unit_id TEXT NOT NULL,
  slot_attempt INTEGER NOT NULL,
  step_index INTEGER NOT NULL,
  name TEXT NOT NULL,
  suite TEXT,
  kind TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'skip')),
  flagged INTEGER NOT NULL,
  reason TEXT,
  attempt INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  checks TEXT NOT NULL,
  error TEXT,
  data TEXT,
  started_t DOUBLE PRECISION NOT NULL,
  finished_t DOUBLE PRECISION NOT NULL,
  ms DOUBLE PRECISION NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  PRIMARY KEY (unit_id, slot_attempt, step_index),
  FOREIGN KEY (unit_id, slot_attempt) REFERENCES slot_attempts (unit_id, attempt)
);

-- Earlier attempts of a retried step (their measurements are in measurements with step_attempt < steps.attempt).
CREATE TABLE step_attempts (
  unit_id TEXT NOT NULL,
  slot_attempt INTEGER NOT NULL,
  step_index INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL,
  checks TEXT NOT NULL,
  error TEXT,
  ms DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (unit_id, slot_attempt, step_index, attempt),
  FOREIGN KEY (unit_id, slot_attempt, step_index) REFERENCES steps (unit_id, slot_attempt, step_index)
);

CREATE TABLE measurements (
  unit_id TEXT NOT NULL,
  slot_attempt INTEGER NOT NULL,
  step_index INTEGER NOT NULL,
  step_attempt INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  measurement_id TEXT NOT NULL,
  name TEXT NOT NULL,
  unit TEXT NOT NULL,
  taken INTEGER NOT NULL,
  value DOUBLE PRECISION,
  -- 'NaN', 'Infinity', '-Infinity' for a value SQLite would turn into NULL.
  value_text TEXT,
  u_std DOUBLE PRECISION NOT NULL,
  k DOUBLE PRECISION NOT NULL,
  u_expanded DOUBLE PRECISION NOT NULL,
  contributions TEXT NOT NULL,
  limit_low DOUBLE PRECISION,
  limit_high DOUBLE PRECISION,
  limit_nominal DOUBLE PRECISION,
  marginal_low DOUBLE PRECISION,
  marginal_high DOUBLE PRECISION,
  guard_band TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'marginal', 'fail')),
  decision TEXT NOT NULL,
  reason TEXT NOT NULL,
  t DOUBLE PRECISION,
  taken_at TEXT,
  diag TEXT,
  PRIMARY KEY (unit_id, slot_attempt, step_index, step_attempt, seq),
  FOREIGN KEY (unit_id, slot_attempt, step_index) REFERENCES steps (unit_id, slot_attempt, step_index)
);
CREATE INDEX measurements_id ON measurements (measurement_id);

CREATE TABLE calibration_factors (
  unit_id TEXT NOT NULL REFERENCES units (unit_id),
  quantity TEXT NOT NULL CHECK (quantity IN ('voltage', 'current', 'power')),
  load TEXT NOT NULL,
  factor DOUBLE PRECISION NOT NULL,
  reference_model TEXT,
  reference_serial TEXT,
  reference_calibration_date TEXT,
  set_at TEXT NOT NULL,
  PRIMARY KEY (unit_id, quantity, load)
);
