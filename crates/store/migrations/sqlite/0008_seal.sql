-- fieldlink store, SQLite: sealed payloads on the embedded broker (docs/security.md).
-- Each unit's seal key (32 characters derived from its secret; the server opens every payload
-- with it, so it is kept beside the secret's hash, and changes when the secret is rotated).
-- NULL for units registered before sealing: they get one when their secret is rotated.
-- And the replay marks: per unit and channel, the newest sealed counter accepted, so that
-- messages seen before a restart cannot be replayed after it.
-- Keep in step with ../postgres/0008_seal.sql.
ALTER TABLE units ADD COLUMN seal_key TEXT;

CREATE TABLE seal_marks (
    unit_id      TEXT NOT NULL,
    channel      TEXT NOT NULL,            -- sealed, offline (last wills) or owntracks (tst)
    last_counter BIGINT NOT NULL,
    PRIMARY KEY (unit_id, channel)
);
