-- Re-verification (rollout.VerifyStore): the image each version was built
-- as, its drift mark, and the last verification of each version.
CREATE TABLE version_images (
	label        text NOT NULL,
	version      text NOT NULL,
	ref          text NOT NULL,
	repository   text NOT NULL,
	tag          text NOT NULL DEFAULT '',
	digest       text NOT NULL,
	scan_options text NOT NULL,
	drifted_at   timestamptz,
	drift        text,
	PRIMARY KEY (label, version),
	FOREIGN KEY (label, version) REFERENCES versions (label, version)
);

-- body is the rollout.Verification as JSON, read and written whole (text,
-- not jsonb, so it comes back byte for byte).
CREATE TABLE verifications (
	label      text NOT NULL,
	version    text NOT NULL,
	result     text NOT NULL,
	checked_at timestamptz NOT NULL,
	body       text NOT NULL,
	PRIMARY KEY (label, version),
	FOREIGN KEY (label, version) REFERENCES version_images (label, version)
);
