-- Snapshots (pause images, named snapshots, fork images) and the sandbox
-- columns behind pause/resume, idle handling and lineage.
--
-- A snapshot row is written in the same transaction that makes its image
-- visible to the daemon (after the image directory was renamed to its final
-- name), so a row always names a complete image until `deleted_at` is set.
-- Rows whose image was deleted stay for lineage (which sandbox came from
-- which snapshot) until their source sandbox's row is purged.

ALTER TABLE sandboxes ADD COLUMN timeout_s INTEGER NOT NULL DEFAULT 300;
ALTER TABLE sandboxes ADD COLUMN auto_resume INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sandboxes ADD COLUMN on_idle TEXT NOT NULL DEFAULT 'kill';
ALTER TABLE sandboxes ADD COLUMN idle_timeout_s INTEGER;
ALTER TABLE sandboxes ADD COLUMN paused_ttl_s INTEGER NOT NULL DEFAULT 604800;
-- Unix ms of the last API call naming the sandbox; NULL means its creation.
ALTER TABLE sandboxes ADD COLUMN last_activity INTEGER;
-- The snapshot this sandbox was started from (fork, create from snapshot).
ALTER TABLE sandboxes ADD COLUMN source_snapshot TEXT;
-- The image a paused sandbox resumes from (meaningful while it is pausing,
-- paused or resuming; left in place afterwards).
ALTER TABLE sandboxes ADD COLUMN paused_snapshot TEXT;

CREATE TABLE snapshots (
    id              TEXT    NOT NULL PRIMARY KEY,
    -- The sandbox it was taken from; not a foreign key: lineage outlives
    -- the image, and the sandbox row may be purged first.
    sandbox_id      TEXT    NOT NULL,
    -- The team of that sandbox: only its keys see the snapshot (kept here
    -- because the sandbox row may be purged first).
    team            TEXT    NOT NULL,
    -- 'pause' (a paused sandbox's image), 'named' or 'fork'.
    kind            TEXT    NOT NULL CHECK (kind IN ('pause', 'named', 'fork')),
    -- Only named snapshots have a name, unique per sandbox among live ones.
    name            TEXT CHECK ((kind = 'named') = (name IS NOT NULL)),
    -- What a sandbox started from this snapshot is given.
    template        TEXT    NOT NULL,
    cpus            INTEGER NOT NULL,
    memory_mb       INTEGER NOT NULL,
    pids            INTEGER NOT NULL,
    env             TEXT    NOT NULL,
    -- The snapshot the source sandbox itself was started from.
    parent_snapshot TEXT,
    size_bytes      INTEGER NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    -- Set when the image is deleted; the row then only records lineage.
    deleted_at      INTEGER
) STRICT;

CREATE UNIQUE INDEX snapshots_live_name
    ON snapshots (sandbox_id, name)
    WHERE name IS NOT NULL AND deleted_at IS NULL;

CREATE INDEX snapshots_by_sandbox ON snapshots (sandbox_id, created_at);

CREATE INDEX sandboxes_source_snapshot
    ON sandboxes (source_snapshot)
    WHERE source_snapshot IS NOT NULL;
