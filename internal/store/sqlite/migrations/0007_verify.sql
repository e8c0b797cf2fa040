-- Re-verification (rollout.VerifyStore): the image each version was built
-- as, its drift mark, and the last verification of each version.
-- Times are microseconds since the epoch; 0 = never.
CREATE TABLE version_images (
	label        TEXT NOT NULL,
	version      TEXT NOT NULL,
	ref          TEXT NOT NULL,
	repository   TEXT NOT NULL,
	tag          TEXT NOT NULL DEFAULT '',
	digest       TEXT NOT NULL,
	scan_options TEXT NOT NULL,
	drifted_at   INTEGER NOT NULL DEFAULT 0,
	drift        TEXT,
	PRIMARY KEY (label, version),
	FOREIGN KEY (label, version) REFERENCES versions (label, version)
);

-- body is the rollout.Verification as JSON: read and written whole.
CREATE TABLE verifications (
	label      TEXT NOT NULL,
	version    TEXT NOT NULL,
	result     TEXT NOT NULL,
	checked_at INTEGER NOT NULL,
	body       TEXT NOT NULL,
	PRIMARY KEY (label, version),
	FOREIGN KEY (label, version) REFERENCES version_images (label, version)
);
