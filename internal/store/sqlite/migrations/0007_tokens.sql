-- Token lifecycle: an optional expiry, when a replica last looked the
-- token up, and revocation. A revoked token stays as a tombstone so its
-- secret (IMAGEGATE_ADMIN_TOKEN included) can never be registered again.
-- Zero (the Unix epoch in microseconds is never a real value here) means
-- unset.
ALTER TABLE tokens ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
