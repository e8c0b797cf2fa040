-- Each organisation's own alert target (rollout.OrgTargetStore): where its
-- subscriptions with org_target are sent.
CREATE TABLE org_targets (
	org        text PRIMARY KEY,
	url        text NOT NULL,
	format     text NOT NULL DEFAULT '',
	updated_by text NOT NULL,
	updated_at timestamptz NOT NULL
);
