-- Template versions: each sandbox and snapshot names the version of its
-- template it runs on, so a rebuild never changes a running, paused or
-- forked sandbox's root filesystem, and a version is kept until nothing
-- names it. NULL only on rows written before versions existed; the daemon
-- fills them in at start with the version their template had then.

ALTER TABLE sandboxes ADD COLUMN template_version TEXT;
ALTER TABLE snapshots ADD COLUMN template_version TEXT;
