-- Back to migration 0002's notify_on_change.
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
    IF msg IS NOT NULL AND jsonb_array_length(msg) > 0 THEN
        PERFORM pg_notify(TG_ARGV[TG_NARGS - 1], msg::TEXT);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
