-- Times are INTEGER microseconds since the Unix epoch, UTC (the precision
-- PostgreSQL keeps too, so both stores return the same values).

CREATE TABLE generation (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
);
INSERT INTO generation (id, value) VALUES (1, 1);

CREATE TABLE images (
	label      TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE versions (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	label          TEXT NOT NULL REFERENCES images (label),
	version        TEXT NOT NULL,
	gate           TEXT NOT NULL,
	snapshot       BLOB,
	check_report   BLOB,
	revoked        INTEGER NOT NULL DEFAULT 0,
	revoked_reason TEXT NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	UNIQUE (label, version)
);

-- label '' is the global plan.
CREATE TABLE rings (
	label TEXT PRIMARY KEY,
	rings TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE rollouts (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL UNIQUE,
	label           TEXT NOT NULL,
	version         TEXT NOT NULL,
	from_version    TEXT NOT NULL,
	state           TEXT NOT NULL,
	ring            INTEGER NOT NULL,
	ring_started_at INTEGER NOT NULL,
	rings           TEXT NOT NULL,
	expedited       INTEGER NOT NULL,
	supersedes      TEXT NOT NULL,
	forced          INTEGER NOT NULL,
	force_reason    TEXT NOT NULL,
	approved        INTEGER NOT NULL,
	reason          TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	revision        INTEGER NOT NULL,
	FOREIGN KEY (label, version) REFERENCES versions (label, version)
);
CREATE INDEX rollouts_label ON rollouts (label, seq);
-- At most one unfinished rollout per label: two replicas starting rollouts
-- at once cannot both win.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (label)
	WHERE state IN ('pending', 'baking', 'paused', 'halted');

CREATE TABLE pins (
	org              TEXT NOT NULL,
	label            TEXT NOT NULL,
	version          TEXT NOT NULL,
	owner            TEXT NOT NULL,
	reason           TEXT NOT NULL,
	expires_at       INTEGER NOT NULL,
	override_revoked INTEGER NOT NULL,
	created_by       TEXT NOT NULL,
	created_at       INTEGER NOT NULL,
	PRIMARY KEY (org, label),
	FOREIGN KEY (label, version) REFERENCES versions (label, version)
) WITHOUT ROWID;
CREATE INDEX pins_label ON pins (label, org);

CREATE TABLE audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL,
	reason  TEXT NOT NULL,
	details TEXT
);

CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	role       TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

CREATE TABLE events (
	job_id      TEXT PRIMARY KEY,
	org         TEXT NOT NULL,
	label       TEXT NOT NULL,
	version     TEXT NOT NULL,
	ring        INTEGER NOT NULL,
	outcome     TEXT NOT NULL,
	started_at  INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	error_text  TEXT NOT NULL
) WITHOUT ROWID;
-- Covers CountJobs: the aggregate never touches the table itself.
CREATE INDEX events_count ON events (label, version, ring, started_at, outcome);

CREATE TABLE runs (
	run_id      TEXT NOT NULL,
	label       TEXT NOT NULL,
	version     TEXT NOT NULL,
	assigned_at INTEGER NOT NULL,
	PRIMARY KEY (run_id, label)
) WITHOUT ROWID;
CREATE INDEX runs_label ON runs (label);
CREATE INDEX runs_assigned ON runs (assigned_at);

CREATE TABLE served (
	label   TEXT NOT NULL,
	minute  INTEGER NOT NULL,
	version TEXT NOT NULL,
	ring    INTEGER NOT NULL,
	reason  TEXT NOT NULL,
	count   INTEGER NOT NULL,
	PRIMARY KEY (label, minute, version, ring, reason)
) WITHOUT ROWID;

CREATE TABLE leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	fence      INTEGER NOT NULL
) WITHOUT ROWID;
