DROP INDEX IF EXISTS storage_repositories_generation_idx;
