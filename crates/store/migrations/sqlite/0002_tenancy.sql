-- Warren's SQLite schema, version 2: teams, users, and keys that belong to
-- them.
--
-- Every key belongs to a user of a team and carries a role, optional
-- scopes (a JSON array of scope names; NULL means the role's whole grant)
-- and an optional expiry. Every sandbox belongs to a team and records the
-- user who created it. At most one team is the operator team, whose admins
-- create other teams.
--
-- A data directory from before tenancy has keys and sandboxes without a
-- team: they join an operator team `default` and its user `admin`, with the
-- role admin, so an upgrade keeps every existing key working.

CREATE TABLE teams (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    operator   INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1)),
    created_at INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX teams_one_operator ON teams (operator) WHERE operator = 1;

CREATE TABLE users (
    id         TEXT    NOT NULL PRIMARY KEY,
    team       TEXT    NOT NULL REFERENCES teams (id),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (team, name)
) STRICT;

INSERT INTO teams (id, name, operator, created_at)
SELECT 'tdefault0000', 'default', 1, CAST(unixepoch('subsec') * 1000 AS INTEGER)
WHERE EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM sandboxes);

INSERT INTO users (id, team, name, created_at)
SELECT 'uadmin000000', id, 'admin', created_at FROM teams WHERE id = 'tdefault0000';

CREATE TABLE api_keys_v2 (
    id         TEXT    NOT NULL PRIMARY KEY,
    team       TEXT    NOT NULL REFERENCES teams (id),
    user_id    TEXT    NOT NULL REFERENCES users (id),
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    scopes     TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
) STRICT;

INSERT INTO api_keys_v2 (id, team, user_id, name, hash, role, scopes, created_at, revoked_at)
SELECT id, 'tdefault0000', 'uadmin000000', name, hash, 'admin', NULL, created_at, revoked_at
FROM api_keys;

DROP TABLE api_keys;
ALTER TABLE api_keys_v2 RENAME TO api_keys;

CREATE INDEX api_keys_team ON api_keys (team, created_at);
CREATE INDEX api_keys_user ON api_keys (user_id);

ALTER TABLE sandboxes ADD COLUMN team TEXT NOT NULL DEFAULT 'tdefault0000';
ALTER TABLE sandboxes ADD COLUMN owner TEXT NOT NULL DEFAULT 'uadmin000000';

CREATE INDEX sandboxes_team ON sandboxes (team, created_at);
