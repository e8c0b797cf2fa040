-- Times are timestamptz (microseconds, like the SQLite store).

CREATE TABLE generation (
	id    integer PRIMARY KEY CHECK (id = 1),
	value bigint NOT NULL
);
INSERT INTO generation (id, value) VALUES (1, 1);

CREATE TABLE images (
	label      text PRIMARY KEY,
	created_at timestamptz NOT NULL
);

CREATE TABLE versions (
	seq            bigserial PRIMARY KEY,
	label          text NOT NULL REFERENCES images (label),
	version        text NOT NULL,
	gate           text NOT NULL,
	snapshot       bytea,
	check_report   bytea,
	revoked        boolean NOT NULL DEFAULT false,
	revoked_reason text NOT NULL DEFAULT '',
	created_at     timestamptz NOT NULL,
	UNIQUE (label, version)
);

-- label '' is the global plan.
CREATE TABLE rings (
	label text PRIMARY KEY,
	rings text NOT NULL
);

CREATE TABLE rollouts (
	seq             bigserial PRIMARY KEY,
	id              text NOT NULL UNIQUE,
	label           text NOT NULL,
	version         text NOT NULL,
	from_version    text NOT NULL,
	state           text NOT NULL,
	ring            integer NOT NULL,
	ring_started_at timestamptz NOT NULL,
	rings           text NOT NULL,
	expedited       boolean NOT NULL,
	supersedes      text NOT NULL,
	forced          boolean NOT NULL,
	force_reason    text NOT NULL,
	approved        integer NOT NULL,
	reason          text NOT NULL,
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	revision        bigint NOT NULL,
	FOREIGN KEY (label, version) REFERENCES versions (label, version)
);
CREATE INDEX rollouts_label ON rollouts (label, seq);
-- At most one unfinished rollout per label: two replicas starting rollouts
-- at once cannot both win.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (label)
	WHERE state IN ('pending', 'baking', 'paused', 'halted');

CREATE TABLE pins (
	org              text NOT NULL,
	label            text NOT NULL,
	version          text NOT NULL,
	owner            text NOT NULL,
	reason           text NOT NULL,
	expires_at       timestamptz NOT NULL,
	override_revoked boolean NOT NULL,
	created_by       text NOT NULL,
	created_at       timestamptz NOT NULL,
	PRIMARY KEY (org, label),
	FOREIGN KEY (label, version) REFERENCES versions (label, version)
);
CREATE INDEX pins_label ON pins (label, org);

CREATE TABLE audit (
	id      bigserial PRIMARY KEY,
	at      timestamptz NOT NULL,
	actor   text NOT NULL,
	action  text NOT NULL,
	subject text NOT NULL,
	reason  text NOT NULL,
	-- text, not jsonb: the details come back byte for byte.
	details text
);

CREATE TABLE tokens (
	id         text PRIMARY KEY,
	name       text NOT NULL,
	role       text NOT NULL,
	hash       bytea NOT NULL UNIQUE,
	created_at timestamptz NOT NULL
);

CREATE TABLE events (
	job_id      text PRIMARY KEY,
	org         text NOT NULL,
	label       text NOT NULL,
	version     text NOT NULL,
	ring        integer NOT NULL,
	outcome     text NOT NULL,
	started_at  timestamptz NOT NULL,
	duration_ms bigint NOT NULL,
	error_text  text NOT NULL
);
-- Covers CountJobs (an index-only scan once the visibility map is set).
CREATE INDEX events_count ON events (label, version, ring, started_at) INCLUDE (outcome);

CREATE TABLE runs (
	run_id      text NOT NULL,
	label       text NOT NULL,
	version     text NOT NULL,
	assigned_at timestamptz NOT NULL,
	PRIMARY KEY (run_id, label)
);
CREATE INDEX runs_label ON runs (label);
CREATE INDEX runs_assigned ON runs (assigned_at);

CREATE TABLE served (
	label   text NOT NULL,
	minute  timestamptz NOT NULL,
	version text NOT NULL,
	ring    integer NOT NULL,
	reason  text NOT NULL,
	count   bigint NOT NULL,
	PRIMARY KEY (label, minute, version, ring, reason)
);

CREATE TABLE leases (
	name       text PRIMARY KEY,
	holder     text NOT NULL,
	expires_at timestamptz NOT NULL,
	fence      bigint NOT NULL
);
