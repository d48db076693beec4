-- Each secret counts the values it has had: 1 when created, one more at
-- every replacement. Only the current value is kept.

ALTER TABLE secrets ADD COLUMN version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1);
