-- A ring cohort's jobs and failed jobs per UTC hour (hours since
-- 1970-01-01), counted like tel_exposure: the ring's health over time
-- that the Rollout page draws. Backfilled from the stored events.
CREATE TABLE tel_ring_hours (
	rollout_id text NOT NULL,
	stage      integer NOT NULL,
	cohort     text NOT NULL,
	hour       bigint NOT NULL,
	jobs       bigint NOT NULL,
	failed     bigint NOT NULL,
	PRIMARY KEY (rollout_id, stage, hour, cohort)
);
INSERT INTO tel_ring_hours (rollout_id, stage, cohort, hour, jobs, failed)
	SELECT rollout_id, stage, cohort, floor(extract(epoch FROM started_at) / 3600)::bigint,
		count(*), count(*) FILTER (WHERE outcome = 'failed')
	FROM events WHERE rollout_id <> '' AND pipeline <> ''
	GROUP BY 1, 2, 3, 4;
