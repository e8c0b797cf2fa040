-- The alert outbox (rollout.OutboxStore): one row per alert and target,
-- kept until the target acknowledged it. claimed_until NULL means
-- unclaimed, delivered_at NULL undelivered.
CREATE TABLE outbox (
	id              bigserial PRIMARY KEY,
	key             text NOT NULL UNIQUE,
	url             text NOT NULL,
	format          text NOT NULL,
	label           text NOT NULL,
	kind            text NOT NULL,
	-- text, not jsonb: the alert comes back byte for byte.
	alert           text NOT NULL,
	created_at      timestamptz NOT NULL,
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL,
	claimed_by      text NOT NULL DEFAULT '',
	claimed_until   timestamptz,
	last_error      text NOT NULL DEFAULT '',
	delivered_at    timestamptz
);
-- Claim's scan: only what is still to send, due first.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;
