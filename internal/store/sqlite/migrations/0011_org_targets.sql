-- Each organisation's own alert target (rollout.OrgTargetStore): where its
-- subscriptions with org_target are sent.
CREATE TABLE org_targets (
	org        TEXT PRIMARY KEY,
	url        TEXT NOT NULL,
	format     TEXT NOT NULL DEFAULT '',
	updated_by TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
