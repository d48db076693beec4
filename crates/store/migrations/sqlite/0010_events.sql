-- Sandboxes' inboxes: events sent to a sandbox, in the order the store
-- accepted them (`seq`, per sandbox, from 1, without gaps).
--
-- A sender's retry names the same `dedupe_key` and finds the event it
-- already sent. `data` is the event's JSON payload as sent; the audit log
-- keeps only its size and digest. `acked_at` is set once the sandbox has
-- acknowledged the event.

CREATE TABLE sandbox_events (
    sandbox     TEXT    NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq > 0),
    type        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    dedupe_key  TEXT,
    size        INTEGER NOT NULL,
    sha256      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    acked_at    INTEGER,
    PRIMARY KEY (sandbox, seq)
) STRICT;

CREATE UNIQUE INDEX sandbox_events_dedupe
    ON sandbox_events (sandbox, dedupe_key) WHERE dedupe_key IS NOT NULL;
