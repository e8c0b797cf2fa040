-- Analysis (issue 7): what the decision reads beside migration 0004's
-- aggregates, still without scanning events.

-- The org of a pipeline member (kind 'p'), so that a signature's evidence
-- is counted per org: how many orgs a regression affects, and the most
-- affected ones left out. Rows written before this migration have ''.
ALTER TABLE tel_ring_members ADD COLUMN org text NOT NULL DEFAULT '';

-- Failed jobs per org of a ring cohort: how many orgs failed, and the
-- orgs with the most failures (one org's retry storm) for the aggregate
-- test to leave out.
CREATE TABLE tel_ring_orgs (
	rollout_id text NOT NULL,
	stage      integer NOT NULL,
	cohort     text NOT NULL,
	org        text NOT NULL,
	failed     bigint NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort, org)
);

-- Jobs (with a pipeline) per org, version and UTC day (days since
-- 1970-01-01): a cohort's history on the old version before a rollout,
-- whose ratio between the sides tells how much flakier one is anyway.
CREATE TABLE tel_org_days (
	label   text NOT NULL,
	version text NOT NULL,
	org     text NOT NULL,
	day     bigint NOT NULL,
	jobs    bigint NOT NULL,
	failed  bigint NOT NULL,
	PRIMARY KEY (label, version, org, day)
);

-- The control and old cohorts' evidence per signature: pipelines that had
-- not produced it before the rollout, judged when each first hit it in
-- the ring (the new cohort's is computed when read). Counting it at
-- ingest keeps the read off the fleet-sized old side.
ALTER TABLE tel_ring_sigs ADD COLUMN evidence bigint NOT NULL DEFAULT 0;
