-- Every praefect caches which replicas are up to date; these triggers tell
-- it what changed, on the channel named by the trigger's last argument.
-- Payload: a JSON array of {"virtual_storage": ..., "relative_paths": [...]}.
-- Statement-level triggers with transition tables, so a statement touching
-- many rows sends one notification per virtual storage, not one per row.
CREATE FUNCTION notify_on_change() RETURNS TRIGGER AS $$
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

-- PostgreSQL allows transition tables only on single-event triggers.
CREATE TRIGGER notify_on_insert AFTER INSERT ON storage_repositories
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_on_change('repositories_updates');
CREATE TRIGGER notify_on_update AFTER UPDATE ON storage_repositories
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_on_change('repositories_updates');
CREATE TRIGGER notify_on_delete AFTER DELETE ON storage_repositories
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_on_change('repositories_updates');
CREATE TRIGGER notify_on_delete AFTER DELETE ON repositories
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_on_change('repositories_updates');

-- Replication workers wake on this instead of polling. Payload: a JSON array
-- of {"virtual_storage": ..., "target_node_storage": ...}.
CREATE FUNCTION notify_on_enqueue() RETURNS TRIGGER AS $$
DECLARE
    msg JSONB;
BEGIN
    SELECT jsonb_agg(DISTINCT jsonb_build_object(
               'virtual_storage', job->>'virtual_storage',
               'target_node_storage', job->>'target_node_storage'))
    INTO msg FROM new_rows WHERE state = 'ready';
    IF msg IS NOT NULL THEN
        PERFORM pg_notify('replication_queue_enqueued', msg::TEXT);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER notify_on_enqueue AFTER INSERT ON replication_queue
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_on_enqueue();
