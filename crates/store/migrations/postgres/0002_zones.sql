-- Geofences and grids managed through the API. Keep in step with ../sqlite/0002_zones.sql.
-- Areas loaded from GeoJSON files in the config are not stored here: the files are their record.

CREATE TABLE zones (
    id          TEXT PRIMARY KEY,                 -- unique across geofences and grids
    kind        TEXT NOT NULL,                    -- 'geofence' or 'grid'
    name        TEXT NOT NULL,
    geometry    TEXT NOT NULL,                    -- GeoJSON geometry, WGS-84: Polygon, MultiPolygon or Point
    radius_m    DOUBLE PRECISION,                 -- for a Point: the circle's radius; NULL otherwise
    members     TEXT NOT NULL DEFAULT '[]',       -- JSON array of unit ids (grids: who belongs to it)
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE INDEX zones_kind ON zones (kind, id);
