-- Geofence rules: which crossings of a geofence raise an alarm. Keep in step with the other
-- dialect's 0005_zone_alarm_on.sql. NULL: none (always NULL for grids).

ALTER TABLE zones ADD COLUMN alarm_on TEXT;   -- 'enter', 'exit' or 'both'
