-- A ring cohort's jobs and failed jobs per UTC hour (hours since
-- 1970-01-01), counted like tel_exposure: the ring's health over time
-- that the Rollout page draws. Backfilled from the stored events.
CREATE TABLE tel_ring_hours (
	rollout_id TEXT NOT NULL,
	stage      INTEGER NOT NULL,
	cohort     TEXT NOT NULL,
	hour       INTEGER NOT NULL,
	jobs       INTEGER NOT NULL,
	failed     INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, stage, hour, cohort)
) WITHOUT ROWID;
INSERT INTO tel_ring_hours (rollout_id, stage, cohort, hour, jobs, failed)
	SELECT rollout_id, stage, cohort, started_at / 3600000000 - (started_at < 0 AND started_at % 3600000000 <> 0),
		count(*), sum(outcome = 'failed')
	FROM events WHERE rollout_id <> '' AND pipeline <> ''
	GROUP BY 1, 2, 3, 4;
