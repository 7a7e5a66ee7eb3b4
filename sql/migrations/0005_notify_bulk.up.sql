-- A statement that changes replicas of many repositories (a bulk UPDATE by
-- an operator, verify of a whole storage, a large track-repositories) made
-- migration 0002's notification longer than the 8000 bytes pg_notify
-- takes, and PostgreSQL then failed the statement itself ("payload string
-- too long"). Now such a notification names the virtual storages only,
-- with "relative_paths": null: every praefect flushes its read cache.
-- Expand only: a praefect older than this cannot parse null and flushes its
-- whole cache, which is what it should do.
CREATE OR REPLACE FUNCTION notify_on_change() RETURNS TRIGGER AS $$
DECLARE
    msg JSONB;
BEGIN
    CASE TG_OP
    WHEN 'INSERT' THEN
        SELECT jsonb_agg(obj) INTO msg FROM (
            SELECT jsonb_build_object('virtual_storage', virtual_storage,
                                      'relative_paths', array_agg(DISTINCT relative_path)) AS obj
            FROM new_rows GROUP BY virtual_storage) t;
    WHEN 'UPDATE' THEN
        -- Only changes of generation (or of path) matter to the caches;
        -- verification bookkeeping does not.
        SELECT jsonb_agg(obj) INTO msg FROM (
            SELECT jsonb_build_object('virtual_storage', n.virtual_storage,
                                      'relative_paths', array_agg(DISTINCT n.relative_path)) AS obj
            FROM new_rows n JOIN old_rows o USING (repository_id, storage)
            WHERE n.generation IS DISTINCT FROM o.generation
               OR n.relative_path IS DISTINCT FROM o.relative_path
            GROUP BY n.virtual_storage) t;
    WHEN 'DELETE' THEN
        SELECT jsonb_agg(obj) INTO msg FROM (
            SELECT jsonb_build_object('virtual_storage', virtual_storage,
                                      'relative_paths', array_agg(DISTINCT relative_path)) AS obj
            FROM old_rows GROUP BY virtual_storage) t;
    END CASE;
    IF msg IS NULL OR jsonb_array_length(msg) = 0 THEN
        RETURN NULL;
    END IF;
    IF octet_length(msg::TEXT) >= 8000 THEN
        SELECT jsonb_agg(jsonb_build_object('virtual_storage', e->>'virtual_storage', 'relative_paths', NULL))
        INTO msg FROM jsonb_array_elements(msg) e;
    END IF;
    PERFORM pg_notify(TG_ARGV[TG_NARGS - 1], msg::TEXT);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
