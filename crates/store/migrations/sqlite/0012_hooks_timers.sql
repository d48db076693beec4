-- Sources of events: inbound webhook hooks and timers (`docs/events.md`).
--
-- A hook belongs to a team; its secret is kept only as ciphertext (sealed
-- by the daemon under a key the database never sees). Its subscriptions
-- route deliveries to sandboxes of the same team and go with their
-- sandbox's row. `hook_deliveries` remembers the delivery ids a hook has
-- accepted, for a window, so a replayed delivery is not delivered again.
--
-- A timer is an event to be sent to its sandbox at `fires_at`; it is
-- deleted once the event is in the inbox, and goes with its sandbox.

CREATE TABLE hooks (
    id               TEXT    NOT NULL PRIMARY KEY,
    team             TEXT    NOT NULL REFERENCES teams (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('github', 'standard')),
    ciphertext       BLOB    NOT NULL,
    nonce            BLOB    NOT NULL,
    created_by       TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    accepted         INTEGER NOT NULL DEFAULT 0,
    rejected         INTEGER NOT NULL DEFAULT 0,
    last_delivery_at INTEGER
) STRICT;

CREATE INDEX hooks_team ON hooks (team);

CREATE TABLE hook_subscriptions (
    hook         TEXT    NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    sandbox      TEXT    NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    repository   TEXT,
    pull_request INTEGER,
    branch       TEXT,
    -- JSON array of event types; empty is every type.
    events       TEXT    NOT NULL,
    PRIMARY KEY (hook, position)
) STRICT;

CREATE INDEX hook_subscriptions_sandbox ON hook_subscriptions (sandbox);

CREATE TABLE hook_deliveries (
    hook     TEXT    NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    delivery TEXT    NOT NULL,
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (hook, delivery)
) STRICT;

CREATE INDEX hook_deliveries_seen ON hook_deliveries (seen_at);

CREATE TABLE sandbox_timers (
    id         TEXT    NOT NULL PRIMARY KEY,
    sandbox    TEXT    NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    fires_at   INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sandbox_timers_due ON sandbox_timers (fires_at);
CREATE INDEX sandbox_timers_sandbox ON sandbox_timers (sandbox);
