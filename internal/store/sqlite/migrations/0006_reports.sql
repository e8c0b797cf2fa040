-- User reports (rollout.ReportStore) and the escalations they caused.
-- Times are microseconds since the epoch.
CREATE TABLE reports (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	org        TEXT NOT NULL,
	label      TEXT NOT NULL,
	version    TEXT NOT NULL DEFAULT '',
	job_id     TEXT NOT NULL DEFAULT '',
	text       TEXT NOT NULL,
	signature  TEXT NOT NULL DEFAULT '',
	template   TEXT NOT NULL DEFAULT '',
	known      INTEGER NOT NULL DEFAULT 0,
	actor      TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
-- ReportOrgs: the distinct orgs of one signature within a window.
CREATE INDEX reports_by_signature ON reports (label, signature, created_at, org);
CREATE INDEX reports_by_label ON reports (label, id);

CREATE TABLE escalations (
	key        TEXT PRIMARY KEY,
	label      TEXT NOT NULL,
	signature  TEXT NOT NULL,
	template   TEXT NOT NULL DEFAULT '',
	rollout_id TEXT NOT NULL DEFAULT '',
	version    TEXT NOT NULL DEFAULT '',
	orgs       INTEGER NOT NULL,
	action     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
