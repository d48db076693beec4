-- The audit log (see docs/audit.md and crates/store/src/sqlite/audit.rs).
--
-- Entries and the hashes of the Merkle tree over them. Appending an entry
-- writes its row, its tree nodes and the new size in one transaction.
-- Nothing here is ever updated or deleted by Warren: the log only grows.

CREATE TABLE audit_entries (
    -- Position in the log, from 0 (an alias of the rowid).
    idx      INTEGER NOT NULL PRIMARY KEY,
    time_ms  INTEGER NOT NULL,
    team     TEXT    NOT NULL,
    -- The sandbox the entry is about, when there is one (for the timeline
    -- and the `sandbox` filter); not hashed, derived from the entry.
    sandbox  TEXT,
    -- JSON array of strings, outermost actor first.
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    -- JSON object.
    details  TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_entries_sandbox ON audit_entries (sandbox, idx) WHERE sandbox IS NOT NULL;
CREATE INDEX audit_entries_action ON audit_entries (action, idx);
CREATE INDEX audit_entries_time ON audit_entries (time_ms, idx);

-- Hash of every perfect subtree: level 0 holds the leaf hashes, node
-- (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- Number of leaves; one row.
CREATE TABLE audit_size (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
    size INTEGER NOT NULL
) STRICT;
INSERT INTO audit_size (id, size) VALUES (0, 0);

-- Signed tree heads, one per size.
CREATE TABLE audit_heads (
    size         INTEGER NOT NULL PRIMARY KEY,
    timestamp_ms INTEGER NOT NULL,
    root_hash    BLOB    NOT NULL CHECK (length(root_hash) = 32),
    signature    TEXT    NOT NULL
) STRICT;
