-- Anomaly rules (`warren_core::rules`): at most one per kind and scope; the
-- scope is a team id, or '*' for the operator's rules of every team.
CREATE TABLE rules (
    scope      TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('cpu', 'memory', 'pids', 'spend_rate')),
    threshold  REAL    NOT NULL CHECK (threshold > 0),
    for_s      INTEGER NOT NULL CHECK (for_s >= 0),
    action     TEXT    NOT NULL CHECK (action IN ('notify', 'pause', 'kill')),
    updated_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, kind)
) STRICT;
