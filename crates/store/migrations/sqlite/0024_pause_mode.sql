-- How a paused sandbox was paused: 'full' (memory, processes and files) or
-- 'filesystem' (files only: its resume boots it again). Set with the pause
-- image, cleared when the sandbox runs again; NULL on rows paused before
-- it was recorded, which were full pauses.
ALTER TABLE sandboxes ADD COLUMN pause_mode TEXT CHECK (pause_mode IN ('full', 'filesystem'));
