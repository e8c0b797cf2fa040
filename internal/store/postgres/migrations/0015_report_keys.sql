-- Idempotency keys of user reports (rollout.ReportStore.AddReport): the
-- sender's Idempotency-Key, unique per organisation (NULLs are distinct,
-- so reports sent without one never collide), and the fingerprint of what
-- the report said (rollout.ReportFingerprint), which tells a retry from a
-- different report under a reused key. The key is a column of its report,
-- so it lives exactly as long as the report.
ALTER TABLE reports ADD COLUMN idempotency_key text;
ALTER TABLE reports ADD COLUMN fingerprint text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX reports_by_idempotency_key ON reports (org, idempotency_key);
