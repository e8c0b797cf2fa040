-- Change notices (rollout.SubscriptionStore): who wants to hear about a
-- label's rollouts, and when each rollout's notices went out.
CREATE TABLE subscriptions (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	org        TEXT NOT NULL,
	label      TEXT NOT NULL,
	url        TEXT NOT NULL DEFAULT '',
	format     TEXT NOT NULL DEFAULT '',
	org_target INTEGER NOT NULL DEFAULT 0,
	filters    TEXT NOT NULL, -- JSON array of diff identity globs
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX subscriptions_by_label ON subscriptions (label, seq);
CREATE INDEX subscriptions_by_org ON subscriptions (org, seq);

CREATE TABLE notice_runs (
	rollout_id TEXT PRIMARY KEY,
	label      TEXT NOT NULL,
	version    TEXT NOT NULL,
	notices    INTEGER NOT NULL,
	sent_at    INTEGER NOT NULL
);
