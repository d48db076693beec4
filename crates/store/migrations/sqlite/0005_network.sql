-- Network policies and network events.
--
-- `network` is a sandbox's effective policy as JSON (the wire form of
-- warren_core::network::NetworkPolicy). Sandboxes created before this
-- migration had open egress, so their rows (and snapshots) say so; every
-- new row names its policy explicitly.
ALTER TABLE sandboxes ADD COLUMN network TEXT NOT NULL DEFAULT '{"internet":"allow"}';
-- What a sandbox started from the snapshot (fork, create from snapshot) gets.
ALTER TABLE snapshots ADD COLUMN network TEXT NOT NULL DEFAULT '{"internet":"allow"}';

-- Every network decision about a sandbox's traffic (DNS queries, proxied
-- connections), newest kept: the store trims each sandbox to a bounded
-- number of rows as it appends. Never holds payloads or secret values.
CREATE TABLE network_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    sandbox_id  TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    -- 'dns', 'connect', 'http', 'tls' or 'packet'.
    kind        TEXT    NOT NULL,
    dest        TEXT,
    port        INTEGER,
    name        TEXT,
    -- 'allow' or 'deny'; `reason` is set for denials.
    verdict     TEXT    NOT NULL CHECK (verdict IN ('allow', 'deny')),
    reason      TEXT,
    bytes_out   INTEGER NOT NULL,
    bytes_in    INTEGER NOT NULL
) STRICT;

CREATE INDEX network_events_by_sandbox ON network_events (sandbox_id, seq);

-- A sandbox's events go with its row.
CREATE TRIGGER network_events_follow_sandbox AFTER DELETE ON sandboxes
BEGIN
    DELETE FROM network_events WHERE sandbox_id = OLD.id;
END;
