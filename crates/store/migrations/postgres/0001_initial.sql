-- fieldlink store, PostgreSQL. Times are milliseconds since the Unix epoch (BIGINT).
-- Keep in step with ../sqlite/0001_initial.sql: the same tables, columns and meaning.
-- Tables are created unqualified, in the first schema of search_path (StoreConfig::pg_schema).

CREATE TABLE units (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    unit_type   TEXT NOT NULL,
    skills      TEXT NOT NULL DEFAULT '[]',      -- JSON array of strings
    secret_salt TEXT NOT NULL,                   -- hex
    secret_hash TEXT NOT NULL,                   -- hex, SHA-256(salt || secret)
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    secret_salt TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT                            -- NULL while valid
);

-- One row per unit: the picture rebuilt after a restart. No foreign key to units, on purpose:
-- telemetry must never be refused because registration and ingest disagree for a moment.
CREATE TABLE latest_positions (
    unit        TEXT PRIMARY KEY,
    fix_time    BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    lat         DOUBLE PRECISION NOT NULL,
    lon         DOUBLE PRECISION NOT NULL,
    alt_m       DOUBLE PRECISION,
    accuracy_m  REAL,
    speed_mps   REAL,
    heading_deg REAL,
    battery_pct REAL,
    source      TEXT NOT NULL
);

-- Track history. The key serves range queries per unit and makes a re-sent fix harmless.
CREATE TABLE track (
    unit        TEXT NOT NULL,
    fix_time    BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    lat         DOUBLE PRECISION NOT NULL,
    lon         DOUBLE PRECISION NOT NULL,
    alt_m       DOUBLE PRECISION,
    accuracy_m  REAL,
    speed_mps   REAL,
    heading_deg REAL,
    battery_pct REAL,
    source      TEXT NOT NULL,
    flag        TEXT,                             -- filter reason; NULL = accepted
    PRIMARY KEY (unit, fix_time)
);

-- For retention (prune by age across all units).
CREATE INDEX track_fix_time ON track (fix_time);
