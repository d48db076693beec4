-- Per-team quotas. A team without a row gets the defaults compiled into
-- the daemon (warren_core::quota::Quota::DEFAULT); only operators write
-- rows. Sizes are MiB (memory, disk) and bytes (snapshots).

CREATE TABLE team_quotas (
    team               TEXT    NOT NULL PRIMARY KEY REFERENCES teams (id),
    max_sandboxes      INTEGER NOT NULL CHECK (max_sandboxes >= 0),
    max_vcpus          INTEGER NOT NULL CHECK (max_vcpus >= 0),
    max_memory_mb      INTEGER NOT NULL CHECK (max_memory_mb >= 0),
    max_disk_mb        INTEGER NOT NULL CHECK (max_disk_mb >= 0),
    max_snapshot_bytes INTEGER NOT NULL CHECK (max_snapshot_bytes >= 0),
    max_branches       INTEGER NOT NULL CHECK (max_branches >= 1),
    updated_at         INTEGER NOT NULL,
    -- The key that last set it.
    updated_by         TEXT    NOT NULL
) STRICT;
