-- Warm pools: per template, how many ready sandboxes the daemon keeps for
-- creates to claim, and the size (limits) they are started with. Only
-- operators write rows. The pooled sandboxes themselves are ordinary
-- `sandboxes` rows of the reserved pool team (`warren_store::pool_team`),
-- which no team's key names, lists or counts.

CREATE TABLE pools (
    template   TEXT    NOT NULL PRIMARY KEY,
    cpus       INTEGER NOT NULL CHECK (cpus >= 1),
    memory_mb  INTEGER NOT NULL CHECK (memory_mb >= 1),
    disk_mb    INTEGER NOT NULL CHECK (disk_mb >= 1),
    min_ready  INTEGER NOT NULL CHECK (min_ready >= 0),
    max_ready  INTEGER NOT NULL CHECK (max_ready >= min_ready),
    updated_at INTEGER NOT NULL,
    -- The key that last set it.
    updated_by TEXT    NOT NULL
) STRICT;
