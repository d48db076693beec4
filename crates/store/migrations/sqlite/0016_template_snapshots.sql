-- Template snapshots: per template with a start command, one image of a
-- sandbox booted from it with the command already answering, which creates
-- from that template restore instead of booting.
--
-- The image lives in the snapshot store under `snapshot` (no row of
-- `snapshots` names it: it is no team's snapshot). `template_key` is the
-- template's identity when the image was made; a template whose identity
-- changed (rebuilt) or that is gone has its row and image dropped. The
-- image was made with `cpus`, `memory_mb`, `pids` and `disk_mb`; only
-- creates with those limits restore it. `maker` is the sandbox the image
-- was taken from (killed once it was taken): the restored agent still
-- holds that sandbox's access token until it is re-initialised.

CREATE TABLE template_snapshots (
    template     TEXT    NOT NULL PRIMARY KEY,
    template_key TEXT    NOT NULL,
    snapshot     TEXT    NOT NULL UNIQUE,
    maker        TEXT    NOT NULL,
    cpus         INTEGER NOT NULL,
    memory_mb    INTEGER NOT NULL,
    pids         INTEGER NOT NULL,
    disk_mb      INTEGER NOT NULL,
    size_bytes   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
