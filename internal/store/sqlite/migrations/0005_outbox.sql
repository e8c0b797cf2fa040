-- The alert outbox (rollout.OutboxStore): one row per alert and target,
-- kept until the target acknowledged it. Times are microseconds since the
-- epoch; claimed_until 0 means unclaimed, delivered_at NULL undelivered.
-- AUTOINCREMENT: an id is never reused, so a late Ack or Fail cannot hit
-- a newer row.
CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	key             TEXT NOT NULL UNIQUE,
	url             TEXT NOT NULL,
	format          TEXT NOT NULL,
	label           TEXT NOT NULL,
	kind            TEXT NOT NULL,
	alert           TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	claimed_by      TEXT NOT NULL DEFAULT '',
	claimed_until   INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	delivered_at    INTEGER
);
-- Claim's scan: only what is still to send, due first.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL;
