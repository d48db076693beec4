-- Every sandbox has a disk limit (MiB) for what it writes, and a snapshot
-- keeps its sandbox's so that a resume, fork or create from it gets the
-- same. Rows from before the limit existed take the default of 10 GiB.

ALTER TABLE sandboxes ADD COLUMN disk_mb INTEGER NOT NULL DEFAULT 10240 CHECK (disk_mb > 0);
ALTER TABLE snapshots ADD COLUMN disk_mb INTEGER NOT NULL DEFAULT 10240 CHECK (disk_mb > 0);
