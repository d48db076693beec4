-- Three more kinds of anomaly rule: egress_denials, process_age and forks.
-- SQLite cannot change a CHECK constraint: the table is made again.
CREATE TABLE rules_next (
    scope      TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('cpu', 'memory', 'pids', 'spend_rate',
                                                'egress_denials', 'process_age', 'forks')),
    threshold  REAL    NOT NULL CHECK (threshold > 0),
    for_s      INTEGER NOT NULL CHECK (for_s >= 0),
    action     TEXT    NOT NULL CHECK (action IN ('notify', 'pause', 'kill')),
    updated_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, kind)
) STRICT;
INSERT INTO rules_next SELECT scope, kind, threshold, for_s, action, updated_by, updated_at FROM rules;
DROP TABLE rules;
ALTER TABLE rules_next RENAME TO rules;
