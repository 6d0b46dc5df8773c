-- fieldlink store, SQLite: the dispatch core's responder records (duty, presence, current order),
-- one row per unit, written by the dispatch commit that changed them. They left the
-- dispatch_snapshot row, which every command rewrote: with 100k units that row was ~10 MB
-- (see docs/decisions.md, "Dispatch restart"). Keep in step with ../postgres/0006_dispatch_responders.sql.
CREATE TABLE dispatch_responders (
    unit          TEXT PRIMARY KEY NOT NULL,
    data          TEXT NOT NULL,            -- JSON: the core's Responder
    updated_at_ms BIGINT NOT NULL
);
