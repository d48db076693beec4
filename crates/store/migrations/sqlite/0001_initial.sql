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
    expires_at       INTEGER NOT NULL
) STRICT;

-- A network slot is held by at most one sandbox that is not killed or failed.
-- The expression must stay identical to the one the store's queries use.
CREATE UNIQUE INDEX sandboxes_live_net_slot
    ON sandboxes (net_slot)
    WHERE state NOT IN ('killed', 'failed');

CREATE INDEX sandboxes_live_expiry
    ON sandboxes (expires_at)
    WHERE state NOT IN ('killed', 'failed');

CREATE INDEX sandboxes_created_at ON sandboxes (created_at);

CREATE INDEX sandboxes_ended
    ON sandboxes (state_changed_at)
    WHERE state IN ('killed', 'failed');

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
