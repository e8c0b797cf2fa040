-- Run assignments keyed by (label, run_id) instead of (run_id, label) plus
-- an index on label: the primary key now serves ForgetRuns's delete by
-- label, and every new run writes two b-trees instead of three (AssignRun
-- is on the resolve path, and its commits are mostly those page writes).
CREATE TABLE runs_by_label (
	run_id      TEXT NOT NULL,
	label       TEXT NOT NULL,
	version     TEXT NOT NULL,
	assigned_at INTEGER NOT NULL,
	PRIMARY KEY (label, run_id)
) WITHOUT ROWID;
INSERT INTO runs_by_label (run_id, label, version, assigned_at)
	SELECT run_id, label, version, assigned_at FROM runs;
DROP TABLE runs;
ALTER TABLE runs_by_label RENAME TO runs;
CREATE INDEX runs_assigned ON runs (assigned_at);
