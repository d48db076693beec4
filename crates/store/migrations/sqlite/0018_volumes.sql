-- Volumes: persistent per-team directories that outlive sandboxes. A row
-- names a directory the daemon keeps under `<data>/volumes/<team>/<id>/`;
-- its contents are never in the database. Names are unique per team.

CREATE TABLE volumes (
    id         TEXT    NOT NULL PRIMARY KEY,
    team       TEXT    NOT NULL REFERENCES teams (id),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    UNIQUE (team, name)
) STRICT;

-- Which sandbox mounts which volume where. Rows go with their sandbox's
-- row; a volume with a row of a live sandbox cannot be deleted.
CREATE TABLE sandbox_volumes (
    sandbox TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    volume  TEXT NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
    path    TEXT NOT NULL,
    PRIMARY KEY (sandbox, path)
) STRICT;

CREATE INDEX sandbox_volumes_by_volume ON sandbox_volumes (volume);
