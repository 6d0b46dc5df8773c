-- fieldlink store, SQLite: dispatch persistence (journal, incidents, work orders, alarms, outbox,
-- timers, request idempotency). Times are milliseconds since the Unix epoch (BIGINT); `data` and
-- `result` are JSON text owned by the dispatch core (the store never looks inside).
-- Keep in step with ../postgres/0003_dispatch.sql: the same tables, columns and meaning.

-- AUTOINCREMENT: a sequence number is never reused, even after the newest rows are deleted.
CREATE TABLE journal (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,                  -- incident, work order or alarm id
    actor   TEXT NOT NULL,
    data    TEXT NOT NULL                   -- JSON
);
CREATE INDEX journal_at ON journal (at_ms);

-- `open` is false once the record is terminal: restart only reloads open records.
CREATE TABLE incidents (
    id            TEXT PRIMARY KEY NOT NULL,
    status        TEXT NOT NULL,
    grid          TEXT,
    open          BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX incidents_open ON incidents (open, created_at_ms);

CREATE TABLE work_orders (
    id            TEXT PRIMARY KEY NOT NULL,
    incident_id   TEXT NOT NULL,
    unit          TEXT NOT NULL,
    state         TEXT NOT NULL,
    open          BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX work_orders_incident ON work_orders (incident_id, created_at_ms);
CREATE INDEX work_orders_unit ON work_orders (unit, open);
CREATE INDEX work_orders_open ON work_orders (open, created_at_ms);

CREATE TABLE alarms (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL,
    open          BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX alarms_open ON alarms (open, created_at_ms);

-- Downlinks still to deliver. done_at_ms is NULL until the receipt (or a decision to stop).
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    unit            TEXT NOT NULL,
    key             TEXT NOT NULL,          -- what the receiver dedupes on, e.g. the order id
    payload         BLOB NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    done_at_ms      BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_ms) WHERE done_at_ms IS NULL;
CREATE INDEX outbox_key ON outbox (key);

-- Absolute deadlines. claimed_until_ms: the lease of the instance handling it (scale-out).
CREATE TABLE timers (
    id               TEXT PRIMARY KEY NOT NULL,
    due_ms           BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    data             TEXT NOT NULL,
    claimed_until_ms BIGINT
);
CREATE INDEX timers_due ON timers (due_ms);

-- Idempotency: the first result of each request id.
CREATE TABLE requests (
    request_id    TEXT PRIMARY KEY NOT NULL,
    result        TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX requests_created ON requests (created_at_ms);
