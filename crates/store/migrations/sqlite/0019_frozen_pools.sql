-- Warm pools whose ready sandboxes are kept frozen (their tasks stopped by
-- the cgroup freezer, memory kept) until a create claims one and thaws it.
ALTER TABLE pools ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1));
