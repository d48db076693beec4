-- Lifecycle webhooks out: a team's registrations, the lifecycle events its
-- sandboxes went through, and the outbox of deliveries.
--
-- A registration's signing secret is kept sealed (AEAD under the daemon's
-- secrets key, bound to the row), never in the clear. `events` is a JSON
-- array of event names (`*` for every one). `flavor` decides the payload
-- and headers: Warren's own (Standard Webhooks) or E2B's.
--
-- Every lifecycle event is a row of `lifecycle_events`, committed in the
-- same transaction as one `webhook_deliveries` row per matching
-- registration: a delivery exists before anything is sent, so a daemon
-- restart resumes it. `webhook_attempts` keeps each attempt's answer.

CREATE TABLE webhooks (
    id                TEXT    PRIMARY KEY,
    team              TEXT    NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL,
    url               TEXT    NOT NULL,
    events            TEXT    NOT NULL,
    flavor            TEXT    NOT NULL CHECK (flavor IN ('warren', 'e2b')),
    enabled           INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    secret_ciphertext BLOB    NOT NULL,
    secret_nonce      BLOB    NOT NULL,
    created_by        TEXT    NOT NULL,
    created_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX webhooks_by_team ON webhooks (team, created_at);

CREATE TABLE lifecycle_events (
    id      TEXT    PRIMARY KEY,
    team    TEXT    NOT NULL,
    sandbox TEXT    NOT NULL,
    type    TEXT    NOT NULL,
    data    TEXT    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX lifecycle_events_by_sandbox ON lifecycle_events (sandbox, at);
CREATE INDEX lifecycle_events_by_time ON lifecycle_events (at);

CREATE TABLE webhook_deliveries (
    webhook          TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event            TEXT    NOT NULL REFERENCES lifecycle_events (id) ON DELETE CASCADE,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    first_attempt_at INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    delivered_at     INTEGER,
    PRIMARY KEY (webhook, event)
) STRICT;

CREATE INDEX webhook_deliveries_due
    ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    webhook  TEXT    NOT NULL,
    event    TEXT    NOT NULL,
    attempt  INTEGER NOT NULL CHECK (attempt > 0),
    at       INTEGER NOT NULL,
    status   INTEGER,
    error    TEXT,
    response TEXT,
    PRIMARY KEY (webhook, event, attempt),
    FOREIGN KEY (webhook, event) REFERENCES webhook_deliveries (webhook, event) ON DELETE CASCADE
) STRICT;
