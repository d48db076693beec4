-- Delivery of inbox events inside their sandbox.
--
-- Every sandbox has one inbox row: `last_seq` is the number of the newest
-- event (numbers are never reused, even after old events are pruned),
-- `acked_seq` the highest the sandbox has acknowledged (acknowledgement
-- covers every event up to it). `wake_on` is the JSON list of event type
-- patterns that resume the sandbox when it is paused; `handler` the JSON
-- command run inside for each event, if any.
--
-- An event's `delivered_at` is set the first time it is handed to the
-- sandbox.

CREATE TABLE sandbox_inboxes (
    sandbox   TEXT    PRIMARY KEY REFERENCES sandboxes (id) ON DELETE CASCADE,
    last_seq  INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    acked_seq INTEGER NOT NULL DEFAULT 0 CHECK (acked_seq >= 0 AND acked_seq <= last_seq),
    wake_on   TEXT    NOT NULL DEFAULT '["*"]',
    handler   TEXT
) STRICT;

INSERT INTO sandbox_inboxes (sandbox, last_seq, acked_seq)
SELECT s.id,
       COALESCE((SELECT MAX(seq) FROM sandbox_events e WHERE e.sandbox = s.id), 0),
       COALESCE((SELECT MAX(seq) FROM sandbox_events e
                  WHERE e.sandbox = s.id AND e.acked_at IS NOT NULL), 0)
  FROM sandboxes s;

ALTER TABLE sandbox_events ADD COLUMN delivered_at INTEGER;

-- Retention prunes acknowledged events by age.
CREATE INDEX sandbox_events_acked ON sandbox_events (acked_at) WHERE acked_at IS NOT NULL;
