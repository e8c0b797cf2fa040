-- Token lifecycle: an optional expiry, when a replica last looked the
-- token up, and revocation. A revoked token stays as a tombstone so its
-- secret (IMAGEGATE_ADMIN_TOKEN included) can never be registered again.
-- NULL means unset.
ALTER TABLE tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE tokens ADD COLUMN last_used_at timestamptz;
ALTER TABLE tokens ADD COLUMN revoked_at timestamptz;
