-- Access grants: the right, handed to one API key, to reach one sandbox's
-- agent (`envd`) or its own servers (`traffic`) until `expires_at`.
--
-- Only the grant's random id is stored. The text a client holds is the id
-- and a MAC over it under a daemon secret kept outside the database, so a
-- copy of the database alone cannot produce a usable grant. A grant dies
-- with its sandbox (the row goes with the sandbox's), with its key (revoked
-- keys' grants are deleted, and the key is checked again at every use), at
-- its expiry, and when the sandbox is rolled back.

CREATE TABLE grants (
    id         TEXT    PRIMARY KEY,
    sandbox    TEXT    NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('envd', 'traffic')),
    key_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX grants_by_sandbox ON grants (sandbox, kind, key_id);
CREATE INDEX grants_by_key ON grants (key_id);
