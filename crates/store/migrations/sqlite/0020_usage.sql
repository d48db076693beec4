-- Metering. The meter's sums per sandbox and minute (`minute` is Unix
-- minutes: the minute a sample was taken in); memory, disk and snapshots
-- are integrals over time in MiB·ms, the rest counters and milliseconds.
-- Rows outlive their sandbox: usage is reported after it ended.
CREATE TABLE usage_minutes (
    sandbox_id          TEXT    NOT NULL,
    minute              INTEGER NOT NULL,
    cpu_ns              INTEGER NOT NULL DEFAULT 0,
    memory_mib_ms       INTEGER NOT NULL DEFAULT 0,
    memory_limit_mib_ms INTEGER NOT NULL DEFAULT 0,
    disk_mib_ms         INTEGER NOT NULL DEFAULT 0,
    snapshot_mib_ms     INTEGER NOT NULL DEFAULT 0,
    egress_bytes        INTEGER NOT NULL DEFAULT 0,
    ingress_bytes       INTEGER NOT NULL DEFAULT 0,
    running_ms          INTEGER NOT NULL DEFAULT 0,
    standby_ms          INTEGER NOT NULL DEFAULT 0,
    paused_ms           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sandbox_id, minute)
) WITHOUT ROWID;
CREATE INDEX usage_minutes_by_minute ON usage_minutes (minute);

-- Where the meter stood for each sandbox it measures: the CPU counter of
-- the sandbox's current instance (cgroup counters survive a daemon
-- restart, so the next sample continues from here), and the time up to
-- which wall time, memory and disk were counted. Written in the same
-- transaction as the sums.
CREATE TABLE meter_marks (
    sandbox_id  TEXT    PRIMARY KEY,
    cpu_ns      INTEGER NOT NULL,
    counted_to  INTEGER NOT NULL
) WITHOUT ROWID;
