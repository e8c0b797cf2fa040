-- User reports (rollout.ReportStore) and the escalations they caused.
CREATE TABLE reports (
	id         bigserial PRIMARY KEY,
	org        text NOT NULL,
	label      text NOT NULL,
	version    text NOT NULL DEFAULT '',
	job_id     text NOT NULL DEFAULT '',
	text       text NOT NULL,
	signature  text NOT NULL DEFAULT '',
	template   text NOT NULL DEFAULT '',
	known      boolean NOT NULL DEFAULT false,
	actor      text NOT NULL,
	created_at timestamptz NOT NULL
);
-- ReportOrgs: the distinct orgs of one signature within a window.
CREATE INDEX reports_by_signature ON reports (label, signature, created_at, org);
CREATE INDEX reports_by_label ON reports (label, id);

CREATE TABLE escalations (
	key        text PRIMARY KEY,
	label      text NOT NULL,
	signature  text NOT NULL,
	template   text NOT NULL DEFAULT '',
	rollout_id text NOT NULL DEFAULT '',
	version    text NOT NULL DEFAULT '',
	orgs       integer NOT NULL,
	action     text NOT NULL,
	created_at timestamptz NOT NULL
);
