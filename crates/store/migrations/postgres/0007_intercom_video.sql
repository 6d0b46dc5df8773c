-- fieldlink store, PostgreSQL: talkgroups and cameras made through the API, and the talk-burst log (one row per
-- finished transmission: group, talker, start, end, duration, how it ended). Floor state itself
-- is not stored: a floor lasts seconds and handsets ask again after a restart; every grant,
-- deny, revoke and release is in the journal. Keep in step with ../sqlite/0007_intercom_video.sql.
CREATE TABLE talkgroups (
    id            TEXT PRIMARY KEY,
    data          TEXT NOT NULL,            -- JSON: the intercom core's Talkgroup
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE talk_bursts (
    id          BIGSERIAL PRIMARY KEY,
    talkgroup   TEXT NOT NULL,
    party       TEXT NOT NULL,              -- unit:ID or console:ID
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome     TEXT NOT NULL,              -- released, revoked, pre_empted, offline, reported, ...
    data        TEXT NOT NULL               -- JSON: the core's BurstRecord
);
CREATE INDEX talk_bursts_group ON talk_bursts (talkgroup, start_ms);

-- Fixed cameras (checkpoints) added through the API; those from the config's camera files are
-- read from the files at each start.
CREATE TABLE cameras (
    id            TEXT PRIMARY KEY,
    data          TEXT NOT NULL,            -- JSON: the video core's Camera
    updated_at_ms BIGINT NOT NULL
);
