-- Change notices (rollout.SubscriptionStore): who wants to hear about a
-- label's rollouts, and when each rollout's notices went out.
CREATE TABLE subscriptions (
	seq        bigserial PRIMARY KEY,
	id         text NOT NULL UNIQUE,
	org        text NOT NULL,
	label      text NOT NULL,
	url        text NOT NULL DEFAULT '',
	format     text NOT NULL DEFAULT '',
	org_target boolean NOT NULL DEFAULT false,
	filters    text NOT NULL, -- JSON array of diff identity globs
	created_by text NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX subscriptions_by_label ON subscriptions (label, seq);
CREATE INDEX subscriptions_by_org ON subscriptions (org, seq);

CREATE TABLE notice_runs (
	rollout_id text PRIMARY KEY,
	label      text NOT NULL,
	version    text NOT NULL,
	notices    integer NOT NULL,
	sent_at    timestamptz NOT NULL
);
