-- CountJobs from an aggregate: a ring's jobs per start minute, kept in
-- the transaction that inserts the events (only the events that were
-- new), so the controller's tick reads one row per minute and ring of a
-- bake instead of every event of it. Minutes since 1970-01-01, floored.
-- Keyed by minute before ring: a count over every ring (-1) is one range.
CREATE TABLE job_minutes (
	label     TEXT NOT NULL,
	version   TEXT NOT NULL,
	minute    INTEGER NOT NULL,
	ring      INTEGER NOT NULL,
	total     INTEGER NOT NULL,
	succeeded INTEGER NOT NULL,
	failed    INTEGER NOT NULL,
	canceled  INTEGER NOT NULL,
	PRIMARY KEY (label, version, minute, ring)
) WITHOUT ROWID;
INSERT INTO job_minutes (label, version, minute, ring, total, succeeded, failed, canceled)
	SELECT label, version, started_at / 60000000 - (started_at < 0 AND started_at % 60000000 <> 0), ring,
		count(*), sum(outcome = 'succeeded'), sum(outcome = 'failed'), sum(outcome = 'canceled')
	FROM events GROUP BY 1, 2, 3, 4;

-- The events are read only for the minute since falls in (the jobs
-- that started in it at or after since): the index is keyed by start
-- minute, and within a minute by arrival, so a batch's entries still
-- land at the end of a few minutes' ranges (see 0012), not all over.
DROP INDEX events_count;
CREATE INDEX events_count ON events (label, version, (started_at / 60000000 - (started_at < 0 AND started_at % 60000000 <> 0)),
	received_at, ring, started_at, outcome);
