-- CountJobs from an aggregate: a ring's jobs per start minute, kept in
-- the statement that inserts the events (only the events that were new),
-- so the controller's tick reads one row per minute and ring of a bake
-- instead of every event of it. Minutes since 1970-01-01 UTC, floored.
-- Keyed by minute before ring: a count over every ring (-1) is one range.
-- The events are still read for the minute since falls in, through
-- events_count.
CREATE TABLE job_minutes (
	label     text NOT NULL,
	version   text NOT NULL,
	minute    bigint NOT NULL,
	ring      integer NOT NULL,
	total     bigint NOT NULL,
	succeeded bigint NOT NULL,
	failed    bigint NOT NULL,
	canceled  bigint NOT NULL,
	PRIMARY KEY (label, version, minute, ring)
);
INSERT INTO job_minutes (label, version, minute, ring, total, succeeded, failed, canceled)
	SELECT label, version, floor(extract(epoch FROM started_at) / 60)::bigint, ring,
		count(*), count(*) FILTER (WHERE outcome = 'succeeded'), count(*) FILTER (WHERE outcome = 'failed'),
		count(*) FILTER (WHERE outcome = 'canceled')
	FROM events GROUP BY 1, 2, 3, 4;
