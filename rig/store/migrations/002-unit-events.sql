-- The station's timeline of a unit: slot state machine transitions and shared-instrument waits,
-- holds and releases (what a report draws as the slot timeline). event_key is a digest of the event
-- itself, so a replayed event is the same row.
CREATE TABLE unit_events (
  unit_id TEXT NOT NULL,
  slot_attempt INTEGER NOT NULL,
  event_key TEXT NOT NULL,
  -- Arrival order within the unit (events at the same clock time keep their order: wait, then acquired).
  seq INTEGER NOT NULL,
  type TEXT NOT NULL CHECK (type IN ('slot-state', 'instrument')),
  t DOUBLE PRECISION NOT NULL,
  at TEXT NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (unit_id, slot_attempt, event_key),
  FOREIGN KEY (unit_id, slot_attempt) REFERENCES slot_attempts (unit_id, attempt)
);
CREATE INDEX unit_events_seq ON unit_events (unit_id, seq);
