-- Content verification (src/reconcile/content_verifier.h): praefects walk
-- the repositories in id order, a batch at a time, comparing the checksums
-- of the replicas at the latest generation. One row: where the walk is.
-- Each praefect claims its next batch by moving the cursor in one
-- statement, so several praefects share the walk without checking a
-- repository twice, and a restarted praefect goes on where the cluster was.
CREATE TABLE content_verification (
    id                 INTEGER PRIMARY KEY DEFAULT 1 CONSTRAINT content_verification_one_row CHECK (id = 1),
    next_repository_id BIGINT NOT NULL DEFAULT 0,  -- the next batch starts here
    pass_started_at    TIMESTAMPTZ,                -- the current pass over every repository began
    passes             BIGINT NOT NULL DEFAULT 0   -- passes completed
);
INSERT INTO content_verification (id) VALUES (1);
