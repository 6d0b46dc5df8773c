-- fieldlink store, SQLite: the dispatch core's whole state, one row, rewritten by every dispatch
-- commit in the same transaction as its journal events (see docs/decisions.md, "Dispatch restart").
-- Keep in step with ../postgres/0004_dispatch_snapshot.sql.
CREATE TABLE dispatch_snapshot (
    id            INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    data          TEXT NOT NULL,            -- JSON: the core's DeskState
    last_seq      BIGINT NOT NULL,          -- the journal's last seq when it was written
    updated_at_ms BIGINT NOT NULL
);
