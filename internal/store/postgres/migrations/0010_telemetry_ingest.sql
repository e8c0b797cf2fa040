-- Telemetry at ingest (issue 7): what the analysis tick read by checking
-- every pipeline's history is kept up to date when events arrive.

-- The new cohort's evidence: a signature's pipelines that had not produced
-- it on another version before the rollout was created. fresh is judged
-- when a pipeline first hits the signature in the ring (kind 'p', new
-- cohort), and cleared when history backfilled later gives it a past.
ALTER TABLE tel_ring_members ADD COLUMN fresh integer NOT NULL DEFAULT 0;
-- Its fresh pipelines per org (the most affected orgs), and in
-- tel_ring_sigs its totals: evidence (the fresh pipelines) and
-- evidence_orgs (the orgs with one).
CREATE TABLE tel_ring_sig_orgs (
	rollout_id text NOT NULL,
	stage      integer NOT NULL,
	cohort     text NOT NULL,
	signature  text NOT NULL,
	org        text NOT NULL,
	fresh      bigint NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort, signature, org)
);
ALTER TABLE tel_ring_sigs ADD COLUMN evidence_orgs bigint NOT NULL DEFAULT 0;
UPDATE tel_ring_members SET fresh = 1 WHERE cohort = 'new' AND signature <> '' AND kind = 'p'
	AND NOT EXISTS (SELECT 1 FROM rollouts r JOIN tel_history h ON h.label = r.label AND h.pipeline = tel_ring_members.member
		AND h.signature = tel_ring_members.signature AND h.version <> r.version AND h.first_seen < r.created_at
		WHERE r.id = tel_ring_members.rollout_id);
INSERT INTO tel_ring_sig_orgs (rollout_id, stage, cohort, signature, org, fresh)
	SELECT rollout_id, stage, cohort, signature, org, count(*) FROM tel_ring_members WHERE fresh = 1
	GROUP BY rollout_id, stage, cohort, signature, org;
UPDATE tel_ring_sigs SET
	evidence = (SELECT COALESCE(sum(o.fresh), 0) FROM tel_ring_sig_orgs o WHERE o.rollout_id = tel_ring_sigs.rollout_id
		AND o.stage = tel_ring_sigs.stage AND o.cohort = tel_ring_sigs.cohort AND o.signature = tel_ring_sigs.signature),
	evidence_orgs = (SELECT count(*) FROM tel_ring_sig_orgs o WHERE o.rollout_id = tel_ring_sigs.rollout_id
		AND o.stage = tel_ring_sigs.stage AND o.cohort = tel_ring_sigs.cohort AND o.signature = tel_ring_sigs.signature)
	WHERE cohort = 'new';

-- Signature aliases: an id whose template generalised, and the id that
-- survives it (chains are kept one step long). Events reported under an
-- aliased id count under the surviving one, and reads sum an aliased id's
-- rows into it.
CREATE TABLE tel_aliases (
	signature text PRIMARY KEY,
	alias_of  text NOT NULL
);
CREATE INDEX tel_aliases_of ON tel_aliases (alias_of);

-- Failed jobs per version's signature and UTC hour (hours since
-- 1970-01-01): the trend a signature listing shows. Backfilled from the
-- stored events.
CREATE TABLE tel_sig_hours (
	label     text NOT NULL,
	version   text NOT NULL,
	signature text NOT NULL,
	hour      bigint NOT NULL,
	jobs      bigint NOT NULL,
	PRIMARY KEY (label, version, signature, hour)
);
INSERT INTO tel_sig_hours (label, version, signature, hour, jobs)
	SELECT label, version, signature, floor(extract(epoch FROM started_at) / 3600)::bigint, count(*)
	FROM events WHERE signature <> '' AND pipeline <> '' AND outcome = 'failed'
	GROUP BY 1, 2, 3, 4;
