-- Budgets: how much a team, or one of its users or keys, may spend per
-- day or month (`warren_core::budget`). `warned_period` and
-- `exceeded_period` name the last period whose warning and exceeded
-- events were sent (each is set by a compare-and-set, so each is sent
-- once per period); `override_period` a period an operator lifted the
-- budget for.
CREATE TABLE budgets (
    id              TEXT    PRIMARY KEY,
    team            TEXT    NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id         TEXT,
    key_id          TEXT,
    period          TEXT    NOT NULL CHECK (period IN ('day', 'month')),
    amount          REAL    NOT NULL CHECK (amount >= 0),
    action          TEXT    NOT NULL CHECK (action IN ('pause', 'kill', 'notify')),
    warned_period   TEXT,
    exceeded_period TEXT,
    override_period TEXT,
    created_by      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX budgets_by_team ON budgets (team, created_at);
