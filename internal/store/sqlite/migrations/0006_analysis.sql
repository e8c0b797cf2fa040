-- Analysis (issue 7): what the decision reads beside migration 0004's
-- aggregates, still without scanning events.

-- The org of a pipeline member (kind 'p'), so that a signature's evidence
-- is counted per org: how many orgs a regression affects, and the most
-- affected ones left out. Rows written before this migration have ''.
ALTER TABLE tel_ring_members ADD COLUMN org TEXT NOT NULL DEFAULT '';

-- Failed jobs per org of a ring cohort: how many orgs failed, and the
-- orgs with the most failures (one org's retry storm) for the aggregate
-- test to leave out.
CREATE TABLE tel_ring_orgs (
	rollout_id TEXT NOT NULL,
	stage      INTEGER NOT NULL,
	cohort     TEXT NOT NULL,
	org        TEXT NOT NULL,
	failed     INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort, org)
) WITHOUT ROWID;

-- Jobs (with a pipeline) per org, version and UTC day (days since
-- 1970-01-01): a cohort's history on the old version before a rollout,
-- whose ratio between the sides tells how much flakier one is anyway.
CREATE TABLE tel_org_days (
	label   TEXT NOT NULL,
	version TEXT NOT NULL,
	org     TEXT NOT NULL,
	day     INTEGER NOT NULL,
	jobs    INTEGER NOT NULL,
	failed  INTEGER NOT NULL,
	PRIMARY KEY (label, version, org, day)
) WITHOUT ROWID;

-- The control and old cohorts' evidence per signature: pipelines that had
-- not produced it before the rollout, judged when each first hit it in
-- the ring (the new cohort's is computed when read). Counting it at
-- ingest keeps the read off the fleet-sized old side.
ALTER TABLE tel_ring_sigs ADD COLUMN evidence INTEGER NOT NULL DEFAULT 0;
