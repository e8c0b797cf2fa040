-- Dashboard sessions (package ui): in the database rather than in one
-- process, so any replica serves a session and a logout ends it on all.
-- hash is the SHA-256 of the cookie's secret; token_hash names the API
-- token the session was opened with, judged again on every request.
CREATE TABLE ui_sessions (
	hash       bytea PRIMARY KEY,
	token_hash bytea NOT NULL,
	token_id   text NOT NULL,
	csrf       text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
