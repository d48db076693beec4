-- Team secrets, encrypted at rest.
--
-- `ciphertext` is XChaCha20-Poly1305 of the value (tag appended) under a key
-- kept in the data directory, outside the database; `nonce` is its 24-byte
-- nonce; the associated data binds the ciphertext to its team and name, so
-- a ciphertext copied into another row does not decrypt. The value in clear
-- is never stored.

CREATE TABLE secrets (
    team       TEXT    NOT NULL REFERENCES teams (id),
    name       TEXT    NOT NULL,
    ciphertext BLOB    NOT NULL,
    nonce      BLOB    NOT NULL CHECK (length(nonce) = 24),
    created_at INTEGER NOT NULL,
    -- The key that first set it, and the key that last replaced it.
    created_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL,
    PRIMARY KEY (team, name)
) STRICT;
