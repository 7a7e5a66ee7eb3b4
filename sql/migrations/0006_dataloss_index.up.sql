-- dataloss reads every replica's generation, a range of repositories at a
-- time (DatalossSuspectsSql in src/datastore/postgres_operator.cc): with
-- generation in the index that is an index-only scan. 1,000,000
-- repositories on 3 storages: 0.68 s to the last line of `praefect
-- dataloss` with it, 0.94 s without (bench/dataloss). Expand only. Built
-- in the migration's transaction: writes to storage_repositories wait for
-- it (about 2 s per million replicas).
CREATE INDEX IF NOT EXISTS storage_repositories_generation_idx
    ON storage_repositories (repository_id, storage) INCLUDE (generation);
