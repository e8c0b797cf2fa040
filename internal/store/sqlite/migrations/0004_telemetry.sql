-- Telemetry (issue 7): job events as the server read them, the rings each
-- rollout went through, and the aggregates the analysis reads instead of
-- the events.

-- What the server decided about each event (see rollout.Observation).
-- ring now holds the ring the job counts in for gates (-1: none).
ALTER TABLE events ADD COLUMN pipeline TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN rollout_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN stage INTEGER NOT NULL DEFAULT -1;
ALTER TABLE events ADD COLUMN cohort TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN signature TEXT NOT NULL DEFAULT '';

-- Every ring a rollout entered and when, so that a job is placed in the
-- ring its rollout baked in when it started. Written by triggers in the
-- transaction that writes the rollout, whichever code path writes it.
CREATE TABLE rollout_stages (
	rollout_id TEXT NOT NULL,
	stage      INTEGER NOT NULL,
	started_at INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, stage)
) WITHOUT ROWID;
-- Rollouts that already ran keep only their current ring.
INSERT INTO rollout_stages (rollout_id, stage, started_at)
	SELECT id, ring, ring_started_at FROM rollouts
	WHERE state <> 'pending' AND ring_started_at > -62135596800000000;
CREATE TRIGGER rollout_stages_insert AFTER INSERT ON rollouts
	WHEN NEW.state <> 'pending' AND NEW.ring_started_at > -62135596800000000
BEGIN
	INSERT INTO rollout_stages (rollout_id, stage, started_at) VALUES (NEW.id, NEW.ring, NEW.ring_started_at)
		ON CONFLICT DO UPDATE SET started_at = excluded.started_at;
END;
CREATE TRIGGER rollout_stages_update AFTER UPDATE OF ring, ring_started_at ON rollouts
	WHEN NEW.state <> 'pending' AND NEW.ring_started_at > -62135596800000000
		AND (NEW.ring <> OLD.ring OR NEW.ring_started_at <> OLD.ring_started_at)
BEGIN
	INSERT INTO rollout_stages (rollout_id, stage, started_at) VALUES (NEW.id, NEW.ring, NEW.ring_started_at)
		ON CONFLICT DO UPDATE SET started_at = excluded.started_at;
END;

-- Per rollout, ring (stage) and cohort: jobs with a pipeline.
CREATE TABLE tel_exposure (
	rollout_id TEXT NOT NULL,
	stage      INTEGER NOT NULL,
	cohort     TEXT NOT NULL,
	jobs       INTEGER NOT NULL,
	failed     INTEGER NOT NULL,
	pipelines  INTEGER NOT NULL,
	orgs       INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort)
) WITHOUT ROWID;

-- The same per signature.
CREATE TABLE tel_ring_sigs (
	rollout_id TEXT NOT NULL,
	stage      INTEGER NOT NULL,
	cohort     TEXT NOT NULL,
	signature  TEXT NOT NULL,
	jobs       INTEGER NOT NULL,
	pipelines  INTEGER NOT NULL,
	orgs       INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort, signature)
) WITHOUT ROWID;

-- The distinct pipelines (kind 'p') and orgs ('o') behind the counts of
-- tel_exposure (signature '') and tel_ring_sigs: a member inserted anew
-- increments its row's count in the same transaction.
CREATE TABLE tel_ring_members (
	rollout_id TEXT NOT NULL,
	stage      INTEGER NOT NULL,
	cohort     TEXT NOT NULL,
	signature  TEXT NOT NULL,
	kind       TEXT NOT NULL,
	member     TEXT NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort, signature, kind, member)
) WITHOUT ROWID;

-- Per label, version and signature, for listing and examples.
CREATE TABLE tel_signatures (
	label      TEXT NOT NULL,
	version    TEXT NOT NULL,
	signature  TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	jobs       INTEGER NOT NULL,
	pipelines  INTEGER NOT NULL,
	orgs       INTEGER NOT NULL,
	PRIMARY KEY (label, version, signature)
) WITHOUT ROWID;

-- A pipeline's history of a signature on each version: whether it
-- produced it before a rollout started. Also tel_signatures' pipelines.
CREATE TABLE tel_history (
	label      TEXT NOT NULL,
	pipeline   TEXT NOT NULL,
	signature  TEXT NOT NULL,
	version    TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	jobs       INTEGER NOT NULL,
	PRIMARY KEY (label, pipeline, signature, version)
) WITHOUT ROWID;

-- tel_signatures' orgs.
CREATE TABLE tel_version_orgs (
	label     TEXT NOT NULL,
	version   TEXT NOT NULL,
	signature TEXT NOT NULL,
	org       TEXT NOT NULL,
	PRIMARY KEY (label, version, signature, org)
) WITHOUT ROWID;

-- Up to three example messages per version's signature: the slot in the
-- key caps them even when writers race.
CREATE TABLE tel_examples (
	label     TEXT NOT NULL,
	version   TEXT NOT NULL,
	signature TEXT NOT NULL,
	slot      INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 2),
	message   TEXT NOT NULL,
	PRIMARY KEY (label, version, signature, slot)
) WITHOUT ROWID;

CREATE TABLE tel_templates (
	signature TEXT PRIMARY KEY,
	template  TEXT NOT NULL
) WITHOUT ROWID;
