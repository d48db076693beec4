-- Warren's SQLite schema, version 1.
--
-- Times are integer unix milliseconds (UTC). Maps (env, metadata) are JSON
-- objects of strings. Sandbox states are the lower-case names from
-- warren-core; the store decodes them and reports anything else as corrupt,
-- so a later migration can add states without rebuilding the table.

CREATE TABLE sandboxes (
    id               TEXT    NOT NULL PRIMARY KEY,
    template         TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    cpus             INTEGER NOT NULL,
    memory_mb        INTEGER NOT NULL,
    pids             INTEGER NOT NULL,
    env              TEXT    NOT NULL,
    metadata         TEXT    NOT NULL,
    net_slot         INTEGER NOT NULL,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    state_changed_at INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    -- 1 once the daemon confirmed that the sandbox's network is torn down;
    -- only a killed or failed sandbox can get there, and never back.
    slot_released    INTEGER NOT NULL DEFAULT 0
        CHECK (slot_released = 0
               OR (slot_released = 1 AND state IN ('killed', 'failed')))
) STRICT;

-- A network slot is held by at most one sandbox whose slot is not released:
-- every live sandbox, and every killed or failed one whose network teardown
-- is not yet confirmed (the host-side addresses derive from the slot). The
-- expression must stay identical to the one the store's queries use.
CREATE UNIQUE INDEX sandboxes_held_net_slot
    ON sandboxes (net_slot)
    WHERE slot_released = 0;

CREATE INDEX sandboxes_live_expiry
    ON sandboxes (expires_at)
    WHERE state NOT IN ('killed', 'failed');

CREATE INDEX sandboxes_created_at ON sandboxes (created_at);

-- Rows purge may delete: dead, with their slot released.
CREATE INDEX sandboxes_released
    ON sandboxes (state_changed_at)
    WHERE slot_released = 1;

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
