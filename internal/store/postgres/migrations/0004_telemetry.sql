-- Telemetry (issue 7): job events as the server read them, the rings each
-- rollout went through, and the aggregates the analysis reads instead of
-- the events.

-- What the server decided about each event (see rollout.Observation).
-- ring now holds the ring the job counts in for gates (-1: none).
ALTER TABLE events ADD COLUMN pipeline text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN run_id text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN received_at timestamptz NOT NULL DEFAULT 'epoch';
ALTER TABLE events ADD COLUMN rollout_id text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN stage integer NOT NULL DEFAULT -1;
ALTER TABLE events ADD COLUMN cohort text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN signature text NOT NULL DEFAULT '';

-- Every ring a rollout entered and when, so that a job is placed in the
-- ring its rollout baked in when it started. Written by a trigger in the
-- transaction that writes the rollout, whichever code path writes it.
CREATE TABLE rollout_stages (
	rollout_id text NOT NULL,
	stage      integer NOT NULL,
	started_at timestamptz NOT NULL,
	PRIMARY KEY (rollout_id, stage)
);
-- Rollouts that already ran keep only their current ring.
INSERT INTO rollout_stages (rollout_id, stage, started_at)
	SELECT id, ring, ring_started_at FROM rollouts
	WHERE state <> 'pending' AND ring_started_at > '0001-01-02T00:00:00Z';
CREATE FUNCTION rollout_stages_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.state <> 'pending' AND NEW.ring_started_at > '0001-01-02T00:00:00Z'
		AND (TG_OP = 'INSERT' OR NEW.ring <> OLD.ring OR NEW.ring_started_at <> OLD.ring_started_at) THEN
		INSERT INTO rollout_stages (rollout_id, stage, started_at) VALUES (NEW.id, NEW.ring, NEW.ring_started_at)
			ON CONFLICT (rollout_id, stage) DO UPDATE SET started_at = excluded.started_at;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER rollout_stages_record AFTER INSERT OR UPDATE OF ring, ring_started_at ON rollouts
	FOR EACH ROW EXECUTE FUNCTION rollout_stages_record();

-- Per rollout, ring (stage) and cohort: jobs with a pipeline.
CREATE TABLE tel_exposure (
	rollout_id text NOT NULL,
	stage      integer NOT NULL,
	cohort     text NOT NULL,
	jobs       bigint NOT NULL,
	failed     bigint NOT NULL,
	pipelines  bigint NOT NULL,
	orgs       bigint NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort)
);

-- The same per signature.
CREATE TABLE tel_ring_sigs (
	rollout_id text NOT NULL,
	stage      integer NOT NULL,
	cohort     text NOT NULL,
	signature  text NOT NULL,
	jobs       bigint NOT NULL,
	pipelines  bigint NOT NULL,
	orgs       bigint NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort, signature)
);

-- The distinct pipelines (kind 'p') and orgs ('o') behind the counts of
-- tel_exposure (signature '') and tel_ring_sigs: a member inserted anew
-- increments its row's count in the same transaction.
CREATE TABLE tel_ring_members (
	rollout_id text NOT NULL,
	stage      integer NOT NULL,
	cohort     text NOT NULL,
	signature  text NOT NULL,
	kind       text NOT NULL,
	member     text NOT NULL,
	PRIMARY KEY (rollout_id, stage, cohort, signature, kind, member)
);

-- Per label, version and signature, for listing and examples.
CREATE TABLE tel_signatures (
	label      text NOT NULL,
	version    text NOT NULL,
	signature  text NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL,
	jobs       bigint NOT NULL,
	pipelines  bigint NOT NULL,
	orgs       bigint NOT NULL,
	PRIMARY KEY (label, version, signature)
);

-- A pipeline's history of a signature on each version: whether it
-- produced it before a rollout started. Also tel_signatures' pipelines.
CREATE TABLE tel_history (
	label      text NOT NULL,
	pipeline   text NOT NULL,
	signature  text NOT NULL,
	version    text NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL,
	jobs       bigint NOT NULL,
	PRIMARY KEY (label, pipeline, signature, version)
);

-- tel_signatures' orgs.
CREATE TABLE tel_version_orgs (
	label     text NOT NULL,
	version   text NOT NULL,
	signature text NOT NULL,
	org       text NOT NULL,
	PRIMARY KEY (label, version, signature, org)
);

-- Up to three example messages per version's signature: the slot in the
-- key caps them even when writers race.
CREATE TABLE tel_examples (
	label     text NOT NULL,
	version   text NOT NULL,
	signature text NOT NULL,
	slot      integer NOT NULL CHECK (slot BETWEEN 0 AND 2),
	message   text NOT NULL,
	PRIMARY KEY (label, version, signature, slot)
);

CREATE TABLE tel_templates (
	signature text PRIMARY KEY,
	template  text NOT NULL
);
