-- Dashboard sessions (package ui): in the database rather than in one
-- process, so any replica serves a session and a logout ends it on all.
-- hash is the SHA-256 of the cookie's secret; token_hash names the API
-- token the session was opened with, judged again on every request.
CREATE TABLE ui_sessions (
	hash       BLOB PRIMARY KEY,
	token_hash BLOB NOT NULL,
	token_id   TEXT NOT NULL,
	csrf       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
