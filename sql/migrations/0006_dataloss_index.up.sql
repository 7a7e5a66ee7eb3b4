-- dataloss reads every replica's generation, a range of repositories at a
-- time (DatalossSuspectsSql in src/datastore/postgres_operator.cc): with
-- generation in the index that is an index-only scan (41 ms per range of
-- 50,000 repositories on 3 storages, 109 ms without it; bench/README.md,
-- "dataloss over 1,000,000 repositories"). Expand only. Built in the
-- migration's transaction: writes to storage_repositories wait for it
-- (2.9 s for 3,000,000 replicas on a loaded 2-core machine).
CREATE INDEX IF NOT EXISTS storage_repositories_generation_idx
    ON storage_repositories (repository_id, storage) INCLUDE (generation);
