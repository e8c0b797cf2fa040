-- Ingest (issue 7): CountJobs' covering index keyed by arrival, not by
-- start. Jobs report when they end, so the start times of one batch are
-- spread over the last minutes or hours: in an index ordered by
-- started_at every event of a group commit landed on a leaf page of its
-- own, and writing those pages was half of the single writer's time. The
-- server stamps received_at, so max(received_at, started_at) grows with
-- arrival and a batch's entries share the last pages of their version's
-- range. The key is exact for CountJobs: a job that started at or after
-- since has a key at or after since (events appended without received_at
-- have 0 there and are keyed by their start).
DROP INDEX events_count;
CREATE INDEX events_count ON events (label, version, max(received_at, started_at), ring, started_at, outcome);
