-- 0002: reachability of directory nodes. `state` is what the directory's prober and the
-- nodes' signed leave announcements say: 'unknown' until first probed, then 'up',
-- 'unreachable' or 'draining'. `state_since` is when it last changed, `last_ack_at` the
-- time of the last valid probe acknowledgement recorded with a change, `leave_at` the
-- node's own time in its latest accepted leave announcement (NULL: none).

ALTER TABLE node_descriptors ADD COLUMN state TEXT NOT NULL DEFAULT 'unknown'
    CHECK (state IN ('unknown', 'up', 'unreachable', 'draining'));
ALTER TABLE node_descriptors ADD COLUMN state_since DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE node_descriptors ADD COLUMN last_ack_at DOUBLE PRECISION;
ALTER TABLE node_descriptors ADD COLUMN leave_at DOUBLE PRECISION;
UPDATE node_descriptors SET state_since = refreshed_at;
CREATE INDEX node_descriptors_state_idx ON node_descriptors (state);
