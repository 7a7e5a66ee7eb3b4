-- Background verification (src/reconcile/verifier.h) releases the leases a
-- praefect that died while verifying left behind, every 10 s in every
-- praefect. Without this index each release reads the whole
-- storage_repositories table; with it, only the few leased rows (at most
-- 25 per verifying praefect). Praefect's index of the same name and shape.
-- Expand only.
CREATE INDEX IF NOT EXISTS verification_leases ON storage_repositories (verification_leased_until)
    WHERE verification_leased_until IS NOT NULL;
